//! Differential test: one script of commands, run through `etcdctl` against a
//! real etcd and through `cairnctl` against a real cairn, must print the same
//! thing (cluster and member ids and raft terms masked; revisions are not
//! masked: both stores count them the same way).
//!
//! Needs Debian's `etcd-server` and `etcd-client` (`etcd`, `etcdctl` on
//! PATH). Without them the test says so and passes, except under CI
//! (`CI=true`), where CI installs them and their absence is a failure.

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
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `cairn` server binary, built by the same workspace test run.
fn cairn_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/etcd_diff-… → target/<profile>/cairn
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join("cairn");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --bin cairn`; scripts/test does)",
        bin.display()
    );
    bin
}

/// One command of the script: arguments after the binary, and stdin.
struct Step {
    args: &'static [&'static str],
    stdin: &'static str,
    /// A command that holds until interrupted (`lock`, `elect`): it gets
    /// SIGINT once it has had time to print.
    interrupt: bool,
}

const fn step(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: "",
        interrupt: false,
    }
}

const fn held(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: "",
        interrupt: true,
    }
}

/// How long a held command runs before its SIGINT.
const HOLD: Duration = Duration::from_millis(1_500);

const SCRIPT: &[Step] = &[
    step(&["put", "foo", "bar"]),
    step(&["get", "foo"]),
    step(&["put", "foo", "baz", "--prev-kv"]),
    step(&["get", "foo", "-w", "json"]),
    step(&["put", "fop", "1"]),
    step(&["put", "fox", "2"]),
    step(&["get", "--prefix", "fo"]),
    step(&["get", "--prefix", "fo", "--keys-only"]),
    step(&["get", "--prefix", "fo", "--limit", "2", "-w", "fields"]),
    step(&[
        "get",
        "--prefix",
        "fo",
        "--print-value-only",
        "--order",
        "DESCEND",
    ]),
    step(&["get", "foo", "--rev", "2"]),
    step(&["get", "--from-key", "fop"]),
    step(&["del", "fop"]),
    step(&["del", "--prefix", "fo", "--prev-kv"]),
    step(&["get", "--prefix", "fo"]),
    Step {
        args: &["txn"],
        stdin: "value(\"foo\") = \"nope\"\n\nput x y\n\nput z w\n\n",
        interrupt: false,
    },
    step(&["get", "z"]),
    Step {
        args: &["txn"],
        stdin: "put x 1\n",
        interrupt: false,
    },
    Step {
        args: &["txn", "-w", "json"],
        stdin: "mod(\"z\") > \"0\"\n\nget z\n\n\n",
        interrupt: false,
    },
    step(&["put", "foo", "again"]),
    step(&["compaction", "3"]),
    step(&["get", "foo", "--rev", "2"]),
    step(&["get", "foo", "--rev", "99"]),
    step(&["put", "", "empty"]),
    step(&["put", "k", "--ignore-value"]),
    step(&["get", "--prefix", "", "-w", "json"]),
    // Locks and elections: the lock and candidate keys carry a lease id,
    // masked below.
    step(&["lock", "job", "echo", "held"]),
    step(&["lock", "job", "false"]),
    step(&["lock", "job", "no-such-command-anywhere"]),
    held(&["lock", "job"]),
    step(&["get", "--prefix", "job/"]),
    step(&["lock"]),
    held(&["elect", "sched", "first"]),
    held(&["elect", "-l", "nobody"]),
    step(&["get", "--prefix", "sched/"]),
    step(&["elect"]),
    step(&["elect", "sched"]),
    step(&["elect", "-l", "sched", "proposal"]),
];

/// Run one step; the output is stdout, then stderr, then the exit code.
fn run(bin: &str, endpoint: &str, step: &Step) -> String {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(["--endpoints", endpoint])
        .args(step.args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(step.stdin.as_bytes())
        .unwrap();
    if step.interrupt {
        std::thread::sleep(HOLD);
        let pid = child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    // etcdctl's gRPC layer logs retries as JSON lines on stderr; they are
    // diagnostics, not output a script reads.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("{\"level\":"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "{}{}exit {}\n",
        String::from_utf8_lossy(&out.stdout),
        stderr,
        out.status.code().unwrap_or(-1)
    )
}

/// Mask what legitimately differs between two clusters.
fn mask(s: &str) -> String {
    let mut out = s.to_string();
    for pat in [
        "\"cluster_id\":",
        "\"member_id\":",
        "\"raft_term\":",
        "\"ClusterID\" : ",
        "\"MemberID\" : ",
        "\"RaftTerm\" : ",
    ] {
        let mut masked = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(pat) {
            let (head, tail) = rest.split_at(i + pat.len());
            masked.push_str(head);
            let end = tail
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(tail.len());
            masked.push('N');
            rest = &tail[end..];
        }
        masked.push_str(rest);
        out = masked;
    }
    mask_lease_keys(&out)
}

/// Lock and candidate keys are `<name>/<lease id in hex>`; lease ids differ
/// between the two stores.
fn mask_lease_keys(s: &str) -> String {
    let mut out = String::new();
    for line in s.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        match body.split_once('/') {
            Some((name, id))
                if ["job", "sched"].contains(&name)
                    && !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                out.push_str(name);
                out.push_str("/LEASE");
                out.push_str(&line[body.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

fn wait_for(bin: &str, endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !run(bin, endpoint, &step(&["put", "probe", "x"])).starts_with("OK") {
        assert!(
            Instant::now() < deadline,
            "{bin} against {endpoint} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Remove the probe so both stores start the script at the same revision.
    run(bin, endpoint, &step(&["del", "probe"]));
}

#[test]
fn cairnctl_against_cairn_prints_what_etcdctl_prints_against_etcd() {
    if !on_path("etcd") || !on_path("etcdctl") {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install etcd-server and etcd-client for this test"
        );
        eprintln!("etcd or etcdctl is not installed; differential test not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (etcd_client, etcd_peer) = (free_port(), free_port());
    let etcd = Proc(
        Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path().join("etcd"))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
            ])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{etcd_peer}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (cairn_client, cairn_peer) = (free_port(), free_port());
    let cairn = Proc(
        Command::new(cairn_bin())
            .arg("--data-dir")
            .arg(dir.path().join("cairn"))
            .args(["--no-pin", "--log-level", "warn"])
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{cairn_client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{cairn_client}"),
            ])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{cairn_peer}"),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{cairn_peer}"),
            ])
            .spawn()
            .unwrap(),
    );
    let etcd_ep = format!("127.0.0.1:{etcd_client}");
    let cairn_ep = format!("127.0.0.1:{cairn_client}");
    let cairnctl = env!("CARGO_BIN_EXE_cairnctl");
    wait_for("etcdctl", &etcd_ep);
    wait_for(cairnctl, &cairn_ep);

    let mut differences = Vec::new();
    for s in SCRIPT {
        let want = mask(&run("etcdctl", &etcd_ep, s));
        let got = mask(&run(cairnctl, &cairn_ep, s));
        if want != got {
            differences.push(format!(
                "$ {:?} (stdin {:?})\n--- etcdctl:\n{want}--- cairnctl:\n{got}",
                s.args, s.stdin
            ));
        }
    }
    drop((etcd, cairn));
    assert!(
        differences.is_empty(),
        "outputs differ:\n\n{}",
        differences.join("\n")
    );
}

#[test]
fn masking_hides_ids_but_not_revisions() {
    let s = r#"{"header":{"cluster_id":123,"member_id":456,"revision":7,"raft_term":2}}"#;
    assert_eq!(
        mask(s),
        r#"{"header":{"cluster_id":N,"member_id":N,"revision":7,"raft_term":N}}"#
    );
    assert_eq!(
        mask("\"MemberID\" : 99\n\"Revision\" : 7\n"),
        "\"MemberID\" : N\n\"Revision\" : 7\n"
    );
    assert_eq!(
        mask("job/694d7a5b3c2e1f0a\n\njob/x-y\n"),
        "job/LEASE\n\njob/x-y\n"
    );
}
