//! Cluster-level commands: endpoint health and status, member list, alarms.

use super::*;

fn health(took: &str) -> Vec<EndpointHealth> {
    vec![EndpointHealth {
        endpoint: "127.0.0.1:23790".into(),
        health: true,
        took: took.into(),
        error: String::new(),
    }]
}

#[test]
fn endpoint_health_in_every_format() {
    let mut out = Vec::new();
    let mut err = Vec::new();
    Printer::new(OutputFormat::Simple, false)
        .endpoint_health(&mut out, &mut err, &health("1.159823ms"))
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "127.0.0.1:23790 is healthy: successfully committed proposal: took = 1.159823ms\n"
    );
    assert!(err.is_empty());
    let json = print(OutputFormat::Json, |p, o| {
        p.endpoint_health(o, &mut Vec::new(), &health("1.123572ms"))
    });
    assert_eq!(
        json,
        "[{\"endpoint\":\"127.0.0.1:23790\",\"health\":true,\"took\":\"1.123572ms\"}]\n"
    );
    let table = print(OutputFormat::Table, |p, o| {
        p.endpoint_health(o, &mut Vec::new(), &health("950.285µs"))
    });
    assert_eq!(
        table,
        "+-----------------+--------+-----------+-------+\n\
         |    ENDPOINT     | HEALTH |   TOOK    | ERROR |\n\
         +-----------------+--------+-----------+-------+\n\
         | 127.0.0.1:23790 |   true | 950.285µs |       |\n\
         +-----------------+--------+-----------+-------+\n"
    );
    let fields = print(OutputFormat::Fields, |p, o| {
        p.endpoint_health(o, &mut Vec::new(), &health("1.176492ms"))
    });
    assert_eq!(
        fields,
        "\"Endpoint\" : \"127.0.0.1:23790\"\n\"Health\" : true\n\"Took\" : 1.176492ms\n\"Error\" : \n\n"
    );
    let sick = vec![EndpointHealth {
        endpoint: "127.0.0.1:1".into(),
        health: false,
        took: "2s".into(),
        error: "context deadline exceeded".into(),
    }];
    let mut out = Vec::new();
    let mut err = Vec::new();
    Printer::new(OutputFormat::Simple, false)
        .endpoint_health(&mut out, &mut err, &sick)
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "127.0.0.1:1 is unhealthy: failed to commit proposal: context deadline exceeded\n"
    );
}

fn status_plain() -> Vec<EndpointStatus> {
    vec![EndpointStatus {
        endpoint: "127.0.0.1:23790".into(),
        status: StatusResponse {
            header: hdr(19),
            version: "3.4.23".into(),
            db_size: 20480,
            leader: 3319814642761637952,
            raft_index: 24,
            raft_term: 2,
            raft_applied_index: 24,
            errors: vec![],
            db_size_in_use: 16384,
            is_learner: false,
        },
    }]
}

fn status_nospace() -> Vec<EndpointStatus> {
    vec![EndpointStatus {
        endpoint: "127.0.0.1:23791".into(),
        status: StatusResponse {
            header: ResponseHeader {
                cluster_id: 15118495548433857066,
                member_id: 13668033151171901709,
                revision: 3,
                raft_term: 2,
            },
            version: "3.4.23".into(),
            db_size: 290816,
            leader: 13668033151171901709,
            raft_index: 17,
            raft_term: 2,
            raft_applied_index: 17,
            errors: vec![alarm_text(&AlarmMember {
                member_id: 13668033151171901709,
                alarm: AlarmType::NoSpace,
            })],
            db_size_in_use: 286720,
            is_learner: false,
        },
    }]
}

