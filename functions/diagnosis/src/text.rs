//! Untrusted text in human-readable messages: quoted, escaped, bounded.

/// Longest run of untrusted characters a message repeats.
pub const MAX_QUOTED_CHARS: usize = 200;

/// `"value"` with control and invisible characters escaped (see [`needs_escape`]) and the
/// middle cut past [`MAX_QUOTED_CHARS`], so a hostile subject can neither forge lines, hide
/// or reorder text, nor flood a message.
pub fn quote(value: &str) -> String {
    if value.len() <= MAX_QUOTED_CHARS && !value_needs_quoting(value) {
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
        c if needs_escape(c) => push_escaped(out, c),
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

/// Whether [`quote`] changes anything but the surrounding quotes (length aside).
fn value_needs_quoting(value: &str) -> bool {
    // ASCII (nearly all of it) is decided byte by byte; from the first other byte on,
    // character by character.
    for (i, b) in value.bytes().enumerate() {
        if b >= 0x80 {
            return value[i..]
                .chars()
                .any(|c| c == '"' || c == '\\' || needs_escape(c));
        }
        if !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\' {
            return true;
        }
    }
    false
}

/// Untrusted text inside a command or path, where quotes would be wrong: escaped and
/// bounded like [`quote`], without the quotes.
pub fn clean(value: &str) -> String {
    let quoted = quote(value);
    quoted[1..quoted.len() - 1].to_owned()
}

/// Longest explanation or fix a diagnosis carries.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The last guard on a finished message: no raw control or invisible characters, bounded
/// length.
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

/// `value` with control and invisible characters ([`needs_escape`]) escaped as `\u{…}`,
/// for printing to a terminal, a chat or an email, where a hostile subject could otherwise
/// move the cursor, forge output, or hide and reorder text.
pub fn escape_controls(value: &str) -> std::borrow::Cow<'_, str> {
    let printable_ascii = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable_ascii || !value.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `\u{…}`: at least four lower-case hex digits.
fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
}

/// Whether untrusted text must not carry `c` raw: a control character (category `Cc`) or
/// an [invisible](is_invisible) one. Everything that leaves the system escapes these.
#[inline]
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// Characters that render as nothing, break lines or reorder text, controls (`Cc`) aside:
/// - general categories `Cf` (format: bidi controls, zero-width spaces and joiners, the
///   soft hyphen, the Arabic letter mark, the Mongolian vowel separator, …), `Zl` (U+2028)
///   and `Zp` (U+2029), from the Unicode tables of `unicode-properties`;
/// - the whole tag block U+E0000–U+E007F (unassigned code points included), which can
///   smuggle invisible ASCII;
/// - the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0: letters (`Lo`) that show
///   nothing;
/// - U+2065, unassigned amid the invisible operators and bidi isolates U+2060–U+2069.
pub fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    // Fast rejects, before the table's binary search, for the scripts most names use:
    // ASCII and Latin-1 up to the soft hyphen; Latin, Greek, Cyrillic, Armenian and
    // Hebrew (U+00AE–U+05FF); CJK, kana and Hangul syllables (U+3165–U+FEFE). None holds
    // a `Cf`, `Zl` or `Zp` character; tests/invisible_text.rs checks every code point
    // against the table, so a Unicode update that broke this would fail there.
    let code = c as u32;
    if code < 0xAD || (0xAE..0x600).contains(&code) || (0x3165..0xFEFF).contains(&code) {
        return false;
    }
    match c {
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2065}' | '\u{E0000}'..='\u{E007F}' => true,
        c => matches!(
            c.general_category(),
            GeneralCategory::Format | GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
        ),
    }
}

/// `value` with control characters escaped and the middle cut past `max` characters
/// (head and tail kept: the tail of a subject is often the part that differs), for logs
/// and for renderers that escape for their own markup afterwards.
pub fn bound(value: &str, max: usize) -> String {
    let value = escape_controls(value);
    let count = value.chars().count();
    if count <= max {
        return value.into_owned();
    }
    let tail = (max / 10).min(20);
    let head = max.saturating_sub(tail + 1);
    let mut out: String = value.chars().take(head).collect();
    out.push('…');
    out.extend(value.chars().skip(count - tail));
    out
}

/// `value` as JSON with every [`needs_escape`] character written as a `\uXXXX` escape
/// (serde_json escapes only U+0000–U+001F): lossless, since any JSON reader gets the
/// original text back, yet the serialised text carries no raw control or invisible
/// character. For machine-readable text that leaves the system, such as the diagnosis an
/// alert carries.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(256);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        EscapeInvisible,
    ))?;
    // serde_json writes UTF-8; a lossy conversion keeps that from ever being a panic.
    Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// serde_json's compact output, plus `\uXXXX` for [`needs_escape`] characters.
struct EscapeInvisible;

impl serde_json::ser::Formatter for EscapeInvisible {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json has escaped `"`, `\\` and U+0000–U+001F already; DEL is the only other
        // ASCII character left to escape.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let digit = |shift: u16| HEX[usize::from((unit >> shift) & 0xf)];
                    writer.write_all(&[b'\\', b'u', digit(12), digit(8), digit(4), digit(0)])?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
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

    #[test]
    fn escapes_every_kind_of_invisible() {
        for (c, escaped) in [
            ('\u{00AD}', "\\u{00ad}"),
            ('\u{061C}', "\\u{061c}"),
            ('\u{180E}', "\\u{180e}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{3164}', "\\u{3164}"),
            ('\u{115F}', "\\u{115f}"),
            ('\u{FFA0}', "\\u{ffa0}"),
            ('\u{FEFF}', "\\u{feff}"),
            ('\u{0085}', "\\u{0085}"),
            ('\u{E0041}', "\\u{e0041}"),
            ('\u{E0000}', "\\u{e0000}"),
            ('\u{1D173}', "\\u{1d173}"),
        ] {
            let text = format!("a{c}b");
            let want = format!("a{escaped}b");
            assert_eq!(escape_controls(&text), want.as_str(), "U+{:04X}", c as u32);
            assert_eq!(quote(&text), format!("\"{want}\""), "U+{:04X}", c as u32);
            assert_eq!(clean(&text), want, "U+{:04X}", c as u32);
            assert_eq!(finish_message(text.clone()), want, "U+{:04X}", c as u32);
        }
        let json = to_json(&serde_json::json!({"s": "a\u{2028}b\u{E0041}\u{7f}\n\"é"})).unwrap();
        assert_eq!(json, r#"{"s":"a\u2028b\udb40\udc41\u007f\n\"é"}"#);
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["s"], "a\u{2028}b\u{E0041}\u{7f}\n\"é");
        for visible in ["café", "日本語", "Ünïcödé-ß", "🦀", "a\u{00A0}b", "é"] {
            assert_eq!(escape_controls(visible), visible);
            assert_eq!(quote(visible), format!("\"{visible}\""));
        }
    }
}
