//! The report as one self-contained HTML page: inline CSS, inline SVG charts, no script,
//! no external resource (a Content-Security-Policy says so to the browser too), readable
//! from a phone's width up, light or dark as the reader's system prefers. Every value a
//! stranger chose goes through [`untrusted_html`]; the counts carry `data-` attributes so
//! a test can read them back.

use std::fmt::Write;

use diagnosis::alert::change_summary;
use diagnosis::text::escape_controls;

use super::escape::{html, untrusted_html, CELL_CHARS, TEXT_CHARS};
use super::{
    bucket_label, cause_label, count, percent, policy_text, time, IncidentKind, Report, Timeline, Top,
    MAX_DIAGNOSIS_DETAILS, MAX_INCIDENT_ROWS,
};

const STYLE: &str = r#"
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1b1f24;--muted:#59636e;--card:#f4f6f8;--border:#d5dbe1;--fail:#c9372c;--ok:#2f8f4e;--rate:#1f5fd1;--probe:#9a6700;--grid:#e3e7eb}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9aa5b1;--card:#161b22;--border:#30363d;--fail:#f0625a;--ok:#3fb950;--rate:#6ea8ff;--probe:#d29922;--grid:#262c34}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:16px}
h1{font-size:1.6rem;margin:.25rem 0}
h2{font-size:1.2rem;margin:0 0 .5rem;border-bottom:1px solid var(--border);padding-bottom:.25rem}
h3{font-size:1rem;margin:.75rem 0 .25rem}
section{margin:1.75rem 0}
p{margin:.4rem 0}
.muted{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px}
.card{background:var(--card);border:1px solid var(--border);border-radius:8px;padding:8px 12px}
.card .num{display:block;font-size:1.5rem;font-weight:650}
.card.fail .num{color:var(--fail)}
.card.ok .num{color:var(--ok)}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--border);padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{font-weight:600;color:var(--muted);overflow-wrap:normal;white-space:nowrap}
.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
code{overflow-wrap:anywhere}
pre{background:var(--card);border:1px solid var(--border);border-radius:6px;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere;max-height:28rem;overflow-y:auto}
svg.chart{display:block;width:100%;height:auto}
svg.chart.narrow{display:none}
.rate-point{fill:var(--rate)}
.chart text{fill:var(--muted);font-size:12px}
.chart .grid{stroke:var(--grid);stroke-width:1}
.fail{fill:var(--fail)}
.ok{fill:var(--ok)}
.probe{fill:var(--probe)}
.rate{fill:none;stroke:var(--rate);stroke-width:2}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:.9em;color:var(--muted)}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.legend .l-fail{background:var(--fail)}
.legend .l-ok{background:var(--ok)}
.legend .l-rate{background:var(--rate);height:3px;vertical-align:3px}
.bars{display:grid;gap:4px}
.bar{display:grid;grid-template-columns:minmax(0,18rem) minmax(0,1fr) 5.5rem;gap:10px;align-items:center}
.bar .label{overflow-wrap:anywhere}
.bar svg{display:block;width:100%;height:14px}
.bar .track{fill:var(--card)}
details{border:1px solid var(--border);border-radius:8px;padding:6px 12px;margin:8px 0}
summary{cursor:pointer;font-weight:600;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:9rem minmax(0,1fr);gap:2px 12px;margin:.5rem 0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.sev-high{color:var(--fail);font-weight:600}
.sev-medium{color:var(--probe);font-weight:600}
.tag{display:inline-block;white-space:nowrap;border:1px solid var(--border);border-radius:10px;padding:0 7px;font-size:.85em}
.tag.probe{color:var(--probe);fill:none}
footer{margin:2rem 0 1rem;font-size:.85em;color:var(--muted)}
@media (max-width:640px){
main{padding:10px}
.bar{grid-template-columns:minmax(0,1fr) 4.5rem}
.bar svg{grid-column:1/-1;grid-row:2}
dl{grid-template-columns:minmax(0,1fr)}
svg.chart.wide{display:none}
svg.chart.narrow{display:block}
dt{margin-top:4px}
th,td{padding:3px 5px}
}
"#;

/// The page.
pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let t = &report.totals;
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <title>oidc-watch report: {} failures of {} calls</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        t.failures, t.events
    );
    header(&mut page, report);
    summary(&mut page, report);
    timeline(&mut page, report);
    causes(&mut page, report);
    roles(&mut page, report);
    top(
        &mut page,
        "repositories",
        "Top repositories",
        "repository",
        &report.repositories,
    );
    top(&mut page, "subjects", "Top subjects", "subject", &report.subjects);
    incidents(&mut page, report);
    probes(&mut page, report);
    findings(&mut page, report);
    diagnoses(&mut page, report);
    let _ = write!(
        page,
        "<footer>Made by <code>oidc-watch diagnose --report</code>. One file: no script, no \
         external resource. Tables keyed by a stranger-chosen value count up to {} distinct \
         values exactly; retries of one job (account, role, subject, cause) within {} s of its \
         first attempt are one incident, as in oidc-monitor.</footer>\n</main>\n</body>\n</html>\n",
        super::MAX_TRACKED,
        report.window_seconds
    );
    page
}

