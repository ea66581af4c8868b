//! Running one cairnctl command: connect, send, print.

use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;

use crate::ctl::args::{AlarmCommand, Cli, Command, EndpointArgs, EndpointCommand, GlobalArgs};
use crate::ctl::args::{CompactionArgs, TxnArgs};
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::gofmt;
use crate::ctl::kv_args::{del_parts, get_parts, put_parts, GetArgs};
use crate::ctl::print::{EndpointHealth, EndpointStatus, OutputFormat, Printer, Shape};
use crate::ctl::txn_parse::read_txn;
use crate::limits::{ENDPOINTS_MAX, STDIN_BYTES_MAX};
use crate::{
    AlarmMember, Client, ConnectOptions, Endpoint, Error, GetOptions, Keepalive, TlsOptions,
};

/// Where a command reads and writes.
pub struct Io<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// cairnctl's version line (`version` command).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The etcd API version whose surface cairnctl speaks.
pub const API_VERSION: &str = "3.5";

/// Parses `args` (program name first), runs the command and returns the
/// process exit code; errors are printed to `io.stderr` as etcdctl does.
pub async fn main_with(args: Vec<OsString>, io: &mut Io<'_>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // cobra exits with 1 for unknown commands and flags.
                _ => ExitCode::Error as i32,
            };
            let text = e.render().to_string();
            let target: &mut dyn Write = if code == 0 { io.stdout } else { io.stderr };
            let _ = target.write_all(text.as_bytes());
            return code;
        }
    };
    let outcome = run(cli, io).await;
    let flushed = io.stdout.flush();
    match outcome.and(flushed.map_err(CtlError::from)) {
        Ok(()) => 0,
        Err(e) => {
            if !e.message.is_empty() {
                let _ = writeln!(io.stderr, "{e}");
            }
            e.code as i32
        }
    }
}

/// Runs a parsed command.
pub async fn run(mut cli: Cli, io: &mut Io<'_>) -> Result<(), CtlError> {
    use crate::ctl::snapshot::SnapshotCommand;
    let offline = matches!(
        cli.command,
        Command::Version
            | Command::Snapshot(SnapshotCommand::Status(_) | SnapshotCommand::Restore(_))
    );
    if !offline {
        crate::ctl::auth::ask_login_password(&mut cli.global, io)?;
    }
    let g = &cli.global;
    let format = OutputFormat::parse(&g.write_out)?;
    let printer = Printer::new(format, g.hex);
    if let Command::Version = cli.command {
        writeln!(io.stdout, "cairnctl version: {VERSION}")?;
        writeln!(io.stdout, "API version: {API_VERSION}")?;
        return Ok(());
    }
    check_unsupported_flags(g)?;
    match cli.command {
        Command::Put(a) => {
            printer.require(Shape::Put)?;
            let (key, value, options) = put_parts(&a, || read_stdin(io.stdin))?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.put(key, value, options).await?;
            printer.put(io.stdout, &r)
        }
        Command::Get(a) => get(g, printer, &a, io).await,
        Command::Del(a) => {
            printer.require(Shape::Del)?;
            let (key, options) = del_parts(&a)?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.delete(key, options).await?;
            printer.del(io.stdout, &r)
        }
        Command::Txn(a) => txn(g, printer, &a, io).await,
        Command::Compaction(a) => compaction(g, &a, io).await,
        Command::Endpoint(EndpointCommand::Health(a)) => endpoint_health(g, printer, &a, io).await,
        Command::Endpoint(EndpointCommand::Status(a)) => endpoint_status(g, printer, &a, io).await,
        Command::Alarm(c) => {
            printer.require(Shape::Alarm)?;
            let client = connect(g, &g.endpoints).await?;
            let r = match c {
                AlarmCommand::List => client.alarm_list().await?,
                AlarmCommand::Disarm => client.alarm_disarm(AlarmMember::default()).await?,
            };
            printer.alarm(io.stdout, &r)
        }
        Command::Member(c) => crate::ctl::cluster::member(g, printer, c, io).await,
        Command::Endpoint(EndpointCommand::Hashkv(a)) => {
            crate::ctl::cluster::endpoint_hashkv(g, printer, &a, io).await
        }
        Command::Defrag(a) => crate::ctl::cluster::defrag(g, &a, io).await,
        Command::MoveLeader(a) => crate::ctl::cluster::move_leader(g, printer, &a, io).await,
        Command::Lease(c) => {
            printer.require(Shape::Lease)?;
            crate::ctl::lease::run(g, printer, c, io).await
        }
        Command::Watch(a) => {
            printer.require(Shape::Watch)?;
            crate::ctl::watch::run(g, printer, &a, io).await
        }
        Command::Snapshot(c) => crate::ctl::snapshot::run(g, format, c, io).await,
        Command::Lock(a) => crate::ctl::recipes::lock(g, &a, io).await,
        Command::Elect(a) => crate::ctl::recipes::elect(g, printer, &a, io).await,
        Command::User(c) => crate::ctl::auth::user(g, printer, c, io).await,
        Command::Role(c) => crate::ctl::auth::role(g, printer, c, io).await,
        Command::Auth(c) => crate::ctl::auth::auth(g, printer, c, io).await,
        Command::Version => Ok(()),
    }
}

