//! CloudFormation/SAM templates in YAML: parsed from the YAML event stream into JSON
//! values, the short-form intrinsic tags (`!Sub`, `!Ref`, `!GetAtt`, `!Join`, …) turned
//! into their long form, and the line of every mapping key and sequence item kept.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most nodes one template may expand to (aliases included): a few aliases can otherwise
/// stand for billions of nodes.
const MAX_NODES: usize = 1_000_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A parsed template: its value, and the line of each node by path (`Resources/Role/...`,
/// sequence items by index).
#[derive(Debug, Default)]
pub struct Parsed {
    pub value: Value,
    pub lines: HashMap<String, usize>,
}

impl Parsed {
    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            path = &path[..path.rfind('/')?];
        }
    }
}

/// Parses the first document of `text`.
pub fn parse(text: &str) -> Result<Parsed, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| YamlError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    Ok(Parsed {
        value: builder.root.unwrap_or(Value::Null),
        lines: builder.lines,
    })
}

enum Frame {
    Sequence {
        items: Vec<Value>,
        tag: Option<Tag>,
        anchor: usize,
        nodes: usize,
        path: String,
    },
    Mapping {
        entries: Map<String, Value>,
        key: Option<String>,
        tag: Option<Tag>,
        anchor: usize,
        nodes: usize,
        path: String,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    root: Option<Value>,
    lines: HashMap<String, usize>,
    nodes: usize,
    error: Option<YamlError>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() || self.root.is_some() {
            return;
        }
        if let Err(message) = self.event(event, mark) {
            self.error = Some(YamlError {
                line: mark.line(),
                column: mark.col() + 1,
                message,
            });
        }
    }
}

impl Builder {
    /// The path of the node that starts now, and records its line.
    fn child_path(&mut self, line: usize) -> String {
        let path = match self.stack.last() {
            None => String::new(),
            Some(Frame::Sequence { items, path, .. }) => format!("{path}/{}", items.len()),
            Some(Frame::Mapping { key, path, .. }) => {
                format!("{path}/{}", key.as_deref().unwrap_or_default())
            }
        };
        self.lines.entry(path.clone()).or_insert(line);
        path
    }

    fn event(&mut self, event: Event, mark: Marker) -> Result<(), String> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                // A mapping waiting for its key takes the scalar as the key.
                if let Some(Frame::Mapping { key, path, .. }) = self.stack.last_mut() {
                    if key.is_none() {
                        if tag.as_ref().is_some_and(|t| t.handle == "!") {
                            return Err(format!(
                                "a tagged mapping key (!{}) is not supported",
                                t_suffix(&tag)
                            ));
                        }
                        let path = format!("{path}/{text}");
                        self.lines.entry(path).or_insert(mark.line());
                        *key = Some(text);
                        return Ok(());
                    }
                }
                self.child_path(mark.line());
                let value = tagged(tag.as_ref(), scalar(&text, style, tag.as_ref()));
                self.push(value, anchor, 1)
            }
            Event::SequenceStart(anchor, tag) => {
                self.refuse_key("a sequence")?;
                self.depth_check()?;
                let path = self.child_path(mark.line());
                self.stack.push(Frame::Sequence {
                    items: Vec::new(),
                    tag,
                    anchor,
                    nodes: 1,
                    path,
                });
                Ok(())
            }
            Event::MappingStart(anchor, tag) => {
                self.refuse_key("a mapping")?;
                self.depth_check()?;
                let path = self.child_path(mark.line());
                self.stack.push(Frame::Mapping {
                    entries: Map::new(),
                    key: None,
                    tag,
                    anchor,
                    nodes: 1,
                    path,
                });
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Sequence {
                    items,
                    tag,
                    anchor,
                    nodes,
                    ..
                }) => self.push(tagged(tag.as_ref(), Value::Array(items)), anchor, nodes),
                _ => Err("unbalanced sequence".to_owned()),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Mapping {
                    entries,
                    tag,
                    anchor,
                    nodes,
                    ..
                }) => self.push(tagged(tag.as_ref(), Value::Object(entries)), anchor, nodes),
                _ => Err("unbalanced mapping".to_owned()),
            },
            Event::Alias(id) => {
                let Some((value, nodes)) = self.anchors.get(&id).cloned() else {
                    return Err("alias of an unknown anchor".to_owned());
                };
                if let Some(Frame::Mapping { key: None, .. }) = self.stack.last() {
                    return match value {
                        Value::String(text) => {
                            self.event(Event::Scalar(text, TScalarStyle::SingleQuoted, 0, None), mark)
                        }
                        _ => Err("an alias of a collection as a mapping key is not supported".to_owned()),
                    };
                }
                self.child_path(mark.line());
                self.push(value, 0, nodes)
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => Ok(()),
        }
    }

    fn refuse_key(&self, what: &str) -> Result<(), String> {
        match self.stack.last() {
            Some(Frame::Mapping { key: None, .. }) => {
                Err(format!("{what} as a mapping key is not supported"))
            }
            _ => Ok(()),
        }
    }

    fn depth_check(&self) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    /// A finished node goes into its parent (or becomes the document).
    fn push(&mut self, value: Value, anchor: usize, nodes: usize) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} nodes once aliases are expanded"));
        }
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Sequence { items, nodes: n, .. }) => {
                items.push(value);
                *n = n.saturating_add(nodes);
            }
            Some(Frame::Mapping {
                entries,
                key,
                nodes: n,
                ..
            }) => {
                let Some(key) = key.take() else {
                    return Err("a mapping key that is not a scalar".to_owned());
                };
                entries.insert(key, value);
                *n = n.saturating_add(nodes);
            }
        }
        Ok(())
    }
}

