//! Untrusted text in human-readable messages: quoted, escaped, bounded.

/// Longest run of untrusted characters a message repeats.
pub const MAX_QUOTED_CHARS: usize = 200;

/// `"value"` with control characters escaped and the middle cut past
/// [`MAX_QUOTED_CHARS`], so a hostile subject can neither forge lines nor flood a message.
pub fn quote(value: &str) -> String {
    if value.len() <= MAX_QUOTED_CHARS
        && !value
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control() || is_invisible(c))
    {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('"');
        out.push_str(value);
        out.push('"');
        return out;
    }
    let mut out = String::with_capacity(value.len().min(MAX_QUOTED_CHARS) + 2);
    out.push('"');
    let count = value.chars().count();
    let (head, tail) = if count > MAX_QUOTED_CHARS {
        (MAX_QUOTED_CHARS - 20, 20)
    } else {
        (count, 0)
    };
    let push = |out: &mut String, c: char| match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if c.is_control() || is_invisible(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    };
    for c in value.chars().take(head) {
        push(&mut out, c);
    }
    if tail > 0 {
        out.push('…');
        for c in value.chars().skip(count - tail) {
            push(&mut out, c);
        }
    }
    out.push('"');
    out
}

/// Untrusted text inside a command or path, where quotes would be wrong: escaped and
/// bounded like [`quote`], without the quotes.
pub fn clean(value: &str) -> String {
    let quoted = quote(value);
    quoted[1..quoted.len() - 1].to_owned()
}

/// Longest explanation or fix a diagnosis carries.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The last guard on a finished message: no raw control characters, bounded length.
pub fn finish_message(message: String) -> String {
    let escaped = match escape_controls(&message) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(escaped) => escaped,
    };
    if escaped.len() <= MAX_MESSAGE_CHARS {
        return escaped;
    }
    match escaped.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

/// `value` with control and invisible characters escaped, for printing to a terminal,
/// where a hostile subject could otherwise move the cursor or forge output.
pub fn escape_controls(value: &str) -> std::borrow::Cow<'_, str> {
    let printable_ascii = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable_ascii || !value.chars().any(|c| c.is_control() || is_invisible(c)) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() || is_invisible(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Characters that render as nothing or reorder text.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bounds() {
        assert_eq!(quote("repo:a/b"), "\"repo:a/b\"");
        assert_eq!(quote("x \n\u{1b}[31m"), "\"x \\u{000a}\\u{001b}[31m\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote("trailing\u{200B}"), "\"trailing\\u{200b}\"");
        let long = "x".repeat(5000);
        assert_eq!(quote(&long).chars().count(), MAX_QUOTED_CHARS + 3);
        assert_eq!(escape_controls("ok"), "ok");
        assert_eq!(escape_controls("a\u{1b}]0;x\u{7}"), "a\\u{001b}]0;x\\u{0007}");
    }
}
