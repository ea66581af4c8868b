//! Differential test of `watch -i`: the same session of request lines and
//! writes, run through `etcdctl watch -i` against a real etcd and through
//! `cairnctl watch -i` against a real cairn, must print the same thing.
//!
//! Needs Debian's `etcd-server` and `etcd-client` (`etcd`, `etcdctl` on
//! PATH). Without them the test says so and passes, except under CI
//! (`CI=true`), where their absence is a failure.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(bin).is_file()))
}

/// The `cairn` server binary, built by the same workspace test run.
fn cairn_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("cairn");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --bin cairn`; scripts/test does)",
        bin.display()
    );
    bin
}

/// One step of a session.
enum Act {
    /// A request line written to `watch -i`'s standard input.
    Line(&'static str),
    /// A write through the same command-line tool, another process.
    Ctl(&'static [&'static str]),
    /// Time for the watches to print what the steps before caused, so the
    /// order of the output does not depend on scheduling.
    Settle,
}

const SETTLE: Duration = Duration::from_millis(600);

/// Watches of every kind, the lines etcdctl skips with a message, writes
/// seen by one watch each, a progress request, then the end of the input.
const SESSION: &[Act] = &[
    Act::Line("watch --rev 1 foo"),
    Act::Settle,
    Act::Line(""),
    Act::Line("   "),
    Act::Line("get foo"),
    Act::Line("watch"),
    Act::Line("watch a b --prefix"),
    Act::Line("watch --prev-kv bar"),
    Act::Line("watch --prefix=true q -- echo ran"),
    Act::Line("watch \"sp ace\""),
    Act::Settle,
    Act::Ctl(&["put", "bar", "3"]),
    Act::Settle,
    Act::Ctl(&["put", "bar", "4"]),
    Act::Settle,
    Act::Ctl(&["put", "qq", "5"]),
    Act::Settle,
    Act::Ctl(&["del", "foo"]),
    Act::Settle,
    Act::Ctl(&["put", "sp ace", "6"]),
    Act::Settle,
    Act::Line("progress"),
    Act::Settle,
];

/// Sessions that end on a line etcdctl refuses outright.
const FATAL_LINES: &[&str] = &[
    "watch --bogus foo",
    "watch -x foo",
    "watch foo --rev abc",
    "watch foo --",
    "watch --prefix",
];

fn ctl(bin: &str, endpoint: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(["--endpoints", endpoint])
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `watch -i` through a session; stdout, then stderr, then the exit
/// code.
fn session(bin: &str, endpoint: &str, acts: &[Act]) -> String {
    let mut child = Command::new(bin)
        .args(["--endpoints", endpoint, "watch", "-i"])
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for act in acts {
        match act {
            // A session may have ended early (a fatal line): later writes
            // fail and do not matter.
            Act::Line(l) => {
                let _ = stdin.write_all(format!("{l}\n").as_bytes());
            }
            Act::Ctl(args) => {
                ctl(bin, endpoint, args);
            }
            Act::Settle => std::thread::sleep(SETTLE),
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    // etcdctl's gRPC layer logs retries as JSON lines on stderr.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("{\"level\":"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "{}--- stderr\n{}exit {}\n",
        String::from_utf8_lossy(&out.stdout),
        stderr,
        out.status.code().unwrap_or(-1)
    )
}

fn wait_for(bin: &str, endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ctl(bin, endpoint, &["put", "foo", "1"]).starts_with("OK") {
        assert!(
            Instant::now() < deadline,
            "{bin} against {endpoint} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Both stores: foo at revisions 2 and 3.
    ctl(bin, endpoint, &["put", "foo", "2"]);
}

fn spawn_server(program: &Path, dir: &Path, extra: &[&str]) -> (Proc, String) {
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(program)
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("default={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Proc(child), format!("127.0.0.1:{client}"))
}

#[test]
fn cairnctl_watch_i_prints_what_etcdctl_watch_i_prints() {
    if !on_path("etcd") || !on_path("etcdctl") {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install etcd-server and etcd-client for this test"
        );
        eprintln!("etcd or etcdctl is not installed; differential test not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (etcd, etcd_ep) = spawn_server(Path::new("etcd"), &dir.path().join("etcd"), &[]);
    let (cairn, cairn_ep) = spawn_server(
        &cairn_bin(),
        &dir.path().join("cairn"),
        &["--no-pin", "--log-level", "warn"],
    );
    let cairnctl = env!("CARGO_BIN_EXE_cairnctl");
    wait_for("etcdctl", &etcd_ep);
    wait_for(cairnctl, &cairn_ep);

    let mut differences = Vec::new();
    let mut compare = |what: &str, acts: &[Act]| {
        let want = session("etcdctl", &etcd_ep, acts);
        let got = session(cairnctl, &cairn_ep, acts);
        if want != got {
            differences.push(format!("{what}\n--- etcdctl:\n{want}--- cairnctl:\n{got}"));
        }
    };
    compare("the session", SESSION);
    for line in FATAL_LINES {
        compare(line, &[Act::Line(line), Act::Settle]);
    }
    drop((etcd, cairn));
    assert!(
        differences.is_empty(),
        "outputs differ:\n\n{}",
        differences.join("\n")
    );
}
