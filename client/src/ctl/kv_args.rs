//! The arguments of `put`, `get` and `del`, shared by the commands and by the
//! txn reader (etcdctl parses a txn line with the same commands' flags), and
//! their translation into [`Op`]s with etcdctl's checks and messages.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use clap::{ArgAction, Args};

use crate::ctl::exit::CtlError;
use crate::{DeleteOptions, GetOptions, KeyRange, Op, PutOptions, SortOrder, SortTarget};

/// `put [options] <key> <value>`; the value may come from stdin instead.
#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// Lease ID (in hexadecimal) to attach to the key.
    #[arg(long, default_value = "0")]
    pub lease: String,
    /// Return the previous key-value pair before modification.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub prev_kv: bool,
    /// Updates the key using its current value.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub ignore_value: bool,
    /// Updates the key using its current lease.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub ignore_lease: bool,
    /// Key, then value.
    pub args: Vec<OsString>,
}

/// `get [options] <key> [range_end]`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// Linearizable(l) or Serializable(s).
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Order of results; ASCEND or DESCEND (ASCEND by default).
    #[arg(long, default_value = "")]
    pub order: String,
    /// Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION.
    #[arg(long, default_value = "")]
    pub sort_by: String,
    /// Maximum number of results.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub limit: i64,
    /// Get keys with matching prefix.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub prefix: bool,
    /// Get keys that are greater than or equal to the given key using byte compare.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub from_key: bool,
    /// Specify the kv revision.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub rev: i64,
    /// Get only the keys.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub keys_only: bool,
    /// Get only the count.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub count_only: bool,
    /// Only write values when using the "simple" output format.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub print_value_only: bool,
    /// Key, then optionally range_end.
    pub args: Vec<OsString>,
}

/// `del [options] <key> [range_end]`.
#[derive(Debug, Clone, Args)]
pub struct DelArgs {
    /// Delete keys with matching prefix.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub prefix: bool,
    /// Return deleted key-value pairs.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub prev_kv: bool,
    /// Delete keys that are greater than or equal to the given key using byte compare.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub from_key: bool,
    /// Delete range of keys (accepted for etcdctl 3.5 compatibility).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub range: bool,
    /// Key, then optionally range_end.
    pub args: Vec<OsString>,
}

fn bytes(arg: &OsString) -> Vec<u8> {
    arg.as_bytes().to_vec()
}

const PUT_ARGS_MESSAGE: &str = "put command needs 1 argument and input from stdin or 2 arguments";

/// The put op; `stdin_value` supplies the value when only the key is given
/// (it is called only then).
pub fn put_op(a: &PutArgs, stdin_value: impl FnOnce() -> Option<Vec<u8>>) -> Result<Op, CtlError> {
    let (key, value, options) = put_parts(a, stdin_value)?;
    Ok(Op::put(key, value, options))
}

/// The key, value and options of a put.
pub fn put_parts(
    a: &PutArgs,
    stdin_value: impl FnOnce() -> Option<Vec<u8>>,
) -> Result<(Vec<u8>, Vec<u8>, PutOptions), CtlError> {
    let Some(key) = a.args.first() else {
        return Err(CtlError::bad_args(PUT_ARGS_MESSAGE));
    };
    if a.ignore_value && a.args.len() > 1 {
        return Err(CtlError::bad_args(
            "put command needs only 1 argument when 'ignore-value' is set",
        ));
    }
    let value = if a.ignore_value {
        Vec::new()
    } else if let Some(v) = a.args.get(1) {
        bytes(v)
    } else {
        match stdin_value() {
            Some(v) if !v.is_empty() => v,
            _ => return Err(CtlError::bad_args(PUT_ARGS_MESSAGE)),
        }
    };
    let lease = i64::from_str_radix(&a.lease, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "bad lease ID (strconv.ParseInt: parsing {}: invalid syntax), expecting ID in Hex",
            crate::ctl::gofmt::quote(a.lease.as_bytes())
        ))
    })?;
    let options = PutOptions {
        lease,
        prev_kv: a.prev_kv,
        ignore_value: a.ignore_value,
        ignore_lease: a.ignore_lease,
    };
    Ok((bytes(key), value, options))
}

/// The get op.
pub fn get_op(a: &GetArgs) -> Result<Op, CtlError> {
    let (key, options) = get_parts(a)?;
    Ok(Op::get(key, options))
}