fn header(page: &mut String, report: &Report) {
    page.push_str("<header>\n<h1>oidc-watch report</h1>\n");
    match report.span() {
        Some((first, last)) => {
            let _ = writeln!(
                page,
                "<p class=\"muted\">AssumeRoleWithWebIdentity calls from <time>{}</time> to <time>{}</time>.</p>",
                time(Some(first)),
                time(Some(last))
            );
        }
        None => page.push_str("<p class=\"muted\">No call has a readable time.</p>\n"),
    }
    page.push_str("</header>\n");
}

fn summary(page: &mut String, report: &Report) {
    let t = &report.totals;
    let probes = report.probe_incidents();
    let _ = write!(
        page,
        "<section id=\"summary\" data-events=\"{}\" data-failures=\"{}\" data-successes=\"{}\" \
         data-incidents=\"{}\" data-probes=\"{}\" data-foreign-successes=\"{}\">\n<h2>Summary</h2>\n<div class=\"cards\">\n",
        t.events,
        t.failures,
        t.successes,
        report.incidents.len(),
        probes,
        t.foreign_successes
    );
    let card = |page: &mut String, class: &str, n: String, label: &str| {
        let _ = writeln!(
            page,
            "<div class=\"card {class}\"><span class=\"num\">{n}</span>{label}</div>"
        );
    };
    card(page, "", t.events.to_string(), "calls");
    card(page, "fail", t.failures.to_string(), "failures");
    card(page, "ok", t.successes.to_string(), "successes");
    card(page, "fail", percent(t.failure_rate()), "failure rate");
    card(
        page,
        "",
        (report.incidents.len() - probes).to_string(),
        "incidents (our jobs)",
    );
    card(page, "", probes.to_string(), "probes (not ours)");
    if t.foreign_successes > 0 {
        card(
            page,
            "fail",
            t.foreign_successes.to_string(),
            "successes of owners not ours",
        );
    }
    page.push_str("</div>\n");
    let mut notes = Vec::new();
    if t.foreign_successes > 0 {
        notes.push(format!(
            "{} successful calls came from owners that are not yours: oidc-monitor alerts on each as critical.",
            t.foreign_successes
        ));
    }
    if t.unknown_trust_failures > 0 {
        notes.push(format!(
            "{} failures could not be judged ours or not: no --owners and no account snapshot named the owners.",
            t.unknown_trust_failures
        ));
    }
    if t.unreadable > 0 {
        notes.push(format!(
            "{} records or files could not be read (see stderr); they are not counted.",
            t.unreadable
        ));
    }
    if t.skipped > 0 {
        notes.push(format!("{} other CloudTrail records were skipped.", t.skipped));
    }
    if t.undated > 0 {
        notes.push(format!(
            "{} calls have no readable time and are not on the chart.",
            t.undated
        ));
    }
    if report.repeated_failures > 0 {
        notes.push(format!(
            "{} failures repeat an event id already read (a redelivery, or a file read twice): counted here, not again as attempts of their incident.",
            report.repeated_failures
        ));
    }
    if report.uncollapsed_failures > 0 {
        notes.push(format!(
            "{} failures of jobs past the first {} were not collapsed into incidents.",
            report.uncollapsed_failures,
            super::MAX_TRACKED
        ));
    }
    for note in notes {
        let _ = writeln!(page, "<p class=\"muted\">{}</p>", html(&note));
    }
    page.push_str("</section>\n");
}

