//! Expected texts are etcdctl 3.4's for the same input.

use super::*;
use crate::ctl::exit::ExitCode;
use crate::{DeleteOptions, GetOptions, PutOptions};

fn read(input: &str) -> Result<Txn, CtlError> {
    read_txn(&mut input.as_bytes(), None)
}

#[test]
fn reads_etcdctls_documented_example() {
    let txn = read(
        "mod(\"key1\") > \"0\"\n\nput key1 \"overwrote-key1\"\nget key1\n\nput key1 \"created-key1\"\nput key2 \"some extra key\"\n\n",
    )
    .unwrap();
    assert_eq!(
        txn,
        Txn::new()
            .when([Compare::mod_revision("key1", CompareResult::Greater, 0)])
            .and_then([
                Op::put("key1", "overwrote-key1", PutOptions::new()),
                Op::get("key1", GetOptions::new()),
            ])
            .or_else([
                Op::put("key1", "created-key1", PutOptions::new()),
                Op::put("key2", "some extra key", PutOptions::new()),
            ])
    );
}

#[test]
fn interactive_mode_prints_etcdctls_prompts() {
    let mut prompts = Vec::new();
    let txn = read_txn(
        &mut "value(\"k\") = \"v\"\n\n\ndel k --prev-kv\n\n".as_bytes(),
        Some(&mut prompts),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(prompts).unwrap(),
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n"
    );
    assert_eq!(
        txn.compare,
        vec![Compare::value("k", CompareResult::Equal, "v")]
    );
    assert!(txn.success.is_empty());
    assert_eq!(
        txn.failure,
        vec![Op::delete("k", DeleteOptions::new().with_prev_kv())]
    );
}

#[test]
fn every_compare_target_and_operator() {
    let txn = read(
        "value(\"key1\") != \"x\"\nversion(\"key1\") < \"100\"\nc(\"key1\") = \"20\"\nlease(\"key1\") = \"1f\"\nm(\"a b\") > \"3\"\nver(\"k\") = \"1\"\ncreate(\"k\") != \"2\"\nval(\"k\") = \"q\\\"uote\"\n\n\n\n",
    )
    .unwrap();
    assert_eq!(
        txn.compare,
        vec![
            Compare::value("key1", CompareResult::NotEqual, "x"),
            Compare::version("key1", CompareResult::Less, 100),
            Compare::create_revision("key1", CompareResult::Equal, 20),
            Compare::lease("key1", CompareResult::Equal, 0x1f),
            Compare::mod_revision("a b", CompareResult::Greater, 3),
            Compare::version("k", CompareResult::Equal, 1),
            Compare::create_revision("k", CompareResult::NotEqual, 2),
            Compare::value("k", CompareResult::Equal, "q\"uote"),
        ]
    );
}

#[test]
fn quoted_arguments_unescape() {
    let txn = read("\nput \"a b\" \"c\\nd\"\nget 'x y'\n\n\n").unwrap();
    assert_eq!(
        txn.success,
        vec![
            Op::put("a b", "c\nd", PutOptions::new()),
            Op::get("x y", GetOptions::new()),
        ]
    );
}

fn error(input: &str) -> CtlError {
    read(input).unwrap_err()
}

#[test]
fn errors_match_etcdctl() {
    let e = error("mod(\"k\") > \"0\"\n");
    assert_eq!(
        (e.code, e.to_string()),
        (ExitCode::InvalidInput, "Error: EOF".to_string())
    );
    assert_eq!(error("mod(\"k\") > \"0\"").message, "EOF");
    // A complete but bad line is reported before the missing empty line,
    // as etcdctl reads and parses line by line.
    let e = error("put x 1\n");
    assert_eq!(
        (e.code, e.to_string()),
        (
            ExitCode::InvalidInput,
            "Error: malformed comparison: put x 1".to_string()
        )
    );
    assert_eq!(
        error("bad(\"k\") > \"0\"\n\n\n\n").message,
        "malformed comparison: bad(\"k\") > \"0\" (unknown target bad)"
    );
    assert_eq!(
        error("mod(\"k\") > \"x\"\n\n\n\n").message,
        "invalid txn compare request: mod(\"k\") > \"x\""
    );
    assert_eq!(
        error("mod(k) > \"0\"\n\n\n\n").message,
        "malformed comparison: mod(k) > \"0\"; got mod(\"\")  \"\""
    );
    assert_eq!(error("modk\n\n\n\n").message, "malformed comparison: modk");
    assert_eq!(
        error("\nput\n\n\n").message,
        "invalid txn compare request: put"
    );
    assert_eq!(error("\nfoo k\n\n\n").message, "invalid txn request: foo k");
    let e = error("\nput k\n\n\n");
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            ExitCode::BadArgs,
            "put command needs 1 argument and input from stdin or 2 arguments"
        )
    );
    assert_eq!(
        error("mod(\"k\") >= \"0\"\n\n\n\n").message,
        "invalid txn compare request: mod(\"k\") >= \"0\""
    );
    assert_eq!(
        error("\nget a --bogus\n\n\n").message,
        "invalid txn request: get a --bogus"
    );
}

#[test]
fn argify_splits_like_etcdctl() {
    let args = |s: &str| -> Vec<String> {
        argify(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    };
    assert_eq!(args("put k v"), ["put", "k", "v"]);
    assert_eq!(args("  put\t\"k 1\"  'v 2' "), ["put", "k 1", "v 2"]);
    assert_eq!(args("get \"a\\\"b\""), ["get", "a\"b"]);
    assert_eq!(args("put ab\"c d"), ["put", "ab\"c", "d"]);
    // An unmatched quote is skipped.
    assert_eq!(args("put \"k"), ["put", "k"]);
}
