//! cairnctl end to end (argument parsing, request, output, exit code)
//! against the fake server.

mod support;

use cairn_client::ctl::{main_with, Io};
use support::{Behaviour, FakeServer};

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn cairnctl(args: &[&str], stdin: &str) -> Outcome {
    let mut input = stdin.as_bytes();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
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
    Outcome {
        code,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

#[tokio::test]
async fn kv_commands_print_what_etcdctl_prints() {
    let server = FakeServer::start(0x2e1259d415f2a040, Behaviour::default()).await;
    let ep = format!("--endpoints={}", server.address);
    let ep = ep.as_str();

    let o = cairnctl(&[ep, "put", "foo", "bar"], "").await;
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "OK\n", "")
    );
    let o = cairnctl(&[ep, "put", "foo", "--prev-kv", "bar2"], "").await;
    assert_eq!(o.stdout, "OK\nfoo\nbar\n");
    // The value may come from stdin.
    let o = cairnctl(&[ep, "put", "k 2"], "v\nmulti").await;
    assert_eq!(o.stdout, "OK\n");

    let o = cairnctl(&[ep, "get", "foo"], "").await;
    assert_eq!(o.stdout, "foo\nbar2\n");
    let o = cairnctl(&[ep, "get", "", "--prefix", "--print-value-only"], "").await;
    assert_eq!(o.stdout, "bar2\nv\nmulti\n");
    let o = cairnctl(&[ep, "get", "foo", "-w", "json"], "").await;
    assert_eq!(
        o.stdout,
        "{\"header\":{\"cluster_id\":193,\"member_id\":3319814642761637952,\"revision\":4,\"raft_term\":2},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":3,\"version\":2,\"value\":\"YmFyMg==\"}],\"count\":1}\n"
    );
    let o = cairnctl(&[ep, "get", "foo", "-w", "table"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (4, "Error: table not supported as output format\n")
    );
    let o = cairnctl(&[ep, "get", "foo", "--print-value-only", "-w", "json"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            128,
            "Error: print-value-only is only for `--write-out=simple`\n"
        )
    );

    let o = cairnctl(&[ep, "del", "nonexist"], "").await;
    assert_eq!(o.stdout, "0\n");
    let o = cairnctl(&[ep, "del", "", "--prefix", "--prev-kv"], "").await;
    assert_eq!(o.stdout, "2\nfoo\nbar2\nk 2\nv\nmulti\n");

    let o = cairnctl(&[ep, "put", "zz", "--ignore-value"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Error: etcdserver: key not found\n")
    );
    let o = cairnctl(&[ep, "get"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            128,
            "Error: get command needs one argument as key and an optional argument as range_end\n"
        )
    );
}

#[tokio::test]
async fn txn_from_stdin_and_interactively() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let ep = format!("--endpoints={}", server.address);
    let ep = ep.as_str();
    cairnctl(&[ep, "put", "key1", "v"], "").await;
    let script = "mod(\"key1\") > \"0\"\n\nput key1 \"overwrote-key1\"\nget key1\n\nput key1 \"created-key1\"\nput key2 \"some extra key\"\n\n";
    let o = cairnctl(&[ep, "txn"], script).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "SUCCESS\n\nOK\n\nkey1\noverwrote-key1\n")
    );
    let o = cairnctl(&[ep, "txn", "-i"], script).await;
    assert_eq!(
        o.stdout,
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nSUCCESS\n\nOK\n\nkey1\noverwrote-key1\n"
    );
    let o = cairnctl(
        &[ep, "txn"],
        "value(\"key1\") = \"nope\"\n\n\nget key1 --keys-only\n\n",
    )
    .await;
    assert_eq!(o.stdout, "FAILURE\n\nkey1\n\n");
    let o = cairnctl(&[ep, "txn"], "mod(\"k\") > \"0\"\n").await;
    assert_eq!((o.code, o.stderr.as_str()), (3, "Error: EOF\n"));
    // The format is checked before anything is read or sent.
    let o = cairnctl(&[ep, "txn", "-w", "table"], script).await;
    assert_eq!(o.code, 4);
    let o = cairnctl(&[ep, "get", "key1", "--print-value-only"], "").await;
    assert_eq!(o.stdout, "overwrote-key1\n");
}