fn timeline(page: &mut String, report: &Report) {
    page.push_str("<section id=\"timeline\">\n");
    let Some(timeline) = &report.timeline else {
        page.push_str("<h2>Failure rate over time</h2>\n<p>No call has a readable time.</p>\n</section>\n");
        return;
    };
    let _ = writeln!(
        page,
        "<h2>Failure rate over time <span class=\"muted\">(per {})</span></h2>",
        timeline.width_name
    );
    // Two drawings of one chart: the narrow one keeps its labels legible on a phone.
    chart(page, timeline, "wide", 800.0);
    chart(page, timeline, "narrow", 400.0);
    page.push_str(
        "<div class=\"legend\"><span><i class=\"l-fail\"></i>failures</span>\
         <span><i class=\"l-ok\"></i>successes</span><span><i class=\"l-rate\"></i>failure rate (right axis)</span></div>\n</section>\n",
    );
}

/// Stacked bars of failures and successes per bucket, and the failure rate as a line.
fn chart(page: &mut String, timeline: &Timeline, class: &str, width: f64) {
    const H: f64 = 260.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 46.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 34.0;
    #[allow(non_snake_case)]
    let W = width;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = timeline.buckets.len().max(1);
    let max = timeline
        .buckets
        .iter()
        .map(|b| b.failures + b.successes)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = plot_w / n as f64;
    let bar = (slot * 0.8).max(0.6);
    let y = |count: f64| TOP + plot_h - count / max as f64 * plot_h;
    let _ = writeln!(
        page,
        "<svg class=\"chart {class}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"Failures and successes per {}\">",
        timeline.width_name
    );
    // Grid and the failure rate's axis on the right; whole counts on the left, each at
    // its own height.
    for (fraction, rate) in [(0.0, "0%"), (0.5, "50%"), (1.0, "100%")] {
        let gy = TOP + plot_h - fraction * plot_h;
        let _ = writeln!(
            page,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{rate}</text>",
            W - RIGHT,
            W - RIGHT + 6.0,
            gy + 4.0
        );
    }
    let mut ticks = vec![0, max / 2, max];
    ticks.dedup();
    for count in ticks {
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{count}</text>",
            LEFT - 6.0,
            y(count as f64) + 4.0
        );
    }
    for (i, b) in timeline.buckets.iter().enumerate() {
        if b.failures + b.successes == 0 {
            continue;
        }
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let label = bucket_label(b.start, timeline.width_seconds);
        let _ = write!(
            page,
            "<g class=\"bucket\" data-start=\"{}\" data-failures=\"{}\" data-successes=\"{}\"><title>{label}: {} failures, {} successes</title>",
            b.start, b.failures, b.successes, b.failures, b.successes
        );
        let fail_top = y(b.failures as f64);
        let all_top = y((b.failures + b.successes) as f64);
        if b.failures > 0 {
            let _ = write!(
                page,
                "<rect class=\"fail\" x=\"{x:.2}\" y=\"{fail_top:.2}\" width=\"{bar:.2}\" height=\"{:.2}\"/>",
                (TOP + plot_h - fail_top).max(0.5)
            );
        }
        if b.successes > 0 {
            let _ = write!(
                page,
                "<rect class=\"ok\" x=\"{x:.2}\" y=\"{all_top:.2}\" width=\"{bar:.2}\" height=\"{:.2}\"/>",
                (fail_top - all_top).max(0.5)
            );
        }
        page.push_str("</g>\n");
    }
    // The failure rate: a dot per bucket with calls, joined where buckets are adjacent
    // (a gap in the calls is a gap in the line).
    let mut path = String::new();
    let mut dots = String::new();
    let mut previous: Option<usize> = None;
    for (i, b) in timeline.buckets.iter().enumerate() {
        let calls = b.failures + b.successes;
        if calls == 0 {
            continue;
        }
        let rate = b.failures as f64 / calls as f64;
        let px = LEFT + (i as f64 + 0.5) * slot;
        let py = TOP + plot_h - rate * plot_h;
        let command = if previous.is_some_and(|p| p + 1 == i) {
            'L'
        } else {
            'M'
        };
        let _ = write!(path, "{command}{px:.2} {py:.2} ");
        let _ = write!(
            dots,
            "<circle class=\"rate-point\" cx=\"{px:.2}\" cy=\"{py:.2}\" r=\"{:.2}\"/>",
            (slot * 0.35).clamp(1.5, 3.5)
        );
        previous = Some(i);
    }
    let _ = writeln!(page, "<path class=\"rate\" d=\"{}\"/>{dots}", path.trim_end());
    // Three labels along the time axis: first, middle and last bucket.
    let last = timeline.buckets.len().saturating_sub(1);
    let mut labelled = Vec::new();
    for index in [0, last / 2, last] {
        if labelled.contains(&index) {
            continue;
        }
        labelled.push(index);
        let Some(b) = timeline.buckets.get(index) else {
            continue;
        };
        let x = LEFT + (index as f64 + 0.5) * slot;
        let anchor = match index {
            0 => "start",
            i if i == last => "end",
            _ => "middle",
        };
        let x = match anchor {
            "start" => LEFT,
            "end" => W - RIGHT,
            _ => x,
        };
        let _ = writeln!(
            page,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            H - 12.0,
            bucket_label(b.start, timeline.width_seconds)
        );
    }
    page.push_str("</svg>\n");
}