fn t_suffix(tag: &Option<Tag>) -> &str {
    tag.as_ref().map_or("", |t| t.suffix.as_str())
}

/// A plain scalar under YAML 1.2's core schema; quoted ones are strings; `!!` tags decide.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag.filter(|t| t.handle == "tag:yaml.org,2002:") {
        return match tag.suffix.as_str() {
            "str" => Value::String(text.to_owned()),
            "null" => Value::Null,
            "bool" | "int" | "float" => plain(text),
            _ => Value::String(text.to_owned()),
        };
    }
    if style != TScalarStyle::Plain || tag.is_some() {
        return Value::String(text.to_owned());
    }
    plain(text)
}

fn plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Leading zeros (account ids, 012345678901) would be lost as a number.
        if !(digits.len() > 1 && digits.starts_with('0')) {
            if let Ok(n) = text.parse::<i64>() {
                return Value::Number(n.into());
            }
        }
        return Value::String(text.to_owned());
    }
    let looks_float = text.bytes().any(|b| b == b'.' || b == b'e' || b == b'E')
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_float {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_owned())
}

/// `!Sub x` is `{"Fn::Sub": x}`, `!Ref x` is `{"Ref": x}`, `!GetAtt a.b` is
/// `{"Fn::GetAtt": ["a", "b"]}`, `!Condition x` is `{"Condition": x}`.
fn tagged(tag: Option<&Tag>, value: Value) -> Value {
    let Some(tag) = tag.filter(|t| t.handle == "!") else {
        return value;
    };
    let (name, value) = match tag.suffix.as_str() {
        "Ref" => ("Ref".to_owned(), value),
        "Condition" => ("Condition".to_owned(), value),
        "GetAtt" => {
            let value = match value {
                Value::String(text) => match text.split_once('.') {
                    Some((resource, attribute)) => Value::Array(vec![
                        Value::String(resource.to_owned()),
                        Value::String(attribute.to_owned()),
                    ]),
                    None => Value::String(text),
                },
                other => other,
            };
            ("Fn::GetAtt".to_owned(), value)
        }
        other => (format!("Fn::{other}"), value),
    };
    let mut map = Map::new();
    map.insert(name, value);
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_form_tags_become_long_form() {
        let parsed = parse(
            "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Sub '${Env}-deploy'\n      Arn: !GetAtt Role.Arn\n      Joined: !Join [':', [a, !Ref B]]\n      Id: 012345678901\n      N: 3600\n",
        )
        .unwrap();
        let properties = &parsed.value["Resources"]["Role"]["Properties"];
        assert_eq!(properties["RoleName"], json!({"Fn::Sub": "${Env}-deploy"}));
        assert_eq!(properties["Arn"], json!({"Fn::GetAtt": ["Role", "Arn"]}));
        assert_eq!(
            properties["Joined"],
            json!({"Fn::Join": [":", ["a", {"Ref": "B"}]]})
        );
        assert_eq!(properties["Id"], json!("012345678901"));
        assert_eq!(properties["N"], json!(3600));
        assert_eq!(parsed.line_of("/Resources/Role"), Some(2));
        assert_eq!(parsed.line_of("/Resources/Role/Properties/RoleName"), Some(5));
        assert_eq!(parsed.line_of("/Resources/Role/Properties/Joined/1/0"), Some(7));
    }

    #[test]
    fn anchors_expand_and_bombs_are_refused() {
        let parsed = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(parsed.value["b"], json!({"k": "v"}));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let error = parse(&bomb).unwrap_err();
        assert!(error.message.contains("nodes"), "{error:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn template_shaped_text_never_panics(
            lines in proptest::collection::vec(
                "( {0,6})(Resources:|Type: AWS::IAM::Role|[A-Za-z]{1,8}:|- |!Sub|!Ref|!GetAtt|!Join|&a|\\*a|\\[|\\]|\\{|\\}|\"\\$\\{[A-Z]{1,3}\\}\"|: )( [a-z!*&:\\[\\]{}$\"']{0,12})?",
                0..30,
            )
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let error = parse("a: b\nc: [d\n").unwrap_err();
        assert!(error.line >= 2, "{error:?}");
    }
}
