//! The `sub` claim of each CI provider, parsed into what it says about the job
//! (docs/design.md, "Subjects per provider").

use serde::{Deserialize, Serialize};

/// Which CI system issued a token, judged from the provider URL (and, when the provider is
/// unknown, from the shape of the subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    GitHub,
    GitLab,
    Eks,
    TerraformCloud,
    CircleCi,
    Buildkite,
    Bitbucket,
    Google,
    Other,
}

impl ProviderKind {
    /// `url` is the provider URL without scheme, as IAM registers it.
    pub fn from_url(url: &str) -> Self {
        let host = url.split('/').next().unwrap_or(url).to_ascii_lowercase();
        if host == "token.actions.githubusercontent.com"
            || host == "vstoken.actions.githubusercontent.com"
            || (host.starts_with("token.actions.") && host.ends_with(".ghe.com"))
            || url.ends_with("/_services/token")
        {
            ProviderKind::GitHub
        } else if host == "gitlab.com" || host.starts_with("gitlab.") {
            ProviderKind::GitLab
        } else if host.starts_with("oidc.eks.") && host.ends_with(".amazonaws.com") {
            ProviderKind::Eks
        } else if host == "app.terraform.io" {
            ProviderKind::TerraformCloud
        } else if host == "oidc.circleci.com" {
            ProviderKind::CircleCi
        } else if host == "agent.buildkite.com" || host.ends_with(".buildkite.dev") {
            ProviderKind::Buildkite
        } else if host == "api.bitbucket.org" {
            ProviderKind::Bitbucket
        } else if host == "accounts.google.com" {
            ProviderKind::Google
        } else {
            ProviderKind::Other
        }
    }

    /// Providers shared by many tenants, for which AWS requires a `sub` control.
    pub fn is_shared(self) -> bool {
        matches!(
            self,
            ProviderKind::GitHub
                | ProviderKind::GitLab
                | ProviderKind::TerraformCloud
                | ProviderKind::Buildkite
        )
    }
}

/// What a job's subject says, per provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    GitHub(GitHubSubject),
    GitLab(PairSubject),
    Eks {
        namespace: String,
        service_account: String,
    },
    TerraformCloud(PairSubject),
    CircleCi(CircleCiSubject),
    Buildkite(PairSubject),
    /// Bitbucket, and anything we do not know: compared only as a whole.
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GitHubFormat {
    /// `repo:OWNER/REPO:<context>`
    Default,
    /// `repo:OWNER@OWNER_ID/REPO@REPO_ID:<context>` (2026)
    Immutable,
    /// An `include_claim_keys` template whose keys differ from `repo` + `context`.
    Custom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubContext {
    Branch(String),
    Tag(String),
    /// Any other ref, e.g. `refs/pull/1/merge`.
    Ref(String),
    PullRequest,
    Environment(String),
    /// A trust-policy pattern's wildcard where the context goes (`repo:o/r:*`).
    Pattern(String),
    /// The subject carries no context (some custom templates).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubSubject {
    pub format: GitHubFormat,
    pub owner: Option<String>,
    pub owner_id: Option<String>,
    pub repository_name: Option<String>,
    pub repository_id: Option<String>,
    pub context: GitHubContext,
    /// Every `key:value` pair, in order, for custom templates.
    pub pairs: Vec<(String, String)>,
}

/// `key:value:key:value…` subjects (GitLab, Terraform Cloud, Buildkite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSubject {
    pub pairs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleCiSubject {
    pub org_id: String,
    pub project_id: String,
    pub user_id: String,
    pub vcs_origin: Option<String>,
    pub vcs_ref: Option<String>,
}

/// Claims derived from the subject, for output and for condition keys STS would have had.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DerivedClaims {
    #[serde(deserialize_with = "subject_format")]
    pub format: crate::names::KnownName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_id: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ref_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pull_request: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_workflow_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Every `DerivedClaims::format`; a reader takes a name it does not know as `opaque`.
pub const SUBJECT_FORMATS: [&str; 10] = [
    "github",
    "github-immutable",
    "github-custom",
    "gitlab",
    "eks-service-account",
    "terraform-cloud",
    "circleci-v1",
    "circleci-v2",
    "buildkite",
    "opaque",
];

fn subject_format<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'static str, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ok(SUBJECT_FORMATS
        .into_iter()
        .find(|f| *f == text)
        .unwrap_or("opaque"))
}