/// One horizontal bar: `parts` are (class, count) stacked left to right, out of `max`.
fn bar_row(
    page: &mut String,
    label_html: &str,
    data: &str,
    parts: &[(&str, usize)],
    max: usize,
    total: &str,
) {
    let _ = write!(
        page,
        "<div class=\"bar\" {data}><div class=\"label\">{label_html}</div>\
         <svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect class=\"track\" width=\"100\" height=\"10\"/>"
    );
    let mut x = 0.0;
    for &(class, count) in parts {
        if count == 0 {
            continue;
        }
        let width = (count as f64 / max.max(1) as f64 * 100.0).max(0.8);
        let _ = write!(
            page,
            "<rect class=\"{class}\" x=\"{x:.2}\" width=\"{width:.2}\" height=\"10\"/>"
        );
        x += width;
    }
    let _ = writeln!(page, "</svg><div class=\"n\">{total}</div></div>");
}

fn causes(page: &mut String, report: &Report) {
    page.push_str("<section id=\"causes\">\n<h2>Failures by cause</h2>\n");
    if report.causes.is_empty() {
        page.push_str("<p>No failures.</p>\n</section>\n");
        return;
    }
    page.push_str("<div class=\"bars\">\n");
    let max = report.causes.first().map_or(1, |c| c.1);
    for (cause, count) in &report.causes {
        bar_row(
            page,
            &format!("<code>{}</code>", cause.as_str()),
            &format!("data-cause=\"{}\" data-count=\"{count}\"", cause.as_str()),
            &[("fail", *count)],
            max,
            &count.to_string(),
        );
    }
    page.push_str("</div>\n</section>\n");
}

fn roles(page: &mut String, report: &Report) {
    page.push_str("<section id=\"roles\">\n<h2>Failures by role</h2>\n");
    let failing: Vec<_> = report.roles.iter().filter(|r| r.failures > 0).collect();
    if failing.is_empty() {
        page.push_str("<p>No role failed.</p>\n");
    } else {
        page.push_str("<div class=\"bars\">\n");
        let max = failing
            .iter()
            .map(|r| r.failures + r.successes)
            .max()
            .unwrap_or(1);
        for role in failing.iter().take(super::TOP_ROWS) {
            let account = role
                .account
                .as_deref()
                .map(|a| format!(" <span class=\"muted\">{}</span>", untrusted_html(a, CELL_CHARS)))
                .unwrap_or_default();
            bar_row(
                page,
                &format!("<code>{}</code>{account}", untrusted_html(&role.name, CELL_CHARS)),
                &format!(
                    "data-role=\"{}\" data-failures=\"{}\" data-successes=\"{}\"",
                    untrusted_html(&role.name, CELL_CHARS),
                    role.failures,
                    role.successes
                ),
                &[("fail", role.failures), ("ok", role.successes)],
                max,
                &format!("{} / {}", role.failures, role.failures + role.successes),
            );
        }
        page.push_str("</div>\n<p class=\"muted\">failures / calls; green: the role's successes.</p>\n");
        let rest: usize = failing.iter().skip(super::TOP_ROWS).map(|r| r.failures).sum();
        if rest > 0 {
            let _ = writeln!(
                page,
                "<p class=\"muted\">{} more roles with {rest} failures.</p>",
                failing.len() - super::TOP_ROWS
            );
        }
    }
    if report.untracked_roles.0 > 0 {
        let _ = writeln!(
            page,
            "<p class=\"muted\">{} failures of roles past the first {} distinct roles.</p>",
            report.untracked_roles.0,
            super::MAX_TRACKED
        );
    }
    page.push_str("</section>\n");
}

