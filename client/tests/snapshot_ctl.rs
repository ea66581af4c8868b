//! `cairnctl snapshot save|status|restore` against a real `cairn`: the
//! saved file restores into a new member that serves every key.

#[path = "support/process.rs"]
mod process;

use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_client::ctl::{main_with, Io};
use cairn_client::{Client, ConnectOptions, GetOptions, PutOptions};

async fn cairnctl(args: &[&str]) -> (i32, String, String) {
    let mut input: &[u8] = b"";
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let argv = std::iter::once("cairnctl")
        .chain(args.iter().copied())
        .map(Into::into)
        .collect();
    let code = {
        let mut io = Io {
            stdin: &mut input,
            stdout: &mut stdout,
            stderr: &mut stderr,
        };
        main_with(argv, &mut io).await
    };
    (
        code,
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_status_restore_round_trip() {
    let cluster = process::Cluster::start(1).await;
    let client = cluster.client().await;
    for i in 0..200 {
        let k = format!("k{i:03}");
        client.put(k.clone(), k, PutOptions::new()).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let file_s = file.display().to_string();
    let ep = format!("--endpoints={}", cluster.members[0].endpoint());

    let (code, out, err) = cairnctl(&[&ep, "snapshot", "save", &file_s]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("Snapshot saved at {file_s}\n"));
    assert!(!dir.path().join("backup.db.part").exists());

    let two = format!("--endpoints={0},{0}", cluster.members[0].endpoint());
    let (code, _, err) = cairnctl(&[&two, "snapshot", "save", &file_s]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("snapshot must be requested to one selected node"),
        "{err}"
    );

    let (code, out, err) = cairnctl(&["snapshot", "status", &file_s, "-w", "json"]).await;
    assert_eq!(code, 0, "{err}");
    // 200 keys and the readiness probe's key, one revision each.
    let revision = client.status().await.unwrap().header.revision;
    assert!(out.contains(&format!("\"revision\":{revision},")), "{out}");
    assert!(out.contains("\"totalKey\":201,"), "{out}");
    let (code, out, _) = cairnctl(&["snapshot", "status", &file_s, "-w", "table"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |"),
        "{out}"
    );
    let (_, simple, _) = cairnctl(&["snapshot", "status", &file_s]).await;
    assert_eq!(
        simple.split(", ").nth(1),
        Some(revision.to_string()).as_deref()
    );

    // Restore through cairnctl, which runs `cairn snapshot restore`.
    std::env::set_var("CAIRNCTL_CAIRN_BINARY", process::cairn_bin());
    let data_dir = dir.path().join("restored");
    let (client_port, peer_port) = (process::free_port(), process::free_port());
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let initial = format!("r1={peer_url}");
    let data_dir_s = data_dir.display().to_string();
    let restore_args = [
        "snapshot",
        "restore",
        &file_s,
        "--data-dir",
        &data_dir_s,
        "--name",
        "r1",
        "--initial-cluster",
        &initial,
        "--initial-cluster-token",
        "restored",
        "--initial-advertise-peer-urls",
        &peer_url,
    ];
    let (code, _, err) = cairnctl(&restore_args).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cairnctl(&restore_args).await;
    assert_ne!(code, 0);
    assert!(err.contains("exists"), "{err}");

    let client_url = format!("http://127.0.0.1:{client_port}");
    let mut child = Command::new(process::cairn_bin())
        .args([
            "--name",
            "r1",
            "--no-pin",
            "--cores",
            "1",
            "--log-level",
            "error",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &initial])
        .args(["--initial-cluster-token", "restored"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let options = ConnectOptions::default().with_request_timeout(Duration::from_secs(2));
    let mut found = None;
    for _ in 0..100 {
        if let Ok(c) = Client::connect([format!("127.0.0.1:{client_port}")], options).await {
            if let Ok(r) = c.get("k", GetOptions::new().with_prefix()).await {
                found = Some(r.kvs.len());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        found,
        Some(200),
        "every key is served by the restored member"
    );
}
