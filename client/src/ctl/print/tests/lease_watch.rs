//! Lease and watch output.

use super::*;

#[test]
fn leases_in_every_format() {
    use crate::{LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse};
    use crate::{LeaseRevokeResponse, LeaseTimeToLiveResponse};
    let grant = LeaseGrantResponse {
        header: hdr(36),
        id: 0x2040a20c41565957,
        ttl: 60,
        error: String::new(),
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.lease_grant(o, &grant)),
        "lease 2040a20c41565957 granted with TTL(60s)\n"
    );
    let grant = LeaseGrantResponse {
        id: 2324035581242661209,
        ..grant
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.lease_grant(o, &grant)),
        "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":36,\"raft_term\":2,\"ID\":2324035581242661209,\"TTL\":60,\"Error\":\"\"}\n"
    );
    let grant = LeaseGrantResponse {
        id: 2324035581242661211,
        ..grant
    };
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.lease_grant(o, &grant)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 36\n\"RaftTerm\" : 2\n\"ID\" : 2324035581242661211\n\"TTL\" : 60\n"
    );
    assert!(Printer::new(OutputFormat::Table, false)
        .require(Shape::Lease)
        .is_err());

    let ttl = LeaseTimeToLiveResponse {
        header: hdr(38),
        id: 0x2040a20c4156595f,
        ttl: 99,
        granted_ttl: 100,
        keys: vec![b"lk1".to_vec(), b"lk2".to_vec()],
    };
    let mut out = Vec::new();
    Printer::new(OutputFormat::Simple, false)
        .lease_time_to_live(&mut out, &ttl, false)
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "lease 2040a20c4156595f granted with TTL(100s), remaining(99s)\n"
    );
    let mut out = Vec::new();
    Printer::new(OutputFormat::Simple, false)
        .lease_time_to_live(&mut out, &ttl, true)
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "lease 2040a20c4156595f granted with TTL(100s), remaining(99s), attached keys([lk1 lk2])\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.lease_time_to_live(o, &ttl, true)),
        "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":38,\"raft_term\":2,\"id\":2324035581242661215,\"ttl\":99,\"granted-ttl\":100,\"keys\":[\"bGsx\",\"bGsy\"]}\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.lease_time_to_live(o, &ttl, true)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 38\n\"RaftTerm\" : 2\n\"ID\" : 2324035581242661215\n\"TTL\" : 99\n\"GrantedTTL\" : 100\n\"Key\" : \"lk1\"\n\"Key\" : \"lk2\"\n"
    );
    let expired = LeaseTimeToLiveResponse {
        header: hdr(39),
        ttl: -1,
        granted_ttl: 0,
        keys: vec![],
        ..ttl
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p
            .lease_time_to_live(o, &expired, false)),
        "lease 2040a20c4156595f already expired\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.lease_time_to_live(o, &expired, false)),
        "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":39,\"raft_term\":2,\"id\":2324035581242661215,\"ttl\":-1,\"granted-ttl\":0,\"keys\":null}\n"
    );

    let list = LeaseLeasesResponse {
        header: hdr(38),
        leases: vec![2324035581242661207, 2324035581242661191],
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.lease_leases(o, &list)),
        "found 2 leases\n2040a20c41565957\n2040a20c41565947\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.lease_leases(o, &list)),
        "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":38,\"raft_term\":2,\"leases\":[{\"id\":2324035581242661207},{\"id\":2324035581242661191}]}\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.lease_leases(o, &list)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 38\n\"RaftTerm\" : 2\n\"ID\" : 2324035581242661207\n\"ID\" : 2324035581242661191\n"
    );

    let kept = LeaseKeepAliveResponse {
        header: hdr(38),
        id: 0x2040a20c4156595f,
        ttl: 100,
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.lease_keep_alive(o, &kept)),
        "lease 2040a20c4156595f keepalived with TTL(100)\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.lease_keep_alive(o, &kept)),
        "{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":38,\"raft_term\":2,\"ID\":2324035581242661215,\"TTL\":100}\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.lease_keep_alive(o, &kept)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 38\n\"RaftTerm\" : 2\n\"ID\" : 2324035581242661215\n\"TTL\" : 100\n"
    );
    let revoked = LeaseRevokeResponse { header: hdr(39) };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.lease_revoke(
            o,
            0x2040a20c4156595f,
            &revoked
        )),
        "lease 2040a20c4156595f revoked\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.lease_revoke(o, 1, &revoked)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":39,\"raft_term\":2}}\n"
    );
    assert_eq!(lease_hex(-1), "-000000000000001");
}