fn top(page: &mut String, id: &str, title: &str, column: &str, top: &Top) {
    let _ = writeln!(
        page,
        "<section id=\"{id}\">\n<h2>{title} <span class=\"muted\">(by failures)</span></h2>"
    );
    if top.rows.is_empty() {
        page.push_str("<p>None named.</p>\n");
    } else {
        let _ = writeln!(
            page,
            "<div class=\"scroll\"><table><thead><tr><th>{column}</th><th class=\"n\">failures</th></tr></thead><tbody>"
        );
        for (value, count) in &top.rows {
            let _ = writeln!(
                page,
                "<tr data-count=\"{count}\"><td><code>{}</code></td><td class=\"n\">{count}</td></tr>",
                untrusted_html(value, CELL_CHARS)
            );
        }
        page.push_str("</tbody></table></div>\n");
    }
    let mut notes = Vec::new();
    if top.others > 0 {
        notes.push(format!(
            "{} more with {} failures ({} distinct).",
            top.distinct - top.rows.len(),
            top.others,
            top.distinct
        ));
    }
    if top.untracked > 0 {
        notes.push(format!(
            "{} failures name no {column} (or one past the first {}).",
            top.untracked,
            super::MAX_TRACKED
        ));
    }
    for note in notes {
        let _ = writeln!(page, "<p class=\"muted\">{}</p>", html(&note));
    }
    page.push_str("</section>\n");
}

fn incidents(page: &mut String, report: &Report) {
    let _ = writeln!(
        page,
        "<section id=\"incidents\" data-count=\"{}\">\n<h2>Incidents <span class=\"muted\">(retries within {} s are one)</span></h2>",
        report.incidents.len(),
        report.window_seconds
    );
    if report.incidents.is_empty() {
        page.push_str("<p>No failures.</p>\n</section>\n");
        return;
    }
    page.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>first</th><th>last</th><th class=\"n\">attempts</th>\
         <th>kind</th><th>cause</th><th>role</th><th>subject</th></tr></thead><tbody>\n",
    );
    for incident in report.incidents.iter().take(MAX_INCIDENT_ROWS) {
        let Some(job) = report.diagnoses.get(incident.diagnosis) else {
            continue;
        };
        let d = &job.diagnosis;
        // Only the first diagnoses are written out, so only they can be linked to.
        let cause = if incident.diagnosis < MAX_DIAGNOSIS_DETAILS {
            format!(
                "<a href=\"#d-{}\"><code>{}</code></a>",
                job.key,
                html(&cause_label(d))
            )
        } else {
            format!("<code>{}</code>", html(&cause_label(d)))
        };
        let kind = match incident.kind {
            IncidentKind::Incident => "<span class=\"tag\">incident</span>".to_owned(),
            IncidentKind::Probe => "<span class=\"tag probe\">probe</span>".to_owned(),
        };
        let _ = writeln!(
            page,
            "<tr data-attempts=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{kind}</td>\
             <td>{cause}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            incident.attempts,
            time(incident.first),
            time(incident.last),
            incident.attempts,
            untrusted_html(
                d.role_name.as_deref().or(d.role_arn.as_deref()).unwrap_or("-"),
                CELL_CHARS
            ),
            untrusted_html(d.subject.as_deref().unwrap_or("-"), CELL_CHARS)
        );
    }
    page.push_str("</tbody></table></div>\n");
    if report.incidents.len() > MAX_INCIDENT_ROWS {
        let _ = writeln!(
            page,
            "<p class=\"muted\">{} more incidents are counted above but not listed.</p>",
            report.incidents.len() - MAX_INCIDENT_ROWS
        );
    }
    page.push_str("</section>\n");
}