#[tokio::test]
async fn maintenance_commands() {
    let server = FakeServer::start(0x2e1259d415f2a040, Behaviour::default()).await;
    let ep = format!("--endpoints={}", server.address);
    let ep = ep.as_str();
    for i in 0..4 {
        cairnctl(&[ep, "put", "k", &i.to_string()], "").await;
    }
    let o = cairnctl(&[ep, "compaction", "3"], "").await;
    assert_eq!((o.code, o.stdout.as_str()), (0, "compacted revision 3\n"));
    let o = cairnctl(&[ep, "compaction", "3", "--physical"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            1,
            "Error: etcdserver: mvcc: required revision has been compacted\n"
        )
    );
    let o = cairnctl(&[ep, "compaction", "x"], "").await;
    assert_eq!(
        o.stderr,
        "Error: strconv.ParseInt: parsing \"x\": invalid syntax\n"
    );
    let o = cairnctl(&[ep, "get", "k", "--rev", "1000"], "").await;
    assert_eq!(
        o.stderr,
        "Error: etcdserver: mvcc: required revision is a future revision\n"
    );

    let o = cairnctl(&[ep, "endpoint", "status"], "").await;
    assert_eq!(
        o.stdout,
        format!(
            "{}, 2e1259d415f2a040, 0.1.0, 20 kB, true, false, 2, 24, 24, \n",
            server.address
        )
    );
    let o = cairnctl(&[ep, "member", "list"], "").await;
    assert_eq!(
        o.stdout,
        "2e1259d415f2a040, started, default, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n"
    );
    let o = cairnctl(&[ep, "alarm", "list"], "").await;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""));
    server.raise_alarm(cairn_wire::rpc::AlarmType::NoSpace);
    let o = cairnctl(&[ep, "alarm", "list"], "").await;
    assert_eq!(o.stdout, "memberID:3319814642761637952 alarm:NOSPACE \n");
    let o = cairnctl(&[ep, "endpoint", "health"], "").await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        format!(
            "{} is unhealthy: failed to commit proposal: Active Alarm(s): NOSPACE \nError: unhealthy cluster\n",
            server.address
        )
    );
    let o = cairnctl(&[ep, "alarm", "disarm"], "").await;
    assert_eq!(o.stdout, "memberID:3319814642761637952 alarm:NOSPACE \n");
    let o = cairnctl(&[ep, "endpoint", "health"], "").await;
    assert_eq!(o.code, 0);
    let prefix = format!(
        "{} is healthy: successfully committed proposal: took = ",
        server.address
    );
    assert!(o.stdout.starts_with(&prefix), "{}", o.stdout);

    let o = cairnctl(&["version"], "").await;
    assert_eq!(
        o.stdout,
        format!(
            "cairnctl version: {}\nAPI version: 3.5\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[tokio::test]
async fn unreachable_endpoints_and_unsupported_flags() {
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().to_string()
    };
    let ep = format!("--endpoints={closed}");
    let o = cairnctl(&[&ep, "--dial-timeout=200ms", "get", "foo"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Error: context deadline exceeded\n")
    );
    let o = cairnctl(&[&ep, "--dial-timeout=200ms", "endpoint", "health"], "").await;
    assert_eq!(
        o.stderr,
        format!("{closed} is unhealthy: failed to commit proposal: context deadline exceeded\nError: unhealthy cluster\n")
    );
    let live = FakeServer::start(1, Behaviour::default()).await;
    let both = format!("--endpoints={closed},{}", live.address);
    let o = cairnctl(&[&both, "--dial-timeout=200ms", "endpoint", "status"], "").await;
    assert_eq!(o.code, 1);
    assert!(o
        .stderr
        .starts_with(&format!("Failed to get the status of endpoint {closed} (")));
    assert!(o.stdout.starts_with(&live.address));
    // Fail-over: the dead endpoint is skipped.
    let o = cairnctl(&[&both, "put", "a", "b"], "").await;
    assert_eq!(o.stdout, "OK\n");

    // TLS needs a CA to verify the server with, and readable files.
    let o = cairnctl(&["--cert=c.pem", "--key=k.pem", "get", "foo"], "").await;
    assert_eq!(o.code, 128);
    assert!(o.stderr.contains("--cacert"), "{}", o.stderr);
    let o = cairnctl(&["--cacert=/nonexistent/ca.pem", "get", "foo"], "").await;
    assert_eq!(o.code, 128);
    assert!(o.stderr.contains("/nonexistent/ca.pem"), "{}", o.stderr);
    // --user without a password asks for it before connecting.
    let o = cairnctl(
        &[
            &format!("--endpoints={closed}"),
            "--dial-timeout=200ms",
            "--user=root",
            "get",
            "foo",
        ],
        "pw\n",
    )
    .await;
    assert_eq!((o.code, o.stdout.as_str()), (1, "Password: \n"));
    let o = cairnctl(&["-w", "bogus", "get", "foo"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (4, "Error: unsupported output format\n")
    );
    let o = cairnctl(&["bogus"], "").await;
    assert_eq!(o.code, 1);
}

#[test]
fn global_flags_read_cairnctl_environment_variables() {
    use clap::CommandFactory;
    let command = cairn_client::ctl::args::Cli::command();
    let env_of = |name: &str| {
        command
            .get_arguments()
            .find(|a| a.get_id() == name)
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
    };
    assert_eq!(env_of("endpoints").as_deref(), Some("CAIRNCTL_ENDPOINTS"));
    assert_eq!(env_of("write_out").as_deref(), Some("CAIRNCTL_WRITE_OUT"));
    assert_eq!(
        env_of("dial_timeout").as_deref(),
        Some("CAIRNCTL_DIAL_TIMEOUT")
    );
    assert_eq!(
        env_of("command_timeout").as_deref(),
        Some("CAIRNCTL_COMMAND_TIMEOUT")
    );
    assert_eq!(env_of("hex").as_deref(), Some("CAIRNCTL_HEX"));
}

#[tokio::test]
async fn lease_commands() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let ep = format!("--endpoints={}", server.address);
    let ep = ep.as_str();
    let o = cairnctl(&[ep, "lease", "grant", "60"], "").await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "lease 2040a20c41565900 granted with TTL(60s)\n")
    );
    cairnctl(&[ep, "put", "lk1", "v", "--lease=2040a20c41565900"], "").await;
    cairnctl(&[ep, "put", "lk2", "v", "--lease=2040a20c41565900"], "").await;
    let o = cairnctl(
        &[ep, "lease", "timetolive", "2040a20c41565900", "--keys"],
        "",
    )
    .await;
    assert_eq!(
        o.stdout,
        "lease 2040a20c41565900 granted with TTL(60s), remaining(59s), attached keys([lk1 lk2])\n"
    );
    let o = cairnctl(&[ep, "lease", "list"], "").await;
    assert_eq!(o.stdout, "found 1 leases\n2040a20c41565900\n");
    let o = cairnctl(
        &[ep, "lease", "keep-alive", "--once", "2040a20c41565900"],
        "",
    )
    .await;
    assert_eq!(o.stdout, "lease 2040a20c41565900 keepalived with TTL(60)\n");
    let o = cairnctl(&[ep, "lease", "revoke", "2040a20c41565900"], "").await;
    assert_eq!(o.stdout, "lease 2040a20c41565900 revoked\n");
    let o = cairnctl(&[ep, "lease", "revoke", "2040a20c41565900"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            1,
            "Error: failed to revoke lease (etcdserver: requested lease not found)\n"
        )
    );
    let o = cairnctl(&[ep, "lease", "timetolive", "2040a20c41565900"], "").await;
    assert_eq!(o.stdout, "lease 2040a20c41565900 already expired\n");
    let o = cairnctl(
        &[ep, "lease", "keep-alive", "--once", "2040a20c41565900"],
        "",
    )
    .await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (2, "Error: etcdserver: requested lease not found\n")
    );
    // Without --once: renews until the lease is gone, then says so.
    let o = cairnctl(&[ep, "lease", "keep-alive", "2040a20c41565900"], "").await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "lease 2040a20c41565900 expired or revoked.\n")
    );
    let o = cairnctl(&[ep, "lease", "revoke", "zz"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (128, "Error: bad lease ID arg (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex\n")
    );
    let o = cairnctl(&[ep, "lease", "grant", "x"], "").await;
    assert_eq!(
        o.stderr,
        "Error: bad TTL (strconv.ParseInt: parsing \"x\": invalid syntax)\n"
    );
    let o = cairnctl(&[ep, "lease", "grant"], "").await;
    assert_eq!(o.stderr, "Error: lease grant command needs TTL argument\n");
    let o = cairnctl(&[ep, "lease", "grant", "60", "-w", "table"], "").await;
    assert_eq!(o.code, 4);
}

