//! IAM changes: the trust-change alert (a change that widened a role's trust, with its
//! diff), and the change notes of incident, spike and recovery messages.

use super::*;

/// Changes of the role or provider shortly before, as context lines.
pub(super) fn change_notes(alert: &Alert) -> Vec<String> {
    if alert.kind == AlertKind::TrustChange {
        return Vec::new();
    }
    alert
        .changes
        .iter()
        .take(MAX_NOTES)
        .map(|c| format!(":pencil2: Change: {}", prose(&c.sentence, MAX_FINDING_CHARS)))
        .collect()
}

/// What changed, in our words with the values as code: `UpdateAssumeRolePolicy` of role
/// `x` by `arn:…`.
fn what(c: &ChangeNote) -> String {
    let target = match (&c.role, &c.provider) {
        (Some(role), _) => format!("role {}", code(role)),
        (None, Some(provider)) => format!("provider {}", code(provider)),
        _ => "IAM".to_owned(),
    };
    let by = c
        .actor
        .as_deref()
        .map_or(String::new(), |a| format!(" by {}", code(a)));
    format!("{} of {target}{by}", code(c.action.as_str()))
}

pub(super) fn diff_lines(c: &ChangeNote) -> String {
    let codes = |values: &[String]| {
        let mut shown: Vec<String> = values.iter().take(MAX_EXPECTED_VALUES).map(|v| code(v)).collect();
        if values.len() > MAX_EXPECTED_VALUES {
            shown.push(format!("and {} more", values.len() - MAX_EXPECTED_VALUES));
        }
        shown.join(", ")
    };
    c.diff
        .iter()
        .take(MAX_CONDITIONS)
        .map(|d| {
            let mut line = format!("• statement {} {}:", d.statement, code(&d.target));
            if !d.removed.is_empty() {
                line.push_str(&format!(" removed {}", codes(&d.removed)));
            }
            if !d.added.is_empty() {
                line.push_str(&format!(" added {}", codes(&d.added)));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn render_trust_change(alert: &Alert) -> Rendered {
    let mut blocks = Blocks::new();
    blocks.header(&format!(
        "{} {} · Trust widened by an IAM change",
        emoji(alert.severity),
        upper(alert.severity)
    ));
    for c in alert.changes.iter().take(MAX_NOTES) {
        blocks.section(&format!(
            ":unlock: {} in account {} widened who may assume it.",
            what(c),
            code(&alert.account_id)
        ));
        blocks.section(&field("Change", prose(&c.summary, MAX_PROSE_CHARS)));
        let why: Vec<String> = c
            .widening
            .iter()
            .take(MAX_FINDINGS)
            .map(|w| format!("• {}", prose(w, MAX_FINDING_CHARS)))
            .collect();
        blocks.section(&field("Why it widens trust", why.join("\n")));
        if !c.diff.is_empty() {
            blocks.section(&field("Diff", diff_lines(c)));
        }
        blocks.context(&[footer(alert.kind.as_str(), &alert.thread_id, Some(&c.event_id))]);
    }
    blocks.context(&notes(alert));
    Rendered {
        text: format!("{}: {}", upper(alert.severity), mrkdwn(&alert.title())),
        blocks: blocks.finish(),
    }
}
