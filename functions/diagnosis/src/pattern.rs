//! IAM string wildcards: `*` matches any run of characters (including `/` and `:`),
//! `?` exactly one character. Matching works on Unicode scalar values.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Literal(char),
    AnyRun,
    AnyOne,
}

/// Tokens of a `StringLike` value with no policy variables in it.
pub fn tokenize(pattern: &str) -> Vec<Token> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            c => Token::Literal(c),
        })
        .collect()
}

pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// `StringLike` semantics on a plain pattern string.
pub fn like(pattern: &str, text: &str) -> bool {
    if !has_wildcard(pattern) {
        return pattern == text;
    }
    matches_tokens(&tokenize(pattern), text, false).is_some()
}

/// Case-insensitive `StringLike`, used only to explain a mismatch (IAM has no such operator).
pub fn like_ignore_case(pattern: &str, text: &str) -> bool {
    matches_tokens(&tokenize(pattern), text, true).is_some()
}

/// Matches `tokens` against `text`. On success returns, for every token, the text it
/// consumed, so a caller can rebuild a pattern with the text's exact letters.
pub fn matches_tokens(tokens: &[Token], text: &str, ignore_case: bool) -> Option<Vec<(usize, usize)>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |(b, _)| *b);
    let eq = |a: char, b: char| {
        if ignore_case {
            a == b || a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };

    // Greedy matching with backtracking to the most recent `*` (linear in practice,
    // O(n*m) at worst): each `*` first takes nothing and grows one character per retry.
    let mut spans = vec![(0usize, 0usize); tokens.len()];
    let (mut t, mut c) = (0usize, 0usize);
    let mut last_star: Option<(usize, usize)> = None;
    while c < chars.len() {
        match tokens.get(t) {
            Some(Token::Literal(l)) if eq(*l, chars[c].1) => {
                spans[t] = (c, c + 1);
                t += 1;
                c += 1;
            }
            Some(Token::AnyOne) => {
                spans[t] = (c, c + 1);
                t += 1;
                c += 1;
            }
            Some(Token::AnyRun) => {
                spans[t] = (c, c);
                last_star = Some((t, c));
                t += 1;
            }
            _ => match last_star {
                Some((star_t, star_c)) => {
                    last_star = Some((star_t, star_c + 1));
                    spans[star_t] = (star_c, star_c + 1);
                    t = star_t + 1;
                    c = star_c + 1;
                }
                None => return None,
            },
        }
    }
    while let Some(Token::AnyRun) = tokens.get(t) {
        spans[t] = (c, c);
        t += 1;
    }
    if t != tokens.len() {
        return None;
    }
    Some(spans.into_iter().map(|(a, b)| (byte_at(a), byte_at(b))).collect())
}

/// Rewrites `pattern` so its literal letters carry the case they have in `text`, keeping the
/// wildcards: `repo:acme/*` against `repo:Acme/web` gives `repo:Acme/*`.
pub fn with_case_of(pattern: &str, text: &str) -> Option<String> {
    let tokens = tokenize(pattern);
    let spans = matches_tokens(&tokens, text, true)?;
    let mut out = String::with_capacity(pattern.len());
    for (token, (start, end)) in tokens.iter().zip(spans) {
        match token {
            Token::Literal(_) => out.push_str(&text[start..end]),
            Token::AnyRun => out.push('*'),
            Token::AnyOne => out.push('?'),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_crosses_slash_and_colon() {
        assert!(like("repo:acme/*", "repo:acme/web:ref:refs/heads/main"));
        assert!(like("repo:acme/web:*", "repo:acme/web:pull_request"));
        assert!(!like("repo:acme/web:*", "repo:acme/web"));
        assert!(like("*", ""));
        assert!(like("**", "abc"));
    }

    #[test]
    fn question_mark_is_exactly_one_character() {
        assert!(like("v?", "v1"));
        assert!(!like("v?", "v"));
        assert!(!like("v?", "v10"));
        assert!(like("caf?", "café"));
    }

    #[test]
    fn no_wildcard_is_exact_and_case_sensitive() {
        assert!(like("repo:a/b", "repo:a/b"));
        assert!(!like("repo:A/b", "repo:a/b"));
        assert!(!like("", "x"));
        assert!(like("", ""));
    }

    #[test]
    fn backtracks_over_several_stars() {
        assert!(like("a*b*c", "axxbyyc"));
        assert!(like("a*b*c", "abbbc"));
        assert!(!like("a*b*c", "axxbyy"));
        assert!(like("*:ref:refs/heads/*", "repo:o/r:ref:refs/heads/feat:x"));
    }

    #[test]
    fn case_rewrite_keeps_wildcards() {
        assert_eq!(
            with_case_of(
                "repo:acme-labs/data-pipeline:*",
                "repo:Acme-Labs/Data-Pipeline:ref:refs/heads/main"
            ),
            Some("repo:Acme-Labs/Data-Pipeline:*".to_string())
        );
        assert_eq!(with_case_of("x", "y"), None);
    }
}