impl Subject {
    pub fn parse(kind: ProviderKind, sub: &str) -> Subject {
        let kind = match kind {
            ProviderKind::Other => guess_kind(sub),
            known => known,
        };
        let parsed = match kind {
            ProviderKind::GitHub => parse_github(sub).map(Subject::GitHub),
            ProviderKind::GitLab => parse_pairs(sub).map(|pairs| Subject::GitLab(PairSubject { pairs })),
            ProviderKind::Eks => parse_eks(sub),
            ProviderKind::TerraformCloud => {
                parse_pairs(sub).map(|pairs| Subject::TerraformCloud(PairSubject { pairs }))
            }
            ProviderKind::CircleCi => parse_circleci(sub).map(Subject::CircleCi),
            ProviderKind::Buildkite => {
                parse_pairs(sub).map(|pairs| Subject::Buildkite(PairSubject { pairs }))
            }
            _ => None,
        };
        parsed.unwrap_or(Subject::Opaque)
    }

    pub fn derived(&self) -> DerivedClaims {
        match self {
            Subject::GitHub(s) => s.derived(),
            Subject::GitLab(s) => {
                let ref_type = s.get("ref_type").map(str::to_owned);
                DerivedClaims {
                    format: "gitlab",
                    repository: s.get("project_path").map(str::to_owned),
                    owner: s
                        .get("project_path")
                        .and_then(|p| p.split('/').next())
                        .map(str::to_owned),
                    git_ref: s.get("ref").map(str::to_owned),
                    ref_type,
                    environment: s.get("environment").map(str::to_owned),
                    ..DerivedClaims::default()
                }
            }
            Subject::Eks {
                namespace,
                service_account,
            } => DerivedClaims {
                format: "eks-service-account",
                namespace: Some(namespace.clone()),
                service_account: Some(service_account.clone()),
                ..DerivedClaims::default()
            },
            Subject::TerraformCloud(s) => DerivedClaims {
                format: "terraform-cloud",
                organization: s.get("organization").map(str::to_owned),
                owner: s.get("organization").map(str::to_owned),
                project: s.get("project").map(str::to_owned),
                workspace: s.get("workspace").map(str::to_owned),
                run_phase: s.get("run_phase").map(str::to_owned),
                ..DerivedClaims::default()
            },
            Subject::CircleCi(s) => DerivedClaims {
                format: if s.vcs_origin.is_some() {
                    "circleci-v2"
                } else {
                    "circleci-v1"
                },
                organization: Some(s.org_id.clone()),
                project: Some(s.project_id.clone()),
                repository: s
                    .vcs_origin
                    .as_deref()
                    .map(|o| o.split_once('/').map_or(o, |(_, rest)| rest).to_owned()),
                git_ref: s.vcs_ref.clone(),
                ref_type: s.vcs_ref.as_deref().and_then(ref_type_of).map(str::to_owned),
                ..DerivedClaims::default()
            },
            Subject::Buildkite(s) => DerivedClaims {
                format: "buildkite",
                organization: s.get("organization").map(str::to_owned),
                owner: s.get("organization").map(str::to_owned),
                pipeline: s.get("pipeline").map(str::to_owned),
                git_ref: s.get("ref").map(str::to_owned),
                ref_type: s.get("ref").and_then(ref_type_of).map(str::to_owned),
                commit: s.get("commit").map(str::to_owned),
                ..DerivedClaims::default()
            },
            Subject::Opaque => DerivedClaims {
                format: "opaque",
                ..DerivedClaims::default()
            },
        }
    }

    pub fn as_github(&self) -> Option<&GitHubSubject> {
        match self {
            Subject::GitHub(s) => Some(s),
            _ => None,
        }
    }
}