#[test]
fn endpoint_status_in_every_format() {
    let s = status_plain();
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.endpoint_status(o, &s)),
        "127.0.0.1:23790, 2e1259d415f2a040, 3.4.23, 20 kB, true, false, 2, 24, 24, \n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.endpoint_status(o, &s)),
        "[{\"Endpoint\":\"127.0.0.1:23790\",\"Status\":{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":19,\"raft_term\":2},\"version\":\"3.4.23\",\"dbSize\":20480,\"leader\":3319814642761637952,\"raftIndex\":24,\"raftTerm\":2,\"raftAppliedIndex\":24,\"dbSizeInUse\":16384}}]\n"
    );
    assert_eq!(
        print(OutputFormat::Table, |p, o| p.endpoint_status(o, &s)),
        "+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+\n\
         |    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |\n\
         +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+\n\
         | 127.0.0.1:23790 | 2e1259d415f2a040 |  3.4.23 |   20 kB |      true |      false |         2 |         24 |                 24 |        |\n\
         +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.endpoint_status(o, &s)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 19\n\"RaftTerm\" : 2\n\"Version\" : \"3.4.23\"\n\"DBSize\" : 20480\n\"Leader\" : 3319814642761637952\n\"IsLearner\" : false\n\"RaftIndex\" : 24\n\"RaftTerm\" : 2\n\"RaftAppliedIndex\" : 24\n\"Errors\" : []\n\"Endpoint\" : \"127.0.0.1:23790\"\n\n"
    );
}

#[test]
fn endpoint_status_with_an_alarm_wraps_the_errors_cell() {
    let s = status_nospace();
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.endpoint_status(o, &s)),
        "127.0.0.1:23791, bdae9bbc11dd390d, 3.4.23, 291 kB, true, false, 2, 17, 17, memberID:13668033151171901709 alarm:NOSPACE \n"
    );
    assert_eq!(
        print(OutputFormat::Table, |p, o| p.endpoint_status(o, &s)),
        "+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+\n\
         |    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX |             ERRORS             |\n\
         +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+\n\
         | 127.0.0.1:23791 | bdae9bbc11dd390d |  3.4.23 |  291 kB |      true |      false |         2 |         17 |                 17 |  memberID:13668033151171901709 |\n\
         |                 |                  |         |         |           |            |           |            |                    |                 alarm:NOSPACE  |\n\
         +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.endpoint_status(o, &s)),
        "[{\"Endpoint\":\"127.0.0.1:23791\",\"Status\":{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":3,\"raft_term\":2},\"version\":\"3.4.23\",\"dbSize\":290816,\"leader\":13668033151171901709,\"raftIndex\":17,\"raftTerm\":2,\"raftAppliedIndex\":17,\"errors\":[\"memberID:13668033151171901709 alarm:NOSPACE \"],\"dbSizeInUse\":286720}}]\n"
    );
    assert!(print(OutputFormat::Fields, |p, o| p.endpoint_status(o, &s))
        .contains("\"Errors\" : [memberID:13668033151171901709 alarm:NOSPACE ]\n"));
}

fn members() -> MemberListResponse {
    MemberListResponse {
        header: ResponseHeader { revision: 0, ..HDR },
        members: vec![Member {
            id: 3319814642761637952,
            name: "default".into(),
            peer_urls: vec!["http://127.0.0.1:23800".into()],
            client_urls: vec!["http://127.0.0.1:23790".into()],
            is_learner: false,
        }],
    }
}