/// Flags etcdctl refuses before it connects.
fn check_unsupported_flags(g: &GlobalArgs) -> Result<(), CtlError> {
    for (name, value) in [("cert", &g.cert), ("key", &g.key), ("cacert", &g.cacert)] {
        if value.as_deref() == Some("") {
            return Err(CtlError::bad_args(format!(
                "empty string is passed to --{name} option"
            )));
        }
    }
    Ok(())
}

fn options(g: &GlobalArgs) -> ConnectOptions {
    ConnectOptions::default()
        .with_dial_timeout(g.dial_timeout)
        .with_request_timeout(g.command_timeout)
        .with_keepalive(Some(Keepalive {
            time: g.keepalive_time,
            timeout: g.keepalive_timeout,
        }))
}

/// TLS as etcdctl sets it up: on once a CA, a client certificate or
/// `--insecure-skip-tls-verify` is given, or `--insecure-transport=false`.
fn tls_options(g: &GlobalArgs) -> Option<TlsOptions> {
    let wanted = g.cacert.is_some()
        || g.cert.is_some()
        || g.key.is_some()
        || g.insecure_skip_tls_verify
        || !g.insecure_transport;
    wanted.then(|| TlsOptions {
        ca_file: g.cacert.as_ref().map(PathBuf::from),
        cert_file: g.cert.as_ref().map(PathBuf::from),
        key_file: g.key.as_ref().map(PathBuf::from),
        insecure_skip_verify: g.insecure_skip_tls_verify,
    })
}

pub(crate) async fn connect(g: &GlobalArgs, endpoints: &[String]) -> Result<Client, CtlError> {
    let endpoints: Vec<&str> = endpoints.iter().map(|e| e.trim()).collect();
    let credentials = crate::ctl::auth::credentials(g);
    Client::connect_with_auth(endpoints, options(g), tls_options(g), credentials)
        .await
        .map_err(|e| match e {
            // A bad endpoint is a bad argument, as etcdctl treats a bad config.
            Error::InvalidArgument(m) => CtlError::bad_args(m),
            // etcdctl logs in while it builds its client, and reports a
            // failure there as a bad connection.
            Error::AuthFailed => CtlError::new(ExitCode::BadConnection, e.to_string()),
            other => CtlError::from(other),
        })
}

/// The whole of stdin, for `put <key>` without a value.
fn read_stdin(stdin: &mut dyn BufRead) -> Option<Vec<u8>> {
    let mut value = Vec::new();
    let mut limited = Read::take(stdin, STDIN_BYTES_MAX as u64 + 1);
    limited.read_to_end(&mut value).ok()?;
    if value.len() > STDIN_BYTES_MAX {
        return None;
    }
    Some(value)
}

async fn get(
    g: &GlobalArgs,
    mut printer: Printer,
    a: &GetArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    printer.require(Shape::Get)?;
    let (key, options) = get_parts(a)?;
    if a.count_only && printer.format != OutputFormat::Fields {
        return Err(CtlError::bad_args(
            "--count-only is only for `--write-out=fields`",
        ));
    }
    if a.print_value_only {
        if printer.format != OutputFormat::Simple {
            return Err(CtlError::bad_args(
                "print-value-only is only for `--write-out=simple`",
            ));
        }
        printer.value_only = true;
    }
    let client = connect(g, &g.endpoints).await?;
    let r = client.get(key, options).await?;
    printer.get(io.stdout, &r)
}

async fn txn(
    g: &GlobalArgs,
    printer: Printer,
    a: &TxnArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    printer.require(Shape::Txn)?;
    let prompts: Option<&mut dyn Write> = if a.interactive {
        Some(&mut *io.stdout)
    } else {
        None
    };
    let txn = read_txn(io.stdin, prompts)?;
    let client = connect(g, &g.endpoints).await?;
    let r = client.txn(txn).await?;
    printer.txn(io.stdout, &r)
}

async fn compaction(g: &GlobalArgs, a: &CompactionArgs, io: &mut Io<'_>) -> Result<(), CtlError> {
    let [revision] = a.args.as_slice() else {
        return Err(CtlError::bad_args("compaction command needs 1 argument"));
    };
    let revision: i64 = revision.parse().map_err(|_| {
        CtlError::new(
            ExitCode::Error,
            format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                gofmt::quote(revision.as_bytes())
            ),
        )
    })?;
    let client = connect(g, &g.endpoints).await?;
    client.compact(revision, a.physical).await?;
    writeln!(io.stdout, "compacted revision {revision}")?;
    Ok(())
}

