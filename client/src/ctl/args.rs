//! cairnctl's command line: etcdctl's global flags and commands.
//!
//! Global flags may be given anywhere and default from `CAIRNCTL_<FLAG>`
//! environment variables (`CAIRNCTL_ENDPOINTS`, `CAIRNCTL_WRITE_OUT`, ...),
//! as etcdctl's do from `ETCDCTL_<FLAG>`. A command etcdctl has and cairnctl
//! does not yet is added as one more [`Command`] variant with its own
//! argument struct and handler.

use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::ctl::kv_args::{DelArgs, GetArgs, PutArgs};

/// cairnctl: a simple command line client for cairn.
#[derive(Debug, Parser)]
#[command(
    name = "cairnctl",
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Endpoints to connect to, comma-separated.
    #[arg(
        long,
        global = true,
        env = "CAIRNCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// Dial timeout for client connections.
    #[arg(long, global = true, env = "CAIRNCTL_DIAL_TIMEOUT", default_value = "2s", value_parser = parse_go_duration)]
    pub dial_timeout: Duration,
    /// Timeout for short running command (excluding dial timeout).
    #[arg(long, global = true, env = "CAIRNCTL_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_go_duration)]
    pub command_timeout: Duration,
    /// Keepalive time for client connections.
    #[arg(long, global = true, env = "CAIRNCTL_KEEPALIVE_TIME", default_value = "2s", value_parser = parse_go_duration)]
    pub keepalive_time: Duration,
    /// Keepalive timeout for client connections.
    #[arg(long, global = true, env = "CAIRNCTL_KEEPALIVE_TIMEOUT", default_value = "6s", value_parser = parse_go_duration)]
    pub keepalive_timeout: Duration,
    /// Set the output format (fields, json, simple, table).
    #[arg(
        short = 'w',
        long = "write-out",
        global = true,
        env = "CAIRNCTL_WRITE_OUT",
        default_value = "simple"
    )]
    pub write_out: String,
    /// Print byte strings as hex encoded strings.
    #[arg(long, global = true, env = "CAIRNCTL_HEX", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub hex: bool,
    /// Enable client-side debug logging (accepted for compatibility).
    #[arg(long, global = true, env = "CAIRNCTL_DEBUG", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub debug: bool,
    /// Username[:password] for authentication (prompt if password is not
    /// supplied).
    #[arg(long, global = true, env = "CAIRNCTL_USER")]
    pub user: Option<String>,
    /// Password for authentication (if this option is used, --user option
    /// shouldn't include password).
    #[arg(long, global = true, env = "CAIRNCTL_PASSWORD")]
    pub password: Option<String>,
    /// Identify secure client using this TLS certificate file.
    #[arg(long, global = true, env = "CAIRNCTL_CERT")]
    pub cert: Option<String>,
    /// Identify secure client using this TLS key file.
    #[arg(long, global = true, env = "CAIRNCTL_KEY")]
    pub key: Option<String>,
    /// Verify certificates of TLS-enabled secure servers using this CA bundle.
    #[arg(long, global = true, env = "CAIRNCTL_CACERT")]
    pub cacert: Option<String>,
    /// Skip server certificate verification.
    #[arg(long, global = true, env = "CAIRNCTL_INSECURE_SKIP_TLS_VERIFY", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub insecure_skip_tls_verify: bool,
    /// Disable transport security for client connections.
    #[arg(long, global = true, env = "CAIRNCTL_INSECURE_TRANSPORT", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    pub insecure_transport: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Puts the given key into the store
    Put(PutArgs),
    /// Gets the key or a range of keys
    Get(GetArgs),
    /// Removes the specified key or range of keys [key, range_end)
    Del(DelArgs),
    /// Txn processes all the requests in one transaction
    Txn(TxnArgs),
    /// Compacts the event history
    Compaction(CompactionArgs),
    /// Endpoint related commands
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Alarm related commands
    #[command(subcommand)]
    Alarm(AlarmCommand),
    /// Membership related commands
    #[command(subcommand)]
    Member(MemberCommand),
    /// Lease related commands
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Watches events stream on keys or prefixes
    Watch(WatchArgs),
    /// Defragments the storage of the members with given endpoints
    Defrag(EndpointArgs),
    /// Transfers leadership to another member
    MoveLeader(PositionalArgs),
    /// Manages cairn node snapshots
    #[command(subcommand)]
    Snapshot(crate::ctl::snapshot::SnapshotCommand),
    /// Acquires a named lock
    Lock(crate::ctl::recipes::LockArgs),
    /// Observes and participates in leader election
    Elect(crate::ctl::recipes::ElectArgs),
    /// User related commands
    #[command(subcommand)]
    User(crate::ctl::auth_args::UserCommand),
    /// Role related commands
    #[command(subcommand)]
    Role(crate::ctl::auth_args::RoleCommand),
    /// Enable or disable authentication
    #[command(subcommand)]
    Auth(crate::ctl::auth_args::AuthCommand),
    /// Prints the version of cairnctl
    Version,
}

