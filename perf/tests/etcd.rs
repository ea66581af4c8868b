//! The workloads against a real etcd, started by each test on free loopback
//! ports when an `etcd` binary is on PATH (Debian's etcd-server); without
//! one the tests print a note and pass.

mod common;

use bytes::Bytes;
use cairn_perf::compare::{compare, CompareSpec, CAIRN_GRPC_LABEL};
use cairn_perf::config::TargetKind;
use cairn_perf::etcd::{connect, EtcdConn};
use cairn_perf::keys::KeySpace;
use cairn_perf::run::{run, run_on, RunSpec, CONNS_AT_LEADER_FACT};
use cairn_perf::target::{Consistency, RangeOptions, Target};
use cairn_perf::workload::Workload;
use common::{closed, plan, start_etcd};

fn range_options(consistency: Consistency) -> RangeOptions {
    RangeOptions {
        consistency,
        limit: 0,
        count_only: false,
    }
}

/// Every key-value pair in the store.
async fn all_pairs(conn: &EtcdConn) -> Vec<(Bytes, Bytes)> {
    conn.range(
        Bytes::from_static(b"\0"),
        Bytes::from_static(b"\0"),
        range_options(Consistency::Linearizable),
    )
    .await
    .expect("range over all keys")
    .kvs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_run_counts_add_up_and_writes_every_key_with_its_sizes() {
    let Some(server) = start_etcd().await else {
        return;
    };
    let endpoints = vec![server.client_url().to_string()];
    let conns = connect(&endpoints, 2).await.unwrap();
    let keys = KeySpace::new(6, 200, true).unwrap();
    let plan = plan(Workload::Put, keys, 100, closed(8, 600));
    let summary = run_on(&conns, "etcd", &endpoints, &plan, false)
        .await
        .unwrap();

    assert_eq!(summary.requests, 600);
    assert_eq!(summary.successes + summary.failures, summary.requests);
    assert_eq!(summary.failures, 0, "errors: {:?}", summary.errors);
    assert!(summary.requests_per_sec > 0.0);

    // 600 sequential puts over 200 keys wrote each key, and only those.
    let pairs = all_pairs(&conns[0]).await;
    assert_eq!(pairs.len(), 200);
    for (i, (key, value)) in pairs.iter().enumerate() {
        assert_eq!(key, &Bytes::from(format!("{i:06}")));
        assert_eq!(value.len(), 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_runs_read_the_prefilled_key_space() {
    let Some(server) = start_etcd().await else {
        return;
    };
    let endpoints = vec![server.client_url().to_string()];
    // Before the key space is filled every read finds nothing, and the
    // summary says so.
    let conns = connect(&endpoints, 1).await.unwrap();
    let empty_read = plan(
        Workload::Range {
            key: None,
            range_end: Bytes::new(),
            options: range_options(Consistency::Serializable),
        },
        KeySpace::new(8, 50, false).unwrap(),
        32,
        closed(2, 40),
    );
    let summary = run_on(&conns, "etcd", &endpoints, &empty_read, false)
        .await
        .unwrap();
    assert_eq!(summary.successes, 40);
    assert_eq!(summary.empty_ranges, 40);
    for (consistency, flag) in [
        (Consistency::Linearizable, "l"),
        (Consistency::Serializable, "s"),
    ] {
        let spec = RunSpec {
            target: TargetKind::Etcd,
            endpoints: endpoints.clone(),
            conns: 3,
            plan: plan(
                Workload::Range {
                    key: None,
                    range_end: Bytes::new(),
                    options: range_options(consistency),
                },
                KeySpace::new(8, 50, false).unwrap(),
                32,
                closed(6, 300),
            ),
            prefill: true,
            check: None,
            target_leader: false,
            server_pids: Vec::new(),
            watch: None,
            access: Default::default(),
        };
        let summary = run(&spec).await.unwrap();
        assert_eq!(summary.requests, 300, "consistency {flag}");
        assert_eq!(summary.successes, 300, "errors: {:?}", summary.errors);
        assert!(summary.config.prefill);
        assert_eq!(summary.empty_ranges, 0, "every read finds its key");
    }
    // The prefill wrote the whole key space with the asked sizes.
    let conn = EtcdConn::connect(&endpoints[0]).await.unwrap();
    let pairs = all_pairs(&conn).await;
    assert_eq!(pairs.len(), 50);
    assert!(pairs.iter().all(|(k, v)| k.len() == 8 && v.len() == 32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_put_writes_every_op() {
    let Some(server) = start_etcd().await else {
        return;
    };
    let endpoints = vec![server.client_url().to_string()];
    let conns = connect(&endpoints, 1).await.unwrap();
    let keys = KeySpace::new(4, 40, true).unwrap();
    let plan = plan(Workload::TxnPut { ops: 4 }, keys, 10, closed(1, 10));
    let summary = run_on(&conns, "etcd", &endpoints, &plan, false)
        .await
        .unwrap();
    assert_eq!(summary.successes, 10, "errors: {:?}", summary.errors);
    // 10 txns of 4 sequential keys: all 40 keys.
    assert_eq!(all_pairs(&conns[0]).await.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_etcd_are_counted_not_fatal() {
    let Some(server) = start_etcd().await else {
        return;
    };
    let endpoints = vec![server.client_url().to_string()];
    let conns = connect(&endpoints, 1).await.unwrap();
    // A txn putting the same key twice is refused by etcd.
    let keys = KeySpace::new(4, 1, true).unwrap();
    let plan = plan(Workload::TxnPut { ops: 2 }, keys, 10, closed(2, 20));
    let summary = run_on(&conns, "etcd", &endpoints, &plan, false)
        .await
        .unwrap();
    assert_eq!(summary.requests, 20);
    assert_eq!(summary.failures, 20);
    assert_eq!(
        summary
            .errors
            .get("etcdserver: duplicate key given in txn request"),
        Some(&20),
        "errors: {:?}",
        summary.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_without_cairn_runs_etcd_alone_and_says_so() {
    if cairn_perf::server::find_program(None, "etcd", &[]).is_none() {
        eprintln!("note: skipping: no `etcd` on PATH");
        return;
    }
    let spec = CompareSpec {
        run: RunSpec {
            target: TargetKind::Etcd,
            endpoints: Vec::new(),
            conns: 1,
            plan: plan(
                Workload::Put,
                KeySpace::new(8, 100, false).unwrap(),
                16,
                closed(2, 100),
            ),
            prefill: false,
            check: None,
            target_leader: false,
            server_pids: Vec::new(),
            watch: None,
            access: Default::default(),
        },
        etcd_bin: None,
        cairn_bin: Some("/nonexistent/cairn".into()),
        data_dir_base: None,
        members: 1,
        server_tls: None,
        cairn_grpc: false,
    };
    let notes = std::sync::Mutex::new(Vec::new());
    let comparison = compare(&spec, &|n| notes.lock().unwrap().push(n.to_string()))
        .await
        .unwrap();
    assert_eq!(comparison.etcd.successes, 100);
    assert!(comparison.cairn.is_none());
    let reason = comparison.cairn_missing.unwrap();
    assert!(reason.contains("cairn binary not found"), "{reason}");
    assert!(notes
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.contains("running etcd alone")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_spreads_connections_over_a_three_member_cluster() {
    if cairn_perf::server::find_program(None, "etcd", &[]).is_none() {
        eprintln!("note: skipping: no `etcd` on PATH");
        return;
    }
    let spec = CompareSpec {
        run: RunSpec {
            target: TargetKind::Etcd,
            endpoints: Vec::new(),
            conns: 3,
            plan: plan(
                Workload::Put,
                KeySpace::new(8, 100, false).unwrap(),
                16,
                closed(6, 60),
            ),
            prefill: false,
            check: None,
            target_leader: false,
            server_pids: Vec::new(),
            watch: None,
            access: Default::default(),
        },
        etcd_bin: None,
        cairn_bin: Some("/nonexistent/cairn".into()),
        data_dir_base: None,
        members: 3,
        server_tls: None,
        cairn_grpc: false,
    };
    let comparison = compare(&spec, &|_| ()).await.unwrap();
    assert_eq!(
        comparison.etcd.successes, 60,
        "errors: {:?}",
        comparison.etcd.errors
    );
    let endpoints = &comparison.etcd.config.endpoints;
    assert_eq!(endpoints.len(), 3, "{endpoints:?}");
    assert_eq!(comparison.etcd.config.conns, 3);
}

/// A compare of `total` puts over `conns` connections, with cairn from
/// this build.
fn compare_puts(conns: usize, total: u64, members: usize) -> CompareSpec {
    CompareSpec {
        run: RunSpec {
            target: TargetKind::Cairn,
            endpoints: Vec::new(),
            conns,
            plan: plan(
                Workload::Put,
                KeySpace::new(8, 100, false).unwrap(),
                16,
                closed(2 * conns, total),
            ),
            prefill: false,
            check: None,
            target_leader: false,
            server_pids: Vec::new(),
            watch: None,
            access: Default::default(),
        },
        etcd_bin: None,
        cairn_bin: Some(common::cairn_bin()),
        data_dir_base: None,
        members,
        server_tls: None,
        cairn_grpc: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_target_leader_sends_both_servers_load_to_one_member_of_three() {
    if cairn_perf::server::find_program(None, "etcd", &[]).is_none() {
        eprintln!("note: skipping: no `etcd` on PATH");
        return;
    }
    let mut spec = compare_puts(2, 40, 3);
    spec.run.target_leader = true;
    let comparison = compare(&spec, &|_| ()).await.unwrap();
    let cairn = comparison
        .cairn
        .unwrap_or_else(|| panic!("no cairn result: {:?}", comparison.cairn_missing));
    for summary in [&comparison.etcd, &cairn] {
        assert_eq!(summary.successes, 40, "errors: {:?}", summary.errors);
        assert_eq!(summary.config.endpoints.len(), 1, "{:?}", summary.config);
        assert_eq!(summary.fact(CONNS_AT_LEADER_FACT), Some(2.0));
        // Usage is of all three members, leader and followers.
        assert!(summary.server.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_grpc_drives_cairn_through_etcds_api() {
    if cairn_perf::server::find_program(None, "etcd", &[]).is_none() {
        eprintln!("note: skipping: no `etcd` on PATH");
        return;
    }
    let mut spec = compare_puts(2, 50, 1);
    spec.cairn_grpc = true;
    spec.run.plan.workload = Workload::Range {
        key: None,
        range_end: Bytes::new(),
        options: range_options(Consistency::Linearizable),
    };
    spec.run.prefill = true;
    let comparison = compare(&spec, &|_| ()).await.unwrap();
    let cairn = comparison
        .cairn
        .unwrap_or_else(|| panic!("no cairn result: {:?}", comparison.cairn_missing));
    assert_eq!(comparison.etcd.config.target, "etcd");
    assert_eq!(cairn.config.target, CAIRN_GRPC_LABEL);
    for summary in [&comparison.etcd, &cairn] {
        assert_eq!(summary.successes, 50, "errors: {:?}", summary.errors);
        // Every read found the prefilled key it asked for.
        assert_eq!(summary.empty_ranges, 0);
    }
}

/// A value of `kib` KiB whose bytes say which key it belongs to.
fn big_value(i: usize, kib: usize) -> Bytes {
    Bytes::from(vec![b'a' + (i % 26) as u8; kib * 1024])
}

/// The keys `big/<from>` to `big/<to>` (exclusive), put concurrently over
/// `conn` with [`big_value`]s.
async fn put_big(conn: &EtcdConn, keys: std::ops::Range<usize>, kib: usize) {
    let mut puts = tokio::task::JoinSet::new();
    for i in keys {
        let conn = conn.clone();
        puts.spawn(async move {
            conn.put(Bytes::from(format!("big/{i:02}")), big_value(i, kib))
                .await
        });
    }
    while let Some(put) = puts.join_next().await {
        put.unwrap().expect("put of a large value");
    }
}

/// The unary calls over one HTTP/2 connection: requests larger than the
/// server's initial flow-control window, answers spanning many frames and
/// more than a stream's window, concurrent calls (more answer bytes in all
/// than the connection's window) each getting its own answer, and failures
/// counted by the server's message or the harness's limit, with the
/// connection still usable after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_large_concurrent_calls_and_names_their_failures() {
    let Some(server) = start_etcd().await else {
        return;
    };
    let conn = EtcdConn::connect(server.client_url()).await.unwrap();
    // 24 values of 100 KiB: 2.4 MB per read of all of them.
    put_big(&conn, 0..24, 100).await;
    let big_range = || {
        let conn = conn.clone();
        async move {
            conn.range(
                Bytes::from_static(b"big/"),
                Bytes::from_static(b"big0"),
                range_options(Consistency::Linearizable),
            )
            .await
        }
    };
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..3 {
        reads.spawn(big_range());
    }
    while let Some(read) = reads.join_next().await {
        let kvs = read.unwrap().expect("range of the large values").kvs;
        assert_eq!(kvs.len(), 24);
        for (i, (key, value)) in kvs.iter().enumerate() {
            assert_eq!(key, &Bytes::from(format!("big/{i:02}")));
            assert_eq!(value, &big_value(i, 100), "value of {key:?}");
        }
    }

    // etcd's refusal is counted by its message.
    let refused = conn
        .put(Bytes::new(), Bytes::from_static(b"v"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind, "etcdserver: key is not provided");

    // 48 values of 100 KiB are more than the 4 MiB an answer may hold.
    put_big(&conn, 24..48, 100).await;
    let too_large = big_range().await.unwrap_err();
    assert!(
        too_large.kind.starts_with("grpc: answer of ")
            && too_large
                .kind
                .ends_with("is over the limit of 4194304 bytes"),
        "{too_large:?}"
    );
    // The connection goes on after both failures.
    let one = conn
        .range(
            Bytes::from_static(b"big/07"),
            Bytes::new(),
            range_options(Consistency::Serializable),
        )
        .await
        .unwrap();
    assert_eq!(
        one.kvs,
        vec![(Bytes::from_static(b"big/07"), big_value(7, 100))]
    );

    // With the server gone, calls fail as transport errors.
    drop(server);
    let gone = conn
        .put(Bytes::from_static(b"k"), Bytes::from_static(b"v"))
        .await
        .unwrap_err();
    assert!(gone.kind.starts_with("transport: "), "{gone:?}");
}