/// The endpoints an endpoint command covers: `--endpoints`, or with
/// `--cluster` every member's client URLs.
pub(crate) async fn target_endpoints(
    g: &GlobalArgs,
    a: &EndpointArgs,
) -> Result<Vec<String>, CtlError> {
    if !a.cluster {
        // Parsing checks the list (and its length) once for all of them.
        Endpoint::parse_list(&g.endpoints).map_err(|e| CtlError::bad_args(e.to_string()))?;
        return Ok(g.endpoints.iter().map(|e| e.trim().to_string()).collect());
    }
    let client = connect(g, &g.endpoints).await?;
    let members = client.member_list().await.map_err(|e| {
        CtlError::new(
            ExitCode::Error,
            format!(
                "failed to fetch endpoints from etcd cluster member list: {}",
                CtlError::from(e).message
            ),
        )
    })?;
    let urls: Vec<String> = members
        .members
        .into_iter()
        .flat_map(|m| m.client_urls)
        .collect();
    // One connection per endpoint is opened at once: keep that bounded.
    if urls.len() > ENDPOINTS_MAX {
        return Err(CtlError::new(
            ExitCode::Error,
            format!(
                "the cluster lists {} client URLs, more than the {ENDPOINTS_MAX} cairnctl checks",
                urls.len()
            ),
        ));
    }
    Ok(urls)
}

/// One endpoint's health, as etcdctl 3.5 checks it: a linearizable read
/// must succeed (permission denied counts: it went through consensus), and
/// no alarm may be active.
async fn check_health(g: GlobalArgs, endpoint: String) -> EndpointHealth {
    let mut health = EndpointHealth {
        endpoint: endpoint.clone(),
        health: false,
        took: String::new(),
        error: String::new(),
    };
    let client = match connect(&g, std::slice::from_ref(&endpoint)).await {
        Ok(c) => c,
        Err(e) => {
            health.error = e.message;
            return health;
        }
    };
    let started = Instant::now();
    let read = client.get("health", GetOptions::new()).await;
    health.took = gofmt::duration(started.elapsed());
    match read {
        Ok(_) | Err(Error::PermissionDenied) => health.health = true,
        Err(e) => {
            health.error = CtlError::from(e).message;
            return health;
        }
    }
    match client.alarm_list().await {
        Ok(r) if !r.alarms.is_empty() => {
            health.health = false;
            health.error = "Active Alarm(s): ".to_string();
            for a in &r.alarms {
                let name = match a.alarm {
                    crate::AlarmType::None => "UNKNOWN",
                    other => other.name(),
                };
                health.error.push_str(name);
                health.error.push(' ');
            }
        }
        Ok(_) => {}
        Err(_) => {
            health.health = false;
            health.error = "Unable to fetch the alarm list".to_string();
        }
    }
    health
}

async fn endpoint_health(
    g: &GlobalArgs,
    printer: Printer,
    a: &EndpointArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    printer.require(Shape::EndpointHealth)?;
    let endpoints = target_endpoints(g, a).await?;
    let mut checks = tokio::task::JoinSet::new();
    for (index, endpoint) in endpoints.into_iter().enumerate() {
        let g = g.clone();
        checks.spawn(async move { (index, check_health(g, endpoint).await) });
    }
    let mut results = Vec::new();
    while let Some(done) = checks.join_next().await {
        let (index, health) = done.map_err(|e| CtlError::new(ExitCode::Error, e.to_string()))?;
        results.push((index, health));
    }
    results.sort_by_key(|(index, _)| *index);
    let list: Vec<EndpointHealth> = results.into_iter().map(|(_, h)| h).collect();
    printer.endpoint_health(io.stdout, io.stderr, &list)?;
    if list.iter().any(|h| !h.error.is_empty()) {
        return Err(CtlError::new(ExitCode::Error, "unhealthy cluster"));
    }
    Ok(())
}

async fn endpoint_status(
    g: &GlobalArgs,
    printer: Printer,
    a: &EndpointArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    printer.require(Shape::EndpointStatus)?;
    let endpoints = target_endpoints(g, a).await?;
    let mut list = Vec::new();
    let mut failed = false;
    for endpoint in endpoints {
        let status = match connect(g, std::slice::from_ref(&endpoint)).await {
            Ok(client) => client.status().await.map_err(CtlError::from),
            Err(e) => Err(e),
        };
        match status {
            Ok(status) => list.push(EndpointStatus { endpoint, status }),
            Err(e) => {
                failed = true;
                writeln!(
                    io.stderr,
                    "Failed to get the status of endpoint {endpoint} ({})",
                    e.message
                )?;
            }
        }
    }
    printer.endpoint_status(io.stdout, &list)?;
    if failed {
        // etcdctl exits with 1 here without another message.
        return Err(CtlError::new(ExitCode::Error, ""));
    }
    Ok(())
}
