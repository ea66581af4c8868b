//! `watch`: print a watch's events until the server cancels it.

use std::os::unix::ffi::OsStrExt;

use crate::ctl::args::{GlobalArgs, WatchArgs};
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::print::Printer;
use crate::ctl::run::{connect, Io};
use crate::limits::RECONNECT_BACKOFF;
use crate::{Error, WatchOptions, WatchResponse};

/// The text etcd's client gives for a canceled watch.
fn cancel_text(r: &WatchResponse) -> String {
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
    if a.interactive {
        return Err(CtlError::bad_feature(
            "watch -i is not supported by cairnctl yet",
        ));
    }
    if !a.exec.is_empty() {
        return Err(CtlError::bad_feature(
            "running a command per watch event is not supported by cairnctl yet",
        ));
    }
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
    let (key, mut options) = watch_target(a)?;
    let client = connect(g, &g.endpoints).await?;
    let mut watcher = client.watch(key.clone(), options.clone()).await?;
    // The last revision whose events have all been printed: a watch that
    // loses its connection resumes right after it, so nothing is printed
    // twice or skipped.
    let mut seen_revision = 0i64;
    loop {
        match watcher.next().await {
            Ok(Some(r)) => {
                if r.canceled {
                    writeln!(io.stderr, "watch was canceled ({})", cancel_text(&r))?;
                }
                if r.is_progress_notify() {
                    writeln!(io.stdout, "progress notify: {}", r.header.revision)?;
                    seen_revision = seen_revision.max(r.header.revision);
                }
                if let Some(last) = r.events.last() {
                    seen_revision = seen_revision.max(last.kv.mod_revision);
                }
                printer.watch(io.stdout, &r)?;
                io.stdout.flush()?;
            }
            Ok(None) => break,
            Err(e) if e.is_retriable() || matches!(e, Error::WatchLagged { .. }) => {
                if seen_revision > 0 {
                    options.start_revision = seen_revision + 1;
                }
                watcher = loop {
                    match client.watch(key.clone(), options.clone()).await {
                        Ok(w) => break w,
                        Err(e) if e.is_retriable() || e == Error::Timeout => {
                            tokio::time::sleep(RECONNECT_BACKOFF).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CtlError::new(
        ExitCode::Interrupted,
        "watch is canceled by the server",
    ))
}
