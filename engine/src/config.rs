//! The `cairn` command line: etcd's flag names and defaults, so an etcd
//! operator's habits carry over. With no flags at all the server is a
//! single-member cluster on 127.0.0.1:2379 with its data in `./default.cairn`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::limits;

/// Flags of the `cairn` binary. Names, meanings and defaults follow etcd's.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cairn",
    version,
    about = "cairn: a replicated, strongly consistent key-value store"
)]
pub struct Config {
    /// Human-readable name for this member.
    #[arg(long, default_value = "default", env = "CAIRN_NAME")]
    pub name: String,

    /// Path to the data directory (default: `<name>.cairn`).
    #[arg(long, env = "CAIRN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// URLs to listen on for client traffic (comma-separated).
    #[arg(
        long,
        default_value = "http://127.0.0.1:2379",
        env = "CAIRN_LISTEN_CLIENT_URLS"
    )]
    pub listen_client_urls: String,

    /// Client URLs advertised to the rest of the cluster.
    #[arg(
        long,
        default_value = "http://127.0.0.1:2379",
        env = "CAIRN_ADVERTISE_CLIENT_URLS"
    )]
    pub advertise_client_urls: String,

    /// URLs to listen on for peer traffic.
    #[arg(
        long,
        default_value = "http://127.0.0.1:2380",
        env = "CAIRN_LISTEN_PEER_URLS"
    )]
    pub listen_peer_urls: String,

    /// This member's peer URLs, advertised to the rest of the cluster.
    #[arg(
        long,
        default_value = "http://127.0.0.1:2380",
        env = "CAIRN_INITIAL_ADVERTISE_PEER_URLS"
    )]
    pub initial_advertise_peer_urls: String,

    /// Initial cluster configuration for bootstrapping: `name=peer-url,...`
    /// (default: this member alone).
    #[arg(long, env = "CAIRN_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,

    /// `new` to bootstrap a cluster, `existing` to join one.
    #[arg(long, default_value = "new", env = "CAIRN_INITIAL_CLUSTER_STATE")]
    pub initial_cluster_state: ClusterState,

    /// Token that makes the cluster id unique among clusters bootstrapped
    /// from the same member list.
    #[arg(
        long,
        default_value = "cairn-cluster",
        env = "CAIRN_INITIAL_CLUSTER_TOKEN"
    )]
    pub initial_cluster_token: String,

    /// Number of applied entries between two snapshots.
    #[arg(long, default_value_t = limits::SNAPSHOT_COUNT_DEFAULT, env = "CAIRN_SNAPSHOT_COUNT")]
    pub snapshot_count: u64,

    /// Time between heartbeats, in milliseconds.
    #[arg(
        long = "heartbeat-interval",
        default_value_t = 100,
        env = "CAIRN_HEARTBEAT_INTERVAL"
    )]
    pub heartbeat_interval_ms: u64,

    /// Time before a follower without a leader starts an election, in
    /// milliseconds.
    #[arg(
        long = "election-timeout",
        default_value_t = 1000,
        env = "CAIRN_ELECTION_TIMEOUT"
    )]
    pub election_timeout_ms: u64,

    /// Raise the NOSPACE alarm when the store exceeds this many bytes
    /// (0 = the default of 2 GiB).
    #[arg(
        long = "quota-backend-bytes",
        default_value_t = 0,
        env = "CAIRN_QUOTA_BACKEND_BYTES"
    )]
    pub quota_backend_bytes: u64,

    /// Largest client request accepted, in bytes.
    #[arg(long = "max-request-bytes", default_value_t = limits::REQUEST_BYTES_MAX_DEFAULT, env = "CAIRN_MAX_REQUEST_BYTES")]
    pub max_request_bytes: u32,

    /// Largest number of operations in one transaction.
    #[arg(long = "max-txn-ops", default_value_t = limits::TXN_OPS_MAX_DEFAULT, env = "CAIRN_MAX_TXN_OPS")]
    pub max_txn_ops: usize,

    /// Executors (one per core) to run; 0 = every CPU this process may use.
    #[arg(long, default_value_t = 0, env = "CAIRN_CORES")]
    pub cores: usize,

    /// Do not pin executors to CPUs (for shared machines and for running
    /// several members on one host).
    #[arg(long, default_value_t = false, env = "CAIRN_NO_PIN")]
    pub no_pin: bool,

    /// Microseconds an idle executor keeps polling before it sleeps. A
    /// request that crosses executors then rarely pays for waking a
    /// sleeping thread (tens of microseconds, more in a VM); 0 sleeps at
    /// once, for hosts where idle executors must not burn CPU.
    #[arg(long, default_value_t = 100, env = "CAIRN_SPIN_US")]
    pub spin_us: u64,

    /// Bytes of published watch events an executor may leave unprocessed
    /// before the shard stops publishing to it and its watches read what
    /// they missed from history instead. Lower it to trade watch latency
    /// under overload for memory; tests set it tiny to exercise that path.
    #[arg(
        long,
        default_value_t = limits::WATCH_PUBLISH_BACKLOG_BYTES_MAX,
        env = "CAIRN_EXPERIMENTAL_WATCH_PUBLISH_BACKLOG_BYTES"
    )]
    pub experimental_watch_publish_backlog_bytes: usize,

    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", env = "CAIRN_LOG_LEVEL")]
    pub log_level: String,

    /// Interpret --auto-compaction-retention as a duration (`periodic`) or
    /// as a number of revisions to keep (`revision`).
    #[arg(long, default_value = "periodic", env = "CAIRN_AUTO_COMPACTION_MODE")]
    pub auto_compaction_mode: crate::server::compaction::Mode,

    /// Auto compaction retention: `periodic` mode takes a duration (`1h`,
    /// `30m`, or a bare number of hours), `revision` mode a number of
    /// revisions. 0 turns auto compaction off.
    #[arg(long, default_value = "0", env = "CAIRN_AUTO_COMPACTION_RETENTION")]
    pub auto_compaction_retention: String,

    /// How often `revision` mode checks whether to compact (etcd: 5m).
    /// Hidden: for tests that cannot wait five minutes.
    #[arg(
        long,
        default_value = "5m",
        hide = true,
        value_parser = crate::server::compaction::parse_duration
    )]
    pub experimental_auto_compaction_revision_interval: std::time::Duration,

    /// Check the member's data against its peers' before serving.
    #[arg(
        long,
        default_value_t = false,
        env = "CAIRN_EXPERIMENTAL_INITIAL_CORRUPT_CHECK"
    )]
    pub experimental_initial_corrupt_check: bool,

    /// How often the leader compares every member's hash of the store
    /// (`0s`: never).
    #[arg(
        long,
        default_value = "0s",
        env = "CAIRN_EXPERIMENTAL_CORRUPT_CHECK_TIME",
        value_parser = crate::server::compaction::parse_duration
    )]
    pub experimental_corrupt_check_time: std::time::Duration,

    /// Test only: at start-up, write `key=value` into this member's index
    /// alone, outside the log, to make it diverge from its peers (so the
    /// corruption check can be tested). Never use it on real data.
    #[arg(long, hide = true)]
    pub experimental_test_inject_divergent_kv: Option<String>,

    /// Client connections each executor serves at once; more are closed as
    /// soon as they are accepted.
    #[arg(
        long = "max-client-conns-per-core",
        default_value_t = limits::CLIENT_CONNS_PER_EXECUTOR_MAX_DEFAULT,
        env = "CAIRN_MAX_CLIENT_CONNS_PER_CORE"
    )]
    pub max_client_conns_per_core: usize,

    /// Milliseconds a client has to complete a request frame it started;
    /// a connection that stalls mid-frame longer is closed.
    #[arg(
        long = "frame-timeout-ms",
        default_value_t = limits::FRAME_COMPLETE_TIMEOUT_MS_DEFAULT,
        env = "CAIRN_FRAME_TIMEOUT_MS"
    )]
    pub frame_timeout_ms: u64,

    /// TLS on the client and peer ports (see `server::tls`).
    #[command(flatten)]
    pub tls: crate::server::tls::TlsFlags,

    /// Authentication (see `server::auth`).
    #[command(flatten)]
    pub auth: crate::server::auth::AuthFlags,
}

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterState {
    New,
    Existing,
}