impl PairSubject {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl GitHubSubject {
    pub fn repository(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.owner.as_deref()?,
            self.repository_name.as_deref()?
        ))
    }

    /// The repository as it stands in the subject: `owner@id/repo@id` for immutable ones.
    pub fn repository_in_subject(&self) -> Option<String> {
        let owner = self.owner.as_deref()?;
        let repo = self.repository_name.as_deref()?;
        Some(match (&self.owner_id, &self.repository_id) {
            (Some(oid), Some(rid)) => format!("{owner}@{oid}/{repo}@{rid}"),
            _ => format!("{owner}/{repo}"),
        })
    }

    pub fn pair(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn derived(&self) -> DerivedClaims {
        let (git_ref, ref_type, environment, pull_request) = match &self.context {
            GitHubContext::Branch(b) => (Some(format!("refs/heads/{b}")), Some("branch"), None, false),
            GitHubContext::Tag(t) => (Some(format!("refs/tags/{t}")), Some("tag"), None, false),
            GitHubContext::Ref(r) => (Some(r.clone()), None, None, false),
            GitHubContext::PullRequest => (None, None, None, true),
            GitHubContext::Environment(e) => (None, None, Some(e.clone()), false),
            GitHubContext::Pattern(_) | GitHubContext::None => {
                (self.pair("ref").map(str::to_owned), None, None, false)
            }
        };
        DerivedClaims {
            format: match self.format {
                GitHubFormat::Default => "github",
                GitHubFormat::Immutable => "github-immutable",
                GitHubFormat::Custom => "github-custom",
            },
            repository: self.repository(),
            owner: self.owner.clone(),
            owner_id: self.owner_id.clone(),
            repository_id: self.repository_id.clone(),
            git_ref,
            ref_type: ref_type.map(str::to_owned),
            environment,
            pull_request,
            job_workflow_ref: self.pair("job_workflow_ref").map(str::to_owned),
            ..DerivedClaims::default()
        }
    }
}

fn guess_kind(sub: &str) -> ProviderKind {
    if sub.starts_with("repo:") {
        ProviderKind::GitHub
    } else if sub.starts_with("project_path:") {
        ProviderKind::GitLab
    } else if sub.starts_with("system:serviceaccount:") {
        ProviderKind::Eks
    } else if sub.starts_with("organization:") && sub.contains(":workspace:") {
        ProviderKind::TerraformCloud
    } else if sub.starts_with("organization:") && sub.contains(":pipeline:") {
        ProviderKind::Buildkite
    } else if sub.starts_with("org/") && sub.contains("/project/") {
        ProviderKind::CircleCi
    } else {
        ProviderKind::Other
    }
}

fn ref_type_of(git_ref: &str) -> Option<&'static str> {
    if git_ref.starts_with("refs/heads/") {
        Some("branch")
    } else if git_ref.starts_with("refs/tags/") {
        Some("tag")
    } else {
        None
    }
}

/// GitHub encodes a `:` inside a value as `%3A`.
fn decode_colons(value: &str) -> String {
    if value.contains('%') {
        value.replace("%3A", ":").replace("%3a", ":")
    } else {
        value.to_owned()
    }
}

fn parse_context(git_ref: &str) -> GitHubContext {
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        GitHubContext::Branch(branch.to_owned())
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        GitHubContext::Tag(tag.to_owned())
    } else {
        GitHubContext::Ref(git_ref.to_owned())
    }
}