fn probes(page: &mut String, report: &Report) {
    page.push_str("<section id=\"probes\">\n<h2>Probes by owner <span class=\"muted\">(failures of owners that are not yours)</span></h2>\n");
    if report.probes.is_empty() {
        page.push_str("<p>No failures from owners that are not yours.</p>\n</section>\n");
        return;
    }
    page.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>owner</th><th class=\"n\">attempts</th><th class=\"n\">incidents</th>\
         <th class=\"n\">subjects</th><th class=\"n\">roles</th><th>first</th><th>last</th></tr></thead><tbody>\n",
    );
    for probe in report.probes.iter().take(MAX_INCIDENT_ROWS) {
        let _ = writeln!(
            page,
            "<tr data-attempts=\"{}\"><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            probe.attempts,
            untrusted_html(&probe.owner, CELL_CHARS),
            probe.attempts,
            probe.incidents,
            probe.subjects,
            probe.roles,
            time(probe.first),
            time(probe.last)
        );
    }
    page.push_str("</tbody></table></div>\n");
    if report.probes.len() > MAX_INCIDENT_ROWS {
        let _ = writeln!(
            page,
            "<p class=\"muted\">{} more owners are not listed.</p>",
            report.probes.len() - MAX_INCIDENT_ROWS
        );
    }
    page.push_str("<p class=\"muted\">No policy change is ever suggested for these: they are not your jobs.</p>\n</section>\n");
}

fn findings(page: &mut String, report: &Report) {
    page.push_str("<section id=\"findings\">\n<h2>Findings per role <span class=\"muted\">(the trust policy, whatever the calls)</span></h2>\n");
    let with: Vec<_> = report.roles.iter().filter(|r| !r.findings.is_empty()).collect();
    if with.is_empty() {
        page.push_str("<p>No findings about the trust policies seen.</p>\n</section>\n");
        return;
    }
    for role in with.iter().take(MAX_DIAGNOSIS_DETAILS) {
        let _ = writeln!(
            page,
            "<h3><code>{}</code> <span class=\"muted\">{}</span></h3>\n<div class=\"scroll\"><table><thead><tr>\
             <th>severity</th><th>finding</th><th class=\"n\">statement</th><th>what</th></tr></thead><tbody>",
            untrusted_html(&role.name, CELL_CHARS),
            untrusted_html(role.account.as_deref().unwrap_or(""), CELL_CHARS)
        );
        for finding in role.findings.iter() {
            let severity = finding.severity.as_str();
            let _ = writeln!(
                page,
                "<tr data-finding=\"{}\"><td class=\"sev-{severity}\">{severity}</td><td><code>{}</code></td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                finding.code.as_str(),
                finding.code.as_str(),
                finding.statement,
                untrusted_html(&finding.message, TEXT_CHARS)
            );
        }
        page.push_str("</tbody></table></div>\n");
    }
    if with.len() > MAX_DIAGNOSIS_DETAILS {
        let _ = writeln!(
            page,
            "<p class=\"muted\">{} more roles with findings are not listed.</p>",
            with.len() - MAX_DIAGNOSIS_DETAILS
        );
    }
    page.push_str("</section>\n");
}

