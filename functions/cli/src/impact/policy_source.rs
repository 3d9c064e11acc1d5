//! The trust policy a file holds for one role: a policy document (JSON, or the URL-encoded
//! JSON IAM returns), a CloudFormation/SAM template, or `terraform show -json` of a plan.

use std::collections::BTreeMap;
use std::path::Path;

use diagnosis::policy::PolicyDocument;
use serde::Serialize;
use serde_json::Value;

use super::template_yaml;
use super::ImpactError;

/// Largest policy source read.
const MAX_SOURCE_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Policy,
    Snapshot,
    CloudFormation,
    Terraform,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Policy => "policy",
            Form::Snapshot => "snapshot",
            Form::CloudFormation => "cloudformation",
            Form::Terraform => "terraform",
        }
    }
}

/// A value the policy needs that the source does not give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Where in the document, e.g. `Statement/0/Condition/StringLike/...:sub`.
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Known(PolicyDocument),
    /// Some value could not be resolved: the policy is not evaluated.
    Unknown(Vec<Unresolved>),
    /// The change deletes the role.
    Deleted,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub file: String,
    pub form: Form,
    /// The resource the policy came from: a logical id, a Terraform address.
    pub resource: Option<String>,
    pub line: Option<usize>,
    pub outcome: Outcome,
}

/// What a template's references resolve to.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// `--parameter K=V`, pseudo-parameters included (`AWS::Region=...`).
    pub parameters: BTreeMap<String, String>,
    pub account_id: Option<String>,
    pub partition: Option<String>,
}

pub fn read(path: &Path, role: &str, known: &Known) -> Result<Source, ImpactError> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let trimmed = text.trim_start();
    let input = |line: Option<usize>, message: String| input_error(&file, line, message);
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: Value =
            serde_json::from_str(text).map_err(|e| input(Some(e.line()), format!("not valid JSON: {e}")))?;
        return classify(&file, value, None, role, known);
    }
    if trimmed.starts_with('%') {
        let policy = PolicyDocument::parse_str(text).map_err(|e| input(None, e.to_string()))?;
        return Ok(policy_source(file, policy));
    }
    let parsed = template_yaml::parse(text).map_err(|e| {
        input(
            Some(e.line),
            format!("not valid YAML (column {}): {}", e.column, e.message),
        )
    })?;
    let value = parsed.value.clone();
    classify(&file, value, Some(&parsed), role, known)
}

fn input_error(file: &str, line: Option<usize>, message: String) -> ImpactError {
    ImpactError::Input {
        path: file.to_owned(),
        line,
        message,
    }
}

fn read_text(path: &Path) -> Result<String, ImpactError> {
    use std::io::Read;
    let fail = |message: String| ImpactError::Input {
        path: path.display().to_string(),
        line: None,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(fail(format!("larger than {MAX_SOURCE_BYTES} bytes")));
    }
    String::from_utf8(bytes)
        .map_err(|e| fail(format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))
}

fn policy_source(file: String, policy: PolicyDocument) -> Source {
    Source {
        file,
        form: Form::Policy,
        resource: None,
        line: None,
        outcome: Outcome::Known(policy),
    }
}

