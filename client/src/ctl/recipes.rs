//! `lock <name> [command...]` and `elect <name> [proposal]` / `elect -l`:
//! etcdctl's concurrency commands, over [`crate::concurrency`].
//!
//! Both hold what they took (a lock, leadership) until interrupted
//! (SIGINT or SIGTERM), then release it and exit 0; `lock` with a command
//! releases as soon as the command exits.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use clap::{ArgAction, Args};

use crate::concurrency::{Election, Lock, Observer, Session};
use crate::ctl::args::GlobalArgs;
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::print::Printer;
use crate::ctl::run::{connect, Io};
use crate::{KeyValue, RangeResponse};

/// etcdctl's default session TTL for `lock` and `elect`, in seconds.
const SESSION_TTL_DEFAULT_S: &str = "10";

/// `lock <lockname> [exec-command arg1 arg2 ...]`.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Timeout for session.
    #[arg(long, default_value = SESSION_TTL_DEFAULT_S)]
    pub ttl: i64,
    /// The lock name, then optionally a command to run while holding it.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// `elect <election-name> [proposal]`.
#[derive(Debug, Clone, Args)]
pub struct ElectArgs {
    /// Observation mode: print the leader as it changes.
    #[arg(short = 'l', long = "listen", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub listen: bool,
    /// Timeout for session.
    #[arg(long, default_value = SESSION_TTL_DEFAULT_S)]
    pub ttl: i64,
    /// The election name, then the proposal (without `-l`).
    pub args: Vec<OsString>,
}

/// Resolves on SIGINT or SIGTERM; never if the handlers cannot be set (the
/// default action then ends the process anyway).
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

fn session_expired() -> CtlError {
    CtlError::new(ExitCode::Error, "session expired")
}

pub(crate) async fn lock(g: &GlobalArgs, a: &LockArgs, io: &mut Io<'_>) -> Result<(), CtlError> {
    let Some((name, command)) = a.args.split_first() else {
        return Err(CtlError::bad_args(
            "lock takes a lock name argument and an optional command to execute",
        ));
    };
    // `lock name -- cmd ...` as etcdctl needs for commands with flags.
    let command = match command.split_first() {
        Some((dashes, rest)) if dashes == "--" => rest,
        _ => command,
    };
    let client = connect(g, &g.endpoints).await?;
    let mut session = Session::new(&client, a.ttl).await?;
    let mut lock = Lock::new(&session, name.as_bytes());
    tokio::select! {
        taken = lock.lock() => taken?,
        _ = interrupted() => {
            let _ = session.close().await;
            return Ok(());
        }
    }
    let key = String::from_utf8_lossy(lock.key()).into_owned();
    let outcome = if let Some((program, program_args)) = command.split_first() {
        io.stdout.flush()?;
        let mut child = tokio::process::Command::new(program);
        child
            .args(program_args)
            .env("CAIRN_LOCK_KEY", &key)
            .env("CAIRN_LOCK_REV", lock.revision().to_string());
        run_command(&mut child, program).await
    } else {
        // etcdctl 3.4 prints the key and an empty line, then holds.
        writeln!(io.stdout, "{key}\n")?;
        io.stdout.flush()?;
        tokio::select! {
            _ = interrupted() => Ok(()),
            _ = session.expired() => Err(session_expired()),
        }
    };
    let _ = lock.unlock().await;
    let _ = session.close().await;
    outcome
}

/// Runs a command with cairnctl's stdout and stderr; a failure reads as
/// Go's `exec` errors do in etcdctl's messages.
async fn run_command(
    child: &mut tokio::process::Command,
    program: &OsString,
) -> Result<(), CtlError> {
    let status = child.status().await.map_err(|e| {
        let message = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "exec: {}: executable file not found in $PATH",
                crate::ctl::gofmt::quote(program.as_bytes())
            )
        } else {
            format!("exec: {e}")
        };
        CtlError::new(ExitCode::Error, message)
    })?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(CtlError::new(
            ExitCode::Error,
            format!("exit status {code}"),
        )),
        None => Err(CtlError::new(ExitCode::Error, "signal: killed")),
    }
}

/// Prints a leader as etcdctl does: as the answer to a get of its key.
fn print_leader(printer: Printer, io: &mut Io<'_>, kv: KeyValue) -> Result<(), CtlError> {
    let r = RangeResponse {
        kvs: vec![kv],
        count: 1,
        ..RangeResponse::default()
    };
    printer.get(io.stdout, &r)?;
    io.stdout.flush()?;
    Ok(())
}

pub(crate) async fn elect(
    g: &GlobalArgs,
    printer: Printer,
    a: &ElectArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    let (name, proposal) = match a.args.as_slice() {
        [name] => (name, None),
        [name, proposal] => (name, Some(proposal)),
        _ => {
            return Err(CtlError::bad_args(
                "elect takes one election name argument and an optional proposal argument",
            ))
        }
    };
    match (proposal, a.listen) {
        (Some(_), true) => return Err(CtlError::bad_args("proposal given but -l is set")),
        (None, false) => return Err(CtlError::bad_args("no proposal argument but -l not set")),
        _ => {}
    }
    let client = connect(g, &g.endpoints).await?;
    let Some(proposal) = proposal else {
        let mut observer = Observer::new(&client, name.as_bytes());
        loop {
            tokio::select! {
                leader = observer.next() => print_leader(printer, io, leader?)?,
                _ = interrupted() => return Ok(()),
            }
        }
    };
    let mut session = Session::new(&client, a.ttl).await?;
    let mut election = Election::new(&session, name.as_bytes());
    tokio::select! {
        won = election.campaign(proposal.as_bytes()) => won?,
        _ = interrupted() => {
            let _ = session.close().await;
            return Ok(());
        }
    }
    print_leader(printer, io, election.leader().await?)?;
    let outcome = tokio::select! {
        _ = interrupted() => Ok(()),
        _ = session.expired() => Err(session_expired()),
    };
    let _ = election.resign().await;
    let _ = session.close().await;
    outcome
}
