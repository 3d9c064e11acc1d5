//! YAML as a tree of nodes that remember where they were written: yaml-rust2's event
//! parser, with anchors and aliases resolved, and limits on size and nesting so hostile
//! text cannot exhaust memory or the stack. Scalars are kept as written (text, quoting,
//! tag); what they mean is the caller's business: workflows read them as GitHub does
//! (`workflows`), templates as CloudFormation does (`impact::template_yaml`).

use std::borrow::Cow;
use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted, aliases expanded.
const MAX_DEPTH: usize = 256;
/// Most closing brackets [`Options::flow_closers_anywhere`] re-indents in one file.
const MAX_REINDENTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl YamlError {
    pub fn at(position: Position, message: impl Into<String>) -> YamlError {
        YamlError {
            line: position.line,
            column: position.column,
            message: message.into(),
        }
    }
}

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Position {
    fn from(mark: Marker) -> Position {
        Position {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }
}

/// What one caller accepts.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Most nodes the text may expand to once aliases are resolved (a "billion laughs"
    /// file stops here).
    pub max_nodes: usize,
    /// Only the first document is read; what follows it is not built.
    pub first_document_only: bool,
    /// A line that closes a flow collection (`]` or `}` first) indented less than the key
    /// it belongs to is invalid YAML 1.2, which yaml-rust2 enforces, but libyaml and
    /// GitHub accept it (`region: [\n    "a",\n  ]`). With this set, such a line is
    /// indented like the line before it and the text parsed again; line numbers stay.
    pub flow_closers_anywhere: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A plain `~`, `null`, `Null`, `NULL` or nothing, as written.
    Null {
        text: String,
    },
    /// Every other scalar is kept as written; `quoted` tells `"true"` from `true`.
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    /// 1-based line where the node starts (for an alias, where its anchor's node starts).
    pub line: usize,
    /// 1-based column where the node starts.
    pub column: usize,
    /// `!Ref` is handle `!`, suffix `Ref`; `!!str` is handle `tag:yaml.org,2002:`.
    pub tag: Option<Tag>,
    /// Where the alias stands that this node was copied in for.
    pub alias: Option<Position>,
}

impl Node {
    /// The value under `key` of a mapping (the last one, if a key repeats).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node of `key`.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Mapping(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.value {
            Value::Mapping(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Sequence(items) => items,
            _ => &[],
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null { .. })
    }

    pub fn is_mapping(&self) -> bool {
        matches!(self.value, Value::Mapping(_))
    }

    /// A scalar, or each scalar of a sequence (`branches: main` and `branches: [main]`).
    pub fn strings(&self) -> Vec<&str> {
        match &self.value {
            Value::Scalar { text, .. } => vec![text.as_str()],
            Value::Sequence(items) => items.iter().filter_map(Node::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// Every document of `text` (only the first with [`Options::first_document_only`]); an
/// empty stream gives none.
pub fn parse(text: &str, options: &Options) -> Result<Vec<Node>, YamlError> {
    if !options.flow_closers_anywhere {
        return parse_strict(text, options);
    }
    let mut text = Cow::Borrowed(text);
    for _ in 0..MAX_REINDENTS {
        match parse_strict(&text, options) {
            Err(error) if error.message == "invalid indentation" => match reindent(&text, error.line) {
                Some(fixed) => text = Cow::Owned(fixed),
                None => return Err(error),
            },
            result => return result,
        }
    }
    parse_strict(&text, options)
}

/// `text` with line `line` (1-based) indented like the nearest non-blank line above,
/// when that line starts with a flow closing bracket.
fn reindent(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let index = line.checked_sub(1)?;
    let target = lines.get(index)?;
    let content = target.trim_start_matches(' ');
    if !content.starts_with([']', '}']) {
        return None;
    }
    let above = lines[..index].iter().rev().find(|l| !l.trim().is_empty())?;
    let indent = above.len() - above.trim_start_matches(' ').len();
    if indent <= target.len() - content.len() {
        return None;
    }
    let mut fixed = lines.clone();
    let replaced = format!("{}{content}", " ".repeat(indent));
    fixed[index] = &replaced;
    Some(fixed.join("\n"))
}

fn parse_strict(text: &str, options: &Options) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder {
        options: *options,
        documents: Vec::new(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, true)
        .map_err(|e| YamlError::at(Position::from(*e.marker()), e.info()))?;
    match builder.error {
        Some(error) => Err(error),
        None => Ok(builder.documents),
    }
}

/// A collection whose end has not come yet.
struct Open {
    start: Node,
    anchor: usize,
    items: Vec<Node>,
    /// Mappings only: the key waiting for its value.
    key: Option<Node>,
    entries: Vec<(Node, Node)>,
}

struct Builder {
    options: Options,
    documents: Vec<Node>,
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, mark: Marker, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError::at(mark.into(), message));
        }
    }

    /// Takes `nodes` more nodes, nesting `depth` collections below the open ones, from the
    /// budget.
    fn admit(&mut self, nodes: usize, depth: usize, mark: Marker) -> bool {
        if self.stack.len().saturating_add(depth) > MAX_DEPTH {
            self.fail(mark, format!("nested deeper than {MAX_DEPTH} levels"));
            return false;
        }
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > self.options.max_nodes {
            let max = self.options.max_nodes;
            self.fail(mark, format!("more than {max} nodes once aliases are expanded"));
            return false;
        }
        true
    }

    fn open(&mut self, start: Node, anchor: usize, mark: Marker) {
        if self.admit(1, 1, mark) {
            self.stack.push(Open {
                start,
                anchor,
                items: Vec::new(),
                key: None,
                entries: Vec::new(),
            });
        }
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(open) if matches!(open.start.value, Value::Sequence(_)) => open.items.push(node),
            Some(open) => match open.key.take() {
                None => open.key = Some(node),
                Some(key) => open.entries.push((key, node)),
            },
        }
    }
}

