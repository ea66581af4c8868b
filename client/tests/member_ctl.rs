//! `cairnctl member promote` against a real three-member cluster: only the
//! leader can judge a promotion, so a follower's "not leader" must send
//! cairnctl to the leader among its endpoints (etcd's followers forward the
//! request themselves), and the answer the user sees is the leader's.

#[path = "support/process.rs"]
mod process;

use process::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_through_a_follower_gets_the_leaders_answer() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let client = cluster.client().await;
    let voter = client.status().await.unwrap().header.member_id;
    // The follower first, so that is where cairnctl's request lands.
    let endpoints = format!(
        "{},{}",
        cluster.members[follower].endpoint(),
        cluster.members[leader].endpoint()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairnctl"))
        .args(["--endpoints", &endpoints, "member", "promote"])
        .arg(format!("{voter:x}"))
        .output()
        .expect("run cairnctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "promoting a voter succeeded");
    assert!(
        stderr.contains("etcdserver: can only promote a learner member"),
        "expected the leader's refusal, got: {stderr}"
    );
}