/// `owner[@id]/repo[@id]`
fn split_repository(value: &str) -> Option<(String, Option<String>, String, Option<String>)> {
    let (owner, repo) = value.split_once('/')?;
    let split_id = |part: &str| match part.split_once('@') {
        Some((name, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            (name.to_owned(), Some(id.to_owned()))
        }
        _ => (part.to_owned(), None),
    };
    let (owner, owner_id) = split_id(owner);
    let (repo, repo_id) = split_id(repo);
    if owner.is_empty() || repo.is_empty() {
        return None;
    }
    Some((owner, owner_id, repo, repo_id))
}

fn parse_github(sub: &str) -> Option<GitHubSubject> {
    let tokens: Vec<&str> = sub.split(':').collect();
    let mut pairs = Vec::new();
    let mut context = GitHubContext::None;
    let mut i = 0;
    while i < tokens.len() {
        let key = tokens[i];
        if i + 1 == tokens.len() && crate::pattern::has_wildcard(key) {
            context = GitHubContext::Pattern(key.to_owned());
            i += 1;
            continue;
        }
        if key == "pull_request" {
            context = GitHubContext::PullRequest;
            pairs.push((key.to_owned(), String::new()));
            i += 1;
            continue;
        }
        let value = decode_colons(tokens.get(i + 1)?);
        match key {
            "ref" if context == GitHubContext::None => context = parse_context(&value),
            "environment" => context = GitHubContext::Environment(value.clone()),
            _ => {}
        }
        pairs.push((key.to_owned(), value));
        i += 2;
    }
    let repo_value = pairs
        .iter()
        .find(|(k, _)| k == "repo" || k == "repository")
        .map(|(_, v)| v.as_str());
    let (owner, owner_id, repository_name, repository_id) = match repo_value.and_then(split_repository) {
        Some((o, oid, r, rid)) => (Some(o), oid, Some(r), rid),
        None => (
            pairs
                .iter()
                .find(|(k, _)| k == "repository_owner")
                .map(|(_, v)| v.clone()),
            pairs
                .iter()
                .find(|(k, _)| k == "repository_owner_id")
                .map(|(_, v)| v.clone()),
            None,
            pairs
                .iter()
                .find(|(k, _)| k == "repository_id")
                .map(|(_, v)| v.clone()),
        ),
    };
    let default_keys = pairs.first().is_some_and(|(k, _)| k == "repo")
        && pairs
            .iter()
            .skip(1)
            .all(|(k, _)| matches!(k.as_str(), "ref" | "environment" | "pull_request"))
        && pairs.len() <= 2;
    let format = if !default_keys {
        GitHubFormat::Custom
    } else if owner_id.is_some() || repository_id.is_some() {
        GitHubFormat::Immutable
    } else {
        GitHubFormat::Default
    };
    if format != GitHubFormat::Custom && repository_name.is_none() {
        return None;
    }
    Some(GitHubSubject {
        format,
        owner,
        owner_id,
        repository_name,
        repository_id,
        context,
        pairs,
    })
}

fn parse_pairs(sub: &str) -> Option<Vec<(String, String)>> {
    let tokens: Vec<&str> = sub.split(':').collect();
    if tokens.len() < 2 || !tokens.len().is_multiple_of(2) {
        return None;
    }
    Some(
        tokens
            .chunks(2)
            .map(|kv| (kv[0].to_owned(), kv[1].to_owned()))
            .collect(),
    )
}

fn parse_eks(sub: &str) -> Option<Subject> {
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    let (namespace, service_account) = rest.split_once(':')?;
    Some(Subject::Eks {
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
    })
}

fn parse_circleci(sub: &str) -> Option<CircleCiSubject> {
    let rest = sub.strip_prefix("org/")?;
    let (org_id, rest) = rest.split_once("/project/")?;
    let (project_id, rest) = rest.split_once("/user/")?;
    let (user_id, vcs) = match rest.split_once("/vcs-origin/") {
        Some((user, vcs)) => (user, Some(vcs)),
        None => (rest, None),
    };
    let (vcs_origin, vcs_ref) = match vcs.map(|v| v.split_once("/vcs-ref/")) {
        Some(Some((origin, git_ref))) => (Some(origin.to_owned()), Some(git_ref.to_owned())),
        Some(None) => (vcs.map(str::to_owned), None),
        None => (None, None),
    };
    Some(CircleCiSubject {
        org_id: org_id.to_owned(),
        project_id: project_id.to_owned(),
        user_id: user_id.to_owned(),
        vcs_origin,
        vcs_ref,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github(sub: &str) -> GitHubSubject {
        match Subject::parse(ProviderKind::GitHub, sub) {
            Subject::GitHub(s) => s,
            other => panic!("{sub}: {other:?}"),
        }
    }

    #[test]
    fn github_default_contexts() {
        let s = github("repo:Acme/web-app:ref:refs/heads/feat/x");
        assert_eq!(
            (s.format, s.repository().as_deref()),
            (GitHubFormat::Default, Some("Acme/web-app"))
        );
        assert_eq!(s.context, GitHubContext::Branch("feat/x".into()));
        assert_eq!(
            github("repo:o/r:ref:refs/tags/v1.2").context,
            GitHubContext::Tag("v1.2".into())
        );
        assert_eq!(
            github("repo:o/r:pull_request").context,
            GitHubContext::PullRequest
        );
        assert_eq!(
            github("repo:o/r:environment:Production%3AV1").context,
            GitHubContext::Environment("Production:V1".into())
        );
        assert_eq!(
            github("repo:o/r:ref:refs/pull/7/merge").context,
            GitHubContext::Ref("refs/pull/7/merge".into())
        );
    }

    #[test]
    fn github_immutable_subject() {
        let s = github("repo:octo-org@123456/octo-repo@456789:ref:refs/heads/main");
        assert_eq!(s.format, GitHubFormat::Immutable);
        assert_eq!(
            (s.owner_id.as_deref(), s.repository_id.as_deref()),
            (Some("123456"), Some("456789"))
        );
        assert_eq!(s.repository().as_deref(), Some("octo-org/octo-repo"));
        assert_eq!(
            s.repository_in_subject().as_deref(),
            Some("octo-org@123456/octo-repo@456789")
        );
    }

    #[test]
    fn github_custom_templates_in_any_order() {
        let s = github("repository_owner:monalisa:repository_visibility:private");
        assert_eq!(
            (s.format, s.owner.as_deref()),
            (GitHubFormat::Custom, Some("monalisa"))
        );
        let s = github("repo:octo-org/octo-repo:environment:prod:job_workflow_ref:octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main");
        assert_eq!(s.format, GitHubFormat::Custom);
        assert_eq!(s.context, GitHubContext::Environment("prod".into()));
        assert_eq!(
            s.derived().job_workflow_ref.as_deref(),
            Some("octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main")
        );
        let s = github("repository_owner_id:42:repository_id:7:environment:prod");
        assert_eq!(
            (s.owner_id.as_deref(), s.repository_id.as_deref()),
            (Some("42"), Some("7"))
        );
    }

    #[test]
    fn other_providers() {
        let gitlab = Subject::parse(
            ProviderKind::GitLab,
            "project_path:g/sub/p:ref_type:branch:ref:main",
        )
        .derived();
        assert_eq!(
            (gitlab.repository.as_deref(), gitlab.git_ref.as_deref()),
            (Some("g/sub/p"), Some("main"))
        );
        let eks = Subject::parse(ProviderKind::Eks, "system:serviceaccount:argo:runner").derived();
        assert_eq!(eks.service_account.as_deref(), Some("runner"));
        let tfc = Subject::parse(
            ProviderKind::Other,
            "organization:acme:project:Default Project:workspace:net:run_phase:apply",
        )
        .derived();
        assert_eq!(
            (tfc.format, tfc.project.as_deref()),
            ("terraform-cloud", Some("Default Project"))
        );
        let v2 = Subject::parse(
            ProviderKind::CircleCi,
            "org/o1/project/p1/user/u1/vcs-origin/github.com/acme/web/vcs-ref/refs/heads/main",
        )
        .derived();
        assert_eq!(
            (v2.format, v2.repository.as_deref(), v2.ref_type.as_deref()),
            ("circleci-v2", Some("acme/web"), Some("branch"))
        );
        let bk = Subject::parse(
            ProviderKind::Buildkite,
            "organization:acme:pipeline:deploy:ref:refs/tags/v1:commit:abc:step:",
        )
        .derived();
        assert_eq!(
            (bk.pipeline.as_deref(), bk.ref_type.as_deref()),
            (Some("deploy"), Some("tag"))
        );
        assert_eq!(
            Subject::parse(ProviderKind::Bitbucket, "{a}:{b}"),
            Subject::Opaque
        );
        assert_eq!(Subject::parse(ProviderKind::GitHub, "repo:x"), Subject::Opaque);
    }
}