/// How many nodes `node` holds, and how many collections deep it nests.
fn measure(node: &Node) -> (usize, usize) {
    let add = |(size, depth): (usize, usize), child: &Node| {
        let (s, d) = measure(child);
        (size.saturating_add(s), depth.max(d + 1))
    };
    match &node.value {
        Value::Sequence(items) => items.iter().fold((1, 1), add),
        Value::Mapping(entries) => entries.iter().flat_map(|(k, v)| [k, v]).fold((1, 1), add),
        _ => (1, 0),
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() || (self.options.first_document_only && !self.documents.is_empty()) {
            return;
        }
        let at = |value: Value, tag: Option<Tag>| Node {
            value,
            line: mark.line(),
            column: mark.col() + 1,
            tag,
            alias: None,
        };
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if !self.admit(1, 0, mark) {
                    return;
                }
                let quoted = !matches!(style, TScalarStyle::Plain);
                let value = if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null { text }
                } else {
                    Value::Scalar { text, quoted }
                };
                self.finish(at(value, tag), anchor);
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor).cloned() {
                Some(mut node) => {
                    let (nodes, depth) = measure(&node);
                    if self.admit(nodes, depth, mark) {
                        node.alias = Some(mark.into());
                        self.finish(node, 0);
                    }
                }
                None => self.fail(mark, "alias of an unknown anchor".to_owned()),
            },
            Event::SequenceStart(anchor, tag) => {
                self.open(at(Value::Sequence(Vec::new()), tag), anchor, mark)
            }
            Event::MappingStart(anchor, tag) => self.open(at(Value::Mapping(Vec::new()), tag), anchor, mark),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open {
                    mut start,
                    anchor,
                    items,
                    entries,
                    ..
                }) => {
                    start.value = match start.value {
                        Value::Sequence(_) => Value::Sequence(items),
                        _ => Value::Mapping(entries),
                    };
                    self.finish(start, anchor);
                }
                None => self.fail(mark, "unbalanced end of a collection".to_owned()),
            },
            Event::DocumentStart => self.anchors.clear(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: Options = Options {
        max_nodes: 200_000,
        first_document_only: false,
        flow_closers_anywhere: true,
    };

    fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
        super::parse(text, &OPTIONS)
    }

    #[test]
    fn keeps_lines_and_resolves_aliases() {
        let docs = parse("a: &x\n  b: 1\nc: *x\n---\nd: [e, f]\n").unwrap();
        assert_eq!(docs.len(), 2);
        let c = docs[0].get("c").unwrap();
        assert_eq!(c.get("b").unwrap().as_str(), Some("1"));
        assert_eq!(docs[0].get("a").unwrap().get("b").unwrap().line, 2);
        assert_eq!(docs[1].get("d").unwrap().strings(), vec!["e", "f"]);
    }

    #[test]
    fn alias_bombs_stop() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            text.push_str(&format!(
                "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                p = if i == 0 {
                    "a".to_owned()
                } else {
                    format!("b{}", i - 1)
                }
            ));
        }
        assert!(parse(&text).is_err());
    }

    #[test]
    fn accepts_closing_brackets_left_of_their_key() {
        let docs = parse("a:\n  b: [\n    x,\n    y\n  ]\n  c: 1\n").unwrap();
        assert_eq!(
            docs[0].get("a").unwrap().get("b").unwrap().strings(),
            vec!["x", "y"]
        );
        assert_eq!(docs[0].get("a").unwrap().get("c").unwrap().line, 6);
    }

    #[test]
    fn errors_name_the_line() {
        let error = parse("a: b\n  c: [\n").unwrap_err();
        assert!(error.line >= 1, "{error}");
    }

    #[test]
    fn the_first_document_only_when_asked() {
        let small = Options {
            max_nodes: 10,
            ..OPTIONS
        };
        let first = Options {
            first_document_only: true,
            ..small
        };
        let text = "a: 1\n---\nb: [x, x, x, x, x, x, x, x, x, x]\n";
        assert_eq!(super::parse(text, &first).unwrap().len(), 1);
        assert!(super::parse(text, &small).unwrap_err().message.contains("nodes"));
    }

    #[test]
    fn aliases_cannot_nest_past_the_depth_limit() {
        let deep = |n: usize| format!("{}x{}", "[".repeat(n), "]".repeat(n));
        let text = format!(
            "a: &a {}\nb: {}*a{}\n",
            deep(200),
            "[".repeat(100),
            "]".repeat(100)
        );
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("nested deeper"), "{error}");
        assert!(parse(&format!("a: &a {}\nb: *a\n", deep(200))).is_ok());
    }

    #[test]
    fn scalars_keep_what_was_written() {
        let docs = parse("a: !!str ~\nb: !Ref x\n").unwrap();
        let a = docs[0].get("a").unwrap();
        assert!(a.is_null());
        assert_eq!(a.tag.as_ref().map(|t| t.suffix.as_str()), Some("str"));
        assert_eq!(
            docs[0].get("b").unwrap().tag.as_ref().map(|t| t.handle.as_str()),
            Some("!")
        );
        assert_eq!(docs[0].get("b").unwrap().line, 2);
    }
}