#[test]
fn member_list_in_every_format() {
    let m = members();
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.member_list(o, &m)),
        "2e1259d415f2a040, started, default, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.member_list(o, &m)),
        "{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"raft_term\":2},\"members\":[{\"ID\":3319814642761637952,\"name\":\"default\",\"peerURLs\":[\"http://127.0.0.1:23800\"],\"clientURLs\":[\"http://127.0.0.1:23790\"]}]}\n"
    );
    assert_eq!(
        print(OutputFormat::Table, |p, o| p.member_list(o, &m)),
        "+------------------+---------+---------+------------------------+------------------------+------------+\n\
         |        ID        | STATUS  |  NAME   |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |\n\
         +------------------+---------+---------+------------------------+------------------------+------------+\n\
         | 2e1259d415f2a040 | started | default | http://127.0.0.1:23800 | http://127.0.0.1:23790 |      false |\n\
         +------------------+---------+---------+------------------------+------------------------+------------+\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.member_list(o, &m)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 0\n\"RaftTerm\" : 2\n\"ID\" : 3319814642761637952\n\"Name\" : \"default\"\n\"PeerURL\" : \"http://127.0.0.1:23800\"\n\"ClientURL\" : \"http://127.0.0.1:23790\"\n\"IsLearner\" : false\n\n"
    );
    let mut out = Vec::new();
    Printer::new(OutputFormat::Json, true)
        .member_list(&mut out, &m)
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"header\":{\"cluster_id\":\"48276a8f75b6a87\",\"member_id\":\"2e1259d415f2a040\",\"raft_term\":2},\"members\":[{\"ID\":\"2e1259d415f2a040\",\"name\":\"default\",\"peerURLs\":[\"http://127.0.0.1:23800\"],\"clientURLS\":[\"http://127.0.0.1:23790\"]}]}\n"
    );
}

#[test]
fn alarms_in_every_format() {
    let r = AlarmResponse {
        header: ResponseHeader::default(),
        alarms: vec![AlarmMember {
            member_id: 13668033151171901709,
            alarm: AlarmType::NoSpace,
        }],
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.alarm(o, &r)),
        "memberID:13668033151171901709 alarm:NOSPACE \n"
    );
    // etcd 3.4 leaves the header out of alarm responses entirely ("{\"alarms\":..."),
    // 3.5 fills it; an empty header prints as {}.
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.alarm(o, &r)),
        "{\"header\":{},\"alarms\":[{\"memberID\":13668033151171901709,\"alarm\":1}]}\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.alarm(o, &r)),
        "\"ClusterID\" : 0\n\"MemberID\" : 0\n\"Revision\" : 0\n\"RaftTerm\" : 0\n\"MemberID\" : 13668033151171901709\n\"AlarmType\" : NOSPACE\n\n"
    );
    let none = AlarmResponse::default();
    assert_eq!(print(OutputFormat::Simple, |p, o| p.alarm(o, &none)), "");
}

#[test]
fn output_format_names() {
    assert_eq!(OutputFormat::parse("fields").unwrap(), OutputFormat::Fields);
    let e = OutputFormat::parse("bogus").unwrap_err();
    assert_eq!(e.to_string(), "Error: unsupported output format");
    assert_eq!(e.code, crate::ctl::exit::ExitCode::BadFeature);
    let e = Printer::new(OutputFormat::Protobuf, false)
        .require(Shape::Get)
        .unwrap_err();
    assert_eq!(e.message, "protobuf not supported as output format");
}

#[test]
fn endpoint_hashkv_in_every_format() {
    let list = vec![EndpointHashKv {
        endpoint: "127.0.0.1:23790".into(),
        hash: crate::HashKvResponse {
            header: hdr(43),
            hash: 2884509683,
            compact_revision: 12,
            hash_revision: 0,
        },
    }];
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.endpoint_hashkv(o, &list)),
        "127.0.0.1:23790, 2884509683\n"
    );
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.endpoint_hashkv(o, &list)),
        "[{\"Endpoint\":\"127.0.0.1:23790\",\"HashKV\":{\"header\":{\"cluster_id\":324952591200643719,\"member_id\":3319814642761637952,\"revision\":43,\"raft_term\":2},\"hash\":2884509683,\"compact_revision\":12}}]\n"
    );
    assert_eq!(
        print(OutputFormat::Table, |p, o| p.endpoint_hashkv(o, &list)),
        "+-----------------+------------+\n\
         |    ENDPOINT     |    HASH    |\n\
         +-----------------+------------+\n\
         | 127.0.0.1:23790 | 2884509683 |\n\
         +-----------------+------------+\n"
    );
    assert_eq!(
        print(OutputFormat::Fields, |p, o| p.endpoint_hashkv(o, &list)),
        "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 43\n\"RaftTerm\" : 2\n\"Endpoint\" : \"127.0.0.1:23790\"\n\"Hash\" : 2884509683\n\n"
    );
}

