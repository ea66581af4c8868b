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

    let o = cairnctl(&["--cert=c.pem", "get", "foo"], "").await;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (4, "Error: --cert: TLS is not supported by cairn yet\n")
    );
    let o = cairnctl(&["--user=root", "get", "foo"], "").await;
    assert_eq!(o.code, 4);
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
