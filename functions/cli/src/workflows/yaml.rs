//! Workflow YAML as a tree of nodes that remember their line: yaml-rust2's event parser,
//! with anchors and aliases resolved and every document of the stream kept.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most nodes one file may expand to once aliases are resolved (a "billion laughs" file
/// stops here instead of exhausting memory).
const MAX_NODES: usize = 200_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Every scalar is kept as written; `quoted` tells `"true"` from `true`.
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
    /// 1-based line where the node starts.
    pub line: usize,
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
        matches!(self.value, Value::Null)
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

/// Most closing brackets [`parse`] re-indents in one file.
const MAX_REINDENTS: usize = 64;

/// Every document of `text`; an empty stream gives none.
///
/// One leniency: a line that closes a flow collection (`]` or `}` first) indented less
/// than the key it belongs to is invalid YAML 1.2, which yaml-rust2 enforces, but libyaml
/// and GitHub accept it (`region: [\n    "a",\n  ]`); such a line is indented like the line
/// before it and the text parsed again. Line numbers stay the same.
pub fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut text = std::borrow::Cow::Borrowed(text);
    for _ in 0..MAX_REINDENTS {
        match parse_strict(&text) {
            Err(error) if error.message == "invalid indentation" => match reindent(&text, error.line) {
                Some(fixed) => text = std::borrow::Cow::Owned(fixed),
                None => return Err(error),
            },
            result => return result,
        }
    }
    parse_strict(&text)
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

fn parse_strict(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| YamlError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    })?;
    match builder.error {
        Some(error) => Err(error),
        None => Ok(builder.documents),
    }
}

enum Open {
    Sequence {
        anchor: usize,
        line: usize,
        items: Vec<Node>,
    },
    Mapping {
        anchor: usize,
        line: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    documents: Vec<Node>,
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, mark: Marker, message: &str) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                line: mark.line(),
                column: mark.col() + 1,
                message: message.to_owned(),
            });
        }
    }

    fn count(&mut self, nodes: usize, mark: Marker) -> bool {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            self.fail(
                mark,
                "the document expands to too many nodes (aliases nested too deep?)",
            );
            return false;
        }
        true
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Open::Sequence { items, .. }) => items.push(node),
            Some(Open::Mapping { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

fn size(node: &Node) -> usize {
    match &node.value {
        Value::Sequence(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Mapping(entries) => 1 + entries.iter().map(|(k, v)| size(k) + size(v)).sum::<usize>(),
        _ => 1,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                if !self.count(1, mark) {
                    return;
                }
                let quoted = !matches!(style, TScalarStyle::Plain);
                let value = if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar { text, quoted }
                };
                self.finish(Node { value, line }, anchor);
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor).cloned() {
                Some(node) => {
                    if self.count(size(&node), mark) {
                        self.finish(node, 0);
                    }
                }
                None => self.fail(mark, "alias to an unknown anchor"),
            },
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _)
                if self.stack.len() >= MAX_DEPTH =>
            {
                let _ = anchor;
                self.fail(mark, "nested too deep");
            }
            Event::SequenceStart(anchor, _) => {
                if self.count(1, mark) {
                    self.stack.push(Open::Sequence {
                        anchor,
                        line,
                        items: Vec::new(),
                    });
                }
            }
            Event::MappingStart(anchor, _) => {
                if self.count(1, mark) {
                    self.stack.push(Open::Mapping {
                        anchor,
                        line,
                        entries: Vec::new(),
                        key: None,
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Sequence { anchor, line, items }) => self.finish(
                    Node {
                        value: Value::Sequence(items),
                        line,
                    },
                    anchor,
                ),
                Some(Open::Mapping {
                    anchor,
                    line,
                    entries,
                    ..
                }) => self.finish(
                    Node {
                        value: Value::Mapping(entries),
                        line,
                    },
                    anchor,
                ),
                None => self.fail(mark, "unbalanced end of a collection"),
            },
            Event::DocumentStart => self.anchors.clear(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