async fn wait_for_watchers(server: &FakeServer, count: usize) {
    while server.watchers() != count {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn watch_prints_events_until_the_server_cancels() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let ep = format!("--endpoints={}", server.address);
    let drive = async {
        wait_for_watchers(&server, 1).await;
        // The watch survives a lost connection: cairnctl re-creates it
        // (after the last revision it printed).
        server.drop_connections();
        wait_for_watchers(&server, 1).await;
        let client = cairn_client::Client::connect([&server.address], Default::default())
            .await
            .unwrap();
        let put = cairn_client::PutOptions::new();
        client.put("wk1", "a", put).await.unwrap();
        client.put("other", "x", put).await.unwrap();
        client.put("wk1", "b", put).await.unwrap();
        client
            .delete("wk1", cairn_client::DeleteOptions::new())
            .await
            .unwrap();
        server.cancel_watches("fake server going away");
    };
    let args = [ep.as_str(), "watch", "wk", "--prefix", "--prev-kv"];
    let (o, ()) = tokio::join!(cairnctl(&args, ""), drive);
    assert_eq!(
        o.stdout,
        "PUT\nwk1\na\nPUT\nwk1\na\nwk1\nb\nDELETE\nwk1\nb\nwk1\n\n"
    );
    assert_eq!(
        o.stderr,
        "watch was canceled (fake server going away)\nError: watch is canceled by the server\n"
    );
    assert_eq!(o.code, 5);
}

#[tokio::test]
async fn watch_from_a_compacted_revision() {
    let server = FakeServer::start(1, Behaviour::default()).await;
    let ep = format!("--endpoints={}", server.address);
    let ep = ep.as_str();
    for i in 0..3 {
        cairnctl(&[ep, "put", "k", &i.to_string()], "").await;
    }
    cairnctl(&[ep, "compaction", "3"], "").await;
    let o = cairnctl(&[ep, "watch", "k", "--rev=2"], "").await;
    assert_eq!(o.code, 5);
    assert_eq!(
        o.stderr,
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n"
    );
    // `watch -i` reads the process's own stdin, not the one given here:
    // client/tests/watch_interactive_diff.rs runs it as a process.
    let o = cairnctl(&[ep, "watch"], "").await;
    assert_eq!(o.code, 128);
}

#[tokio::test]
async fn membership_and_per_member_maintenance() {
    let server = FakeServer::start(0x2e1259d415f2a040, Behaviour::default()).await;
    let ep = format!("--endpoints={}", server.address);
    let ep = ep.as_str();
    let o = cairnctl(
        &[
            ep,
            "member",
            "add",
            "n2",
            "--peer-urls=http://127.0.0.1:23802",
        ],
        "",
    )
    .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (
            0,
            "Member 6b21a64bf8667db2 added to cluster               c1\n\nETCD_NAME=\"n2\"\nETCD_INITIAL_CLUSTER=\"default=http://127.0.0.1:23800,n2=http://127.0.0.1:23802\"\nETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:23802\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
        )
    );
    let o = cairnctl(&[ep, "member", "list"], "").await;
    assert_eq!(
        o.stdout,
        "2e1259d415f2a040, started, default, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n6b21a64bf8667db2, unstarted, , http://127.0.0.1:23802, , false\n"
    );
    let o = cairnctl(
        &[
            ep,
            "member",
            "update",
            "6b21a64bf8667db2",
            "--peer-urls=http://127.0.0.1:23812",
        ],
        "",
    )
    .await;
    assert_eq!(
        o.stdout,
        "Member 6b21a64bf8667db2 updated in cluster               c1\n"
    );
    let o = cairnctl(&[ep, "member", "promote", "6b21a64bf8667db2"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Error: etcdserver: can only promote a learner member\n")
    );
    let o = cairnctl(&[ep, "member", "remove", "6b21a64bf8667db2"], "").await;
    assert_eq!(
        o.stdout,
        "Member 6b21a64bf8667db2 removed from cluster               c1\n"
    );
    let o = cairnctl(&[ep, "member", "remove", "6b21a64bf8667db2"], "").await;
    assert_eq!(o.stderr, "Error: etcdserver: member not found\n");
    let o = cairnctl(&[ep, "member", "add", "n3", "http://x:1"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            128,
            "Error: too many arguments, did you mean --peer-urls=http://x:1\n"
        )
    );
    let o = cairnctl(&[ep, "member", "add", "n3"], "").await;
    assert_eq!(o.stderr, "Error: member peer urls not provided\n");
    let o = cairnctl(
        &[
            ep,
            "member",
            "add",
            "n3",
            "--peer-urls=http://x:1",
            "-w",
            "fields",
        ],
        "",
    )
    .await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (4, "Error: fields not supported as output format\n")
    );

    cairnctl(&[ep, "put", "k", "v"], "").await;
    let o = cairnctl(&[ep, "endpoint", "hashkv"], "").await;
    assert_eq!(o.code, 0);
    let (endpoint, hash) = o.stdout.trim_end().split_once(", ").unwrap();
    assert_eq!(endpoint, server.address);
    assert!(hash.parse::<u32>().is_ok());
    let o = cairnctl(&[ep, "defrag"], "").await;
    assert_eq!(
        o.stdout,
        format!("Finished defragmenting etcd member[{}]\n", server.address)
    );
    let o = cairnctl(&[ep, "move-leader", "bdae9bbc11dd390d"], "").await;
    assert_eq!(
        o.stdout,
        "Leadership transferred from 2e1259d415f2a040 to bdae9bbc11dd390d\n"
    );
}
