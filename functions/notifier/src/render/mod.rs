//! Notices to Slack Block Kit, with a plain `text` fallback for notifications and clients
//! that show no blocks. Pure: the same notice always renders the same JSON (the golden
//! tests pin it).
//!
//! Every untrusted string goes through [`crate::escape`]; our own words do not need to.
//! Every text object is cut to its Slack limit by [`fit`] (see [`limits`]), and
//! [`limit_violations`] checks a finished payload against those limits.
//!
//! - [`blocks`]: the Block Kit builder, Slack's limits and the check against them;
//! - [`incident`]: incidents, probes and outside successes;
//! - [`spike`]: spikes and their recoveries;
//! - [`change`]: the trust-change alert, and the change notes of the others;
//! - [`digest`]: oidc-auditor's digest of new and resolved audit findings;
//! - [`alarm`]: CloudWatch alarm state changes.
//!
//! The words every channel shares (durations, times, who ran the job) are in
//! [`crate::words`].

mod alarm;
mod blocks;
mod change;
mod digest;
mod incident;
mod spike;

pub use alarm::render_alarm;
pub use blocks::{limit_violations, limits};
pub use incident::render_alert;

use crate::words::*;
use blocks::{limits::*, Blocks};
use change::{change_notes, render_trust_change};
use digest::render_digest;
use spike::render_spike;

use diagnosis::alert::{dominant_role, Alert, AlertKind, Severity};
use diagnosis::change::ChangeNote;
use diagnosis::{Cause, Diagnosis};
use serde_json::{json, Value};

use crate::escape::{code, code_block, fit, mrkdwn, mrkdwn_lines, value};
use crate::links;
use crate::notice::{route_owner, AlarmNotice, Notice};
use crate::ports::Breakdown;
use crate::snippet::{trust_policy_snippet, Snippet};

/// A rendered message: fallback text and blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl Rendered {
    /// The message body for a webhook or `chat.postMessage` (channel and thread are the
    /// delivery's business). Links never unfurl: a hostile URL gets no preview.
    pub fn payload(&self) -> Value {
        json!({
            "text": self.text,
            "blocks": self.blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        })
    }
}

/// The same message with its blocks dropped: what is sent when Slack rejects the blocks.
pub fn text_only(payload: &Value) -> Value {
    let mut payload = payload.clone();
    if let Some(object) = payload.as_object_mut() {
        object.remove("blocks");
    }
    payload
}

pub fn render(notice: &Notice, breakdown: Option<&Breakdown>) -> Rendered {
    match notice {
        Notice::Alert { alert, .. } => render_alert(alert),
        Notice::Alarm(alarm) => render_alarm(alarm, breakdown),
    }
}

fn emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":large_blue_circle:",
    }
}

fn upper(severity: Severity) -> String {
    severity.as_str().to_uppercase()
}

/// Prose from the producer, escaped and cut to `max` characters.
fn prose(text: &str, max: usize) -> String {
    fit(&mrkdwn(text), max)
}

fn field(label: &str, content: String) -> String {
    format!("*{label}*\n{content}")
}

fn footer(kind: &str, thread: &str, event: Option<&str>) -> String {
    let event = event.map_or(String::new(), |e| format!(" · event {}", code(e)));
    format!("oidc-watch {kind} · thread {}{event}", code(thread))
}

/// The alert path's own notes (rate limits), as a context block.
fn notes(alert: &Alert) -> Vec<String> {
    alert
        .notes
        .iter()
        .take(MAX_NOTES)
        .map(|n| format!(":information_source: {}", prose(n, MAX_FINDING_CHARS)))
        .collect()
}
