//! `watch -i`: watch requests read line by line from standard input, as
//! etcdctl 3.4 does.
//!
//! Each line is `watch [--prefix] [--rev N] [--prev-kv] <key> [range_end]
//! [-- command args...]`, which starts one more watch, or `progress`, which
//! asks for a progress notification for every watch. Events of all watches
//! are printed as they come, in the output format of `watch`. A line that
//! is not a watch request is reported on stderr and skipped; a malformed
//! flag ends cairnctl (exit code 128), and so does the end of the input
//! (exit code 3, "Error reading watch request line: EOF"), as in etcdctl.
//!
//! Lines must be read while events are printed. The [`Io`] handed to
//! cairnctl offers only a blocking reader, so this mode reads the process's
//! own standard input on a thread of its own and leaves `Io::stdin` unused.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

use tokio::sync::mpsc;

use crate::ctl::args::GlobalArgs;
use crate::ctl::exit::CtlError;
use crate::ctl::print::Printer;
use crate::ctl::run::{connect, Io};
use crate::ctl::txn_parse::argify;
use crate::ctl::watch::{cancel_text, run_per_event};
use crate::{limits, Client, WatchOptions, WatchResponse};

/// The flags a request line may carry (etcdctl's interactive flag set).
#[derive(Debug, Default, PartialEq, Eq)]
struct LineFlags {
    prefix: bool,
    rev: i64,
    prev_kv: bool,
}

/// A `watch` line taken apart: flags, the arguments before `--`, and the
/// command after it.
#[derive(Debug, PartialEq, Eq)]
struct WatchLine {
    flags: LineFlags,
    args: Vec<Vec<u8>>,
    exec: Vec<Vec<u8>>,
}

/// What the loop hears from a watch's task.
enum FromWatch {
    Response(usize, WatchResponse),
    Ended(usize),
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses the words after `watch` as etcdctl's flag library does: flags
/// anywhere before `--`, everything after it the command. The error is the
/// library's message.
fn parse_watch_line(words: &[Vec<u8>]) -> Result<WatchLine, String> {
    let mut flags = LineFlags::default();
    let mut args = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = String::from_utf8_lossy(&words[i]).into_owned();
        i += 1;
        if word == "--" {
            return Ok(WatchLine {
                flags,
                args,
                exec: words[i..].to_vec(),
            });
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let boolean = |value: Option<String>| match value {
                None => Ok(true),
                Some(v) => parse_go_bool(&v).ok_or_else(|| {
                    format!(
                        "invalid argument {v:?} for \"--{name}\" flag: strconv.ParseBool: \
                         parsing {v:?}: invalid syntax"
                    )
                }),
            };
            match name {
                "prefix" => flags.prefix = boolean(value)?,
                "prev-kv" => flags.prev_kv = boolean(value)?,
                "interactive" => {
                    boolean(value)?;
                }
                "rev" => {
                    let v = match value {
                        Some(v) => v,
                        None if i < words.len() => {
                            i += 1;
                            String::from_utf8_lossy(&words[i - 1]).into_owned()
                        }
                        None => return Err("flag needs an argument: --rev".into()),
                    };
                    flags.rev = v.parse().map_err(|_| {
                        format!(
                            "invalid argument {v:?} for \"--rev\" flag: strconv.ParseInt: \
                             parsing {v:?}: invalid syntax"
                        )
                    })?;
                }
                "help" => return Err("pflag: help requested".into()),
                _ => return Err(format!("unknown flag: --{name}")),
            }
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for c in short.chars() {
                match c {
                    'i' => {}
                    'h' => return Err("pflag: help requested".into()),
                    other => return Err(format!("unknown shorthand flag: '{other}' in {word}")),
                }
            }
        } else {
            args.push(words[i - 1].clone());
        }
    }
    Ok(WatchLine {
        flags,
        args,
        exec: Vec::new(),
    })
}

