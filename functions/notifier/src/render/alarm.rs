//! CloudWatch alarm state changes, with the failures in the alarm's window.

use super::*;

pub(super) fn state_emoji(state: &str) -> &'static str {
    match state {
        "ALARM" => ":rotating_light:",
        "OK" => ":white_check_mark:",
        _ => ":grey_question:",
    }
}

pub(super) fn dimensions(dimensions: &[crate::notice::AlarmDimension]) -> String {
    if dimensions.is_empty() {
        return String::new();
    }
    let list: Vec<String> = dimensions
        .iter()
        .take(MAX_FIELDS)
        .map(|d| format!("{}={}", value(&d.name), value(&d.value)))
        .collect();
    format!(" [{}]", list.join(", "))
}

pub(super) fn metric_text(alarm: &AlarmNotice) -> String {
    let t = &alarm.trigger;
    if t.metrics.is_empty() {
        let statistic = t
            .statistic
            .as_deref()
            .or(t.extended_statistic.as_deref())
            .unwrap_or("-");
        return format!(
            "*Metric*\n{} {} ({}, {}){}",
            code(t.namespace.as_deref().unwrap_or("-")),
            code(t.metric_name.as_deref().unwrap_or("-")),
            value(statistic),
            duration(alarm.period()),
            dimensions(&t.dimensions)
        );
    }
    let mut text = String::from("*Metric math*");
    for query in t.metrics.iter().take(MAX_FIELDS) {
        let returned = if query.return_data.unwrap_or(false) {
            " (alarmed on)"
        } else {
            ""
        };
        let label = query
            .label
            .as_deref()
            .filter(|l| !l.is_empty())
            .map_or(String::new(), |l| format!(" {}", value(l)));
        match (&query.expression, &query.metric_stat) {
            (Some(expression), _) => text.push_str(&format!(
                "\n• {} = {}{label}{returned}",
                code(&query.id),
                code(expression)
            )),
            (None, Some(stat)) => text.push_str(&format!(
                "\n• {} = {} {} ({}, {}){}{label}{returned}",
                code(&query.id),
                code(stat.metric.namespace.as_deref().unwrap_or("-")),
                code(stat.metric.metric_name.as_deref().unwrap_or("-")),
                value(&stat.stat),
                duration(stat.period),
                dimensions(&stat.metric.dimensions)
            )),
            (None, None) => text.push_str(&format!("\n• {}{label}{returned}", code(&query.id))),
        }
    }
    if t.metrics.len() > MAX_FIELDS {
        text.push_str(&format!("\n… and {} more", t.metrics.len() - MAX_FIELDS));
    }
    text
}

pub(super) fn breakdown_list(items: &[(String, f64)]) -> String {
    items
        .iter()
        .take(MAX_TOP)
        .map(|(name, n)| format!("• {}: {}", code(name), number(*n)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn render_alarm(alarm: &AlarmNotice, breakdown: Option<&Breakdown>) -> Rendered {
    let name = if alarm.alarm_name.is_empty() {
        "unnamed alarm"
    } else {
        &alarm.alarm_name
    };
    let new = if alarm.new_state_value.is_empty() {
        "UNKNOWN"
    } else {
        &alarm.new_state_value
    };
    let mut blocks = Blocks::new();
    blocks.header(&format!("{} {} · {}", state_emoji(new), value(new), value(name)));
    let mut summary = format!(
        "CloudWatch alarm {} changed from {} to *{}*.",
        code(name),
        value(if alarm.old_state_value.is_empty() {
            "-"
        } else {
            &alarm.old_state_value
        }),
        value(new)
    );
    if let Some(description) = alarm.alarm_description.as_deref().filter(|d| !d.is_empty()) {
        summary.push('\n');
        summary.push_str(&prose(description, MAX_PROSE_CHARS));
    }
    blocks.section(&summary);
    let t = &alarm.trigger;
    let threshold = t.threshold.map_or("-".to_owned(), number);
    let condition = format!(
        "{} {} for {} of {} × {}",
        value(&comparison(&t.comparison_operator)),
        threshold,
        t.datapoints_to_alarm.unwrap_or(t.evaluation_periods).max(1),
        t.evaluation_periods.max(1),
        duration(alarm.period())
    );
    let changed = alarm
        .changed_at()
        .map_or_else(|| value(&alarm.state_change_time), utc);
    blocks.fields(&[
        field("Account", code(&alarm.aws_account_id)),
        field(
            "Region",
            alarm.region_code().map_or_else(|| value(&alarm.region), code),
        ),
        field("Condition", condition),
        field("Changed", changed),
    ]);
    blocks.section(&metric_text(alarm));
    if !alarm.new_state_reason.is_empty() {
        blocks.section(&field("Reason", prose(&alarm.new_state_reason, MAX_PROSE_CHARS)));
    }
    if let Some(b) = breakdown {
        let when = format!("{} to {}", utc(b.start), utc(b.end));
        if b.by_cause.is_empty() && b.by_role.is_empty() {
            blocks.section(&format!(
                "*Failures in the window* ({when})\nNone recorded by cause or role."
            ));
        } else {
            blocks.section(&format!("*Failures in the window* ({when})"));
            blocks.fields(&[
                field("By cause", breakdown_list(&b.by_cause)),
                field("By role", breakdown_list(&b.by_role)),
            ]);
        }
    }
    if let Some(url) = links::cloudwatch_alarm(&alarm.alarm_arn) {
        blocks.context(&[format!("<{url}|Alarm in CloudWatch>")]);
    }
    blocks.context(&[format!(
        "oidc-watch · CloudWatch alarm {}",
        code(&alarm.alarm_arn)
    )]);
    let mut text = format!(
        "[{}] {}: {} ({} → {}).",
        value(new),
        value(name),
        prose(&alarm.new_state_reason, MAX_PROSE_CHARS),
        value(&alarm.old_state_value),
        value(new)
    );
    if let Some(b) = breakdown.filter(|b| !b.by_cause.is_empty()) {
        let top: Vec<String> = b
            .by_cause
            .iter()
            .take(MAX_TOP)
            .map(|(c, n)| format!("{} {}", value(c), number(*n)))
            .collect();
        text.push_str(&format!(" Top causes: {}.", top.join(", ")));
    }
    Rendered {
        text: fit(&text, MAX_FALLBACK_TEXT),
        blocks: blocks.finish(),
    }
}
