//! Which condition keys STS evaluates for a web-identity call, and which of them the
//! CloudTrail record shows (reference/iam-and-claims.md §1.4, §5).

use crate::claims::Claims;
use crate::evaluate::{Context, Provenance};
use crate::subject::{GitHubContext, ProviderKind, Subject};

/// Claims of every OIDC provider (before the 2026 provider-specific keys).
const STANDARD_CLAIMS: &[&str] = &["aud", "sub", "amr", "azp", "oaud"];

/// Provider-specific claim keys STS has evaluated since February 2026.
fn provider_claims(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::GitHub => &[
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
            "build_branch",
            "cluster_id",
            "cluster_name",
            "organization_id",
            "organization_slug",
            "pipeline_id",
            "pipeline_slug",
        ],
        ProviderKind::CircleCi => &["oidc.circleci.com/project-id"],
        ProviderKind::Google => &["google/organization_number", "email", "email_verified", "hd"],
        _ => &[],
    }
}

/// Global keys STS may evaluate in a trust policy but the record does not show.
const UNSEEN_GLOBAL_KEYS: &[&str] = &["aws:sourcevpc", "aws:sourcevpce", "aws:vpcsourceip", "aws:referer"];

/// Whether STS would put `claim` (the part after `<provider>:`) into the request context.
pub fn is_provided_claim(kind: ProviderKind, claim: &str) -> bool {
    let claim = claim.to_ascii_lowercase();
    STANDARD_CLAIMS.contains(&claim.as_str()) || provider_claims(kind).contains(&claim.as_str())
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
pub fn request_context(claims: &Claims) -> Context {
    let mut context = Context::default();
    let recorded = Provenance::Recorded;
    if let Some(provider) = &claims.provider {
        let prefix = &provider.url;
        // A token always has `sub` and `aud`; when the record lacks one, it is unknown.
        match &claims.subject {
            Some(sub) => context.insert(&format!("{prefix}:sub"), vec![sub.clone()], recorded),
            None => context.mark_unknown(&format!("{prefix}:sub")),
        }
        match &claims.audience {
            Some(aud) => context.insert(&format!("{prefix}:aud"), vec![aud.clone()], recorded),
            None => context.mark_unknown(&format!("{prefix}:aud")),
        }
        for (claim, value) in derived_claim_values(&claims.parsed_subject) {
            context.insert(&format!("{prefix}:{claim}"), vec![value], Provenance::Derived);
        }
        for claim in ["amr", "azp", "oaud"].iter().chain(provider_claims(provider.kind)) {
            context.mark_unknown(&format!("{prefix}:{claim}"));
        }
    }
    if let Some(ip) = &claims.source_ip {
        context.insert("aws:SourceIp", vec![ip.clone()], recorded);
    }
    if let Some(region) = &claims.region {
        context.insert("aws:RequestedRegion", vec![region.clone()], recorded);
    }
    if let Some(name) = &claims.session_name {
        context.insert("sts:RoleSessionName", vec![name.clone()], recorded);
    }
    if let Some(identity) = &claims.source_identity {
        context.insert("sts:SourceIdentity", vec![identity.clone()], recorded);
    }
    if let Some(duration) = claims.duration_seconds {
        context.insert("sts:DurationSeconds", vec![duration.to_string()], recorded);
    }
    if !claims.session_tags.is_empty() {
        for (key, value) in &claims.session_tags {
            context.insert(&format!("aws:RequestTag/{key}"), vec![value.clone()], recorded);
        }
        context.insert("aws:TagKeys", claims.session_tags.keys().cloned().collect(), recorded);
    }
    if let Some(time) = &claims.event_time {
        context.insert("aws:CurrentTime", vec![time.clone()], recorded);
        if let Some(epoch) = crate::evaluate::epoch_seconds(time) {
            context.insert("aws:EpochTime", vec![epoch.to_string()], recorded);
        }
    }
    context.insert("aws:SecureTransport", vec!["true".to_owned()], recorded);
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
