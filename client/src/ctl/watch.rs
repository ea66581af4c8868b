//! `watch`: print a watch's events until the server cancels it; `watch -i`
//! reads watch requests from standard input (`watch_interactive.rs`).

use std::os::unix::ffi::OsStrExt;

use crate::ctl::args::{GlobalArgs, WatchArgs};
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::gofmt::quote;
use crate::ctl::print::Printer;
use crate::ctl::run::{connect, Io};
use crate::{Error, WatchOptions, WatchResponse};

#[path = "watch_interactive.rs"]
mod interactive;

/// The text etcd's client gives for a canceled watch.
pub(super) fn cancel_text(r: &WatchResponse) -> String {
    if r.compact_revision != 0 {
        Error::Compacted.to_string()
    } else if !r.cancel_reason.is_empty() {
        r.cancel_reason.clone()
    } else {
        Error::FutureRevision.to_string()
    }
}

/// The key and options, from the arguments or (as etcdctl does) from
/// `CAIRNCTL_WATCH_KEY` / `CAIRNCTL_WATCH_RANGE_END`.
fn watch_target(a: &WatchArgs) -> Result<(Vec<u8>, WatchOptions), CtlError> {
    let env_key = std::env::var_os("CAIRNCTL_WATCH_KEY").unwrap_or_default();
    let env_end = std::env::var_os("CAIRNCTL_WATCH_RANGE_END").unwrap_or_default();
    let mut args: Vec<Vec<u8>> = a.args.iter().map(|s| s.as_bytes().to_vec()).collect();
    if args.is_empty() && !env_key.is_empty() {
        args.push(env_key.as_bytes().to_vec());
        if !env_end.is_empty() {
            args.push(env_end.as_bytes().to_vec());
        }
    } else if env_key.is_empty() && !env_end.is_empty() {
        return Err(CtlError::bad_args(format!(
            "CAIRNCTL_WATCH_KEY is empty but got CAIRNCTL_WATCH_RANGE_END={}",
            crate::ctl::gofmt::quote(env_end.as_bytes())
        )));
    }
    let mut options = WatchOptions::new();
    let key = match args.as_slice() {
        [] => return Err(CtlError::bad_args("watch requires a key or prefix")),
        [key] => key.clone(),
        [key, end] => {
            if a.prefix {
                return Err(CtlError::bad_args(
                    "unexpected range_end with --prefix: only one argument is allowed with --prefix",
                ));
            }
            options = options.with_range_end(end.clone());
            key.clone()
        }
        _ => return Err(CtlError::bad_args("too many arguments")),
    };
    if a.prefix {
        options = options.with_prefix();
    }
    options.start_revision = a.rev;
    options.prev_kv = a.prev_kv;
    options.progress_notify = a.progress_notify;
    Ok((key, options))
}

pub(crate) async fn run(
    g: &GlobalArgs,
    printer: Printer,
    a: &WatchArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    if a.interactive {
        let env_end = std::env::var_os("CAIRNCTL_WATCH_RANGE_END").unwrap_or_default();
        if std::env::var_os("CAIRNCTL_WATCH_KEY").is_none_or(|k| k.is_empty())
            && !env_end.is_empty()
        {
            return Err(CtlError::bad_args(format!(
                "CAIRNCTL_WATCH_KEY is empty but got CAIRNCTL_WATCH_RANGE_END={}",
                crate::ctl::gofmt::quote(env_end.as_bytes())
            )));
        }
        return interactive::run(g, printer, io).await;
    }
    let (key, options) = watch_target(a)?;
    let client = connect(g, &g.endpoints).await?;
    // The watcher re-creates its watch after a lost connection from the
    // revision after the last one printed: nothing is printed twice or
    // skipped.
    let mut watcher = client.watch(key, options).await?;
    while let Some(r) = watcher.next().await? {
        if r.canceled {
            writeln!(io.stderr, "watch was canceled ({})", cancel_text(&r))?;
        }
        if r.is_progress_notify() {
            writeln!(io.stdout, "progress notify: {}", r.header.revision)?;
        }
        printer.watch(io.stdout, &r)?;
        io.stdout.flush()?;
        if !a.exec.is_empty() {
            run_per_event(&a.exec, &r, io).await?;
        }
    }
    Err(CtlError::new(
        ExitCode::Interrupted,
        "watch is canceled by the server",
    ))
}

/// Runs the `-- command` once per event, with the event in
/// `CAIRN_WATCH_*` variables quoted as etcdctl quotes its `ETCD_WATCH_*`.
pub(super) async fn run_per_event(
    command: &[std::ffi::OsString],
    r: &WatchResponse,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    for event in &r.events {
        let status = tokio::process::Command::new(program)
            .args(args)
            .env("CAIRN_WATCH_REVISION", r.header.revision.to_string())
            .env(
                "CAIRN_WATCH_EVENT_TYPE",
                quote(event.kind.name().as_bytes()),
            )
            .env("CAIRN_WATCH_KEY", quote(&event.kv.key))
            .env("CAIRN_WATCH_VALUE", quote(&event.kv.value))
            .status()
            .await;
        let failure = match status {
            Ok(s) if s.success() => continue,
            Ok(s) => match s.code() {
                Some(code) => format!("exit status {code}"),
                None => "signal: killed".to_string(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                "exec: {}: executable file not found in $PATH",
                quote(program.as_bytes())
            ),
            Err(e) => format!("exec: {e}"),
        };
        let words: Vec<String> = command.iter().map(|w| quote(w.as_bytes())).collect();
        writeln!(io.stderr, "command [{}] error ({failure})", words.join(" "))?;
        // etcdctl exits without its usual "Error:" line here.
        return Err(CtlError::new(ExitCode::Error, ""));
    }
    Ok(())
}