/// A member of the initial cluster, from `--initial-cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub name: String,
    pub peer_urls: Vec<String>,
}

/// A flag value that cannot be used; the message names the flag.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for --{flag}: {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub reason: String,
}

impl Config {
    /// The data directory, `<name>.cairn` unless given, made absolute
    /// against the working directory at start-up (so later directory
    /// operations never depend on it).
    pub fn data_dir(&self) -> PathBuf {
        let dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.cairn", self.name)));
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// The quota in bytes, with 0 meaning etcd's default.
    pub fn quota_bytes(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            limits::QUOTA_BYTES_DEFAULT
        } else {
            self.quota_backend_bytes
        }
    }

    /// Socket addresses to accept client connections on.
    pub fn client_listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        parse_url_list("listen-client-urls", &self.listen_client_urls)
    }

    /// Socket addresses to accept peer connections on.
    pub fn peer_listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        parse_url_list("listen-peer-urls", &self.listen_peer_urls)
    }

    /// The members of `--initial-cluster`, or this member alone.
    pub fn initial_members(&self) -> Result<Vec<InitialMember>, ConfigError> {
        let Some(spec) = &self.initial_cluster else {
            return Ok(vec![InitialMember {
                name: self.name.clone(),
                peer_urls: split_list(&self.initial_advertise_peer_urls),
            }]);
        };
        let mut members: Vec<InitialMember> = Vec::new();
        for item in split_list(spec) {
            let Some((name, url)) = item.split_once('=') else {
                return Err(ConfigError {
                    flag: "initial-cluster",
                    reason: format!("{item:?} is not of the form name=url"),
                });
            };
            parse_url("initial-cluster", url)?;
            match members.iter_mut().find(|m| m.name == name) {
                Some(m) => m.peer_urls.push(url.to_string()),
                None => members.push(InitialMember {
                    name: name.to_string(),
                    peer_urls: vec![url.to_string()],
                }),
            }
        }
        if !members.iter().any(|m| m.name == self.name) {
            return Err(ConfigError {
                flag: "initial-cluster",
                reason: format!("it does not name this member ({:?})", self.name),
            });
        }
        Ok(members)
    }

    /// Check every flag that can be checked without touching the disk or
    /// the network, so a mistake is reported before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.client_listen_addrs()?;
        self.peer_listen_addrs()?;
        self.initial_members()?;
        crate::server::tls::check_flags(self)?;
        self.auth.check()?;
        if self.spin_us > limits::SPIN_US_MAX {
            return Err(ConfigError {
                flag: "spin-us",
                reason: format!("must be at most {} µs", limits::SPIN_US_MAX),
            });
        }
        if self.heartbeat_interval_ms == 0 {
            return Err(ConfigError {
                flag: "heartbeat-interval",
                reason: "must be positive".into(),
            });
        }
        if self.election_timeout_ms < 5 * self.heartbeat_interval_ms {
            return Err(ConfigError {
                flag: "election-timeout",
                reason: format!(
                    "{} ms must be at least 5 times --heartbeat-interval ({} ms)",
                    self.election_timeout_ms, self.heartbeat_interval_ms
                ),
            });
        }
        if self.max_request_bytes == 0 || self.max_request_bytes > limits::REQUEST_BYTES_MAX_CEILING
        {
            return Err(ConfigError {
                flag: "max-request-bytes",
                reason: format!(
                    "must be between 1 and {}",
                    limits::REQUEST_BYTES_MAX_CEILING
                ),
            });
        }
        if self.max_txn_ops == 0 {
            return Err(ConfigError {
                flag: "max-txn-ops",
                reason: "must be positive".into(),
            });
        }
        crate::server::compaction::Policy::from_config(self)?;
        if self.snapshot_count == 0 {
            return Err(ConfigError {
                flag: "snapshot-count",
                reason: "must be positive".into(),
            });
        }
        Ok(())
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_url_list(flag: &'static str, s: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let addrs = split_list(s)
        .iter()
        .map(|u| parse_url(flag, u))
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(ConfigError {
            flag,
            reason: "no URL given".into(),
        });
    }
    Ok(addrs)
}

