//! Differential test of the gRPC API: one `etcdctl` session run against a
//! real etcd and against cairn must print the same thing, with what
//! legitimately differs between two clusters masked (cluster, member and
//! lease ids, raft terms and indexes, ports, versions, sizes, timings).
//! Revisions are not masked: both stores count them the same way.
//!
//! Needs Debian's `etcd-server` and `etcd-client` (`etcd`, `etcdctl` 3.4).
//! Without them the test says so and passes, except under CI (`CI=true`),
//! where their absence is a failure.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Server};

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

/// One command: etcdctl's arguments (`{LEASE}` stands for the lease the
/// session granted), its stdin, and for watches the seconds after which
/// it is stopped.
struct Step {
    args: &'static [&'static str],
    stdin: &'static str,
    timeout_s: u32,
}

const fn step(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: "",
        timeout_s: 0,
    }
}

const fn watch(args: &'static [&'static str]) -> Step {
    Step {
        args,
        stdin: "",
        timeout_s: 2,
    }
}

const SCRIPT: &[Step] = &[
    step(&["del", "__ready"]),
    step(&["put", "foo", "bar"]),
    step(&["get", "foo"]),
    step(&["put", "foo", "baz", "--prev-kv"]),
    step(&["get", "foo", "-w", "json"]),
    step(&["put", "fop", "1"]),
    step(&["put", "fox", "2"]),
    step(&["get", "--prefix", "fo"]),
    step(&["get", "--prefix", "fo", "--keys-only"]),
    step(&["get", "--prefix", "fo", "--count-only", "-w", "json"]),
    step(&["get", "--prefix", "fo", "--limit", "2", "-w", "fields"]),
    step(&[
        "get",
        "--prefix",
        "fo",
        "--print-value-only",
        "--order",
        "DESCEND",
    ]),
    step(&[
        "get",
        "--prefix",
        "fo",
        "--sort-by",
        "VALUE",
        "--order",
        "ASCEND",
    ]),
    step(&[
        "get",
        "--prefix",
        "fo",
        "--sort-by",
        "MODIFY",
        "--order",
        "DESCEND",
    ]),
    step(&["get", "foo", "--rev", "3"]),
    step(&["get", "--from-key", "fop"]),
    step(&["get", "foo", "--consistency", "s"]),
    step(&["get", "fo", "fz", "-w", "protobuf"]),
    watch(&["watch", "foo", "--rev", "1"]),
    watch(&["watch", "--prefix", "fo", "--rev", "4", "--prev-kv"]),
    step(&["del", "fop"]),
    step(&["del", "--prefix", "fo", "--prev-kv"]),
    step(&["get", "--prefix", "fo"]),
    Step {
        args: &["txn"],
        stdin: "value(\"foo\") = \"nope\"\n\nput x y\n\nput z w\n\n",
        timeout_s: 0,
    },
    step(&["get", "z"]),
    Step {
        args: &["txn", "-w", "json"],
        stdin: "mod(\"z\") > \"0\"\n\nget z\n\n\n",
        timeout_s: 0,
    },
    Step {
        args: &["txn"],
        stdin: "\nput a 1\nput a 2\n\n\n",
        timeout_s: 0,
    },
    step(&["put", "foo", "again"]),
    step(&["compaction", "4"]),
    step(&["get", "foo", "--rev", "3"]),
    step(&["get", "foo", "--rev", "99"]),
    watch(&["watch", "foo", "--rev", "2"]),
    step(&["lease", "grant", "60"]),
    step(&["put", "leased", "v", "--lease", "{LEASE}"]),
    step(&["lease", "timetolive", "{LEASE}", "--keys"]),
    step(&["lease", "keep-alive", "--once", "{LEASE}"]),
    step(&["lease", "list"]),
    step(&["lease", "revoke", "{LEASE}"]),
    step(&["get", "leased"]),
    step(&["lease", "revoke", "{LEASE}"]),
    step(&["lease", "timetolive", "{LEASE}"]),
    step(&["put", "k", "v", "--lease", "1234"]),
    step(&["member", "list"]),
    step(&["endpoint", "status"]),
    step(&["endpoint", "health"]),
    step(&["endpoint", "hashkv", "-w", "fields"]),
    step(&["alarm", "list"]),
    step(&["get", "--prefix", "", "-w", "json"]),
    // Auth: users, roles and permissions, then requests with and without
    // credentials while auth is on. etcdctl authenticates and sends the
    // token as gRPC metadata on every later call.
    step(&["user", "add", "root", "--new-user-password=rootpw"]),
    step(&["role", "add", "r1"]),
    step(&["role", "add", "r1"]),
    step(&["role", "grant-permission", "r1", "readwrite", "sec"]),
    step(&[
        "role",
        "grant-permission",
        "r1",
        "read",
        "pub",
        "--prefix=true",
    ]),
    step(&["role", "get", "r1"]),
    step(&["user", "add", "alice", "--new-user-password=apw"]),
    step(&["user", "grant-role", "alice", "r1"]),
    step(&["user", "grant-role", "alice", "nope"]),
    step(&["user", "get", "alice"]),
    step(&["user", "list"]),
    step(&["role", "list"]),
    step(&["auth", "enable"]),
    step(&["--user", "alice:apw", "put", "sec", "v1"]),
    step(&["--user", "alice:apw", "get", "sec"]),
    step(&["--user", "alice:apw", "put", "pub1", "v"]),
    step(&["--user", "alice:apw", "get", "pub", "--prefix"]),
    step(&["--user", "alice:apw", "del", "sec"]),
    step(&["--user", "alice:apw", "user", "list"]),
    step(&["--user", "alice:wrong", "get", "sec"]),
    step(&["get", "sec"]),
    step(&["--user", "root:rootpw", "user", "list"]),
    step(&[
        "--user",
        "root:rootpw",
        "role",
        "revoke-permission",
        "r1",
        "sec",
    ]),
    step(&["--user", "alice:apw", "get", "sec"]),
    step(&["--user", "root:rootpw", "user", "delete", "alice"]),
    step(&["--user", "root:rootpw", "auth", "disable"]),
    step(&["get", "sec"]),
    step(&["user", "list"]),
];