/// Reads the process's standard input line by line on its own thread; the
/// channel closes at the end of the input (a last line without a newline
/// is dropped with it, as Go's `ReadString` reports it with the error).
fn read_lines() -> Result<mpsc::Receiver<std::io::Result<Vec<u8>>>, CtlError> {
    let (tx, rx) = mpsc::channel(limits::CTL_WATCH_LINES_QUEUED_MAX);
    let stdin = std::io::stdin().as_fd().try_clone_to_owned()?;
    std::thread::Builder::new()
        .name("cairnctl-watch-stdin".into())
        .spawn(move || {
            let mut reader = BufReader::new(std::fs::File::from(stdin));
            loop {
                let mut line = Vec::new();
                let read = (&mut reader)
                    .take(limits::CTL_WATCH_LINE_BYTES_MAX as u64)
                    .read_until(b'\n', &mut line);
                let sent = match read {
                    Ok(_) if line.last() == Some(&b'\n') => {
                        line.pop();
                        tx.blocking_send(Ok(line))
                    }
                    Ok(n) if n == limits::CTL_WATCH_LINE_BYTES_MAX => {
                        tx.blocking_send(Err(std::io::Error::other("line too long")))
                    }
                    Ok(_) => return,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => tx.blocking_send(Err(e)),
                };
                if sent.is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}

/// Forwards one watch's responses to the loop that prints them.
fn forward(
    client: &Client,
    n: usize,
    key: Vec<u8>,
    options: WatchOptions,
    tx: mpsc::Sender<FromWatch>,
) {
    let client = client.clone();
    tokio::spawn(async move {
        match client.watch(key, options).await {
            Ok(mut watcher) => {
                while let Ok(Some(r)) = watcher.next().await {
                    if tx.send(FromWatch::Response(n, r)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let r = WatchResponse {
                    canceled: true,
                    cancel_reason: e.to_string(),
                    ..WatchResponse::default()
                };
                let _ = tx.send(FromWatch::Response(n, r)).await;
            }
        }
        let _ = tx.send(FromWatch::Ended(n)).await;
    });
}

/// Runs `watch -i` until the input ends or a line is malformed.
pub(crate) async fn run(g: &GlobalArgs, printer: Printer, io: &mut Io<'_>) -> Result<(), CtlError> {
    let env = |name| {
        std::env::var_os(name)
            .map(OsString::into_vec)
            .unwrap_or_default()
    };
    let (env_key, env_end) = (env("CAIRNCTL_WATCH_KEY"), env("CAIRNCTL_WATCH_RANGE_END"));
    let client = connect(g, &g.endpoints).await?;
    let mut lines = read_lines()?;
    let (tx, mut from_watches) = mpsc::channel(limits::CTL_WATCH_RESPONSES_QUEUED_MAX);
    // Per watch started: its command, and whether it is still open.
    let mut watches: Vec<(Vec<OsString>, bool)> = Vec::new();
    loop {
        tokio::select! {
            // What has arrived is printed before the next line is acted on.
            biased;
            Some(msg) = from_watches.recv() => match msg {
                FromWatch::Response(n, r) => {
                    if r.canceled {
                        writeln!(io.stderr, "watch was canceled ({})", cancel_text(&r))?;
                    }
                    if r.is_progress_notify() {
                        writeln!(io.stdout, "progress notify: {}", r.header.revision)?;
                    }
                    printer.watch(io.stdout, &r)?;
                    io.stdout.flush()?;
                    if !watches[n].0.is_empty() {
                        run_per_event(&watches[n].0, &r, io).await?;
                    }
                }
                FromWatch::Ended(n) => watches[n].1 = false,
            },
            line = lines.recv() => {
                let line = match line {
                    Some(Ok(line)) => line,
                    Some(Err(e)) => {
                        return Err(CtlError::invalid_input(format!(
                            "Error reading watch request line: {e}"
                        )))
                    }
                    None => {
                        return Err(CtlError::invalid_input(
                            "Error reading watch request line: EOF",
                        ))
                    }
                };
                let text = String::from_utf8_lossy(&line).into_owned();
                let words = argify(&line)?;
                match words.first().map(Vec::as_slice) {
                    None => {
                        writeln!(io.stderr, "Invalid command: {text} (watch and progress supported)")?;
                    }
                    Some(b"watch") => {
                        if words.len() < 2 && env_key.is_empty() {
                            writeln!(
                                io.stderr,
                                "Invalid command {text} (command type or key is not provided)"
                            )?;
                            continue;
                        }
                        let request = watch_request(&words[1..], &env_key, &env_end)?;
                        let (key, options, exec) = match request {
                            Ok(r) => r,
                            Err(reason) => {
                                writeln!(io.stderr, "Invalid command {text} ({reason})")?;
                                continue;
                            }
                        };
                        forward(&client, watches.len(), key, options, tx.clone());
                        watches.push((exec, true));
                    }
                    Some(b"progress") => {
                        let r = client.watch_progress().await?;
                        for _ in watches.iter().filter(|w| w.1) {
                            writeln!(io.stdout, "progress notify: {}", r.header.revision)?;
                        }
                        io.stdout.flush()?;
                    }
                    Some(_) => {
                        writeln!(io.stderr, "Invalid command {text} (only support watch)")?;
                    }
                }
            }
        }
    }
}

/// The watch a `watch` line asks for: `Err(CtlError)` ends cairnctl
/// (etcdctl exits on these), `Ok(Err(reason))` skips the line.
#[allow(clippy::type_complexity)]
fn watch_request(
    words: &[Vec<u8>],
    env_key: &[u8],
    env_end: &[u8],
) -> Result<Result<(Vec<u8>, WatchOptions, Vec<OsString>), String>, CtlError> {
    if words.last().is_some_and(|w| w == b"--") {
        return Err(CtlError::bad_args(
            "bad number of arguments (found separator --, but no commands)",
        ));
    }
    let line = parse_watch_line(words).map_err(CtlError::bad_args)?;
    let has_exec = !line.exec.is_empty();
    if !has_exec && env_key.is_empty() && line.args.is_empty() {
        return Err(CtlError::bad_args("bad number of arguments"));
    }
    if !has_exec && !line.args.is_empty() && !env_key.is_empty() {
        return Err(CtlError::bad_args(
            "bad number of arguments (found conflicting environment key)",
        ));
    }
    let mut args = Vec::new();
    if !env_key.is_empty() {
        args.push(env_key.to_vec());
        if !env_end.is_empty() {
            args.push(env_end.to_vec());
        }
    }
    args.extend(line.args);
    let mut options = WatchOptions::new();
    // etcdctl reads a range end only from exactly two arguments; a third
    // and later ones are ignored.
    match args.as_slice() {
        [] => return Ok(Err("bad number of arguments".into())),
        [_, end] => {
            if line.flags.prefix {
                return Ok(Err(
                    "`range_end` and `--prefix` are mutually exclusive".into()
                ));
            }
            options = options.with_range_end(end.clone());
        }
        _ => {}
    }
    if line.flags.prefix {
        options = options.with_prefix();
    }
    options.start_revision = line.flags.rev;
    options.prev_kv = line.flags.prev_kv;
    let exec = line.exec.into_iter().map(OsString::from_vec).collect();
    Ok(Ok((args[0].clone(), options, exec)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::exit::ExitCode;

    fn words(line: &str) -> Vec<Vec<u8>> {
        argify(line.as_bytes()).unwrap()
    }

    #[test]
    fn flags_go_anywhere_before_the_separator() {
        let l = parse_watch_line(&words("foo --rev 3 bar --prev-kv -- echo --rev")).unwrap();
        assert_eq!(
            l,
            WatchLine {
                flags: LineFlags {
                    prefix: false,
                    rev: 3,
                    prev_kv: true
                },
                args: words("foo bar"),
                exec: words("echo --rev"),
            }
        );
        let l = parse_watch_line(&words("--prefix=false --rev=-1 -i k")).unwrap();
        assert_eq!((l.flags.prefix, l.flags.rev), (false, -1));
    }

    #[test]
    fn bad_flags_read_like_pflag() {
        let err = |line: &str| parse_watch_line(&words(line)).unwrap_err();
        assert_eq!(err("--bogus foo"), "unknown flag: --bogus");
        assert_eq!(err("-x foo"), "unknown shorthand flag: 'x' in -x");
        assert_eq!(
            err("--rev abc foo"),
            "invalid argument \"abc\" for \"--rev\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(err("foo --rev"), "flag needs an argument: --rev");
        assert_eq!(
            err("--prefix=maybe foo"),
            "invalid argument \"maybe\" for \"--prefix\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
    }

    #[test]
    fn requests_follow_etcdctl() {
        let req = |line: &str| watch_request(&words(line), b"", b"");
        let (key, options, exec) = req("a b").unwrap().unwrap();
        assert_eq!(key, b"a");
        assert_eq!(options.range, crate::KeyRange::End(b"b".to_vec()));
        assert!(exec.is_empty());
        assert_eq!(
            req("a b --prefix").unwrap().unwrap_err(),
            "`range_end` and `--prefix` are mutually exclusive"
        );
        assert_eq!(
            req("foo --").unwrap_err().message,
            "bad number of arguments (found separator --, but no commands)"
        );
        assert_eq!(req("--prefix").unwrap_err().code, ExitCode::BadArgs);
        assert_eq!(
            req("-- echo").unwrap().unwrap_err(),
            "bad number of arguments"
        );
        let (key, options, _) = watch_request(&words("--prev-kv"), b"k", b"z")
            .unwrap()
            .unwrap();
        assert_eq!(key, b"k");
        assert_eq!(options.range, crate::KeyRange::End(b"z".to_vec()));
        assert!(options.prev_kv);
        assert_eq!(
            watch_request(&words("foo"), b"k", b"").unwrap_err().message,
            "bad number of arguments (found conflicting environment key)"
        );
    }
}
