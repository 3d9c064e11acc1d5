//! Block Kit: the message builder, Slack's documented limits, and the check of a finished
//! payload against them.

use serde_json::{json, Value};

use crate::escape::fit;

/// Slack's documented Block Kit limits, and the bounds we choose below them.
pub mod limits {
    /// Blocks per message.
    pub const MAX_BLOCKS: usize = 50;
    /// A section's `text`.
    pub const MAX_SECTION_TEXT: usize = 3000;
    /// Fields per section.
    pub const MAX_FIELDS: usize = 10;
    /// One section field's text.
    pub const MAX_FIELD_TEXT: usize = 2000;
    /// A header's `plain_text`.
    pub const MAX_HEADER_TEXT: usize = 150;
    /// Elements per context block.
    pub const MAX_CONTEXT_ELEMENTS: usize = 10;
    /// One context element's text (text objects allow 3000; we keep context short).
    pub const MAX_CONTEXT_TEXT: usize = 2000;
    /// The top-level `text`. Slack truncates past 40,000 characters and advises under
    /// 4,000; as a notification preview it should be far shorter.
    pub const MAX_FALLBACK_TEXT: usize = 3000;
    /// `block_id`.
    pub const MAX_BLOCK_ID: usize = 255;
    /// Expected values listed per failed condition.
    pub const MAX_EXPECTED_VALUES: usize = 5;
    /// Failed conditions, findings and top entries shown.
    pub const MAX_CONDITIONS: usize = 3;
    pub const MAX_FINDINGS: usize = 3;
    pub const MAX_TOP: usize = 5;
    /// Prose that may quote untrusted values (explanation, fix, alarm reason): the
    /// producer bounds the values it quotes; this bounds a forged message.
    pub const MAX_PROSE_CHARS: usize = 1500;
    pub const MAX_FINDING_CHARS: usize = 500;
    /// Notes of the alert path shown (each bounded like a finding).
    pub const MAX_NOTES: usize = 3;
}

use limits::*;

pub(super) struct Blocks(pub(super) Vec<Value>);

impl Blocks {
    pub(super) fn new() -> Self {
        Blocks(Vec::new())
    }

    /// `text` is escaped already.
    pub(super) fn header(&mut self, text: &str) {
        self.0.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": fit(text, MAX_HEADER_TEXT), "emoji": true}
        }));
    }

    pub(super) fn section(&mut self, text: &str) {
        if !text.trim().is_empty() {
            self.0.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": fit(text, MAX_SECTION_TEXT)}
            }));
        }
    }

    pub(super) fn fields(&mut self, fields: &[String]) {
        let fields: Vec<Value> = fields
            .iter()
            .filter(|f| !f.trim().is_empty())
            .take(MAX_FIELDS)
            .map(|f| json!({"type": "mrkdwn", "text": fit(f, MAX_FIELD_TEXT)}))
            .collect();
        if !fields.is_empty() {
            self.0.push(json!({"type": "section", "fields": fields}));
        }
    }

    pub(super) fn context(&mut self, elements: &[String]) {
        let elements: Vec<Value> = elements
            .iter()
            .filter(|e| !e.trim().is_empty())
            .take(MAX_CONTEXT_ELEMENTS)
            .map(|e| json!({"type": "mrkdwn", "text": fit(e, MAX_CONTEXT_TEXT)}))
            .collect();
        if !elements.is_empty() {
            self.0.push(json!({"type": "context", "elements": elements}));
        }
    }

    pub(super) fn finish(mut self) -> Vec<Value> {
        if self.0.len() > MAX_BLOCKS {
            let dropped = self.0.len() - (MAX_BLOCKS - 1);
            self.0.truncate(MAX_BLOCKS - 1);
            self.context(&[format!("… {dropped} more blocks left out")]);
        }
        self.0
    }
}

pub(super) fn text_of(object: &Value) -> Option<&str> {
    object.get("text").and_then(Value::as_str)
}

pub(super) fn check_text(path: &str, object: &Value, max: usize, problems: &mut Vec<String>) {
    match text_of(object) {
        None => problems.push(format!("{path}: no text")),
        Some(t) if t.trim().is_empty() => problems.push(format!("{path}: empty text")),
        Some(t) if t.chars().count() > max => {
            problems.push(format!("{path}: {} characters > {max}", t.chars().count()))
        }
        _ => {}
    }
}

/// Every way `payload` breaks Slack's documented Block Kit limits (empty when it does not).
pub fn limit_violations(payload: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match payload.get("text").and_then(Value::as_str) {
        None => problems.push("text: missing (the fallback is required)".to_owned()),
        Some(t) if t.chars().count() > MAX_FALLBACK_TEXT => problems.push(format!(
            "text: {} characters > {MAX_FALLBACK_TEXT}",
            t.chars().count()
        )),
        _ => {}
    }
    let blocks = payload
        .get("blocks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if blocks.len() > MAX_BLOCKS {
        problems.push(format!("{} blocks > {MAX_BLOCKS}", blocks.len()));
    }
    for (i, block) in blocks.iter().enumerate() {
        let path = format!("blocks[{i}]");
        if let Some(id) = block.get("block_id").and_then(Value::as_str) {
            if id.chars().count() > MAX_BLOCK_ID {
                problems.push(format!("{path}.block_id too long"));
            }
        }
        match block.get("type").and_then(Value::as_str) {
            Some("header") => {
                let text = &block["text"];
                if text.get("type").and_then(Value::as_str) != Some("plain_text") {
                    problems.push(format!("{path}: header text must be plain_text"));
                }
                check_text(&format!("{path}.text"), text, MAX_HEADER_TEXT, &mut problems);
            }
            Some("section") => {
                let text = block.get("text");
                let fields = block.get("fields").and_then(Value::as_array);
                if text.is_none() && fields.is_none() {
                    problems.push(format!("{path}: section without text or fields"));
                }
                if let Some(text) = text {
                    check_text(&format!("{path}.text"), text, MAX_SECTION_TEXT, &mut problems);
                }
                if let Some(fields) = fields {
                    if fields.is_empty() || fields.len() > MAX_FIELDS {
                        problems.push(format!("{path}: {} fields", fields.len()));
                    }
                    for (j, f) in fields.iter().enumerate() {
                        check_text(&format!("{path}.fields[{j}]"), f, MAX_FIELD_TEXT, &mut problems);
                    }
                }
            }
            Some("context") => {
                let elements = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if elements.is_empty() || elements.len() > MAX_CONTEXT_ELEMENTS {
                    problems.push(format!("{path}: {} context elements", elements.len()));
                }
                for (j, e) in elements.iter().enumerate() {
                    check_text(
                        &format!("{path}.elements[{j}]"),
                        e,
                        MAX_CONTEXT_TEXT,
                        &mut problems,
                    );
                }
            }
            Some("divider") => {}
            other => problems.push(format!("{path}: unexpected block type {other:?}")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_blocks_are_cut_with_a_note() {
        let mut blocks = Blocks::new();
        for i in 0..80 {
            blocks.section(&format!("s{i}"));
        }
        let blocks = blocks.finish();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert!(blocks[MAX_BLOCKS - 1].to_string().contains("31 more blocks"));
        let payload = json!({"text": "t", "blocks": blocks});
        assert!(
            limit_violations(&payload).is_empty(),
            "{:?}",
            limit_violations(&payload)
        );
    }
}
