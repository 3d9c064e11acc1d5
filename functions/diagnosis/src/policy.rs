//! Trust-policy documents: parsed once from the JSON (or URL-encoded JSON) IAM returns.

use std::sync::Arc;

use serde_json::Value;

/// The only version under which `${...}` is a policy variable.
pub const VERSION_2012: &str = "2012-10-17";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy is not valid JSON: {0}")]
    Json(String),
    #[error("policy is not URL-encoded UTF-8")]
    Encoding,
    #[error("policy must be a JSON object")]
    NotAnObject,
    #[error("policy has no Statement")]
    NoStatement,
    #[error("statement {0} must be a JSON object")]
    StatementNotAnObject(usize),
    #[error("statement {index}: {message}")]
    Statement { index: usize, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    pub version: Option<String>,
    pub statements: Vec<Statement>,
    /// The JSON it was parsed from: a suggested change edits this, not a re-rendering.
    pub source: Arc<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principal>,
    pub not_principal: Option<Principal>,
    pub action: Option<Vec<String>>,
    pub not_action: Option<Vec<String>>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Effect {
    Allow,
    Deny,
    /// Anything else (`Effect` is case-sensitive): such a statement never applies.
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// `"Principal": "*"`
    Everyone,
    Typed {
        federated: Vec<String>,
        /// `AWS`, `Service` or `CanonicalUser` values: never a web identity.
        other: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator as written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator_name: String,
    pub operator: Operator,
    /// The key as written; keys compare case-insensitively.
    pub key: String,
    pub key_lower: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
    /// Not an IAM operator: IAM rejects such a policy, so it can never match.
    Unsupported,
}

impl BaseOperator {
    fn from_name(name: &str) -> Self {
        use BaseOperator::*;
        match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "BinaryEquals" => BinaryEquals,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => Unsupported,
        }
    }

    /// Negated operators are true when the key is missing, and combine values as NOR.
    pub fn is_negated(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    pub fn is_string(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringEquals
                | StringNotEquals
                | StringEqualsIgnoreCase
                | StringNotEqualsIgnoreCase
                | StringLike
                | StringNotLike
        )
    }

    /// Positive string operators that pin a claim down: what audits call a strict operator.
    pub fn is_strict_string_match(self) -> bool {
        matches!(
            self,
            BaseOperator::StringEquals | BaseOperator::StringLike | BaseOperator::StringEqualsIgnoreCase
        )
    }

    pub fn takes_wildcards(self) -> bool {
        matches!(
            self,
            BaseOperator::StringLike
                | BaseOperator::StringNotLike
                | BaseOperator::ArnLike
                | BaseOperator::ArnNotLike
                | BaseOperator::ArnEquals
                | BaseOperator::ArnNotEquals
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub set: Option<SetQualifier>,
    pub base: BaseOperator,
    pub if_exists: bool,
}

impl Operator {
    pub fn parse(name: &str) -> Self {
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, name)
        };
        let (rest, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) if base != "Null" => (base, true),
            _ => (rest, false),
        };
        Operator {
            set,
            base: BaseOperator::from_name(rest),
            if_exists,
        }
    }
}

impl PolicyDocument {
    /// Parses the policy JSON IAM stores, or the URL-encoded string `GetRole` returns.
    pub fn parse_str(text: &str) -> Result<Self, PolicyError> {
        let trimmed = text.trim();
        let decoded;
        let json = if trimmed.starts_with('{') {
            trimmed
        } else {
            decoded = percent_encoding::percent_decode_str(trimmed)
                .decode_utf8()
                .map_err(|_| PolicyError::Encoding)?;
            decoded.as_ref()
        };
        let value: Value = serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Parses a policy that is either a JSON object or a string holding one.
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let object = match value {
            Value::Object(object) => object,
            Value::String(text) => return Self::parse_str(text),
            _ => return Err(PolicyError::NotAnObject),
        };
        let version = object.get("Version").and_then(Value::as_str).map(str::to_owned);
        let statements = match object.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(item @ Value::Object(_)) => vec![item],
            Some(_) => return Err(PolicyError::StatementNotAnObject(0)),
            None => return Err(PolicyError::NoStatement),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, value)| Statement::from_value(index, value))
            .collect::<Result<_, _>>()?;
        Ok(PolicyDocument {
            version,
            statements,
            source: Arc::new(value.clone()),
        })
    }

    pub fn variables_enabled(&self) -> bool {
        self.version.as_deref() == Some(VERSION_2012)
    }
}