fn diagnoses(page: &mut String, report: &Report) {
    page.push_str("<section id=\"diagnoses\">\n<h2>Incident diagnoses <span class=\"muted\">(each failing job once, most attempts first)</span></h2>\n");
    if report.diagnoses.is_empty() {
        page.push_str("<p>No failures.</p>\n</section>\n");
        return;
    }
    for (index, job) in report.diagnoses.iter().take(MAX_DIAGNOSIS_DETAILS).enumerate() {
        let d = &job.diagnosis;
        let role = d.role_name.as_deref().or(d.role_arn.as_deref()).unwrap_or("-");
        let _ = writeln!(
            page,
            "<details id=\"d-{}\" class=\"diagnosis\" data-kind=\"{}\"{}><summary><code>{}</code> on <code>{}</code> \
             <span class=\"muted\">{} in {}</span></summary>\n<dl>",
            job.key,
            job.kind.as_str(),
            if index < 5 { " open" } else { "" },
            html(&cause_label(d)),
            untrusted_html(role, CELL_CHARS),
            count(job.attempts, "attempt", "attempts"),
            count(job.incidents, "incident", "incidents")
        );
        let field = |page: &mut String, name: &str, value_html: String| {
            let _ = writeln!(page, "<dt>{name}</dt><dd>{value_html}</dd>");
        };
        let code = |value: Option<&str>, max: usize| {
            format!("<code>{}</code>", untrusted_html(value.unwrap_or("-"), max))
        };
        field(page, "kind", job.kind.as_str().to_owned());
        field(page, "role", code(d.role_arn.as_deref(), TEXT_CHARS));
        field(page, "subject", code(d.subject.as_deref(), TEXT_CHARS));
        let owner = d.owner.as_ref().map(ToString::to_string);
        field(
            page,
            "owner",
            format!("{} · {}", code(owner.as_deref(), CELL_CHARS), d.trust.as_str()),
        );
        field(
            page,
            "where",
            format!(
                "{} {}",
                untrusted_html(d.account_id.as_deref().unwrap_or("-"), CELL_CHARS),
                untrusted_html(d.region.as_deref().unwrap_or("-"), CELL_CHARS)
            ),
        );
        field(
            page,
            "first event",
            format!(
                "{} · {}",
                code(d.event_id.as_deref(), CELL_CHARS),
                untrusted_html(d.event_time.as_deref().unwrap_or("-"), CELL_CHARS)
            ),
        );
        field(page, "confidence", d.confidence.as_str().to_owned());
        field(page, "why", untrusted_html(&d.explanation, TEXT_CHARS));
        if let Some(fix) = &d.fix {
            field(page, "fix", untrusted_html(fix, TEXT_CHARS));
        }
        page.push_str("</dl>\n");
        if !d.failed_conditions.is_empty() {
            page.push_str(
                "<div class=\"scroll\"><table><thead><tr><th class=\"n\">statement</th><th>condition</th>\
                 <th>expected</th><th>actual</th></tr></thead><tbody>\n",
            );
            for failed in d.failed_conditions.iter().take(10) {
                let expected: Vec<String> = failed
                    .expected
                    .iter()
                    .map(|e| format!("<code>{}</code>", untrusted_html(e, CELL_CHARS)))
                    .collect();
                let actual = match &failed.actual {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "(missing)".to_owned(),
                    other => other.to_string(),
                };
                let _ = writeln!(
                    page,
                    "<tr><td class=\"n\">{}</td><td><code>{} {}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                    failed.statement,
                    untrusted_html(&failed.operator, CELL_CHARS),
                    untrusted_html(&failed.key, CELL_CHARS),
                    expected.join(" "),
                    untrusted_html(&actual, CELL_CHARS)
                );
            }
            page.push_str("</tbody></table></div>\n");
        }
        match &d.suggested_change {
            Some(change) => {
                let _ = writeln!(
                    page,
                    "<p class=\"change\"><strong>Verified change:</strong> {}</p>\n\
                     <details><summary>The trust policy after the change</summary><pre>{}</pre></details>",
                    html(&escape_controls(&change_summary(change))),
                    html(&policy_text(&change.policy))
                );
            }
            None => page.push_str(
                "<p class=\"muted\">No verified trust-policy change: the fix above says why.</p>\n",
            ),
        }
        page.push_str("</details>\n");
    }
    if report.diagnoses.len() > MAX_DIAGNOSIS_DETAILS {
        let _ = writeln!(
            page,
            "<p class=\"muted\">{} more failing jobs are in the incidents table; their diagnoses are in the JSON output.</p>",
            report.diagnoses.len() - MAX_DIAGNOSIS_DETAILS
        );
    }
    page.push_str("</section>\n");
}
