//! Local single-member servers for `compare` and the tests: a child process
//! on free loopback ports with its data in a fresh temporary directory, both
//! removed when the [`LocalServer`] is dropped.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::PerfError;
use crate::limits::{SERVER_PROBE_INTERVAL_MS, SERVER_START_TIMEOUT_MS};

/// Bytes of a failed server's log shown in the error.
const LOG_TAIL_BYTES: usize = 2_000;

/// A server process started by the harness.
#[derive(Debug)]
pub struct LocalServer {
    name: String,
    child: Child,
    log_path: PathBuf,
    client_url: String,
    // Dropped after the child is killed (fields drop in order, and Drop
    // kills first).
    dir: tempfile::TempDir,
}

/// Names and URLs of one member to start.
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
}

/// TLS on a started server's client port: both servers take etcd's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPortTls {
    /// `--cert-file` and `--key-file`.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With a CA, `--trusted-ca-file` and `--client-cert-auth`: clients
    /// must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// Which server to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Etcd,
    Cairn,
}

impl LocalServer {
    /// Starts `program` as a single-member `kind` server. `data_dir_base` is
    /// where its temporary data directory goes (the system's temporary
    /// directory when `None`). Returns once the process is running; call
    /// [`LocalServer::wait_ready`] before sending load.
    pub fn spawn(
        kind: ServerKind,
        program: &Path,
        data_dir_base: Option<&Path>,
    ) -> Result<LocalServer, PerfError> {
        LocalServer::spawn_with(kind, program, data_dir_base, None)
    }

    /// [`LocalServer::spawn`], with TLS on the client port when `tls` is
    /// given.
    pub fn spawn_with(
        kind: ServerKind,
        program: &Path,
        data_dir_base: Option<&Path>,
        tls: Option<&ClientPortTls>,
    ) -> Result<LocalServer, PerfError> {
        let ports = free_ports(2)?;
        let member = Member {
            name: "perf".to_string(),
            client_url: format!("{}://127.0.0.1:{}", client_scheme(tls), ports[0]),
            peer_url: format!("http://127.0.0.1:{}", ports[1]),
        };
        // etcd needs its own peer URL in --initial-cluster; cairn serves a
        // single member without the flag.
        let initial_cluster =
            (kind == ServerKind::Etcd).then(|| format!("perf={}", member.peer_url));
        LocalServer::spawn_member(kind, program, data_dir_base, &member, initial_cluster, tls)
    }

    /// Starts a cluster of `members` `kind` servers on loopback (names
    /// `perf0`, `perf1`, ...). Call [`LocalServer::wait_ready`] on each.
    pub fn spawn_cluster(
        kind: ServerKind,
        program: &Path,
        data_dir_base: Option<&Path>,
        members: usize,
    ) -> Result<Vec<LocalServer>, PerfError> {
        LocalServer::spawn_cluster_with(kind, program, data_dir_base, members, None)
    }

    /// [`LocalServer::spawn_cluster`], with TLS on every member's client
    /// port when `tls` is given (the peer ports stay plaintext).
    pub fn spawn_cluster_with(
        kind: ServerKind,
        program: &Path,
        data_dir_base: Option<&Path>,
        members: usize,
        tls: Option<&ClientPortTls>,
    ) -> Result<Vec<LocalServer>, PerfError> {
        if members <= 1 {
            return LocalServer::spawn_with(kind, program, data_dir_base, tls).map(|s| vec![s]);
        }
        let ports = free_ports(2 * members)?;
        let planned: Vec<Member> = ports
            .chunks_exact(2)
            .enumerate()
            .map(|(i, pair)| Member {
                name: format!("perf{i}"),
                client_url: format!("{}://127.0.0.1:{}", client_scheme(tls), pair[0]),
                peer_url: format!("http://127.0.0.1:{}", pair[1]),
            })
            .collect();
        let initial_cluster = planned
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        planned
            .iter()
            .map(|m| {
                LocalServer::spawn_member(
                    kind,
                    program,
                    data_dir_base,
                    m,
                    Some(initial_cluster.clone()),
                    tls,
                )
            })
            .collect()
    }