/// The key and options of a get.
pub fn get_parts(a: &GetArgs) -> Result<(Vec<u8>, GetOptions), CtlError> {
    let Some(key) = a.args.first() else {
        return Err(CtlError::bad_args(
            "get command needs one argument as key and an optional argument as range_end",
        ));
    };
    if a.prefix && a.from_key {
        return Err(CtlError::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    if a.keys_only && a.count_only {
        return Err(CtlError::bad_args(
            "`--keys-only` and `--count-only` cannot be set at the same time, choose one",
        ));
    }
    let mut options = GetOptions::new();
    match a.consistency.as_str() {
        "s" => options.serializable = true,
        "l" => {}
        other => {
            return Err(CtlError::bad_feature(format!(
                "unknown consistency flag {}",
                crate::ctl::gofmt::quote(other.as_bytes())
            )))
        }
    }
    if let Some(end) = a.args.get(1) {
        if a.prefix || a.from_key {
            return Err(CtlError::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        options.range = KeyRange::End(bytes(end));
    }
    options.limit = a.limit;
    if a.rev > 0 {
        options.revision = a.rev;
    }
    options.sort_order = match a.order.to_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => return Err(CtlError::bad_feature(format!("bad sort order {}", a.order))),
    };
    options.sort_target = match a.sort_by.to_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => {
            return Err(CtlError::bad_feature(format!(
                "bad sort target {}",
                a.sort_by
            )))
        }
    };
    if a.prefix {
        options.range = KeyRange::Prefix;
    }
    if a.from_key {
        options.range = KeyRange::FromKey;
    }
    options.keys_only = a.keys_only;
    options.count_only = a.count_only;
    Ok((bytes(key), options))
}

/// The delete op.
pub fn del_op(a: &DelArgs) -> Result<Op, CtlError> {
    let (key, options) = del_parts(a)?;
    Ok(Op::delete(key, options))
}

/// The key and options of a delete.
pub fn del_parts(a: &DelArgs) -> Result<(Vec<u8>, DeleteOptions), CtlError> {
    if a.args.is_empty() || a.args.len() > 2 {
        return Err(CtlError::bad_args(
            "del command needs one argument as key and an optional argument as range_end",
        ));
    }
    if a.prefix && a.from_key {
        return Err(CtlError::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    let mut options = DeleteOptions::new();
    if let Some(end) = a.args.get(1) {
        if a.prefix || a.from_key {
            return Err(CtlError::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        options.range = KeyRange::End(bytes(end));
    }
    if a.prefix {
        options.range = KeyRange::Prefix;
    }
    if a.from_key {
        options.range = KeyRange::FromKey;
    }
    options.prev_kv = a.prev_kv;
    Ok((bytes(&a.args[0]), options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct P {
        #[command(subcommand)]
        c: C,
    }
    #[derive(clap::Subcommand)]
    enum C {
        Put(PutArgs),
        Get(GetArgs),
        Del(DelArgs),
    }

    fn parse(args: &[&str]) -> C {
        P::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .c
    }

    fn op(args: &[&str]) -> Result<Op, CtlError> {
        match parse(args) {
            C::Put(a) => put_op(&a, || Some(b"from-stdin".to_vec())),
            C::Get(a) => get_op(&a),
            C::Del(a) => del_op(&a),
        }
    }

    #[test]
    fn put_forms() {
        assert_eq!(
            op(&["put", "k", "v"]).unwrap(),
            Op::put("k", "v", PutOptions::new())
        );
        assert_eq!(
            op(&["put", "k"]).unwrap(),
            Op::put("k", "from-stdin", PutOptions::new())
        );
        assert_eq!(
            op(&["put", "--lease=1234", "--prev-kv", "k", "--", "-v"]).unwrap(),
            Op::put(
                "k",
                "-v",
                PutOptions::new().with_lease(0x1234).with_prev_kv()
            )
        );
        assert_eq!(
            op(&["put", "k", "--ignore-value"]).unwrap(),
            Op::put("k", "", PutOptions::new().with_ignore_value())
        );
        assert_eq!(
            op(&["put", "k", "v", "--ignore-value"])
                .unwrap_err()
                .message,
            "put command needs only 1 argument when 'ignore-value' is set"
        );
        let e = op(&["put", "k", "v", "--lease", "xyz"]).unwrap_err();
        assert_eq!(
            e.message,
            "bad lease ID (strconv.ParseInt: parsing \"xyz\": invalid syntax), expecting ID in Hex"
        );
        assert_eq!(e.code, crate::ctl::exit::ExitCode::BadArgs);
        let e = op(&["put"]).unwrap_err();
        assert_eq!(e.message, PUT_ARGS_MESSAGE);
    }

    #[test]
    fn get_forms() {
        assert_eq!(
            op(&[
                "get",
                "k",
                "--prefix",
                "--limit",
                "2",
                "--rev=7",
                "--consistency",
                "s"
            ])
            .unwrap(),
            Op::get(
                "k",
                GetOptions::new()
                    .with_prefix()
                    .with_limit(2)
                    .with_revision(7)
                    .with_serializable()
            )
        );
        assert_eq!(
            op(&["get", "a", "z", "--order", "descend", "--sort-by=MODIFY"]).unwrap(),
            Op::get(
                "a",
                GetOptions::new()
                    .with_range_end("z")
                    .with_sort(SortTarget::Mod, SortOrder::Descend)
            )
        );
        assert_eq!(
            op(&["get", "--from-key", "", "--keys-only"]).unwrap(),
            Op::get("", GetOptions::new().with_from_key().with_keys_only())
        );
        assert_eq!(
            op(&["get", "a", "--order", "foo"]).unwrap_err().message,
            "bad sort order foo"
        );
        assert_eq!(
            op(&["get", "a", "b", "--prefix"]).unwrap_err().message,
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set"
        );
        assert_eq!(
            op(&["get", "a", "--prefix", "--from-key"])
                .unwrap_err()
                .code,
            crate::ctl::exit::ExitCode::BadArgs
        );
        assert_eq!(
            op(&["get"]).unwrap_err().message,
            "get command needs one argument as key and an optional argument as range_end"
        );
        assert_eq!(
            op(&["get", "k", "--consistency=x"]).unwrap_err().message,
            "unknown consistency flag \"x\""
        );
        assert!(op(&["get", "k", "--prefix=false"]).unwrap() == Op::get("k", GetOptions::new()));
    }

    #[test]
    fn del_forms() {
        assert_eq!(
            op(&["del", "k", "--prefix", "--prev-kv"]).unwrap(),
            Op::delete("k", DeleteOptions::new().with_prefix().with_prev_kv())
        );
        assert_eq!(
            op(&["del", "a", "c"]).unwrap(),
            Op::delete("a", DeleteOptions::new().with_range_end("c"))
        );
        assert_eq!(
            op(&["del", "a", "b", "c"]).unwrap_err().message,
            "del command needs one argument as key and an optional argument as range_end"
        );
    }
}
