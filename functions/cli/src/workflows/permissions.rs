//! `permissions:` blocks and the `id-token` access they leave a job, by GitHub's rules: a
//! job's block replaces the workflow's; with no block the repository default applies,
//! which never includes `id-token`; a block sets every scope it does not list to `none`;
//! a called workflow gets at most what its caller grants.

use serde::Serialize;

use super::workflow::ShapeError;
use crate::yaml::{Node, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    WriteAll,
    ReadAll,
    /// Scopes listed (possibly none: `permissions: {}`); `id_token` is its value.
    Scopes {
        id_token: Option<String>,
        empty: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Permissions {
    pub grant: Grant,
    pub line: usize,
}

/// `id-token` access, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Write,
}

impl Permissions {
    /// `node` is the value of a `permissions:` key on line `line`.
    pub fn parse(node: &Node, line: usize) -> Result<Permissions, ShapeError> {
        let grant = match &node.value {
            Value::Scalar { text, .. } if text == "write-all" => Grant::WriteAll,
            Value::Scalar { text, .. } if text == "read-all" => Grant::ReadAll,
            Value::Mapping(entries) => Grant::Scopes {
                id_token: node.get("id-token").and_then(Node::as_str).map(str::to_owned),
                empty: entries.is_empty(),
            },
            // `permissions:` with nothing after it: GitHub reads it as `{}`.
            Value::Null { .. } => Grant::Scopes {
                id_token: None,
                empty: true,
            },
            _ => {
                return Err(ShapeError {
                    line: node.line,
                    message: "permissions: must be read-all, write-all or a mapping of scopes".to_owned(),
                })
            }
        };
        Ok(Permissions { grant, line })
    }

    pub fn id_token(&self) -> Access {
        match &self.grant {
            Grant::WriteAll => Access::Write,
            Grant::ReadAll => Access::None,
            Grant::Scopes { id_token, .. } => match id_token.as_deref() {
                Some("write") => Access::Write,
                Some("read") => Access::Read,
                _ => Access::None,
            },
        }
    }

    /// Why this block does not grant `id-token: write`.
    pub fn why_not(&self) -> String {
        match &self.grant {
            Grant::WriteAll => String::new(),
            Grant::ReadAll => format!("permissions: read-all on line {} does not include id-token: write", self.line),
            Grant::Scopes { empty: true, .. } => {
                format!("permissions: {{}} on line {} grants nothing", self.line)
            }
            Grant::Scopes { id_token: Some(value), .. } => {
                format!("the permissions block on line {} sets id-token: {value}", self.line)
            }
            Grant::Scopes { id_token: None, .. } => format!(
                "the permissions block on line {} does not list id-token, and a block sets every scope it does not list to none",
                self.line
            ),
        }
    }
}

/// The JSON contract's `id_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdToken {
    Granted,
    Missing,
    ReadOnly,
    DependsOnCaller,
}

impl IdToken {
    pub fn as_str(self) -> &'static str {
        match self {
            IdToken::Granted => "granted",
            IdToken::Missing => "missing",
            IdToken::ReadOnly => "read-only",
            IdToken::DependsOnCaller => "depends-on-caller",
        }
    }

    pub fn from_access(access: Access) -> IdToken {
        match access {
            Access::Write => IdToken::Granted,
            Access::Read => IdToken::ReadOnly,
            Access::None => IdToken::Missing,
        }
    }
}

/// The block in force for a job: its own, else the workflow's; `None` is the repository
/// default.
pub fn in_force<'a>(
    job: Option<&'a Permissions>,
    workflow: Option<&'a Permissions>,
) -> Option<&'a Permissions> {
    job.or(workflow)
}

pub fn access(block: Option<&Permissions>) -> Access {
    block.map_or(Access::None, Permissions::id_token)
}

/// What a called workflow's job gets: its own block (or its workflow's) can only lower
/// what the caller grants; with neither it inherits the caller's.
pub fn called_access(caller: Access, callee_block: Option<&Permissions>) -> Access {
    match callee_block {
        Some(block) => caller.min(block.id_token()),
        None => caller,
    }
}

pub const SUGGESTED_BLOCK: &str = "permissions:\n  id-token: write\n  contents: read";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::workflow::WORKFLOW_YAML;
    use crate::yaml::parse;

    fn block(text: &str) -> Permissions {
        let docs = parse(text, &WORKFLOW_YAML).unwrap();
        Permissions::parse(docs[0].get("permissions").unwrap(), 1).unwrap()
    }

    #[test]
    fn github_rules() {
        assert_eq!(block("permissions: write-all").id_token(), Access::Write);
        assert_eq!(block("permissions: read-all").id_token(), Access::None);
        assert_eq!(block("permissions: {}").id_token(), Access::None);
        assert_eq!(block("permissions:\n  id-token: read").id_token(), Access::Read);
        assert_eq!(block("permissions:\n  contents: write").id_token(), Access::None);
        assert_eq!(access(None), Access::None);
        let write = block("permissions:\n  id-token: write");
        assert_eq!(called_access(Access::None, Some(&write)), Access::None);
        assert_eq!(called_access(Access::Write, None), Access::Write);
    }
}