    fn spawn_member(
        kind: ServerKind,
        program: &Path,
        data_dir_base: Option<&Path>,
        member: &Member,
        initial_cluster: Option<String>,
        tls: Option<&ClientPortTls>,
    ) -> Result<LocalServer, PerfError> {
        let base = data_dir_base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = tempfile::Builder::new()
            .prefix("cairn-perf-")
            .tempdir_in(&base)
            .map_err(|source| PerfError::Io {
                op: "create temporary directory in",
                path: base.clone(),
                source,
            })?;
        let client_url = member.client_url.clone();
        let peer_url = member.peer_url.clone();
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).map_err(|source| PerfError::Io {
            op: "create",
            path: log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| PerfError::Io {
            op: "duplicate handle of",
            path: log_path.clone(),
            source,
        })?;
        let mut command = Command::new(program);
        command
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url);
        if let Some(initial_cluster) = initial_cluster {
            command.arg("--initial-cluster").arg(initial_cluster);
        }
        if let Some(tls) = tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key);
            if let Some(ca) = &tls.client_ca {
                command
                    .arg("--trusted-ca-file")
                    .arg(ca)
                    .arg("--client-cert-auth");
            }
        }
        if kind == ServerKind::Cairn {
            // Pinning executors to cores fights with the load generator
            // on a shared machine.
            command.arg("--no-pin");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = command.spawn().map_err(|source| PerfError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        Ok(LocalServer {
            name: format!(
                "{} ({})",
                match kind {
                    ServerKind::Etcd => "etcd",
                    ServerKind::Cairn => "cairn",
                },
                member.name
            ),
            child,
            log_path,
            client_url,
            dir,
        })
    }

    /// The server's process id (for its CPU and memory figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The client URL (`http://127.0.0.1:<port>`, `https://` with TLS).
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// The temporary directory holding the server's data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until `probe` succeeds, failing if the process exits or the
    /// start timeout passes first.
    pub async fn wait_ready(&mut self, probe: impl AsyncFn(&str) -> bool) -> Result<(), PerfError> {
        let deadline = Instant::now() + Duration::from_millis(SERVER_START_TIMEOUT_MS);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(PerfError::ServerNotReady {
                    name: self.name.clone(),
                    timeout_ms: SERVER_START_TIMEOUT_MS,
                    log: format!(" (it exited with {status}){}", self.log_tail()),
                });
            }
            if probe(&self.client_url).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PerfError::ServerNotReady {
                    name: self.name.clone(),
                    timeout_ms: SERVER_START_TIMEOUT_MS,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(SERVER_PROBE_INTERVAL_MS)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let tail = &text[text.len().saturating_sub(LOG_TAIL_BYTES)..];
        format!("; its log ends:\n{}", String::from_utf8_lossy(tail))
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_scheme(tls: Option<&ClientPortTls>) -> &'static str {
    if tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// `n` distinct loopback ports that were free a moment ago (all are bound
/// at once, so they differ). Another process could take one before the
/// server binds it; on a test machine that is rare, and the server then
/// fails to start with a clear error.
pub fn free_ports(n: usize) -> Result<Vec<u16>, PerfError> {
    let bind_error = |source| PerfError::Io {
        op: "bind",
        path: PathBuf::from("127.0.0.1:0"),
        source,
    };
    let mut listeners = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(bind_error)?;
        ports.push(listener.local_addr().map_err(bind_error)?.port());
        listeners.push(listener);
    }
    Ok(ports)
}

/// `explicit` if given (it must exist), else the first of `candidates` that
/// exists, else `name` on `PATH`.
pub fn find_program(
    explicit: Option<&Path>,
    name: &str,
    candidates: &[PathBuf],
) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.is_file().then(|| path.to_path_buf());
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether `path` lives on tmpfs, where `fdatasync` costs nothing and a
/// durable-write benchmark would flatter the server.
pub fn is_on_tmpfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: c_path is a valid NUL-terminated string and stat points to
    // memory of the right size and alignment for statfs to fill.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: statfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    let magic = stat.f_type as i64;
    magic == TMPFS_MAGIC
}