impl Statement {
    fn from_value(index: usize, value: &Value) -> Result<Self, PolicyError> {
        let object = value
            .as_object()
            .ok_or(PolicyError::StatementNotAnObject(index))?;
        let fail = |message: String| PolicyError::Statement { index, message };
        let effect = match object.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            Some(other) => Effect::Invalid(other.to_owned()),
            None => Effect::Invalid(String::new()),
        };
        let principal = object
            .get("Principal")
            .map(parse_principal)
            .transpose()
            .map_err(fail)?;
        let not_principal = object
            .get("NotPrincipal")
            .map(parse_principal)
            .transpose()
            .map_err(fail)?;
        let action = object.get("Action").map(string_list).transpose().map_err(fail)?;
        let not_action = object
            .get("NotAction")
            .map(string_list)
            .transpose()
            .map_err(fail)?;
        let conditions = match object.get("Condition") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => parse_conditions(value).map_err(fail)?,
        };
        Ok(Statement {
            sid: object.get("Sid").and_then(Value::as_str).map(str::to_owned),
            effect,
            principal,
            not_principal,
            action,
            not_action,
            conditions,
        })
    }

    pub fn is_allow(&self) -> bool {
        self.effect == Effect::Allow
    }

    pub fn federated_principals(&self) -> &[String] {
        match &self.principal {
            Some(Principal::Typed { federated, .. }) => federated,
            _ => &[],
        }
    }
}

fn parse_principal(value: &Value) -> Result<Principal, String> {
    match value {
        Value::String(s) if s == "*" => Ok(Principal::Everyone),
        Value::Object(map) => {
            let mut federated = Vec::new();
            let mut other = Vec::new();
            for (kind, values) in map {
                let values = string_list(values)?;
                if kind == "Federated" {
                    federated.extend(values);
                } else {
                    other.extend(values);
                }
            }
            Ok(Principal::Typed { federated, other })
        }
        _ => Err("Principal must be \"*\" or an object".to_owned()),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn string_list(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| scalar_text(item).ok_or_else(|| "lists may hold only strings".to_owned()))
            .collect(),
        other => scalar_text(other)
            .map(|s| vec![s])
            .ok_or_else(|| "expected a string or a list of strings".to_owned()),
    }
}

fn parse_conditions(value: &Value) -> Result<Vec<Condition>, String> {
    let blocks = value.as_object().ok_or("Condition must be an object")?;
    let mut conditions = Vec::new();
    for (operator_name, keys) in blocks {
        let keys = keys
            .as_object()
            .ok_or_else(|| format!("Condition operator {operator_name} must map keys to values"))?;
        let operator = Operator::parse(operator_name);
        for (key, values) in keys {
            conditions.push(Condition {
                operator_name: operator_name.clone(),
                operator,
                key: key.clone(),
                key_lower: key.to_ascii_lowercase(),
                values: string_list(values).map_err(|e| format!("condition {key}: {e}"))?,
            });
        }
    }
    Ok(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_url_encoded_policy_from_get_role() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Federated%22%3A%22arn%3Aaws%3Aiam%3A%3A1%3Aoidc-provider%2Fx%22%7D%2C%22Action%22%3A%22sts%3AAssumeRoleWithWebIdentity%22%7D%5D%7D";
        let policy = PolicyDocument::parse_str(encoded).unwrap();
        assert!(policy.variables_enabled());
        assert_eq!(
            policy.statements[0].federated_principals(),
            ["arn:aws:iam::1:oidc-provider/x"]
        );
    }

    #[test]
    fn single_statement_object_and_scalar_values() {
        let policy = PolicyDocument::from_value(&json!({
            "Statement": {"Effect": "allow", "Principal": "*", "Action": ["sts:*"],
                          "Condition": {"Bool": {"aws:SecureTransport": true}}}
        }))
        .unwrap();
        let statement = &policy.statements[0];
        assert_eq!(statement.effect, Effect::Invalid("allow".into()));
        assert_eq!(statement.principal, Some(Principal::Everyone));
        assert_eq!(statement.conditions[0].values, ["true"]);
        assert!(!policy.variables_enabled());
    }

    #[test]
    fn operator_names_parse_into_parts() {
        let op = Operator::parse("ForAllValues:StringNotLikeIfExists");
        assert_eq!(op.set, Some(SetQualifier::ForAllValues));
        assert_eq!(op.base, BaseOperator::StringNotLike);
        assert!(op.if_exists);
        assert_eq!(Operator::parse("Null").base, BaseOperator::Null);
        assert_eq!(Operator::parse("stringequals").base, BaseOperator::Unsupported);
    }

    #[test]
    fn rejects_what_is_not_a_policy() {
        assert_eq!(
            PolicyDocument::from_value(&json!([])),
            Err(PolicyError::NotAnObject)
        );
        assert_eq!(
            PolicyDocument::from_value(&json!({})),
            Err(PolicyError::NoStatement)
        );
        assert!(PolicyDocument::parse_str("%ZZ").is_err());
        assert!(matches!(
            PolicyDocument::from_value(&json!({"Statement": [{"Condition": {"StringEquals": 3}}]})),
            Err(PolicyError::Statement { index: 0, .. })
        ));
    }
}
