//! The thread-per-core server.
//!
//! One glommio executor runs per core. Every executor accepts client
//! connections on its own `SO_REUSEPORT` listener, reads and verifies frames,
//! and writes responses. Executor 0 also owns the shard: the Raft group, the
//! WAL, the MVCC index; when there are other executors it listens on no
//! client socket and serves only a lone, sequential client's connection,
//! which the others hand it to save that client a hop (`handoff.rs`). Requests travel from the connection's executor to the
//! shard, and responses back, over two bounded channel meshes wired at
//! start-up; nothing on the request path takes a lock.
//!
//! ```text
//!  client ─frame─▶ conn (executor k) ─verify─▶ to-shard mesh ─▶ shard (executor 0)
//!                                                                 │ batch → Raft → WAL
//!                                                                 │ apply → MVCC
//!  client ◀─frame─ conn (executor k) ◀─ dispatch ◀─ from-shard mesh ◀┘
//! ```
//!
//! Watch events take the response path too, as *pushes*: the connection's
//! writer reports how many it wrote, which bounds what the shard may push
//! to a connection that reads slowly (`docs/watch-lease.md`).

mod apply;
pub mod auth;
pub mod compaction;
mod conn;
mod corrupt;
mod grpc;
mod handoff;
mod http;
pub(crate) mod http2;
mod id_map;
mod lease;
mod listen;
mod maintenance;
mod members;
mod meta;
mod metrics;
mod peer;
mod raftlog;
pub mod restore;
mod route;
mod shard;
mod snapshot;
mod sniff;
pub mod tls;
mod watch;
mod watch_conns;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::config::Config;
use crate::limits;

pub use route::{FromShard, ToShard};

/// What can stop the server from starting or make it stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot start executors: {0}")]
    Executors(String),
    /// As etcd (Go) words it: `listen tcp 127.0.0.1:2379: bind: address
    /// already in use`.
    #[error("listen tcp {addr}: {op}: {}", listen::os_error_text(source))]
    Listen {
        addr: std::net::SocketAddr,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Shard(String),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
}

/// State every executor can read: fixed at start-up, except the stop flag and
/// the first fatal error.
pub(crate) struct Shared {
    pub config: Config,
    pub cores: usize,
    stop: AtomicBool,
    fatal: Mutex<Option<String>>,
    /// Publications of watch events each executor has not processed yet.
    pub watch_backlog: Arc<watch::WatchBacklog>,
    /// Client connections open on this member, every protocol.
    pub client_conns: AtomicUsize,
    /// Client connections the shard's executor serves, when there are
    /// others (`handoff.rs`).
    pub shard_conns: AtomicUsize,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Record a fatal error (the first one wins) and stop every executor.
    pub fn fail(&self, message: String) {
        if let Ok(mut slot) = self.fatal.lock() {
            slot.get_or_insert(message);
        }
        self.request_stop();
    }
}

/// Install the `tracing` subscriber for `--log-level`.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("cairn_engine={level},{level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (tests start several servers in one process)
    // is harmless: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The number of CPUs this process may run on.
fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run the server until SIGINT or SIGTERM, or until a fatal error.
pub fn run(config: Config) -> Result<(), ServerError> {
    config.validate()?;
    // Before any executor binds with SO_REUSEPORT, which would share a port
    // another cairn serves instead of failing (`listen.rs`).
    let mut addrs = config.client_listen_addrs()?;
    addrs.extend(config.peer_listen_addrs()?);
    listen::check_free(&addrs)?;
    tls::install(&config)?;
    let cores = if config.cores == 0 {
        usable_cpus()
    } else {
        config.cores
    };
    let shared = Arc::new(Shared {
        config,
        cores,
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        watch_backlog: Arc::new(watch::WatchBacklog::new(cores)),
        client_conns: AtomicUsize::new(0),
        shard_conns: AtomicUsize::new(0),
    });
    install_signal_handlers(shared.clone())?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        executors = shared.cores,
        pinned = !shared.config.no_pin,
        "starting cairn"
    );

    let placement = if shared.config.no_pin {
        PoolPlacement::Unbound(cores)
    } else {
        PoolPlacement::MaxSpread(cores, None)
    };
    let to_shard = MeshBuilder::full(cores, limits::MESH_CHANNEL_CAPACITY);
    let from_shard = MeshBuilder::full(cores, limits::MESH_CHANNEL_CAPACITY);
    let handoff = handoff::mesh(cores);

    let handles = LocalExecutorPoolBuilder::new(placement)
        .name("cairn")
        .spin_before_park(Duration::from_micros(shared.config.spin_us))
        .on_all_shards({
            let shared = shared.clone();
            move || {
                let shared = shared.clone();
                let to_shard = to_shard.clone();
                let from_shard = from_shard.clone();
                let handoff = handoff.clone();
                async move {
                    if let Err(e) =
                        executor_main(shared.clone(), to_shard, from_shard, handoff).await
                    {
                        shared.fail(e.to_string());
                    }
                }
            }
        })
        .map_err(|e| ServerError::Executors(e.to_string()))?;
    for result in handles.join_all() {
        if let Err(e) = result {
            shared.fail(format!("executor failed: {e}"));
        }
    }
    let fatal = shared.fatal.lock().ok().and_then(|mut f| f.take());
    match fatal {
        Some(message) => Err(ServerError::Shard(message)),
        None => {
            tracing::info!("cairn stopped");
            Ok(())
        }
    }
}

/// SIGINT and SIGTERM ask every executor to stop; a watcher task on each
/// executor notices within `STOP_POLL_MS`.
fn install_signal_handlers(shared: Arc<Shared>) -> Result<(), ServerError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| ServerError::Executors(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("cairn-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "received signal, shutting down");
                shared.request_stop();
            }
        })
        .map_err(|e| ServerError::Executors(format!("cannot start signal thread: {e}")))?;
    Ok(())
}

async fn executor_main(
    shared: Arc<Shared>,
    to_shard: MeshBuilder<ToShard, glommio::channels::channel_mesh::Full>,
    from_shard: MeshBuilder<FromShard, glommio::channels::channel_mesh::Full>,
    handoff: handoff::HandoffMesh,
) -> Result<(), ServerError> {
    let (to_shard_tx, to_shard_rx) = to_shard
        .join()
        .await
        .map_err(|e| ServerError::Executors(format!("cannot join the request mesh: {e}")))?;
    let (from_shard_tx, from_shard_rx) = from_shard
        .join()
        .await
        .map_err(|e| ServerError::Executors(format!("cannot join the response mesh: {e}")))?;
    let me = to_shard_tx.peer_id();
    let router = Rc::new(route::Router::new(
        me,
        to_shard_tx,
        from_shard_tx,
        shared.watch_backlog.clone(),
    ));
    router.clone().start(to_shard_rx, from_shard_rx);
    let handoffs = handoff::join(shared.clone(), router.clone(), handoff).await?;

    let shard_task = if me == route::SHARD_EXECUTOR {
        let shard = shard::Shard::open(shared.clone(), router.clone()).await;
        let shard = match shard {
            Ok(s) => s,
            Err(e) => {
                shared.fail(e.to_string());
                return Ok(());
            }
        };
        Some(glommio::spawn_local(shard.run()))
    } else {
        None
    };

    // The shard's executor is the one that saturates first (Raft, WAL,
    // apply); with other executors to take the sockets it listens on none
    // itself. Measured on 2 cores: about 15% less server CPU per put and
    // more throughput (docs/perf.md). It serves only the few connections
    // the others hand it (`handoff.rs`).
    let listeners = if me != route::SHARD_EXECUTOR || shared.cores == 1 {
        Some(conn::listen(shared.clone(), router.clone(), handoffs)?)
    } else {
        None
    };
    while !shared.stopping() {
        glommio::timer::sleep(Duration::from_millis(limits::STOP_POLL_MS)).await;
    }
    // Before anything else: no socket of a stopping server may accept a
    // connection, and none may wait on the executor's exit to close.
    listen::shut_all();
    drop(listeners);
    if let Some(task) = shard_task {
        task.await;
    }
    crate::steptrace::write_out(me);
    Ok(())
}
