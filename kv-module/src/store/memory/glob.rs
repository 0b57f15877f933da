//! [`glob_match`]: Redis's glob matcher (`stringmatchlen`), without its
//! recursion.
//!
//! Redis matches `KEYS` / `SCAN MATCH` patterns with a recursive function
//! that tries every position for every `*`. This is the same language run
//! as the classic iterative matcher: on a mismatch only the most recent `*`
//! is retried one byte further on, so the cost is O(pattern × text) at
//! worst and there is no recursion to blow the stack.

/// Redis refuses to go deeper than this many `*` groups (its "protection
/// against abusive patterns", `nesting > 1000` in `stringmatchlen_impl`):
/// a pattern whose 1001st `*` group is followed by more pattern matches
/// nothing. Mirrored so that both backends agree even there.
const MAX_STAR_GROUPS: usize = 1000;

/// Whether `text` matches the Redis glob `pattern`, exactly as a Redis
/// server's `SCAN ... MATCH` / `KEYS` decides it.
///
/// * `*` matches any run of bytes, including none; `?` matches one byte.
/// * `[abc]` matches one of the listed bytes, `[^abc]` one byte not
///   listed, `[a-z]` a range (a reversed range `[z-a]` is the same range).
/// * `\x` matches `x` literally, outside and inside brackets.
/// * Malformed patterns behave as in Redis: a `[` without its `]` is a
///   class running to the end of the pattern, a trailing `\` matches a
///   literal `\`, and in `[a-]` the `-` starts a range ending at `]`.
///
/// Matching is on bytes, not `char`s, as in Redis: `?` does not match a
/// multi-byte character such as `é`, and a class lists bytes. Range ends
/// are compared as *signed* bytes, as Redis does where C's `char` is
/// signed (x86-64 builds): this only matters for a range with a non-ASCII
/// end, where `[a-é]` is the range from byte `0xC3` (-61) up to `a`.
///
/// Two corner cases follow the server rather than the textbook: the
/// pattern `*` alone matches everything, even the empty key (`SCAN` and
/// `KEYS` skip the matcher for it), while any other pattern matches the
/// empty text only if it is empty itself (Redis's matcher never enters its
/// loop for an empty text).
///
/// ```
/// use kv_module::store::memory::glob_match;
///
/// assert!(glob_match("user:*", "user:42"));
/// assert!(glob_match("user:[0-9]?", "user:42"));
/// assert!(!glob_match("user:[^4]*", "user:42"));
/// assert!(glob_match(r"a\*b", "a*b"));
/// assert!(!glob_match(r"a\*b", "axb"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    if pattern == b"*" {
        return true;
    }
    if text.is_empty() {
        return pattern.is_empty();
    }

    let (mut p, mut t) = (0, 0);
    // Where to resume after a mismatch: the pattern just past the latest
    // `*` group, and the text position that group's match currently ends at.
    let mut resume: Option<(usize, usize)> = None;
    let mut star_groups = 0;

    while let Some(&byte) = text.get(t) {
        let rest = pattern.get(p..).unwrap_or_default();
        if rest.first() == Some(&b'*') {
            p += rest.iter().take_while(|&&b| b == b'*').count();
            if p == pattern.len() {
                // A final `*` takes whatever text is left.
                return true;
            }
            star_groups += 1;
            if star_groups > MAX_STAR_GROUPS {
                return false;
            }
            resume = Some((p, t));
            continue;
        }
        match match_one(rest, byte) {
            Some(used) => {
                p += used;
                t += 1;
            }
            None => match resume.as_mut() {
                // Let the latest `*` swallow one more byte and retry the
                // rest of the pattern from there. Earlier stars never need
                // retrying: anything they could reach, this one reaches too.
                Some((star_p, star_t)) => {
                    *star_t += 1;
                    p = *star_p;
                    t = *star_t;
                }
                None => return false,
            },
        }
    }
    // The text is used up: only `*`s may be left of the pattern.
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&b| b == b'*')
}

/// Matches the single-byte token at the start of `rest` (anything but `*`)
/// against `byte`; returns how many pattern bytes the token used, or `None`
/// when it does not match (or `rest` is empty).
fn match_one(rest: &[u8], byte: u8) -> Option<usize> {
    let (matched, used) = match rest {
        [] => return None,
        [b'?', ..] => (true, 1),
        [b'[', class @ ..] => {
            let (matched, used) = match_class(class, byte);
            (matched, used + 1)
        }
        [b'\\', escaped, ..] => (*escaped == byte, 2),
        // A lone `\` at the very end is itself a literal.
        [literal, ..] => (*literal == byte, 1),
    };
    matched.then_some(used)
}

