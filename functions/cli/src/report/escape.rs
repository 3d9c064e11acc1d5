//! Untrusted text in the report's markup. Subjects, repositories, owners and role names
//! are strangers' choices, and explanations and fixes quote them: each is first bounded
//! with its control and invisible characters escaped ([`diagnosis::text::bound`]), then
//! escaped for HTML or Markdown, so no input can open a tag, an attribute, a link, a code
//! span or a table cell.

use diagnosis::text::bound;

/// Longest stranger-chosen value in a table cell or a chart label.
pub const CELL_CHARS: usize = 120;
/// Longest explanation or fix written out (the diagnosis bounds them at 4000 already).
pub const TEXT_CHARS: usize = 4000;

/// `value` for HTML text or a quoted attribute value.
pub fn html(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A stranger's `value`, bounded to `max` characters, for HTML.
pub fn untrusted_html(value: &str, max: usize) -> String {
    html(&bound(value, max))
}

/// A stranger's `value`, bounded to `max` characters, for GitHub-flavoured Markdown text
/// and table cells: Markdown's punctuation backslash-escaped (`|` included, which ends a
/// cell even inside a code span), and `<`, `>`, `&` as entities so nothing reads as HTML.
pub fn untrusted_markdown(value: &str, max: usize) -> String {
    let value = bound(value, max);
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '|' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '~' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn untrusted_text_loses_its_controls_and_length() {
        let hostile = format!("repo:evil/x\u{202e}\n<b>{}", "a".repeat(500));
        let cell = untrusted_html(&hostile, CELL_CHARS);
        assert!(
            cell.starts_with("repo:evil/x\\u{202e}\\u{000a}&lt;b&gt;"),
            "{cell}"
        );
        assert!(cell.chars().count() < CELL_CHARS + 10, "{cell}");
        assert!(!cell.chars().any(|c| c.is_control() || c == '\u{202e}'));
    }

    #[test]
    fn markdown_cells_cannot_be_split_or_formatted() {
        let md = untrusted_markdown("# a|b `c` *d* [e](javascript:x) <img src=x>", CELL_CHARS);
        assert_eq!(md, r"\# a\|b \`c\` \*d\* \[e\]\(javascript:x\) &lt;img src=x&gt;");
    }
}
