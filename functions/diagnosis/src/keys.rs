//! Which condition keys STS evaluates for a web-identity call, and which of them the
//! CloudTrail record shows (docs/design.md, "Evaluating the trust policy").

use crate::claims::Claims;
use crate::evaluate::{Context, Provenance};
use crate::policy::PolicyDocument;
use crate::subject::{GitHubContext, ProviderKind, Subject};

/// Claims STS evaluates that CloudTrail never records, lower case: the standard `amr`,
/// `azp` and `oaud` of every OIDC provider, and the provider-specific keys STS has
/// evaluated since February 2026. (`sub` and `aud` are recorded.)
fn unrecorded_claims(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::GitHub => &[
            "amr",
            "azp",
            "oaud",
            "actor",
            "actor_id",
            "enterprise_id",
            "environment",
            "job_workflow_ref",
            "ref",
            "repository",
            "repository_id",
            "repository_owner_id",
            "workflow",
        ],
        ProviderKind::GitLab => &[
            "amr",
            "azp",
            "oaud",
            "namespace_id",
            "pipeline_source",
            "project_id",
            "ref_protected",
            "runner_environment",
            "user_access_level",
            "user_email",
            "user_id",
            "user_login",
        ],
        ProviderKind::Buildkite => &[
            "amr",
            "azp",
            "oaud",
            "build_branch",
            "cluster_id",
            "cluster_name",
            "organization_id",
            "organization_slug",
            "pipeline_id",
            "pipeline_slug",
        ],
        ProviderKind::CircleCi => &["amr", "azp", "oaud", "oidc.circleci.com/project-id"],
        ProviderKind::Google => &[
            "amr",
            "azp",
            "oaud",
            "google/organization_number",
            "email",
            "email_verified",
            "hd",
        ],
        _ => &["amr", "azp", "oaud"],
    }
}

/// Global keys STS may evaluate in a trust policy but the record does not show.
const UNSEEN_GLOBAL_KEYS: &[&str] = &[
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:vpcsourceip",
    "aws:referer",
];

/// Whether STS would put `claim` (the part after `<provider>:`) into the request context.
pub fn is_provided_claim(kind: ProviderKind, claim: &str) -> bool {
    let claim = claim.to_ascii_lowercase();
    claim == "sub" || claim == "aud" || unrecorded_claims(kind).contains(&claim.as_str())
}

/// Splits a condition key into provider prefix and claim at the last `:`. Provider URLs
/// hold no colon; CircleCI claim names hold `/`, not `:`.
pub fn split_claim_key(key: &str) -> Option<(&str, &str)> {
    let (prefix, claim) = key.rsplit_once(':')?;
    if prefix.is_empty() || prefix.eq_ignore_ascii_case("aws") || prefix.eq_ignore_ascii_case("sts") {
        return None;
    }
    Some((prefix, claim))
}

/// The request context STS evaluated, as far as the record shows it: recorded values,
/// values derived from the `sub`, and the keys whose value cannot be known.
/// The condition keys a policy names; a request context needs no others. A policy with
/// `${...}` variables may read any key, so it wants them all.
pub struct KeyFilter<'a> {
    keys: Vec<&'a str>,
    all: bool,
}

impl<'a> KeyFilter<'a> {
    pub fn all() -> Self {
        KeyFilter {
            keys: Vec::new(),
            all: true,
        }
    }

    pub fn of(policy: &'a PolicyDocument) -> Self {
        let conditions = policy.statements.iter().flat_map(|s| &s.conditions);
        let all = conditions
            .clone()
            .any(|c| c.values.iter().any(|v| v.contains("${")));
        KeyFilter {
            keys: conditions.map(|c| c.key_lower.as_str()).collect(),
            all,
        }
    }

    pub fn wants(&self, key_lower: &str) -> bool {
        self.all || self.keys.contains(&key_lower)
    }