#[test]
fn watch_events_in_every_format() {
    use crate::{Event, EventType, WatchResponse};
    let put1 = WatchResponse {
        header: hdr(40),
        events: vec![Event {
            kind: EventType::Put,
            kv: kv("wk1", "a", 40, 40, 1),
            prev_kv: None,
        }],
        ..Default::default()
    };
    let put2 = WatchResponse {
        header: hdr(41),
        events: vec![Event {
            kind: EventType::Put,
            kv: kv("wk1", "b", 40, 41, 2),
            prev_kv: Some(kv("wk1", "a", 40, 40, 1)),
        }],
        ..Default::default()
    };
    let del = WatchResponse {
        header: hdr(42),
        events: vec![Event {
            kind: EventType::Delete,
            kv: KeyValue {
                key: b"wk1".to_vec(),
                mod_revision: 42,
                ..Default::default()
            },
            prev_kv: Some(kv("wk1", "b", 40, 41, 2)),
        }],
        ..Default::default()
    };
    let all = |format| {
        let mut text = String::new();
        for r in [&put1, &put2, &del] {
            text.push_str(&print(format, |p, o| p.watch(o, r)));
        }
        text
    };
    assert_eq!(
        all(OutputFormat::Simple),
        "PUT\nwk1\na\nPUT\nwk1\na\nwk1\nb\nDELETE\nwk1\nb\nwk1\n\n"
    );
    assert_eq!(
        all(OutputFormat::Json),
        concat!(
            "{\"Header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":40,\"raft_term\":2},\"Events\":[{\"kv\":{\"key\":\"d2sx\",\"create_revision\":40,\"mod_revision\":40,\"version\":1,\"value\":\"YQ==\"}}],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n",
            "{\"Header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":41,\"raft_term\":2},\"Events\":[{\"kv\":{\"key\":\"d2sx\",\"create_revision\":40,\"mod_revision\":41,\"version\":2,\"value\":\"Yg==\"},\"prev_kv\":{\"key\":\"d2sx\",\"create_revision\":40,\"mod_revision\":40,\"version\":1,\"value\":\"YQ==\"}}],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n",
            "{\"Header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":42,\"raft_term\":2},\"Events\":[{\"type\":1,\"kv\":{\"key\":\"d2sx\",\"mod_revision\":42},\"prev_kv\":{\"key\":\"d2sx\",\"create_revision\":40,\"mod_revision\":41,\"version\":2,\"value\":\"Yg==\"}}],\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n",
        )
    );
    assert_eq!(
        all(OutputFormat::Fields),
        concat!(
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 40\n\"RaftTerm\" : 2\n",
            "\"Type\" : PUT\n\"Key\" : \"wk1\"\n\"CreateRevision\" : 40\n\"ModRevision\" : 40\n\"Version\" : 1\n\"Value\" : \"a\"\n\"Lease\" : 0\n",
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 41\n\"RaftTerm\" : 2\n",
            "\"Type\" : PUT\n\"PrevKey\" : \"wk1\"\n\"PrevCreateRevision\" : 40\n\"PrevModRevision\" : 40\n\"PrevVersion\" : 1\n\"PrevValue\" : \"a\"\n\"PrevLease\" : 0\n",
            "\"Key\" : \"wk1\"\n\"CreateRevision\" : 40\n\"ModRevision\" : 41\n\"Version\" : 2\n\"Value\" : \"b\"\n\"Lease\" : 0\n",
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 42\n\"RaftTerm\" : 2\n",
            "\"Type\" : DELETE\n\"PrevKey\" : \"wk1\"\n\"PrevCreateRevision\" : 40\n\"PrevModRevision\" : 41\n\"PrevVersion\" : 2\n\"PrevValue\" : \"b\"\n\"PrevLease\" : 0\n",
            "\"Key\" : \"wk1\"\n\"CreateRevision\" : 0\n\"ModRevision\" : 42\n\"Version\" : 0\n\"Value\" : \"\"\n\"Lease\" : 0\n",
        )
    );
    let progress = WatchResponse {
        header: hdr(50),
        ..Default::default()
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.watch(o, &progress)),
        "{\"Header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":50,\"raft_term\":2},\"Events\":null,\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n"
    );
}