fn classify(
    file: &str,
    value: Value,
    yaml: Option<&template_yaml::Parsed>,
    role: &str,
    known: &Known,
) -> Result<Source, ImpactError> {
    let input = |line: Option<usize>, message: String| input_error(file, line, message);
    match &value {
        Value::Object(object) if object.contains_key("Statement") => {
            let policy = PolicyDocument::from_value(&value).map_err(|e| input(None, e.to_string()))?;
            Ok(policy_source(file.to_owned(), policy))
        }
        Value::Object(object) if object.contains_key("resource_changes") || object.contains_key("planned_values") => {
            terraform(file, &value, role)
        }
        Value::Object(object) if object.contains_key("Resources") => {
            // A JSON template has no line table: parse it again as YAML (JSON is YAML).
            let reparsed;
            let lines = match yaml {
                Some(parsed) => Some(parsed),
                None => {
                    reparsed = std::fs::read_to_string(file)
                        .ok()
                        .and_then(|t| template_yaml::parse(&t).ok());
                    reparsed.as_ref()
                }
            };
            cloudformation(file, &value, lines, role, known)
        }
        _ => Err(input(
            None,
            "neither a trust policy (Statement), a CloudFormation/SAM template (Resources) nor `terraform show -json` output of a plan (resource_changes)".to_owned(),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// CloudFormation

const PSEUDO_NOT_KNOWN: &[&str] = &[
    "AWS::Region",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::NotificationARNs",
];

struct Resolver<'a> {
    parameters: BTreeMap<String, Value>,
    known: &'a Known,
    lines: Option<&'a template_yaml::Parsed>,
    base: String,
    unresolved: Vec<Unresolved>,
}

impl Resolver<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(value) = self.known.parameters.get(name) {
            return Some(Value::String(value.clone()));
        }
        match name {
            "AWS::AccountId" => return self.known.account_id.clone().map(Value::String),
            "AWS::Partition" => return self.known.partition.clone().map(Value::String),
            "AWS::URLSuffix" => {
                return match self.known.partition.as_deref() {
                    Some("aws") | Some("aws-us-gov") => Some(Value::String("amazonaws.com".to_owned())),
                    Some("aws-cn") => Some(Value::String("amazonaws.com.cn".to_owned())),
                    _ => None,
                }
            }
            _ => {}
        }
        self.parameters.get(name).cloned()
    }

    fn unknown(&mut self, path: &str, reason: String) -> Value {
        let full = format!("{}{path}", self.base);
        self.unresolved.push(Unresolved {
            line: self.lines.and_then(|l| l.line_of(&full)),
            path: path.trim_start_matches('/').to_owned(),
            reason,
        });
        Value::String(format!("<unresolved: {path}>"))
    }

    fn resolve(&mut self, value: &Value, path: &str) -> Value {
        match value {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.resolve(item, &format!("{path}/{i}")))
                    .collect(),
            ),
            Value::Object(object) if object.len() == 1 => {
                let Some((name, argument)) = object.iter().next() else {
                    return value.clone();
                };
                let inner = format!("{path}/{name}");
                match name.as_str() {
                    "Ref" => match argument.as_str() {
                        Some(target) => match self.lookup(target) {
                            Some(v) => v,
                            None => {
                                let why = self.why_unknown(target);
                                self.unknown(&inner, format!("Ref {target}: {why}"))
                            }
                        },
                        None => self.unknown(&inner, "Ref of something that is not a name".to_owned()),
                    },
                    "Fn::Sub" => self.sub(argument, &inner),
                    "Fn::Join" => self.join(argument, &inner),
                    other if other.starts_with("Fn::") => {
                        self.unknown(&inner, format!("{other} is not evaluated before deployment here"))
                    }
                    _ => Value::Object(
                        object
                            .iter()
                            .map(|(k, v)| (k.clone(), self.resolve(v, &format!("{path}/{k}"))))
                            .collect(),
                    ),
                }
            }
            Value::Object(object) => Value::Object(
                object
                    .iter()
                    .map(|(k, v)| (k.clone(), self.resolve(v, &format!("{path}/{k}"))))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn why_unknown(&self, name: &str) -> String {
        if name.contains('.') {
            "an attribute of a resource, known only once it is deployed".to_owned()
        } else if name.starts_with("AWS::") {
            if PSEUDO_NOT_KNOWN.contains(&name) || name == "AWS::AccountId" {
                format!("pseudo-parameter not known here (give --parameter {name}=VALUE)")
            } else {
                "pseudo-parameter not known here".to_owned()
            }
        } else {
            format!("not a parameter with a Default (give --parameter {name}=VALUE), or a resource known only once it is deployed")
        }
    }

    fn sub(&mut self, argument: &Value, path: &str) -> Value {
        let (template, variables) = match argument {
            Value::String(text) => (text.as_str(), serde_json::Map::new()),
            Value::Array(items) => match (items.first().and_then(Value::as_str), items.get(1)) {
                (Some(text), Some(Value::Object(vars))) if items.len() == 2 => {
                    let vars = vars
                        .iter()
                        .map(|(k, v)| (k.clone(), self.resolve(v, &format!("{path}/1/{k}"))))
                        .collect();
                    (text, vars)
                }
                _ => {
                    return self.unknown(
                        path,
                        "Fn::Sub takes a string, or [string, {variables}]".to_owned(),
                    )
                }
            },
            _ => {
                return self.unknown(
                    path,
                    "Fn::Sub takes a string, or [string, {variables}]".to_owned(),
                )
            }
        };
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                let value = variables.get(name).cloned().or_else(|| self.lookup(name));
                match value.as_ref().and_then(scalar_text) {
                    Some(text) => out.push_str(&text),
                    None => {
                        let why = if value.is_some() {
                            "not a single value".to_owned()
                        } else {
                            self.why_unknown(name)
                        };
                        self.unknown(path, format!("Fn::Sub ${{{name}}}: {why}"));
                        out.push_str(&format!("<unresolved ${{{name}}}>"));
                    }
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Value::String(out)
    }

    fn join(&mut self, argument: &Value, path: &str) -> Value {
        let (Some(delimiter), Some(list)) = (argument.get(0).and_then(Value::as_str), argument.get(1)) else {
            return self.unknown(path, "Fn::Join takes [delimiter, [values]]".to_owned());
        };
        let resolved = self.resolve(list, &format!("{path}/1"));
        let Value::Array(items) = resolved else {
            return self.unknown(path, "Fn::Join of something that is not a list".to_owned());
        };
        let mut parts = Vec::with_capacity(items.len());
        for item in &items {
            match scalar_text(item) {
                Some(text) => parts.push(text),
                None => return self.unknown(path, "Fn::Join of a value that is not a string".to_owned()),
            }
        }
        Value::String(parts.join(delimiter))
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn template_parameters(template: &Value, known: &Known) -> BTreeMap<String, Value> {
    let mut parameters = BTreeMap::new();
    let Some(declared) = template.get("Parameters").and_then(Value::as_object) else {
        return parameters;
    };
    for (name, declaration) in declared {
        let list = declaration
            .get("Type")
            .and_then(Value::as_str)
            .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
        let given = known.parameters.get(name).map(|v| Value::String(v.clone()));
        let Some(value) = given.or_else(|| declaration.get("Default").cloned()) else {
            continue;
        };
        let value = match (list, scalar_text(&value)) {
            (true, Some(text)) => Value::Array(
                text.split(',')
                    .map(|s| Value::String(s.trim().to_owned()))
                    .collect(),
            ),
            (false, Some(text)) => Value::String(text),
            _ => continue,
        };
        parameters.insert(name.clone(), value);
    }
    parameters
}

fn cloudformation(
    file: &str,
    template: &Value,
    lines: Option<&template_yaml::Parsed>,
    role: &str,
    known: &Known,
) -> Result<Source, ImpactError> {
    let input = |line: Option<usize>, message: String| input_error(file, line, message);
    let Some(resources) = template.get("Resources").and_then(Value::as_object) else {
        return Err(input(
            lines.and_then(|l| l.line_of("/Resources")),
            "Resources must be a mapping".to_owned(),
        ));
    };
    let parameters = template_parameters(template, known);
    let mut candidates = Vec::new();
    for (logical_id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::IAM::Role") {
            continue;
        }
        let base = format!("/Resources/{logical_id}");
        let mut resolver = Resolver {
            parameters: parameters.clone(),
            known,
            lines,
            base: base.clone(),
            unresolved: Vec::new(),
        };
        let name = resource
            .pointer("/Properties/RoleName")
            .map(|n| resolver.resolve(n, "/Properties/RoleName"));
        let name_known = resolver.unresolved.is_empty();
        let name = name.filter(|_| name_known).as_ref().and_then(scalar_text);
        let matches = logical_id == role || name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(role));
        let line = lines.and_then(|l| l.line_of(&base));
        if !matches {
            candidates.push(match &name {
                Some(n) => format!("{logical_id} (RoleName {})", diagnosis::text::quote(n)),
                None if resource.pointer("/Properties/RoleName").is_some() => {
                    format!("{logical_id} (RoleName unresolved)")
                }
                None => format!("{logical_id} (no RoleName)"),
            });
            continue;
        }
        resolver.unresolved.clear();
        let Some(document) = resource.pointer("/Properties/AssumeRolePolicyDocument") else {
            return Err(input(
                line,
                format!("resource {logical_id} has no Properties.AssumeRolePolicyDocument"),
            ));
        };
        let resolved = resolver.resolve(document, "/Properties/AssumeRolePolicyDocument");
        let outcome = if resolver.unresolved.is_empty() {
            let policy = PolicyDocument::from_value(&resolved).map_err(|e| {
                input(
                    line,
                    format!("resource {logical_id}: AssumeRolePolicyDocument: {e}"),
                )
            })?;
            Outcome::Known(policy)
        } else {
            Outcome::Unknown(resolver.unresolved)
        };
        return Ok(Source {
            file: file.to_owned(),
            form: Form::CloudFormation,
            resource: Some(logical_id.clone()),
            line,
            outcome,
        });
    }
    Err(input(
        None,
        format!(
            "no AWS::IAM::Role with RoleName or logical id {}{}",
            diagnosis::text::quote(role),
            if candidates.is_empty() {
                " (the template has no AWS::IAM::Role)".to_owned()
            } else {
                format!("; its roles: {}", candidates.join(", "))
            }
        ),
    ))
}

// ---------------------------------------------------------------------------------------
// Terraform

fn terraform(file: &str, plan: &Value, role: &str) -> Result<Source, ImpactError> {
    let input = |message: String| ImpactError::Input {
        path: file.to_owned(),
        line: None,
        message,
    };
    let changes = plan
        .get("resource_changes")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            input("no resource_changes: give the output of `terraform show -json PLANFILE`".to_owned())
        })?;
    let mut candidates = Vec::new();
    for change in changes {
        if change.get("type").and_then(Value::as_str) != Some("aws_iam_role") {
            continue;
        }
        let address = change.get("address").and_then(Value::as_str).unwrap_or("");
        let resource_name = change.get("name").and_then(Value::as_str).unwrap_or("");
        let after = change.pointer("/change/after");
        let before = change.pointer("/change/before");
        let role_name = after
            .and_then(|a| a.get("name"))
            .or_else(|| before.and_then(|b| b.get("name")))
            .and_then(Value::as_str);
        let matches = address == role
            || resource_name == role
            || role_name.is_some_and(|n| n.eq_ignore_ascii_case(role));
        if !matches {
            candidates.push(match role_name {
                Some(n) => format!("{address} (name {})", diagnosis::text::quote(n)),
                None => format!("{address} (name unknown)"),
            });
            continue;
        }
        let actions: Vec<&str> = change
            .pointer("/change/actions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let source = |outcome| Source {
            file: file.to_owned(),
            form: Form::Terraform,
            resource: Some(address.to_owned()),
            line: None,
            outcome,
        };
        let after = match after {
            Some(after) if !after.is_null() => after,
            _ if actions.contains(&"delete") => return Ok(source(Outcome::Deleted)),
            _ => {
                return Err(input(format!(
                    "{address}: the plan has no change.after for the role"
                )))
            }
        };
        let unknown = change
            .pointer("/change/after_unknown/assume_role_policy")
            .is_some_and(|u| u == &Value::Bool(true));
        if unknown {
            return Ok(source(Outcome::Unknown(vec![Unresolved {
                line: None,
                path: format!("{address}.assume_role_policy"),
                reason:
                    "known only after apply (after_unknown): it depends on a value the plan does not know"
                        .to_owned(),
            }])));
        }
        let Some(document) = after.get("assume_role_policy") else {
            return Err(input(format!(
                "{address}: change.after has no assume_role_policy"
            )));
        };
        let policy = PolicyDocument::from_value(document)
            .map_err(|e| input(format!("{address}: assume_role_policy: {e}")))?;
        return Ok(source(Outcome::Known(policy)));
    }
    Err(input(format!(
        "no aws_iam_role with name or address {}{}",
        diagnosis::text::quote(role),
        if candidates.is_empty() {
            " (the plan changes no aws_iam_role)".to_owned()
        } else {
            format!("; its roles: {}", candidates.join(", "))
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known() -> Known {
        Known {
            account_id: Some("111122223333".into()),
            partition: Some("aws".into()),
            ..Known::default()
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// A role's policy document of any shape: an answer or an error, never a panic.
        #[test]
        fn any_policy_document_in_a_template_never_panics(
            lines in proptest::collection::vec(
                "( {8,14})(Version:|Statement:|- Effect: Allow|Principal:|Federated:|Condition:|StringLike:|[a-z.]{1,6}:sub:|- |!Sub|!Ref|!Join|!GetAtt|!If)( [a-zA-Z${}:!./\\[\\],\"*]{0,16})?",
                0..20,
            )
        ) {
            let text = format!(
                "Parameters:\n  P:\n    Type: String\n    Default: x\nResources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n{}\n",
                lines.join("\n")
            );
            if let Ok(parsed) = template_yaml::parse(&text) {
                let _ = cloudformation("t.yaml", &parsed.value, Some(&parsed), "R", &known());
            }
        }
    }

    #[test]
    fn sub_resolves_parameters_pseudo_parameters_and_literals() {
        let mut resolver = Resolver {
            parameters: BTreeMap::from([("Repo".to_owned(), json!("acme/web-app"))]),
            known: &known(),
            lines: None,
            base: String::new(),
            unresolved: Vec::new(),
        };
        let value = resolver.resolve(
            &json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:x/${Repo}/${!Literal}"}),
            "",
        );
        assert_eq!(
            value,
            json!("arn:aws:iam::111122223333:x/acme/web-app/${Literal}")
        );
        assert!(resolver.unresolved.is_empty());
        resolver.resolve(&json!({"Fn::Sub": "repo:${Org}/x:*"}), "/p");
        resolver.resolve(&json!({"Fn::GetAtt": ["R", "Arn"]}), "/q");
        resolver.resolve(&json!({"Ref": "AWS::Region"}), "/r");
        assert_eq!(resolver.unresolved.len(), 3, "{:?}", resolver.unresolved);
        assert!(resolver.unresolved[0].reason.contains("${Org}"));
    }
}