/// Run one step; the output is stdout, then stderr, then the exit code.
fn run(endpoint: &str, step: &Step, lease: &str) -> String {
    use std::io::Write;
    let args: Vec<String> = step
        .args
        .iter()
        .map(|a| a.replace("{LEASE}", lease))
        .collect();
    let mut cmd = if step.timeout_s > 0 {
        let mut c = Command::new("timeout");
        c.arg(step.timeout_s.to_string()).arg("etcdctl");
        c
    } else {
        Command::new("etcdctl")
    };
    let mut child = cmd
        .args(["--endpoints", endpoint])
        .args(&args)
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

/// Replace every run of digits (or hex digits, for `hex`) after `pat`.
fn mask_after(s: &str, pat: &str, hex: bool) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(pat) {
        let (head, tail) = rest.split_at(i + pat.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                if hex {
                    !c.is_ascii_hexdigit()
                } else {
                    !c.is_ascii_digit()
                }
            })
            .unwrap_or(tail.len());
        out.push('N');
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Mask what legitimately differs between two clusters.
fn mask(s: &str, endpoint: &str, lease: &str, protobuf: bool) -> String {
    if protobuf {
        // The header's varints differ in length; compare the rest.
        return format!("{} bytes of protobuf\n", s.len().min(1));
    }
    // Timings: everything after "took = " up to the end of its line.
    let mut out: String = s
        .replace(endpoint, "ENDPOINT")
        .lines()
        .map(|l| match l.find("took = ") {
            Some(i) => format!("{}took = N\n", &l[..i]),
            None => format!("{l}\n"),
        })
        .collect();
    if !lease.is_empty() {
        out = out.replace(lease, "LEASE");
        if let Ok(id) = i64::from_str_radix(lease, 16) {
            out = out.replace(&id.to_string(), "LEASE");
        }
    }
    for pat in [
        "\"cluster_id\":",
        "\"member_id\":",
        "\"raft_term\":",
        "\"ClusterID\" : ",
        "\"MemberID\" : ",
        "\"RaftTerm\" : ",
        "\"Hash\" : ",
        "remaining(",
        "TTL(",
    ] {
        out = mask_after(&out, pat, false);
    }
    // Lines of tables (member list, endpoint status): mask member ids,
    // versions, sizes, terms and indexes field by field.
    out.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(", ").collect();
            if fields.len() < 5 {
                return format!("{line}\n");
            }
            let masked: Vec<String> = fields
                .iter()
                .map(|f| {
                    let kept = ["true", "false", "ENDPOINT", "started", ""];
                    if kept.contains(f) || f.starts_with("http") {
                        f.to_string()
                    } else {
                        "X".to_string()
                    }
                })
                .collect();
            format!("{}\n", masked.join(", "))
        })
        .map(|l| {
            // peer/client URLs carry each cluster's ports.
            mask_after(
                &mask_after(&l, "http://127.0.0.1:", false),
                "ENDPOINT:",
                false,
            )
        })
        .collect::<String>()
}