/// Parse `http://host:port`, `https://host:port` or a bare `host:port`
/// into a socket address.
/// `localhost` means 127.0.0.1, as it does for etcd's default URLs.
pub fn parse_url(flag: &'static str, url: &str) -> Result<SocketAddr, ConfigError> {
    let bad = |reason: String| ConfigError { flag, reason };
    // https:// switches TLS on for the listener (server::tls); the address
    // is parsed the same way.
    let rest = if let Some(r) = url.strip_prefix("http://").or(url.strip_prefix("https://")) {
        r
    } else if url.starts_with("unix://") {
        return Err(bad(format!(
            "{url:?}: only http:// and https:// URLs are supported so far"
        )));
    } else if url.contains("://") {
        return Err(bad(format!("{url:?}: unknown URL scheme")));
    } else {
        url
    };
    let host_port = rest.trim_end_matches('/');
    let host_port = host_port.replacen("localhost:", "127.0.0.1:", 1);
    host_port
        .parse::<SocketAddr>()
        .map_err(|e| bad(format!("{url:?}: {e} (expected http://IP:PORT)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["cairn"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).expect("flags parse")
    }

    #[test]
    fn no_flags_is_a_single_member_on_2379() {
        let c = parse(&[]);
        c.validate().expect("defaults are valid");
        assert_eq!(
            c.client_listen_addrs().unwrap(),
            vec!["127.0.0.1:2379".parse().unwrap()]
        );
        assert!(c.data_dir().is_absolute());
        assert!(c.data_dir().ends_with("default.cairn"));
        let members = c.initial_members().unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].name, "default");
        assert_eq!(c.quota_bytes(), 2 * 1024 * 1024 * 1024);
    }

    #[test]
    fn initial_cluster_is_parsed_like_etcd() {
        let c = parse(&[
            "--name",
            "b",
            "--initial-cluster",
            "a=http://127.0.0.1:12380,b=http://127.0.0.1:22380,c=http://127.0.0.1:32380",
        ]);
        let m = c.initial_members().unwrap();
        assert_eq!(
            m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(m[1].peer_urls, ["http://127.0.0.1:22380"]);
        assert!(c.data_dir().ends_with("b.cairn"));
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let c = parse(&["--initial-cluster", "x=http://127.0.0.1:1"]);
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("--initial-cluster") && e.contains("does not name this member"),
            "{e}"
        );
        let c = parse(&["--listen-client-urls", "http://nowhere"]);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--listen-client-urls"));
        let c = parse(&["--election-timeout", "200"]);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at least 5 times"));
    }

    #[test]
    fn localhost_means_loopback() {
        assert_eq!(
            parse_url("x", "http://localhost:2379").unwrap(),
            "127.0.0.1:2379".parse().unwrap()
        );
    }
}