    /// Whether `<prefix>:<claim>` is named, without building the key.
    pub fn wants_claim(&self, prefix: &str, claim: &str) -> bool {
        self.all
            || self.keys.iter().any(|key| {
                key.len() == prefix.len() + 1 + claim.len()
                    && key
                        .get(..prefix.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    && key.get(prefix.len()..prefix.len() + 1) == Some(":")
                    && key.get(prefix.len() + 1..) == Some(claim)
            })
    }
}

/// The request context STS evaluated, as far as the record shows it and `wanted` asks:
/// recorded values, values derived from the `sub`, and the keys whose value cannot be known.
pub fn request_context(claims: &Claims, wanted: &KeyFilter) -> Context {
    let mut context = Context::with_capacity(8);
    let recorded = Provenance::Recorded;
    let put = |context: &mut Context, key: &str, value: Option<&String>| {
        if let Some(value) = value.filter(|_| wanted.wants(key)) {
            context.insert(key, vec![value.clone()], recorded);
        }
    };
    if let Some(provider) = &claims.provider {
        let prefix = &provider.url;
        // A token always has `sub` and `aud`; when the record lacks one, it is unknown.
        for (claim, value) in [("sub", &claims.subject), ("aud", &claims.audience)] {
            if wanted.wants_claim(prefix, claim) {
                let key = format!("{prefix}:{claim}");
                match value {
                    Some(value) => context.insert(&key, vec![value.clone()], recorded),
                    None => context.mark_unknown(&key),
                }
            }
        }
        for (claim, value) in derived_claim_values(&claims.parsed_subject) {
            if wanted.wants_claim(prefix, claim) {
                context.insert(&format!("{prefix}:{claim}"), vec![value], Provenance::Derived);
            }
        }
        context.mark_unknown_claims(&format!("{prefix}:"), unrecorded_claims(provider.kind));
    }
    put(&mut context, "aws:sourceip", claims.source_ip.as_ref());
    put(&mut context, "aws:requestedregion", claims.region.as_ref());
    put(&mut context, "sts:rolesessionname", claims.session_name.as_ref());
    put(
        &mut context,
        "sts:sourceidentity",
        claims.source_identity.as_ref(),
    );
    put(
        &mut context,
        "sts:durationseconds",
        claims.duration_seconds.map(|d| d.to_string()).as_ref(),
    );
    put(&mut context, "aws:currenttime", claims.event_time.as_ref());
    let epoch = claims
        .event_time
        .as_deref()
        .and_then(crate::evaluate::epoch_seconds);
    put(
        &mut context,
        "aws:epochtime",
        epoch.map(|e| e.to_string()).as_ref(),
    );
    put(&mut context, "aws:securetransport", Some(&"true".to_owned()));
    for (key, value) in &claims.session_tags {
        let key = format!("aws:requesttag/{}", key.to_ascii_lowercase());
        put(&mut context, &key, Some(value));
    }
    if !claims.session_tags.is_empty() && wanted.wants("aws:tagkeys") {
        context.insert(
            "aws:tagkeys",
            claims.session_tags.keys().cloned().collect(),
            recorded,
        );
    }
    for key in UNSEEN_GLOBAL_KEYS {
        context.mark_unknown(key);
    }
    context
}

/// Provider claims that follow from the subject alone.
fn derived_claim_values(subject: &Subject) -> Vec<(&'static str, String)> {
    let mut values = Vec::new();
    match subject {
        Subject::GitHub(s) => {
            if let Some(repository) = s.repository() {
                values.push(("repository", repository));
            }
            if let Some(id) = &s.repository_id {
                values.push(("repository_id", id.clone()));
            }
            if let Some(id) = &s.owner_id {
                values.push(("repository_owner_id", id.clone()));
            }
            match &s.context {
                GitHubContext::Environment(e) => values.push(("environment", e.clone())),
                GitHubContext::Branch(b) => values.push(("ref", format!("refs/heads/{b}"))),
                GitHubContext::Tag(t) => values.push(("ref", format!("refs/tags/{t}"))),
                GitHubContext::Ref(r) => values.push(("ref", r.clone())),
                GitHubContext::PullRequest | GitHubContext::Pattern(_) | GitHubContext::None => {}
            }
            if let Some(workflow_ref) = s.pair("job_workflow_ref") {
                values.push(("job_workflow_ref", workflow_ref.to_owned()));
            }
        }
        Subject::CircleCi(s) => values.push(("oidc.circleci.com/project-id", s.project_id.clone())),
        _ => {}
    }
    values
}