#[derive(Debug, Clone, Args)]
pub struct TxnArgs {
    /// Input transaction in interactive mode.
    #[arg(short = 'i', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub interactive: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompactionArgs {
    /// 'true' to wait for compaction to physically remove all old revisions.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub physical: bool,
    /// The revision to compact to.
    #[arg(allow_negative_numbers = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// Use all endpoints from the cluster member list.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub cluster: bool,
}

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Checks the healthiness of endpoints specified in `--endpoints` flag
    Health(EndpointArgs),
    /// Prints out the status of endpoints specified in `--endpoints` flag
    Status(EndpointArgs),
    /// Prints the KV history hash for each endpoint in --endpoints
    Hashkv(HashKvArgs),
}

#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Disarms all alarms
    Disarm,
    /// Lists all alarms
    List,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Lists all members in the cluster
    List,
    /// Adds a member into the cluster
    Add(MemberAddArgs),
    /// Removes a member from the cluster
    Remove(PositionalArgs),
    /// Updates a member in the cluster
    Update(MemberUpdateArgs),
    /// Promotes a non-voting member in the cluster
    Promote(PositionalArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MemberAddArgs {
    /// Comma separated peer URLs for the new member.
    #[arg(long, default_value = "")]
    pub peer_urls: String,
    /// Indicates if the new member is raft learner.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub learner: bool,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MemberUpdateArgs {
    /// Comma separated peer URLs for the updated member.
    #[arg(long, default_value = "")]
    pub peer_urls: String,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct HashKvArgs {
    /// Use all endpoints from the cluster member list.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub cluster: bool,
    /// Maximum revision to hash (default: all revisions).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
}

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Creates leases
    Grant(PositionalArgs),
    /// Revokes leases
    Revoke(PositionalArgs),
    /// Get lease information
    Timetolive(TimeToLiveArgs),
    /// List all active leases
    List,
    /// Keeps leases alive (renew)
    KeepAlive(KeepAliveArgs),
}

/// Positional arguments only; the handler checks their number, with
/// etcdctl's messages.
#[derive(Debug, Clone, Args)]
pub struct PositionalArgs {
    #[arg(allow_negative_numbers = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TimeToLiveArgs {
    /// Get keys attached to this lease.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub keys: bool,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct KeepAliveArgs {
    /// Resets the keep-alive time to its original value and exits immediately.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub once: bool,
    pub args: Vec<String>,
}

/// `watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Interactive mode: watch requests are read from stdin, one a line.
    #[arg(short = 'i', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub interactive: bool,
    /// Watch on a prefix if prefix is set.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub prefix: bool,
    /// Revision to start watching.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub rev: i64,
    /// Get the previous key-value pair before the event happens.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub prev_kv: bool,
    /// Get periodic watch progress notification from server.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub progress_notify: bool,
    /// Key or prefix, then optionally range_end.
    pub args: Vec<std::ffi::OsString>,
    /// A command to run for each event, with CAIRN_WATCH_* variables.
    #[arg(last = true)]
    pub exec: Vec<std::ffi::OsString>,
}

/// Parses a Go duration ("2s", "500ms", "1m30s", "1.5h", "300us").
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "time: invalid duration {}",
            crate::ctl::gofmt::quote(text.as_bytes())
        )
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total_nanos += number * unit_nanos;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_go_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_go_duration("300us").unwrap(),
            Duration::from_micros(300)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_go_duration("5").unwrap_err(),
            "time: invalid duration \"5\""
        );
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("3x").is_err());
    }

    #[test]
    fn global_flags_go_anywhere_and_have_etcdctls_defaults() {
        let cli =
            Cli::try_parse_from(["cairnctl", "get", "k", "-w", "json", "--endpoints=a:1,b:2"])
                .unwrap();
        assert_eq!(cli.global.endpoints, ["a:1", "b:2"]);
        assert_eq!(cli.global.write_out, "json");
        assert_eq!(cli.global.dial_timeout, Duration::from_secs(2));
        assert_eq!(cli.global.command_timeout, Duration::from_secs(5));
        let cli =
            Cli::try_parse_from(["cairnctl", "--hex", "endpoint", "status", "--cluster"]).unwrap();
        assert!(cli.global.hex);
        assert!(matches!(
            cli.command,
            Command::Endpoint(EndpointCommand::Status(EndpointArgs { cluster: true }))
        ));
        assert!(Cli::try_parse_from(["cairnctl", "bogus"]).is_err());
        assert!(Cli::try_parse_from(["cairnctl", "txn", "x"]).is_err());
    }
}
