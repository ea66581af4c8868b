//! Text formats etcdctl's output inherits from Go's standard library, so that
//! cairnctl prints the same bytes: `%q` quoting, `time.Duration` text,
//! `encoding/json` string escaping and go-humanize's byte sizes.

use std::time::Duration;

/// Go's `strconv.Quote` of the bytes taken as a string (`fmt`'s `%q`):
/// printable characters stay, the rest become Go escapes, and bytes that are
/// not UTF-8 become `\xNN`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            quote_char(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

fn quote_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `unicode.IsPrint`, closely enough: graphic characters and the ASCII
/// space; other spaces and controls are escaped.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !c.is_control()
        && !c.is_whitespace()
        && !matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Go's `strconv.Unquote` for a double-quoted string: the inverse of
/// [`quote`]. Returns the bytes and how many input bytes the literal took
/// (it starts at `text[0] == '"'`; anything after the closing quote is left).
/// A back-quoted raw string is accepted as Go does.
pub fn unquote_prefix(text: &[u8]) -> Option<(Vec<u8>, usize)> {
    match text.first()? {
        b'`' => {
            let end = text[1..].iter().position(|&b| b == b'`')? + 1;
            Some((text[1..end].to_vec(), end + 1))
        }
        b'"' => {
            let mut out = Vec::new();
            let mut i = 1;
            loop {
                let b = *text.get(i)?;
                match b {
                    b'"' => return Some((out, i + 1)),
                    b'\n' => return None,
                    b'\\' => {
                        let e = *text.get(i + 1)?;
                        i += 2;
                        match e {
                            b'a' => out.push(7),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'n' => out.push(b'\n'),
                            b'r' => out.push(b'\r'),
                            b't' => out.push(b'\t'),
                            b'v' => out.push(11),
                            b'\\' => out.push(b'\\'),
                            b'"' => out.push(b'"'),
                            b'x' => {
                                out.push(hex_value(text.get(i..i + 2)?)? as u8);
                                i += 2;
                            }
                            b'0'..=b'7' => {
                                let digits = text.get(i - 1..i + 2)?;
                                let mut v: u32 = 0;
                                for d in digits {
                                    if !(b'0'..=b'7').contains(d) {
                                        return None;
                                    }
                                    v = v * 8 + u32::from(d - b'0');
                                }
                                out.push(u8::try_from(v).ok()?);
                                i += 2;
                            }
                            b'u' | b'U' => {
                                let n = if e == b'u' { 4 } else { 8 };
                                let c = char::from_u32(hex_value(text.get(i..i + n)?)?)?;
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                                i += n;
                            }
                            _ => return None,
                        }
                    }
                    _ => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
        }
        _ => None,
    }
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// Go's `time.Duration.String()`: "950.285µs", "1.159823ms", "2s", "1m30s".
pub fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", with_fraction(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", with_fraction(nanos, 6));
    }
    let seconds_total = nanos / 1_000_000_000;
    let seconds = format!(
        "{}{}s",
        seconds_total % 60,
        fraction_digits(nanos % 1_000_000_000, 9)
    );
    let minutes_total = seconds_total / 60;
    if minutes_total == 0 {
        return seconds;
    }
    let hours = minutes_total / 60;
    if hours == 0 {
        return format!("{}m{seconds}", minutes_total % 60);
    }
    format!("{hours}h{}m{seconds}", minutes_total % 60)
}

fn with_fraction(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    format!(
        "{}{}",
        value / scale,
        fraction_digits(value % scale, digits)
    )
}

/// ".ddd" without trailing zeros, or "" when the fraction is zero.
fn fraction_digits(fraction: u128, digits: u32) -> String {
    if fraction == 0 {
        return String::new();
    }
    let text = format!("{:0width$}", fraction, width = digits as usize);
    format!(".{}", text.trim_end_matches('0'))
}

/// go-humanize's `Bytes` (SI units, as etcdctl prints a db size): "20 kB".
pub fn humanize_bytes(size: u64) -> String {
    if size < 10 {
        return format!("{size} B");
    }
    const SUFFIXES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let value = size as f64;
    let exponent = (value.ln() / 1000f64.ln()).floor();
    let suffix = SUFFIXES[(exponent as usize).min(SUFFIXES.len() - 1)];
    let scaled = (value / 1000f64.powf(exponent) * 10.0 + 0.5).floor() / 10.0;
    if scaled < 10.0 {
        format!("{scaled:.1} {suffix}")
    } else {
        format!("{scaled:.0} {suffix}")
    }
}

/// A JSON string literal as Go's `encoding/json` writes it: HTML-sensitive
/// characters escaped as `\u003c` etc., invalid UTF-8 replaced by U+FFFD.
pub fn json_string(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in String::from_utf8_lossy(text).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote(b"foo"), "\"foo\"");
        assert_eq!(quote(b"v\nmulti"), "\"v\\nmulti\"");
        assert_eq!(quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote(b"\x00\x7f\xff"), "\"\\x00\\x7f\\xff\"");
        assert_eq!(quote("é\u{a0}".as_bytes()), "\"é\\u00a0\"");
        assert_eq!(quote(b"\x07\x0b"), "\"\\a\\v\"");
    }

    #[test]
    fn unquote_inverts_quote() {
        for s in [
            &b"plain"[..],
            b"a b",
            b"c\nd",
            b"\x00\xff\"\\",
            "ü€".as_bytes(),
        ] {
            let q = quote(s);
            let (back, used) = unquote_prefix(q.as_bytes()).unwrap();
            assert_eq!(back, s);
            assert_eq!(used, q.len());
        }
        assert_eq!(unquote_prefix(b"\"k\") > x"), Some((b"k".to_vec(), 3)));
        assert_eq!(unquote_prefix(b"`raw\\n`"), Some((b"raw\\n".to_vec(), 7)));
        assert_eq!(
            unquote_prefix(b"\"\\101\\u00e9\""),
            Some(("Aé".as_bytes().to_vec(), 12))
        );
        assert_eq!(unquote_prefix(b"\"open"), None);
        assert_eq!(unquote_prefix(b"bare"), None);
        assert_eq!(unquote_prefix(b"\"\\q\""), None);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration(Duration::from_nanos(1_159_823)), "1.159823ms");
        assert_eq!(duration(Duration::from_nanos(950_285)), "950.285µs");
        assert_eq!(duration(Duration::from_nanos(999)), "999ns");
        assert_eq!(duration(Duration::from_millis(2000)), "2s");
        assert_eq!(duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(duration(Duration::from_millis(90_500)), "1m30.5s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(duration(Duration::from_millis(1)), "1ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn byte_sizes_print_like_go_humanize() {
        // 20480 and 290816 are db sizes etcdctl printed as "20 kB" and "291 kB".
        assert_eq!(humanize_bytes(20_480), "20 kB");
        assert_eq!(humanize_bytes(290_816), "291 kB");
        assert_eq!(humanize_bytes(5), "5 B");
        assert_eq!(humanize_bytes(999), "999 B");
        assert_eq!(humanize_bytes(1_000), "1.0 kB");
        assert_eq!(humanize_bytes(2_147_483_648), "2.1 GB");
        assert_eq!(humanize_bytes(82_854_982), "83 MB");
    }

    #[test]
    fn json_strings_escape_like_go() {
        assert_eq!(
            json_string(b"a<b>&\"\\\n\x01"),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\""
        );
        assert_eq!(json_string(b"\xff"), "\"\u{fffd}\"");
    }
}
