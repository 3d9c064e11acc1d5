//! CloudFormation/SAM templates in YAML: the first document of [`crate::yaml`]'s tree as a
//! JSON value, plain scalars read under YAML 1.2's core schema, the short-form intrinsic
//! tags (`!Sub`, `!Ref`, `!GetAtt`, `!Join`, …) turned into their long form, and the line
//! of every mapping key and sequence item kept.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::Tag;

use crate::yaml::{self, Node, Position, YamlError};

const TEMPLATE_YAML: yaml::Options = yaml::Options {
    max_nodes: 1_000_000,
    first_document_only: true,
    flow_closers_anywhere: false,
};

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
    let mut parsed = Parsed::default();
    if let Some(root) = yaml::parse(text, &TEMPLATE_YAML)?.first() {
        parsed.value = convert(root, String::new(), &mut Some(&mut parsed.lines))?;
    }
    Ok(parsed)
}

/// Where `node` starts, or the alias that stands for it.
fn position(node: &Node) -> Position {
    node.alias.unwrap_or(Position {
        line: node.line,
        column: node.column,
    })
}

/// `node` as JSON. With `lines`, the line of `path` (the first one written, when a key
/// repeats) and of each node below it is recorded; an alias records its own line only.
fn convert(
    node: &Node,
    path: String,
    lines: &mut Option<&mut HashMap<String, usize>>,
) -> Result<Value, YamlError> {
    let mut lines = match lines {
        Some(lines) => {
            lines.entry(path.clone()).or_insert(position(node).line);
            if node.alias.is_some() {
                None
            } else {
                Some(&mut **lines)
            }
        }
        None => None,
    };
    let value = match &node.value {
        yaml::Value::Null { text } | yaml::Value::Scalar { text, .. } => {
            let quoted = matches!(node.value, yaml::Value::Scalar { quoted: true, .. });
            scalar(text, quoted, node.tag.as_ref())
        }
        yaml::Value::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| convert(item, format!("{path}/{index}"), &mut lines))
                .collect::<Result<_, _>>()?,
        ),
        yaml::Value::Mapping(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let key_text = key_text(key)?;
                let key_path = format!("{path}/{key_text}");
                if let Some(lines) = lines.as_deref_mut() {
                    lines.entry(key_path.clone()).or_insert(position(key).line);
                }
                let value = convert(value, key_path, &mut lines)?;
                object.insert(key_text, value);
            }
            Value::Object(object)
        }
    };
    Ok(tagged(node.tag.as_ref(), value))
}

/// A mapping key: a scalar as written, untagged or with a `!!` tag, or an alias of a string.
fn key_text(key: &Node) -> Result<String, YamlError> {
    if let Some(alias) = key.alias {
        return match convert(key, String::new(), &mut None)? {
            Value::String(text) => Ok(text),
            _ => Err(YamlError::at(
                alias,
                "an alias of a collection as a mapping key is not supported",
            )),
        };
    }
    let refuse = |message: String| Err(YamlError::at(position(key), message));
    match &key.value {
        _ if key.tag.as_ref().is_some_and(|t| t.handle == "!") => refuse(format!(
            "a tagged mapping key (!{}) is not supported",
            key.tag.as_ref().map_or("", |t| t.suffix.as_str())
        )),
        yaml::Value::Null { text } | yaml::Value::Scalar { text, .. } => Ok(text.clone()),
        yaml::Value::Sequence(_) => refuse("a sequence as a mapping key is not supported".to_owned()),
        yaml::Value::Mapping(_) => refuse("a mapping as a mapping key is not supported".to_owned()),
    }
}

/// A plain scalar under YAML 1.2's core schema; quoted ones are strings; `!!` tags decide.
fn scalar(text: &str, quoted: bool, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag.filter(|t| t.handle == "tag:yaml.org,2002:") {
        return match tag.suffix.as_str() {
            "str" => Value::String(text.to_owned()),
            "null" => Value::Null,
            "bool" | "int" | "float" => plain(text),
            _ => Value::String(text.to_owned()),
        };
    }
    if quoted || tag.is_some() {
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