/// The lease id (hex) a `lease grant` printed.
fn granted(output: &str) -> String {
    output.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn etcdctl_prints_the_same_against_cairn_as_against_etcd() {
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
    let etcd_client_url = format!("http://127.0.0.1:{etcd_client}");
    let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer}");
    let etcd = Proc(
        Command::new("etcd")
            .args(["--name", "e2e"])
            .arg("--data-dir")
            .arg(dir.path().join("etcd"))
            .args(["--listen-client-urls", &etcd_client_url])
            .args(["--advertise-client-urls", &etcd_client_url])
            .args(["--listen-peer-urls", &etcd_peer_url])
            .args(["--initial-advertise-peer-urls", &etcd_peer_url])
            .args(["--initial-cluster", &format!("e2e={etcd_peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // cairn's start-up check writes `__ready`; etcd gets the same write.
    let cairn = Server::start(&dir.path().join("cairn"), &[]);
    let etcd_ep = format!("127.0.0.1:{etcd_client}");
    let cairn_ep = cairn.addr.to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !run(&etcd_ep, &step(&["put", "__ready", "1"]), "").starts_with("OK") {
        assert!(Instant::now() < deadline, "etcd never answered");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (mut etcd_lease, mut cairn_lease) = (String::new(), String::new());
    let mut differences = Vec::new();
    for s in SCRIPT {
        let want = run(&etcd_ep, s, &etcd_lease);
        let got = run(&cairn_ep, s, &cairn_lease);
        if s.args.starts_with(&["lease", "grant"]) {
            etcd_lease = granted(&want);
            cairn_lease = granted(&got);
        }
        let protobuf = s.args.contains(&"protobuf");
        let want = mask(&want, &etcd_ep, &etcd_lease, protobuf);
        let got = mask(&got, &cairn_ep, &cairn_lease, protobuf);
        if want != got {
            differences.push(format!(
                "$ etcdctl {:?} (stdin {:?})\n--- etcd:\n{want}--- cairn:\n{got}",
                s.args, s.stdin
            ));
        }
    }
    drop((etcd, cairn));
    assert!(
        differences.is_empty(),
        "{} of {} steps differ:\n\n{}",
        differences.len(),
        SCRIPT.len(),
        differences.join("\n")
    );
}

#[test]
fn masking_hides_ids_and_timings_but_not_revisions() {
    let s = r#"{"header":{"cluster_id":123,"member_id":456,"revision":7,"raft_term":2}}"#;
    assert_eq!(
        mask(s, "127.0.0.1:1", "", false),
        "{\"header\":{\"cluster_id\":N,\"member_id\":N,\"revision\":7,\"raft_term\":N}}\n"
    );
    assert_eq!(
        mask(
            "lease 694d7a0b1c2d3e4f granted with TTL(60s)\n",
            "x",
            "694d7a0b1c2d3e4f",
            false
        ),
        "lease LEASE granted with TTL(Ns)\n"
    );
}

/// `cairn snapshot restore` flags for a one-member cluster named `e2e`
/// (the name the test server starts with) on `peer_port`.
fn restore_args(data_dir: &std::path::Path, peer_port: u16) -> Vec<String> {
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name".into(),
        "e2e".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--initial-cluster".into(),
        format!("e2e={peer}"),
        "--initial-advertise-peer-urls".into(),
        peer,
    ]
}

#[test]
fn etcdctl_snapshot_save_downloads_a_backup_cairn_restores() {
    use sha2::{Digest, Sha256};
    if !on_path("etcdctl") {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install etcd-client for this test"
        );
        eprintln!("etcdctl is not installed; snapshot test not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = Server::start(&dir.path().join("src"), &[]);
    let ep = src.addr.to_string();
    for put in [&["put", "snap/a", "1"], &["put", "snap/b", "2"]] {
        assert_eq!(run(&ep, &step(put), ""), "OK\nexit 0\n");
    }
    let file = dir.path().join("backup.db");
    let out = Command::new("etcdctl")
        .args(["--endpoints", &ep, "snapshot", "save"])
        .arg(&file)
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, format!("Snapshot saved at {}\n", file.display()));
    drop(src);

    // etcd's layout: whole 512-byte pages, then the SHA-256 of them.
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len() % 512, 32);
    let (pages, sha) = bytes.split_at(bytes.len() - 32);
    assert_eq!(&Sha256::digest(pages)[..], sha);

    // The pages are a cairn snapshot file padded with zeros: `cairn
    // snapshot restore` takes the download as it is, and checks its hash.
    let end = pages
        .windows(8)
        .rposition(|w| w == b"CAIRNEND")
        .expect("a snapshot trailer")
        + 32;
    assert!(pages[end..].iter().all(|&b| b == 0), "only zeros pad");
    let mut damaged = bytes.clone();
    damaged[end / 2] ^= 1;
    let damaged_file = dir.path().join("damaged.db");
    std::fs::write(&damaged_file, &damaged).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["snapshot", "restore"])
        .arg(&damaged_file)
        .args(restore_args(&dir.path().join("refused"), free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a damaged download is refused");
    let native_file = file.clone();
    let peer_port = free_port();
    let restored_dir = dir.path().join("restored");
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["snapshot", "restore"])
        .arg(&native_file)
        .args(restore_args(&restored_dir, peer_port))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut restored = Server {
        child: None,
        addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        data_dir: restored_dir,
        peer_port,
        extra: Vec::new(),
        name: "e2e".into(),
        wait_put: true,
    };
    restored.spawn();
    let got = run(
        &restored.addr.to_string(),
        &step(&["get", "--prefix", "snap/"]),
        "",
    );
    assert_eq!(got, "snap/a\n1\nsnap/b\n2\nexit 0\n");
}
