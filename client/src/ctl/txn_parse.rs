//! Reading a txn in etcdctl's text syntax.
//!
//! Three sections, each ended by an empty line: compares, success ops,
//! failure ops.
//!
//! ```text
//! mod("key1") > "0"
//! value("key2") = "v"
//!
//! put key1 "overwrote-key1"
//! get key1
//!
//! put key1 "created-key1"
//! del key2 --prev-kv
//!
//! ```
//!
//! A compare is `target("key") op "value"`, target one of `ver`/`version`,
//! `c`/`create`, `m`/`mod`, `val`/`value`, `lease` (value in hex), op one of
//! `=`, `!=`, `<`, `>`. An op line is a `put`, `get` or `del` command line
//! with that command's flags; arguments may be "double-quoted" (Go escapes)
//! or 'single-quoted'.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStringExt;

use clap::Parser;

use crate::ctl::exit::CtlError;
use crate::ctl::gofmt::{quote, unquote_prefix};
use crate::ctl::kv_args::{del_op, get_op, put_op, DelArgs, GetArgs, PutArgs};
use crate::limits::{STDIN_BYTES_MAX, TXN_LINES_MAX};
use crate::{Compare, CompareResult, CompareTarget, Op, Txn};

/// Reads a whole txn from `input`. With `prompts`, each section's prompt is
/// written there first (`txn -i`), exactly as etcdctl prints them.
pub fn read_txn(
    input: &mut dyn BufRead,
    mut prompts: Option<&mut dyn Write>,
) -> Result<Txn, CtlError> {
    let mut prompt = |text: &str| -> Result<(), CtlError> {
        if let Some(out) = prompts.as_mut() {
            writeln!(out, "{text}")?;
            out.flush()?;
        }
        Ok(())
    };
    prompt("compares:")?;
    let compare = read_section(input, parse_compare)?;
    prompt("success requests (get, put, del):")?;
    let success = read_section(input, parse_op)?;
    prompt("failure requests (get, put, del):")?;
    let failure = read_section(input, parse_op)?;
    Ok(Txn {
        compare,
        success,
        failure,
    })
}

/// Lines up to the next empty one, trimmed, each parsed as soon as it is
/// read (so, as with etcdctl, a bad line is reported before a missing empty
/// line). Input that ends before the empty line is an error ("EOF").
fn read_section<T>(
    input: &mut dyn BufRead,
    parse: fn(&[u8]) -> Result<T, CtlError>,
) -> Result<Vec<T>, CtlError> {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let mut limited = std::io::Read::take(&mut *input, STDIN_BYTES_MAX as u64 + 1);
        limited.read_until(b'\n', &mut line)?;
        if line.len() > STDIN_BYTES_MAX {
            return Err(CtlError::invalid_input(format!(
                "txn line longer than {STDIN_BYTES_MAX} bytes"
            )));
        }
        if line.last() != Some(&b'\n') {
            return Err(CtlError::invalid_input("EOF"));
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return Ok(lines);
        }
        if lines.len() == TXN_LINES_MAX {
            return Err(CtlError::invalid_input(format!(
                "more than {TXN_LINES_MAX} lines in one txn section"
            )));
        }
        lines.push(parse(trimmed)?);
    }
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// Parses `target("key") op "value"`, with etcdctl's error messages.
pub fn parse_compare(line: &[u8]) -> Result<Compare, CtlError> {
    let malformed = || CtlError::invalid_input(format!("malformed comparison: {}", text(line)));
    let Some(paren) = line.iter().position(|&b| b == b'(') else {
        return Err(malformed());
    };
    let target = &line[..paren];
    let rest = &line[paren + 1..];
    // Go's Sscanf("%q) %s %q"): the fields scanned before a mismatch are
    // reported in the error.
    let (key, op, value) = scan_compare(rest);
    let (Some(key), Some(op), Some(value)) = (&key, &op, &value) else {
        return Err(CtlError::invalid_input(format!(
            "malformed comparison: {}; got {}({}) {} {}",
            text(line),
            text(target),
            quote(key.as_deref().unwrap_or_default()),
            text(op.as_deref().unwrap_or_default()),
            quote(value.as_deref().unwrap_or_default()),
        )));
    };
    let invalid =
        || CtlError::invalid_input(format!("invalid txn compare request: {}", text(line)));
    let result = std::str::from_utf8(op)
        .ok()
        .and_then(CompareResult::parse)
        .ok_or_else(invalid)?;
    let number = |radix: u32| -> Result<i64, CtlError> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| i64::from_str_radix(v, radix).ok())
            .ok_or_else(invalid)
    };
    let target = match target {
        b"ver" | b"version" => CompareTarget::Version(number(10)?),
        b"c" | b"create" => CompareTarget::CreateRevision(number(10)?),
        b"m" | b"mod" => CompareTarget::ModRevision(number(10)?),
        b"val" | b"value" => CompareTarget::Value(value.clone()),
        b"lease" => CompareTarget::Lease(number(16)?),
        _ => {
            return Err(CtlError::invalid_input(format!(
                "malformed comparison: {} (unknown target {})",
                text(line),
                text(target)
            )))
        }
    };
    Ok(Compare::new(key.clone(), result, target))
}

