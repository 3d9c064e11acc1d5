//! The audit digest: what oidc-auditor's scheduled audit found new (by severity, account
//! and role, with each finding's code, message and verified change) and what it found
//! resolved. Role names, values and messages quote strangers' policies: all escaped.

use super::*;
use diagnosis::alert::{finding_label, groups, AuditDigest, FindingGroup};
use diagnosis::audit::AccountFinding;

/// New findings shown in Slack (the digest lists up to 25; the email has them all).
pub const MAX_DIGEST_FINDINGS_SHOWN: usize = 15;
/// Resolved findings shown.
pub const MAX_RESOLVED_SHOWN: usize = 15;

fn group_title(group: &FindingGroup<'_>) -> String {
    let what = match (group.role, group.provider) {
        (Some(role), _) => format!(" · role {}", code(role)),
        (None, Some(provider)) => format!(" · provider {}", code(provider)),
        _ => String::new(),
    };
    format!("account {}{what}", code(group.account))
}

fn finding_line(f: &AccountFinding, with_message: bool) -> String {
    let mut line = format!("• {}", value(&finding_label(f)));
    if with_message {
        line.push_str(&format!(": {}", prose(&f.message, MAX_FINDING_CHARS)));
    }
    if let Some(change) = f.suggested_change.as_ref().filter(|_| with_message) {
        line.push_str(&format!(
            "\n   _Verified change:_ {}",
            prose(&diagnosis::alert::change_summary(change), MAX_FINDING_CHARS)
        ));
    }
    line
}

/// One section per (severity, account, role) group; `shown` bounds the findings listed.
fn sections(blocks: &mut Blocks, findings: &[AccountFinding], shown: usize, with_message: bool) -> usize {
    let mut listed = 0;
    for group in groups(findings) {
        if listed >= shown {
            break;
        }
        let lines: Vec<String> = group
            .findings
            .iter()
            .take(shown - listed)
            .map(|f| finding_line(f, with_message))
            .collect();
        listed += lines.len();
        let severity = if with_message {
            format!(
                "{} *{}* · ",
                emoji(diagnosis::alert::alert_severity(group.severity)),
                group.severity.as_str()
            )
        } else {
            String::new()
        };
        blocks.section(&format!(
            "{severity}{}\n{}",
            group_title(&group),
            lines.join("\n")
        ));
    }
    listed
}

pub(super) fn render_digest(alert: &Alert, d: &AuditDigest) -> Rendered {
    let mut blocks = Blocks::new();
    blocks.header(&format!(
        "{} {} · Trust-policy audit: {} new, {} resolved",
        emoji(alert.severity),
        upper(alert.severity),
        d.new_count(),
        d.resolved_count()
    ));
    let accounts: Vec<String> = d.accounts.iter().take(MAX_TOP).map(|a| code(a)).collect();
    let more = d.accounts.len().saturating_sub(MAX_TOP);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    blocks.section(&format!(
        ":mag: The scheduled audit of {} ({}{more}) found *{}* and *{}* since its last run; {} unchanged.",
        plural(d.accounts.len() as u64, "account", "accounts"),
        accounts.join(", "),
        plural(d.new_count() as u64, "new finding", "new findings"),
        plural(d.resolved_count() as u64, "resolved finding", "resolved findings"),
        d.unchanged
    ));
    if d.new_count() > 0 {
        blocks.section("*New findings*");
        let listed = sections(&mut blocks, &d.new, MAX_DIGEST_FINDINGS_SHOWN, true);
        let left = d.new_count() - listed;
        if left > 0 {
            blocks.context(&[format!(
                "{} not shown; the email and `oidc-watch audit` list them.",
                plural(left as u64, "more new finding", "more new findings")
            )]);
        }
    }
    if d.resolved_count() > 0 {
        blocks.section("*Resolved since the last audit* :white_check_mark:");
        let listed = sections(&mut blocks, &d.resolved, MAX_RESOLVED_SHOWN, false);
        let left = d.resolved_count() - listed;
        if left > 0 {
            blocks.context(&[format!(
                "{} not shown.",
                plural(left as u64, "more resolved finding", "more resolved findings")
            )]);
        }
    }
    let unread: Vec<String> = d
        .unread
        .iter()
        .take(MAX_NOTES)
        .map(|u| {
            format!(
                ":warning: Account {} was not read ({}); its previous findings stand.",
                code(&u.account),
                prose(&u.error, MAX_FINDING_CHARS)
            )
        })
        .collect();
    blocks.context(&unread);
    blocks.context(&[footer(alert.kind.as_str(), &alert.thread_id, None)]);
    Rendered {
        text: fit(
            &format!("{}: {}", upper(alert.severity), mrkdwn(&alert.title())),
            MAX_FALLBACK_TEXT,
        ),
        blocks: blocks.finish(),
    }
}
