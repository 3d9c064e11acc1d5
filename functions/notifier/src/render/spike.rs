//! Spikes and their recoveries.

use super::*;

pub(super) fn top_list(items: &[(String, u64)], unknown_role: bool) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items
        .iter()
        .take(MAX_TOP)
        .map(|(name, n)| {
            let note = if unknown_role && name == diagnosis::metrics::UNKNOWN_DIMENSION {
                " (roles that do not exist)"
            } else {
                ""
            };
            format!("• {}{note}: {n}", code(name))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn render_spike(alert: &Alert) -> Rendered {
    let spike = spike_of(alert);
    let window = duration(spike.window_seconds);
    // The monitor's spikes have the one scope `all`; an older monitor's may name a role.
    let (in_scope, in_scope_text) = match spike.scope.as_str() {
        "all" => (String::new(), String::new()),
        scope => (
            format!(" in scope {}", code(scope)),
            format!(" in scope {}", value(scope)),
        ),
    };
    let (on_role, on_role_text) =
        dominant_role(&spike).map_or((String::new(), String::new()), |(role, n)| {
            (
                format!(", {n} of them on role {}", code(role)),
                format!(", {n} of them on role {}", value(role)),
            )
        });
    let mut blocks = Blocks::new();
    let (header, summary) = if alert.kind == AlertKind::Recovery {
        (
            ":white_check_mark: Recovered · OIDC assume-role failures back to normal".to_owned(),
            format!(
                "Failures{in_scope} are back to normal: {} in the last {window}, against a \
                 baseline of {:.1} per window.",
                spike.failures, spike.baseline
            ),
        )
    } else {
        (
            format!(
                "{} {} · Spike in OIDC assume-role failures",
                emoji(alert.severity),
                upper(alert.severity)
            ),
            format!(
                "*{}* failures in the last {window}{in_scope}{on_role}, against a baseline of \
                 {:.1} per window.",
                spike.failures, spike.baseline
            ),
        )
    };
    blocks.header(&header);
    blocks.section(&summary);
    blocks.context(&change_notes(alert));
    blocks.context(&notes(alert));
    blocks.fields(&[
        field("Scope", code(&spike.scope)),
        field("Account", code(&alert.account_id)),
        field("Failures", spike.failures.to_string()),
        field("Window", window.clone()),
        field("Baseline", format!("{:.1} per window", spike.baseline)),
    ]);
    blocks.fields(&[
        field("Top roles", top_list(&spike.top_roles, true)),
        field("Top causes", top_list(&spike.top_causes, false)),
    ]);
    blocks.context(&[footer(alert.kind.as_str(), &alert.thread_id, None)]);
    let text = if alert.kind == AlertKind::Recovery {
        format!(
            "[{}] Recovered: OIDC assume-role failures{in_scope_text} back to normal ({} in the last {window}).",
            upper(alert.severity),
            spike.failures
        )
    } else {
        let causes: Vec<String> = spike
            .top_causes
            .iter()
            .take(MAX_TOP)
            .map(|(c, n)| format!("{} {n}", value(c)))
            .collect();
        format!(
            "[{}] Spike: {} OIDC assume-role failures in the last {window}{in_scope_text}{on_role_text} (baseline {:.1}). Top causes: {}.",
            upper(alert.severity),
            spike.failures,
            spike.baseline,
            if causes.is_empty() {
                "-".to_owned()
            } else {
                causes.join(", ")
            }
        )
    };
    Rendered {
        text: fit(&text, MAX_FALLBACK_TEXT),
        blocks: blocks.finish(),
    }
}
