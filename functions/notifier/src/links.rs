//! Console and GitHub links. Each is built only from parts that pass a strict check, so
//! a hostile role name, region or repository yields no link rather than a forged one.
//! The URLs contain no `&`, `<`, `>` or `|`, so they sit safely inside `<url|label>`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

fn is_region(region: &str) -> bool {
    (4..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-')
}

fn is_token(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The console host of an ARN's partition; `None` for a partition we do not know.
pub fn console_host(partition: &str) -> Option<&'static str> {
    match partition {
        "aws" => Some("console.aws.amazon.com"),
        "aws-us-gov" => Some("console.amazonaws-us-gov.com"),
        "aws-cn" => Some("console.amazonaws.cn"),
        _ => None,
    }
}

/// The partition of an ARN (`arn:PARTITION:…`), `aws` when there is no ARN.
pub fn partition_of(arn: Option<&str>) -> &str {
    arn.and_then(|a| a.strip_prefix("arn:"))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or("aws")
}

/// The CloudTrail event-history page of one event.
pub fn cloudtrail_event(partition: &str, region: &str, event_id: &str) -> Option<String> {
    let host = console_host(partition)?;
    (is_region(region) && is_token(event_id, 64))
        .then(|| format!("https://{host}/cloudtrailv2/home?region={region}#/events/{event_id}"))
}

/// IAM role names: `[\w+=,.@-]{1,64}`.
fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// The role's trust-relationship tab in the IAM console.
pub fn iam_role(partition: &str, role_name: &str) -> Option<String> {
    let host = console_host(partition)?;
    is_role_name(role_name).then(|| {
        format!(
            "https://{host}/iam/home#/roles/details/{}?section=trust_relationships",
            utf8_percent_encode(role_name, COMPONENT)
        )
    })
}

/// GitHub owner (`[A-Za-z0-9-]{1,39}`, no leading hyphen) and repository
/// (`[A-Za-z0-9._-]{1,100}`, not `.` or `..`).
fn is_github_repository(repository: &str) -> bool {
    let Some((owner, name)) = repository.split_once('/') else {
        return false;
    };
    (1..=39).contains(&owner.len())
        && !owner.starts_with('-')
        && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `https://github.com/<repository>/actions/runs/<run_id>`, for github.com tokens only
/// (a GitHub Enterprise Server run lives on another host).
pub fn github_run(provider: Option<&str>, repository: &str, run_id: &str) -> Option<String> {
    let on_github = provider.is_some_and(|p| {
        p == "token.actions.githubusercontent.com" || p.starts_with("token.actions.githubusercontent.com/")
    });
    (on_github
        && is_github_repository(repository)
        && (1..=20).contains(&run_id.len())
        && run_id.bytes().all(|b| b.is_ascii_digit()))
    .then(|| format!("https://github.com/{repository}/actions/runs/{run_id}"))
}

/// The alarm's page in the CloudWatch console, from its ARN
/// (`arn:PARTITION:cloudwatch:REGION:ACCOUNT:alarm:NAME`).
pub fn cloudwatch_alarm(alarm_arn: &str) -> Option<String> {
    let mut parts = alarm_arn.splitn(7, ':');
    let (arn, partition, service, region, _account, resource, name) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn" || service != "cloudwatch" || resource != "alarm" || name.is_empty() || name.len() > 255 {
        return None;
    }
    let host = console_host(partition)?;
    is_region(region).then(|| {
        format!(
            "https://{host}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
            utf8_percent_encode(name, COMPONENT)
        )
    })
}

/// The region code of an ARN, if it has a plausible one.
pub fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| is_region(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_from_valid_parts() {
        assert_eq!(
            cloudtrail_event("aws", "us-east-1", "804a752e-aa32-4947-96f7-a4de5b320c57").as_deref(),
            Some("https://console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/804a752e-aa32-4947-96f7-a4de5b320c57")
        );
        assert_eq!(
            iam_role("aws", "gha+deploy@x").as_deref(),
            Some("https://console.aws.amazon.com/iam/home#/roles/details/gha%2Bdeploy%40x?section=trust_relationships")
        );
        assert_eq!(
            github_run(
                Some("token.actions.githubusercontent.com"),
                "acme/web-app",
                "18190844520"
            )
            .as_deref(),
            Some("https://github.com/acme/web-app/actions/runs/18190844520")
        );
        assert_eq!(
            cloudwatch_alarm("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:oidc watch|x").as_deref(),
            Some("https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/oidc%20watch%7Cx")
        );
    }

    #[test]
    fn no_link_from_hostile_parts() {
        assert_eq!(cloudtrail_event("aws", "us-east-1|x", "id"), None);
        assert_eq!(cloudtrail_event("aws", "us-east-1", "a>b"), None);
        assert_eq!(cloudtrail_event("evil", "us-east-1", "id"), None);
        assert_eq!(iam_role("aws", "<!here>"), None);
        assert_eq!(iam_role("aws", &"r".repeat(65)), None);
        assert_eq!(
            github_run(Some("token.actions.githubusercontent.com"), "a/b|c", "1"),
            None
        );
        assert_eq!(
            github_run(Some("token.actions.githubusercontent.com"), "a/..", "1"),
            None
        );
        assert_eq!(
            github_run(Some("token.actions.githubusercontent.com"), "a/b", "1x"),
            None
        );
        assert_eq!(
            github_run(Some("github.acme.internal/_services/token"), "a/b", "1"),
            None
        );
        assert_eq!(cloudwatch_alarm("arn:aws:sns:us-east-1:1:alarm:x"), None);
    }
}
