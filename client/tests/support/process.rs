//! Real `cairn` processes for the client's end-to-end tests: one member or
//! a small cluster on free loopback ports, with fast elections so that
//! leases may be as short as 1 s and a killed leader is replaced quickly.
//!
//! Included with `#[path = "support/process.rs"] mod process;` by the tests
//! that need it (the fake server in `support/mod.rs` serves the others).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cairn_client::{Client, ConnectOptions, PutOptions};

/// Heartbeat and election timeout of every member: the lease TTL floor is
/// 1.5 × the election timeout, so 500 ms allows 1 s leases.
const HEARTBEAT_MS: &str = "50";
const ELECTION_TIMEOUT_MS: &str = "500";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `cairn` server binary, built by the same workspace build.
pub fn cairn_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-… → target/<profile>/cairn
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("cairn");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --bin cairn`; scripts/test does)",
        bin.display()
    );
    bin
}

/// One member: a `cairn` process, killed when dropped.
pub struct Member {
    child: Option<Child>,
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    data_dir: PathBuf,
    initial_cluster: String,
    /// More flags for `cairn`, given to [`Cluster::start_with`].
    extra_args: Vec<String>,
}

impl Member {
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let client_url = format!("http://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(cairn_bin())
            .args(["--name", &self.name, "--no-pin", "--cores", "1"])
            .args(["--log-level", "error"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", "client-e2e"])
            .args(["--heartbeat-interval", HEARTBEAT_MS])
            .args(["--election-timeout", ELECTION_TIMEOUT_MS])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGKILL, then start again on the same ports once they are free: a
    /// dead process's io_uring may hold its sockets a little longer.
    pub fn restart(&mut self) {
        self.kill9();
        for port in [self.client_port, self.peer_port] {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while TcpListener::bind(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "port {port} still in use"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.spawn();
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let _ = c.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `n` members on loopback.
pub struct Cluster {
    pub members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` members and waits until the cluster takes writes.
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[]).await
    }

    /// [`Cluster::start`], with more flags for every member.
    pub async fn start_with(n: usize, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{}=http://127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, (client_port, peer_port)) in ports.into_iter().enumerate() {
            let mut m = Member {
                child: None,
                name: format!("m{}", i + 1),
                client_port,
                peer_port,
                data_dir: dir.path().join(format!("m{}", i + 1)),
                initial_cluster: initial_cluster.clone(),
                extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            };
            m.spawn();
            members.push(m);
        }
        let cluster = Cluster { members, _dir: dir };
        cluster.wait_writable().await;
        cluster
    }

    /// Every member's endpoint, for a client that fails over among them.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// A client on every member, with short timeouts (test scale).
    pub async fn client(&self) -> Client {
        let options = ConnectOptions::default()
            .with_dial_timeout(Duration::from_secs(2))
            .with_request_timeout(Duration::from_secs(3));
        Client::connect(self.endpoints(), options).await.unwrap()
    }

    /// Waits until a put succeeds through some running member.
    pub async fn wait_writable(&self) {
        for _ in 0..400 {
            for m in self.members.iter().filter(|m| m.is_running()) {
                let options = ConnectOptions::default()
                    .with_dial_timeout(Duration::from_millis(200))
                    .with_request_timeout(Duration::from_secs(1));
                if let Ok(c) = Client::connect([m.endpoint()], options).await {
                    if c.put("__ready", "1", PutOptions::new()).await.is_ok() {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cluster never took a write");
    }

    /// The index of the member the running members agree is leader.
    pub async fn leader(&self) -> usize {
        for _ in 0..400 {
            for (i, m) in self.members.iter().enumerate() {
                if !m.is_running() {
                    continue;
                }
                let options = ConnectOptions::default()
                    .with_dial_timeout(Duration::from_millis(200))
                    .with_request_timeout(Duration::from_secs(1));
                let Ok(c) = Client::connect([m.endpoint()], options).await else {
                    continue;
                };
                if let Ok(s) = c.status().await {
                    if s.leader != 0 && s.leader == s.header.member_id {
                        return i;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader elected");
    }
}