/// Matches `byte` against the class whose body starts at `class` (just
/// after the `[`); returns whether it matched and how many bytes of the
/// body, up to and including the closing `]`, the class used.
///
/// The branches are tried in Redis's order: escape, closing `]`, end of
/// pattern (an unclosed class ends there), range, literal.
fn match_class(class: &[u8], byte: u8) -> (bool, usize) {
    let (negated, mut i) = match class.first() {
        Some(b'^') => (true, 1),
        _ => (false, 0),
    };
    let mut matched = false;
    loop {
        match class.get(i..).unwrap_or_default() {
            [b'\\', escaped, ..] => {
                matched |= *escaped == byte;
                i += 2;
            }
            [b']', ..] => {
                i += 1;
                break;
            }
            [] => break,
            [start, b'-', end, ..] => {
                let (start, end) = (signed(*start), signed(*end));
                let (low, high) = if start <= end {
                    (start, end)
                } else {
                    (end, start)
                };
                matched |= (low..=high).contains(&signed(byte));
                i += 3;
            }
            [literal, ..] => {
                matched |= *literal == byte;
                i += 1;
            }
        }
    }
    (matched != negated, i)
}

/// A byte as Redis's range test sees it: a C `char`, signed on x86-64
/// (checked against a real `redis-server`: `[a-é]` does not match `b`
/// there but does match `A`).
fn signed(byte: u8) -> i8 {
    i8::from_ne_bytes([byte])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line-by-line port of Redis's recursive `stringmatchlen_impl`
    /// (case-sensitive), including its reads of the NUL that ends every
    /// Redis string, its `skipLongerMatches` pruning and its nesting limit.
    /// The iterative matcher must agree with it everywhere.
    fn redis_reference(pattern: &[u8], text: &[u8]) -> bool {
        let mut terminated = pattern.to_vec();
        terminated.push(0);
        let mut skip_longer = false;
        reference_impl(
            &terminated,
            0,
            pattern.len(),
            text,
            0,
            text.len(),
            &mut skip_longer,
            0,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn reference_impl(
        pat: &[u8],
        mut p: usize,
        mut plen: usize,
        s: &[u8],
        mut si: usize,
        mut slen: usize,
        skip_longer: &mut bool,
        nesting: u32,
    ) -> bool {
        if nesting > 1000 {
            return false;
        }
        while plen > 0 && slen > 0 {
            match pat[p] {
                b'*' => {
                    while plen > 0 && pat[p + 1] == b'*' {
                        p += 1;
                        plen -= 1;
                    }
                    if plen == 1 {
                        return true;
                    }
                    while slen > 0 {
                        if reference_impl(
                            pat,
                            p + 1,
                            plen - 1,
                            s,
                            si,
                            slen,
                            skip_longer,
                            nesting + 1,
                        ) {
                            return true;
                        }
                        if *skip_longer {
                            return false;
                        }
                        si += 1;
                        slen -= 1;
                    }
                    *skip_longer = true;
                    return false;
                }
                b'?' => {
                    si += 1;
                    slen -= 1;
                }
                b'[' => {
                    p += 1;
                    plen -= 1;
                    let not = pat[p] == b'^';
                    if not {
                        p += 1;
                        plen -= 1;
                    }
                    let mut matched = false;
                    loop {
                        if pat[p] == b'\\' && plen >= 2 {
                            p += 1;
                            plen -= 1;
                            if pat[p] == s[si] {
                                matched = true;
                            }
                        } else if pat[p] == b']' {
                            break;
                        } else if plen == 0 {
                            p -= 1;
                            plen += 1;
                            break;
                        } else if plen >= 3 && pat[p + 1] == b'-' {
                            // `int start = pattern[0]` of a signed `char`.
                            let (mut start, mut end) = (pat[p] as i8, pat[p + 2] as i8);
                            if start > end {
                                std::mem::swap(&mut start, &mut end);
                            }
                            p += 2;
                            plen -= 2;
                            let c = s[si] as i8;
                            if c >= start && c <= end {
                                matched = true;
                            }
                        } else if pat[p] == s[si] {
                            matched = true;
                        }
                        p += 1;
                        plen -= 1;
                    }
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    si += 1;
                    slen -= 1;
                }
                other => {
                    let literal = if other == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        pat[p]
                    } else {
                        other
                    };
                    if literal != s[si] {
                        return false;
                    }
                    si += 1;
                    slen -= 1;
                }
            }
            p += 1;
            plen -= 1;
            if slen == 0 {
                while pat[p] == b'*' {
                    p += 1;
                    plen -= 1;
                }
                break;
            }
        }
        plen == 0 && slen == 0
    }

    /// What `SCAN MATCH` answers: the reference, with the server's
    /// shortcut for the pattern `*`.
    fn scan_matches(pattern: &str, text: &str) -> bool {
        pattern == "*" || redis_reference(pattern.as_bytes(), text.as_bytes())
    }

    fn check(pattern: &str, text: &str, expected: bool) {
        assert_eq!(
            glob_match(pattern, text),
            expected,
            "glob_match({pattern:?}, {text:?})"
        );
        assert_eq!(
            scan_matches(pattern, text),
            expected,
            "reference({pattern:?}, {text:?})"
        );
    }

    #[test]
    fn star_and_question_mark() {
        check("*", "", true);
        check("*", "anything", true);
        check("**", "anything", true);
        check("a*", "a", true);
        check("a*", "abc", true);
        check("*c", "abc", true);
        check("*b*", "abc", true);
        check("a*c", "ac", true);
        check("a*c", "abcbc", true);
        check("a*c", "abcb", false);
        check("a**c", "abc", true);
        check("a*b*c", "axxbyyc", true);
        check("a*b*c", "axxcyyb", false);
        check("?", "a", true);
        check("?", "", false);
        check("?", "ab", false);
        check("a?c", "abc", true);
        check("a?c", "ac", false);
        check("*?", "a", true);
        check("?*?", "a", false);
        check("?*?", "ab", true);
        check("user:*:profile", "user:1:profile", true);
        check("user:*:profile", "user:1:profiles", false);
    }

    #[test]
    fn empty_pattern_and_text() {
        check("", "", true);
        check("", "a", false);
        // Redis's matcher never enters its loop for an empty text, so only
        // the empty pattern and the `*` shortcut of SCAN/KEYS match it.
        check("**", "", false);
        check("a*", "", false);
        check("?", "", false);
    }

    #[test]
    fn classes_ranges_and_negation() {
        check("[abc]", "b", true);
        check("[abc]", "d", false);
        check("[abc]", "", false);
        check("[^abc]", "d", true);
        check("[^abc]", "a", false);
        check("[a-c]x", "bx", true);
        check("[a-c]x", "dx", false);
        check("[c-a]", "b", true);
        check("[c-a]", "d", false);
        check("[0-9][0-9]", "42", true);
        check("[^0-9]", "4", false);
        check("[a-cx-z]", "y", true);
        check("[a-cx-z]", "m", false);
        check("[]", "]", false);
        check("[]]", "]", false);
        check("[-a]", "-", true);
        check("[a-]", "-", false);
        check("[^]", "x", true);
        check("user:[12]", "user:1", true);
        check("user:[12]", "user:3", false);
        check("user:[0-1]*", "user:10", true);
    }

    #[test]
    fn escapes_outside_and_inside_classes() {
        check(r"a\*b", "a*b", true);
        check(r"a\*b", "axb", false);
        check(r"a\?b", "a?b", true);
        check(r"a\?b", "axb", false);
        check(r"h\[x\]", "h[x]", true);
        check(r"back\\slash", r"back\slash", true);
        check(r"\a", "a", true);
        check(r"[\]]", "]", true);
        check(r"[\^a]", "^", true);
        check(r"[\^a]", "b", false);
        check(r"[\-]", "-", true);
        check(r"[a\-z]", "-", true);
        check(r"[a\-z]", "m", false);
        check(r"[^\]]", "]", false);
        check(r"[^\]]", "x", true);
    }

    #[test]
    fn malformed_patterns_behave_as_in_redis() {
        // A trailing backslash is a literal backslash.
        check("a\\", "a\\", true);
        check("a\\", "a", false);
        check("\\", "\\", true);
        // An unclosed class runs to the end of the pattern.
        check("[abc", "b", true);
        check("[abc", "d", false);
        check("a[bc", "ac", true);
        check("[", "[", false);
        check("[", "x", false);
        check("[^", "x", true);
        check("[^a", "a", false);
        check("[^a", "b", true);
        check("x[", "x", false);
        // `[\]` escapes the `]`: the class holds `]` and is never closed.
        check(r"[\]", "]", true);
        check(r"[\]x", "]", true);
        check(r"[\]x", "]x", false);
        // In `[a-]` the `-` starts a range from `a` down to `]`, so the
        // class goes on past that `]`.
        check("[a-]", "^", true);
        check("[a-]", "b", false);
        check("[a-]b]", "`b", false);
        check("[a-]b]", "`", true);
        // A lone backslash inside an unclosed class is a literal.
        check("[a\\", "\\", true);
    }

    #[test]
    fn matches_bytes_not_chars() {
        check("?", "é", false);
        check("??", "é", true);
        check("ключ:????", "ключ:🦀", true);
        check("ключ:?", "ключ:🦀", false);
        check("*🦀", "crab 🦀", true);
        check("[é]", "é", false);
        check("[é][é]", "é", true);
    }

    #[test]
    fn ranges_compare_signed_bytes_like_redis_on_x86_64() {
        // `é` is 0xC3 0xA9; as a signed char 0xC3 is -61, below every
        // ASCII byte, so `[a-é]` is the range -61..=97 followed by 0xA9.
        check("[a-é]", "b", false);
        check("[a-é]", "A", true);
        check("[a-é]", "*", true);
        check("[é-a]", "A", true);
        check("[b-ÿ]?", "c*", false);
        check("[b-ÿ]?", "**", true);
        check("[\u{7f}-\u{80}]", "A", true);
        check("[\0-\u{80}]*", "é", true);
        check("[\0-\u{80}]*", "*", false);
        // ASCII ranges are unaffected.
        check("[0-9]", "5", true);
        check("[\0-\u{7f}]", "\u{7f}", true);
    }

    #[test]
    fn nul_bytes_are_ordinary() {
        check("a\0*", "a\0b", true);
        check("[\0]", "\0", true);
        check("?", "\0", true);
        check("*\0", "ab", false);
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let long_a = "a".repeat(100_000);
        assert!(!glob_match("*a*a*a*a*a*a*a*a*a*b", &long_a));
        assert!(glob_match("*a*a*a*a*a*a*a*a*a*a", &long_a));
        let mut many = "*a".repeat(200);
        many.push('b');
        assert!(!glob_match(&many, &"a".repeat(20_000)));
        assert!(!glob_match(&"*?".repeat(500), &"x".repeat(499)));
        assert!(glob_match(&"*?".repeat(500), &"x".repeat(500)));
        let classes = format!("{}z", "*[a-y]".repeat(100));
        assert!(!glob_match(&classes, &"q".repeat(20_000)));
    }

    #[test]
    fn redis_nesting_limit_is_mirrored() {
        // 1000 `*` groups each followed by `a`: allowed.
        let ok = "*a".repeat(1000);
        assert!(glob_match(&ok, &"a".repeat(1000)));
        assert!(redis_reference(ok.as_bytes(), "a".repeat(1000).as_bytes()));
        // A 1001st group followed by more pattern: Redis gives up.
        let too_deep = "*a".repeat(1001);
        assert!(!glob_match(&too_deep, &"a".repeat(1001)));
        assert!(!redis_reference(
            too_deep.as_bytes(),
            "a".repeat(1001).as_bytes()
        ));
        // A 1001st group at the very end matches at once.
        let trailing = format!("{}*", "*a".repeat(1000));
        assert!(glob_match(&trailing, &"a".repeat(1001)));
        assert!(redis_reference(
            trailing.as_bytes(),
            "a".repeat(1001).as_bytes()
        ));
    }

    /// Every pattern of up to four symbols from a small alphabet rich in
    /// metacharacters, against every text of up to four bytes.
    #[test]
    fn agrees_with_redis_exhaustively() {
        const PATTERN_SYMBOLS: &[u8] = b"ab*?[]^-\\";
        const TEXT_SYMBOLS: &[u8] = b"ab-]\\";
        let patterns = all_strings(PATTERN_SYMBOLS, 4);
        let texts = all_strings(TEXT_SYMBOLS, 4);
        for pattern in &patterns {
            for text in &texts {
                assert_eq!(
                    glob_match(pattern, text),
                    scan_matches(pattern, text),
                    "pattern {pattern:?} text {text:?}"
                );
            }
        }
    }

    /// Longer random patterns and texts, from a fixed seed.
    #[test]
    fn agrees_with_redis_on_random_inputs() {
        const PATTERN_SYMBOLS: &[&str] = &[
            "a", "b", "c", "*", "*", "?", "[", "]", "^", "-", "\\", "é", "\u{7f}", "\0",
        ];
        const TEXT_SYMBOLS: &[&str] = &["a", "b", "c", "-", "]", "^", "\\", "é", "\u{7f}", "A"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap_or(0)
        };
        for _ in 0..100_000 {
            let pattern: String = (0..next(12))
                .map(|_| PATTERN_SYMBOLS[next(PATTERN_SYMBOLS.len())])
                .collect();
            let text: String = (0..next(14))
                .map(|_| TEXT_SYMBOLS[next(TEXT_SYMBOLS.len())])
                .collect();
            assert_eq!(
                glob_match(&pattern, &text),
                scan_matches(&pattern, &text),
                "pattern {pattern:?} text {text:?}"
            );
        }
    }

    fn all_strings(symbols: &[u8], max_len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut previous = vec![String::new()];
        for _ in 0..max_len {
            let longer: Vec<String> = previous
                .iter()
                .flat_map(|s| {
                    symbols.iter().map(move |&c| {
                        let mut s = s.clone();
                        s.push(char::from(c));
                        s
                    })
                })
                .collect();
            all.extend(longer.iter().cloned());
            previous = longer;
        }
        all
    }
}
