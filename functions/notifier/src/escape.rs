//! Untrusted text in Slack `mrkdwn`: escaped, defused and bounded.
//!
//! Subjects, repository and branch names, role ARNs and everything a diagnosis quotes from
//! them come from strangers (docs/design.md, "Untrusted input"). Before any of it reaches a
//! Slack text object it goes through [`mrkdwn`], which
//! - escapes `&`, `<` and `>` as Slack asks, so no `<!channel>`, `<!here>`, `<@U…>`,
//!   `<#C…>` or `<url|text>` link can be formed;
//! - puts a zero-width joiner after an `@` that could start a mention (`@here`,
//!   `@channel`, `@everyone`, `@someone`), leaving addresses like `acme@4711` alone;
//! - replaces backticks with a lookalike, so a value cannot close a code span or block;
//! - escapes control and invisible characters as `\u{…}` (every character of categories
//!   `Cc`, `Cf`, `Zl` and `Zp`, the tag block and the Hangul fillers: see
//!   [`diagnosis::text::needs_escape`]), so nothing reorders, hides or breaks text. The
//!   only such character a message carries raw is our own [`MENTION_BREAK`] after an `@`
//!   (and the line breaks of our own multi-line text, [`mrkdwn_lines`]).
//!
//! [`bound`] cuts values to [`MAX_VALUE_CHARS`]; [`fit`] cuts finished text to a Slack
//! limit without splitting an entity (`&amp;`) or one of our own `<url|label>` links.

use diagnosis::text::escape_controls;

/// Longest untrusted value a message repeats, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

/// After an `@`, stops Slack from reading a mention.
pub const MENTION_BREAK: char = '\u{200D}';

/// Stands in for a backtick in untrusted text (MODIFIER LETTER GRAVE ACCENT).
pub const BACKTICK_LOOKALIKE: char = '\u{02CB}';

/// What a cut leaves behind.
pub const ELLIPSIS: char = '…';

/// Escapes `text` for a `mrkdwn` (or header) text object. See the module docs.
pub fn mrkdwn(text: &str) -> String {
    let text = escape_controls(text);
    let mut out = String::with_capacity(text.len() + 8);
    let mut previous: Option<char> = None;
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push(BACKTICK_LOOKALIKE),
            '@' => {
                out.push('@');
                if !previous.is_some_and(|p| p.is_alphanumeric()) {
                    out.push(MENTION_BREAK);
                }
            }
            c => out.push(c),
        }
        previous = Some(c);
    }
    out
}

/// [`mrkdwn`] line by line: the line breaks stay (for our own multi-line text, such as a
/// pretty-printed snippet whose values are escaped already).
pub fn mrkdwn_lines(text: &str) -> String {
    text.split('\n').map(mrkdwn).collect::<Vec<_>>().join("\n")
}

/// `value` with control characters escaped and the middle cut past [`MAX_VALUE_CHARS`]
/// (head and tail kept: the tail of a subject is often the part that differs).
/// Not yet escaped for Slack: pass the result through [`mrkdwn`] or into JSON.
pub fn bound(value: &str) -> String {
    bound_to(value, MAX_VALUE_CHARS)
}

/// [`bound`] with another limit.
pub fn bound_to(value: &str, max: usize) -> String {
    diagnosis::text::bound(value, max)
}

/// An untrusted value, bounded and escaped.
pub fn value(text: &str) -> String {
    mrkdwn(&bound(text))
}

/// An untrusted value as inline code: bounded, escaped, in backticks (so `*`, `_` and `~`
/// in it format nothing).
pub fn code(text: &str) -> String {
    if text.is_empty() {
        return "-".to_owned();
    }
    format!("`{}`", value(text))
}

/// Escaped text cut to at most `max` characters, ending in `…` when cut. Never splits an
/// entity (`&amp;`, `&lt;`, `&gt;`), an `@` from its joiner, or a `<url|label>` link.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut limit = max - 1;
    loop {
        let mut kept: String = text.chars().take(limit).collect();
        // An entity or link that started but did not finish before the cut goes entirely.
        if let Some(amp) = kept.rfind('&') {
            if !kept[amp..].contains(';') {
                kept.truncate(amp);
            }
        }
        if let Some(open) = kept.rfind('<') {
            if !kept[open..].contains('>') {
                kept.truncate(open);
            }
        }
        if kept.ends_with('@') {
            kept.pop();
        }
        // An unbalanced inline code span would swallow the ellipsis: close it.
        if kept.matches('`').count() % 2 == 1 && !kept.contains("```") {
            if kept.chars().count() + 1 > max - 1 && limit > 0 {
                limit -= 1;
                continue;
            }
            kept.push('`');
        }
        kept.push(ELLIPSIS);
        return kept;
    }
}

/// A code block of `content` (already escaped), fenced, within `max` characters.
pub fn code_block(content: &str, max: usize) -> String {
    const FENCES: usize = 8; // "```\n" … "\n```"
    let body = fit(content, max.saturating_sub(FENCES));
    format!("```\n{body}\n```")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_slack_parses() {
        assert_eq!(mrkdwn("a & b <c> `d`"), "a &amp; b &lt;c&gt; \u{02CB}d\u{02CB}");
        assert_eq!(mrkdwn("<!here>"), "&lt;!here&gt;");
        assert_eq!(mrkdwn("@here hi"), "@\u{200D}here hi");
        assert_eq!(mrkdwn("x (@channel)"), "x (@\u{200D}channel)");
        assert_eq!(mrkdwn("repo:acme@4711/infra@80808"), "repo:acme@4711/infra@80808");
        assert_eq!(mrkdwn("a\u{202E}b\n"), "a\\u{202e}b\\u{000a}");
    }

    #[test]
    fn bounds_keep_head_and_tail() {
        let long = format!("{}END", "x".repeat(1000));
        let cut = bound(&long);
        assert_eq!(cut.chars().count(), MAX_VALUE_CHARS);
        assert!(cut.ends_with("END") && cut.contains(ELLIPSIS));
        assert_eq!(bound("short"), "short");
    }

    #[test]
    fn fit_never_splits_entities_or_links() {
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("ab&amp;cd", 5), "ab…");
        assert_eq!(fit("see <https://x.example/a|link> now", 12), "see …");
        assert_eq!(fit("`abcdef`", 5), "`ab`…");
        let text = "&lt;".repeat(1000);
        let cut = fit(&text, 3000);
        assert!(cut.chars().count() <= 3000 && cut.ends_with("&lt;…"));
        assert_eq!(code_block("a<b", 100), "```\na<b\n```");
    }
}