#[test]
fn membership_changes() {
    let unstarted = Member {
        id: 5948666482007898439,
        name: String::new(),
        peer_urls: vec!["http://127.0.0.1:23803".into()],
        client_urls: vec![],
        is_learner: false,
    };
    let n2 = Member {
        id: 13668033151171901709,
        name: "n2".into(),
        peer_urls: vec!["http://127.0.0.1:23801".into()],
        client_urls: vec!["http://127.0.0.1:23791".into()],
        is_learner: false,
    };
    let header = ResponseHeader {
        cluster_id: 15118495548433857066,
        member_id: 13668033151171901709,
        revision: 0,
        raft_term: 2,
    };
    let added = crate::MemberAddResponse {
        header,
        member: unstarted.clone(),
        members: vec![unstarted.clone(), n2.clone()],
    };
    assert_eq!(
        print(OutputFormat::Json, |p, o| p.member_add(o, &added)),
        "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"raft_term\":2},\"member\":{\"ID\":5948666482007898439,\"peerURLs\":[\"http://127.0.0.1:23803\"]},\"members\":[{\"ID\":5948666482007898439,\"peerURLs\":[\"http://127.0.0.1:23803\"]},{\"ID\":13668033151171901709,\"name\":\"n2\",\"peerURLs\":[\"http://127.0.0.1:23801\"],\"clientURLs\":[\"http://127.0.0.1:23791\"]}]}\n"
    );
    let first_cluster = crate::MemberAddResponse {
        header: ResponseHeader {
            cluster_id: 324952591200643719,
            ..header
        },
        member: Member {
            id: 0x6b21a64bf8667db1,
            ..unstarted.clone()
        },
        members: vec![],
    };
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.member_add(o, &first_cluster)),
        "Member 6b21a64bf8667db1 added to cluster  48276a8f75b6a87\n"
    );
    let list = MemberListResponse {
        header,
        members: vec![unstarted, n2],
    };
    assert_eq!(
        print(OutputFormat::Table, |p, o| p.member_list(o, &list)),
        "+------------------+-----------+------+------------------------+------------------------+------------+\n\
         |        ID        |  STATUS   | NAME |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |\n\
         +------------------+-----------+------+------------------------+------------------------+------------+\n\
         | 528de8a5e35a7947 | unstarted |      | http://127.0.0.1:23803 |                        |      false |\n\
         | bdae9bbc11dd390d |   started |   n2 | http://127.0.0.1:23801 | http://127.0.0.1:23791 |      false |\n\
         +------------------+-----------+------+------------------------+------------------------+------------+\n"
    );
    assert_eq!(
        print(OutputFormat::Simple, |p, o| p.member_change(
            o,
            MemberChange::Removed,
            0x6b21a64bf8667db1,
            &list
        )),
        "Member 6b21a64bf8667db1 removed from cluster d1cfaf999eb97a2a\n"
    );
    assert!(Printer::new(OutputFormat::Fields, false)
        .require(Shape::MemberChange)
        .is_err());
    assert!(Printer::new(OutputFormat::Table, false)
        .require(Shape::MoveLeader)
        .is_err());
    let moved = print(OutputFormat::Simple, |p, o| {
        p.move_leader(
            o,
            0x2e1259d415f2a040,
            0xbdae9bbc11dd390d,
            &crate::EmptyResponse::default(),
        )
    });
    assert_eq!(
        moved,
        "Leadership transferred from 2e1259d415f2a040 to bdae9bbc11dd390d\n"
    );
}