type Scanned = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

fn scan_compare(input: &[u8]) -> Scanned {
    let skip_spaces =
        |s: &[u8]| -> usize { s.iter().take_while(|b| **b == b' ' || **b == b'\t').count() };
    let mut at = skip_spaces(input);
    let Some((key, used)) = unquote_prefix(&input[at..]) else {
        return (None, None, None);
    };
    at += used;
    if input.get(at) != Some(&b')') {
        return (Some(key), None, None);
    }
    at += 1;
    at += skip_spaces(&input[at..]);
    let op_len = input[at..]
        .iter()
        .take_while(|b| !b.is_ascii_whitespace())
        .count();
    if op_len == 0 {
        return (Some(key), None, None);
    }
    let op = input[at..at + op_len].to_vec();
    at += op_len;
    at += skip_spaces(&input[at..]);
    match unquote_prefix(&input[at..]) {
        Some((value, _)) => (Some(key), Some(op), Some(value)),
        None => (Some(key), Some(op), None),
    }
}

/// The put, get or del command a txn op line names, with its flags.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, disable_help_subcommand = true)]
enum OpLine {
    Put(PutArgs),
    Get(GetArgs),
    Del(DelArgs),
}

/// Parses one op line, with etcdctl's error messages.
pub fn parse_op(line: &[u8]) -> Result<Op, CtlError> {
    let args = argify(line)?;
    if args.len() < 2 {
        // etcdctl's wording, "compare" included.
        return Err(CtlError::invalid_input(format!(
            "invalid txn compare request: {}",
            text(line)
        )));
    }
    let args: Vec<OsString> = args.into_iter().map(OsString::from_vec).collect();
    let parsed = OpLine::try_parse_from(args)
        .map_err(|_| CtlError::invalid_input(format!("invalid txn request: {}", text(line))))?;
    match parsed {
        // The standard input is the txn itself: a put needs its value inline.
        OpLine::Put(a) => put_op(&a, || None),
        OpLine::Get(a) => get_op(&a),
        OpLine::Del(a) => del_op(&a),
    }
}

/// Splits a line into arguments: "double-quoted" (Go escapes),
/// 'single-quoted' (taken literally) or bare words. An unmatched quote
/// character is skipped, as etcdctl's pattern does.
pub fn argify(line: &[u8]) -> Result<Vec<Vec<u8>>, CtlError> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut args = Vec::new();
    let mut at = 0;
    while at < line.len() {
        let b = line[at];
        if is_space(b) {
            at += 1;
            continue;
        }
        match b {
            b'"' => match closing_double_quote(&line[at..]) {
                Some(len) => {
                    let literal = &line[at..at + len];
                    let (value, _) = unquote_prefix(literal).ok_or_else(|| {
                        CtlError::invalid_input(format!("bad quoted string {}", text(literal)))
                    })?;
                    args.push(value);
                    at += len;
                }
                None => at += 1,
            },
            b'\'' => match line[at + 1..].iter().position(|&c| c == b'\'') {
                Some(end) => {
                    args.push(line[at + 1..at + 1 + end].to_vec());
                    at += end + 2;
                }
                None => at += 1,
            },
            _ => {
                let len = line[at..].iter().take_while(|&&c| !is_space(c)).count();
                args.push(line[at..at + len].to_vec());
                at += len;
            }
        }
    }
    Ok(args)
}

/// Length of the double-quoted literal at the start of `s` (quotes
/// included), honouring backslash escapes; `None` if it is not closed.
fn closing_double_quote(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests;
