//! Watch, Lease, Cluster, Maintenance, Auth and peer messages survive
//! encode → frame → verify → view unchanged.

use cairn_wire::*;

const HEADER: Header = Header {
    cluster_id: 1,
    member_id: 2,
    revision: 3,
    raft_term: 4,
};

fn req(frame: &[u8]) -> RequestBodyView<'_> {
    decode_request(frame).expect("verifies").body
}

fn resp(frame: &[u8]) -> ResponseBodyView<'_> {
    let v = decode_response(frame).expect("verifies");
    assert_eq!(v.header, HEADER);
    v.body.expect("a success")
}

fn strs<'a>(
    v: Option<flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<&'a str>>>,
) -> Vec<&'a str> {
    v.into_iter().flatten().collect()
}

#[test]
fn watch_messages() {
    let mut enc = Encoder::new();
    let p = WatchCreateParams {
        key: b"a",
        range_end: b"b",
        start_revision: 17,
        progress_notify: true,
        filters: &[rpc::FilterType::NoPut, rpc::FilterType::NoDelete],
        prev_kv: true,
        watch_id: 5,
        fragment: true,
    };
    let f = enc.watch_create_request(1, &p).to_vec();
    let RequestBodyView::WatchCreate(w) = req(&f) else {
        panic!()
    };
    let filters: Vec<_> = w.filters().into_iter().flatten().collect();
    let back = WatchCreateParams {
        key: bytes(w.key()),
        range_end: bytes(w.range_end()),
        start_revision: w.start_revision(),
        progress_notify: w.progress_notify(),
        filters: &filters,
        prev_kv: w.prev_kv(),
        watch_id: w.watch_id(),
        fragment: w.fragment(),
    };
    assert_eq!(back, p);

    let f = enc.watch_cancel_request(2, 5).to_vec();
    let RequestBodyView::WatchCancel(c) = req(&f) else {
        panic!()
    };
    assert_eq!(c.watch_id(), 5);
    let f = enc.watch_progress_request(3).to_vec();
    assert!(matches!(req(&f), RequestBodyView::WatchProgress(_)));

    let kv = KeyValueRef {
        key: b"a1",
        value: b"v",
        mod_revision: 20,
        ..Default::default()
    };
    let events = [
        EventRef {
            kind: rpc::EventType::Put,
            kv,
            prev_kv: None,
        },
        EventRef {
            kind: rpc::EventType::Delete,
            kv,
            prev_kv: Some(kv),
        },
    ];
    let r = WatchResult {
        watch_id: 5,
        created: false,
        canceled: true,
        compact_revision: 9,
        cancel_reason: "mvcc: required revision has been compacted",
        fragment: true,
        events: &events,
    };
    let f = enc.watch_response(1, &HEADER, &r).to_vec();
    let ResponseBodyView::Watch(w) = resp(&f) else {
        panic!()
    };
    let got: Vec<_> = w
        .events()
        .into_iter()
        .flatten()
        .map(EventRef::from)
        .collect();
    assert_eq!(got, events);
    assert_eq!(
        (
            w.watch_id(),
            w.created(),
            w.canceled(),
            w.compact_revision(),
            w.cancel_reason(),
            w.fragment()
        ),
        (5, false, true, 9, Some(r.cancel_reason), true)
    );
}

#[test]
fn lease_messages() {
    let mut enc = Encoder::new();
    let f = enc.lease_grant_request(1, 60, 0x694d).to_vec();
    let RequestBodyView::LeaseGrant(g) = req(&f) else {
        panic!()
    };
    assert_eq!((g.ttl(), g.id()), (60, 0x694d));
    let f = enc.lease_revoke_request(2, 7).to_vec();
    let RequestBodyView::LeaseRevoke(r) = req(&f) else {
        panic!()
    };
    assert_eq!(r.id(), 7);
    let f = enc.lease_keep_alive_request(3, 8).to_vec();
    let RequestBodyView::LeaseKeepAlive(k) = req(&f) else {
        panic!()
    };
    assert_eq!(k.id(), 8);
    let f = enc.lease_time_to_live_request(4, 9, true).to_vec();
    let RequestBodyView::LeaseTimeToLive(t) = req(&f) else {
        panic!()
    };
    assert_eq!((t.id(), t.keys()), (9, true));
    let f = enc.lease_leases_request(5).to_vec();
    assert!(matches!(req(&f), RequestBodyView::LeaseLeases(_)));

    let f = enc
        .lease_grant_response(1, &HEADER, 0x694d, 60, "")
        .to_vec();
    let ResponseBodyView::LeaseGrant(g) = resp(&f) else {
        panic!()
    };
    assert_eq!((g.id(), g.ttl(), g.error()), (0x694d, 60, None));
    let f = enc.lease_revoke_response(2, &HEADER).to_vec();
    assert!(matches!(resp(&f), ResponseBodyView::LeaseRevoke(_)));
    let f = enc.lease_keep_alive_response(3, &HEADER, 8, 0).to_vec();
    let ResponseBodyView::LeaseKeepAlive(k) = resp(&f) else {
        panic!()
    };
    assert_eq!((k.id(), k.ttl()), (8, 0));
    let keys: [&[u8]; 2] = [b"k1", b"k2"];
    let f = enc
        .lease_time_to_live_response(
            4,
            &HEADER,
            &LeaseTimeToLiveResult {
                id: 9,
                ttl: -1,
                granted_ttl: 30,
                keys: &keys,
            },
        )
        .to_vec();
    let ResponseBodyView::LeaseTimeToLive(t) = resp(&f) else {
        panic!()
    };
    let got: Vec<&[u8]> = t
        .keys()
        .into_iter()
        .flatten()
        .map(|k| bytes(k.key()))
        .collect();
    assert_eq!(
        (t.id(), t.ttl(), t.granted_ttl(), got),
        (9, -1, 30, keys.to_vec())
    );
    let f = enc
        .lease_leases_response(5, &HEADER, &[1, 2, i64::MAX])
        .to_vec();
    let ResponseBodyView::LeaseLeases(l) = resp(&f) else {
        panic!()
    };
    assert_eq!(
        l.leases().unwrap().iter().collect::<Vec<_>>(),
        [1, 2, i64::MAX]
    );
}

#[test]
fn cluster_messages() {
    let mut enc = Encoder::new();
    let urls = ["http://10.0.0.1:2380", "http://10.0.0.2:2380"];
    let f = enc.member_add_request(1, &urls, true).to_vec();
    let RequestBodyView::MemberAdd(a) = req(&f) else {
        panic!()
    };
    assert_eq!((strs(a.peer_urls()), a.is_learner()), (urls.to_vec(), true));
    let f = enc.member_remove_request(2, 77).to_vec();
    let RequestBodyView::MemberRemove(r) = req(&f) else {
        panic!()
    };
    assert_eq!(r.id(), 77);
    let f = enc.member_update_request(3, 78, &urls[..1]).to_vec();
    let RequestBodyView::MemberUpdate(u) = req(&f) else {
        panic!()
    };
    assert_eq!((u.id(), strs(u.peer_urls())), (78, urls[..1].to_vec()));
    let f = enc.member_list_request(4, true).to_vec();
    let RequestBodyView::MemberList(l) = req(&f) else {
        panic!()
    };
    assert!(l.linearizable());
    let f = enc.member_promote_request(5, 79).to_vec();
    let RequestBodyView::MemberPromote(p) = req(&f) else {
        panic!()
    };
    assert_eq!(p.id(), 79);

    let members = [
        MemberRef {
            id: 1,
            name: "infra1",
            peer_urls: &urls[..1],
            client_urls: &["http://10.0.0.1:2379"],
            is_learner: false,
        },
        MemberRef {
            id: 2,
            name: "",
            peer_urls: &urls[1..],
            client_urls: &[],
            is_learner: true,
        },
    ];
    let check =
        |list: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<rpc::Member<'_>>>>| {
            let got: Vec<_> = list.into_iter().flatten().collect();
            assert_eq!(got.len(), members.len());
            for (g, m) in got.iter().zip(&members) {
                assert_eq!(g.id(), m.id);
                assert_eq!(g.name().unwrap_or(""), m.name);
                assert_eq!(strs(g.peer_urls()), m.peer_urls);
                assert_eq!(strs(g.client_urls()), m.client_urls);
                assert_eq!(g.is_learner(), m.is_learner);
            }
        };
    let f = enc.member_list_response(4, &HEADER, &members).to_vec();
    let ResponseBodyView::MemberList(l) = resp(&f) else {
        panic!()
    };
    check(l.members());
    let f = enc
        .member_add_response(1, &HEADER, &members[1], &members)
        .to_vec();
    let ResponseBodyView::MemberAdd(a) = resp(&f) else {
        panic!()
    };
    assert_eq!(a.member().map(|m| m.id()), Some(2));
    check(a.members());
    let f = enc.member_remove_response(2, &HEADER, &members).to_vec();
    let ResponseBodyView::MemberRemove(r) = resp(&f) else {
        panic!()
    };
    check(r.members());
    let f = enc.member_update_response(3, &HEADER, &members).to_vec();
    let ResponseBodyView::MemberUpdate(u) = resp(&f) else {
        panic!()
    };
    check(u.members());
    let f = enc.member_promote_response(5, &HEADER, &members).to_vec();
    let ResponseBodyView::MemberPromote(p) = resp(&f) else {
        panic!()
    };
    check(p.members());
}

#[test]
fn maintenance_messages() {
    let mut enc = Encoder::new();
    let f = enc.status_request(1).to_vec();
    assert!(matches!(req(&f), RequestBodyView::Status(_)));
    let f = enc
        .alarm_request(2, rpc::AlarmAction::Deactivate, 3, rpc::AlarmType::NoSpace)
        .to_vec();
    let RequestBodyView::Alarm(a) = req(&f) else {
        panic!()
    };
    assert_eq!(
        (a.action(), a.member_id(), a.alarm()),
        (rpc::AlarmAction::Deactivate, 3, rpc::AlarmType::NoSpace)
    );
    let f = enc.hash_kv_request(3, 99).to_vec();
    let RequestBodyView::HashKv(h) = req(&f) else {
        panic!()
    };
    assert_eq!(h.revision(), 99);
    let f = enc.snapshot_request(4).to_vec();
    assert!(matches!(req(&f), RequestBodyView::Snapshot(_)));
    let f = enc.move_leader_request(5, 6).to_vec();
    let RequestBodyView::MoveLeader(m) = req(&f) else {
        panic!()
    };
    assert_eq!(m.target_id(), 6);
    let f = enc.defragment_request(6).to_vec();
    assert!(matches!(req(&f), RequestBodyView::Defragment(_)));

    let s = StatusResult {
        version: "3.5.0",
        db_size: 1 << 40,
        leader: 7,
        raft_index: 8,
        raft_term: 9,
        raft_applied_index: 10,
        errors: &["memberID:1 alarm:NOSPACE"],
        db_size_in_use: 11,
        is_learner: true,
    };
    let f = enc.status_response(1, &HEADER, &s).to_vec();
    let ResponseBodyView::Status(st) = resp(&f) else {
        panic!()
    };
    let errors = strs(st.errors());
    let back = StatusResult {
        version: st.version().unwrap_or(""),
        db_size: st.db_size(),
        leader: st.leader(),
        raft_index: st.raft_index(),
        raft_term: st.raft_term(),
        raft_applied_index: st.raft_applied_index(),
        errors: &errors,
        db_size_in_use: st.db_size_in_use(),
        is_learner: st.is_learner(),
    };
    assert_eq!(back, s);

    let alarms = [(1, rpc::AlarmType::NoSpace), (2, rpc::AlarmType::Corrupt)];
    let f = enc.alarm_response(2, &HEADER, &alarms).to_vec();
    let ResponseBodyView::Alarm(a) = resp(&f) else {
        panic!()
    };
    let got: Vec<_> = a
        .alarms()
        .into_iter()
        .flatten()
        .map(|m| (m.member_id(), m.alarm()))
        .collect();
    assert_eq!(got, alarms);
    let f = enc.hash_kv_response(3, &HEADER, 0xdead_beef, 5, 6).to_vec();
    let ResponseBodyView::HashKv(h) = resp(&f) else {
        panic!()
    };
    assert_eq!(
        (h.hash(), h.compact_revision(), h.hash_revision()),
        (0xdead_beef, 5, 6)
    );
    let f = enc
        .snapshot_response(4, &HEADER, 0, b"blob", "3.5.0")
        .to_vec();
    let ResponseBodyView::Snapshot(sn) = resp(&f) else {
        panic!()
    };
    assert_eq!(
        (sn.remaining_bytes(), bytes(sn.blob()), sn.version()),
        (0, &b"blob"[..], Some("3.5.0"))
    );
    let f = enc.move_leader_response(5, &HEADER).to_vec();
    assert!(matches!(resp(&f), ResponseBodyView::MoveLeader(_)));
    let f = enc.defragment_response(6, &HEADER).to_vec();
    assert!(matches!(resp(&f), ResponseBodyView::Defragment(_)));
}

#[test]
fn auth_messages() {
    let mut enc = Encoder::new();
    let f = enc.auth_enable_request(1).to_vec();
    assert!(matches!(req(&f), RequestBodyView::AuthEnable(_)));
    let f = enc.auth_disable_request(1).to_vec();
    assert!(matches!(req(&f), RequestBodyView::AuthDisable(_)));
    let f = enc.auth_status_request(1).to_vec();
    assert!(matches!(req(&f), RequestBodyView::AuthStatus(_)));
    let f = enc.authenticate_request(1, "root", "secret").to_vec();
    let RequestBodyView::Authenticate(a) = req(&f) else {
        panic!()
    };
    assert_eq!((a.name(), a.password()), (Some("root"), Some("secret")));
    let f = enc.user_add_request(1, "u", "", true).to_vec();
    let RequestBodyView::UserAdd(u) = req(&f) else {
        panic!()
    };
    assert_eq!(
        (u.name(), u.password(), u.no_password()),
        (Some("u"), None, true)
    );
    let f = enc.user_get_request(1, "u").to_vec();
    let RequestBodyView::UserGet(u) = req(&f) else {
        panic!()
    };
    assert_eq!(u.name(), Some("u"));
    let f = enc.user_list_request(1).to_vec();
    assert!(matches!(req(&f), RequestBodyView::UserList(_)));
    let f = enc.user_delete_request(1, "u").to_vec();
    let RequestBodyView::UserDelete(u) = req(&f) else {
        panic!()
    };
    assert_eq!(u.name(), Some("u"));
    let f = enc.user_change_password_request(1, "u", "p2").to_vec();
    let RequestBodyView::UserChangePassword(u) = req(&f) else {
        panic!()
    };
    assert_eq!((u.name(), u.password()), (Some("u"), Some("p2")));
    let f = enc.user_grant_role_request(1, "u", "r").to_vec();
    let RequestBodyView::UserGrantRole(g) = req(&f) else {
        panic!()
    };
    assert_eq!((g.user(), g.role()), (Some("u"), Some("r")));
    let f = enc.user_revoke_role_request(1, "u", "r").to_vec();
    let RequestBodyView::UserRevokeRole(g) = req(&f) else {
        panic!()
    };
    assert_eq!((g.name(), g.role()), (Some("u"), Some("r")));
    let f = enc.role_add_request(1, "r").to_vec();
    let RequestBodyView::RoleAdd(r) = req(&f) else {
        panic!()
    };
    assert_eq!(r.name(), Some("r"));
    let f = enc.role_get_request(1, "r").to_vec();
    let RequestBodyView::RoleGet(r) = req(&f) else {
        panic!()
    };
    assert_eq!(r.role(), Some("r"));
    let f = enc.role_list_request(1).to_vec();
    assert!(matches!(req(&f), RequestBodyView::RoleList(_)));
    let f = enc.role_delete_request(1, "r").to_vec();
    let RequestBodyView::RoleDelete(r) = req(&f) else {
        panic!()
    };
    assert_eq!(r.role(), Some("r"));
    let perm = PermissionRef {
        perm_type: rpc::PermissionType::ReadWrite,
        key: b"a",
        range_end: b"b",
    };
    let f = enc.role_grant_permission_request(1, "r", &perm).to_vec();
    let RequestBodyView::RoleGrantPermission(g) = req(&f) else {
        panic!()
    };
    assert_eq!(
        (g.name(), g.perm().map(PermissionRef::from)),
        (Some("r"), Some(perm))
    );
    let f = enc
        .role_revoke_permission_request(1, "r", b"a", b"b")
        .to_vec();
    let RequestBodyView::RoleRevokePermission(g) = req(&f) else {
        panic!()
    };
    assert_eq!(
        (g.role(), bytes(g.key()), bytes(g.range_end())),
        (Some("r"), &b"a"[..], &b"b"[..])
    );

    let f = enc.auth_status_response(1, &HEADER, true, 12).to_vec();
    let ResponseBodyView::AuthStatus(s) = resp(&f) else {
        panic!()
    };
    assert_eq!((s.enabled(), s.auth_revision()), (true, 12));
    let f = enc.authenticate_response(1, &HEADER, "tok").to_vec();
    let ResponseBodyView::Authenticate(a) = resp(&f) else {
        panic!()
    };
    assert_eq!(a.token(), Some("tok"));
    let f = enc.user_get_response(1, &HEADER, &["root", "r"]).to_vec();
    let ResponseBodyView::UserGet(u) = resp(&f) else {
        panic!()
    };
    assert_eq!(strs(u.roles()), ["root", "r"]);
    let f = enc.user_list_response(1, &HEADER, &["root"]).to_vec();
    let ResponseBodyView::UserList(u) = resp(&f) else {
        panic!()
    };
    assert_eq!(strs(u.users()), ["root"]);
    let f = enc.role_get_response(1, &HEADER, &[perm, perm]).to_vec();
    let ResponseBodyView::RoleGet(r) = resp(&f) else {
        panic!()
    };
    let got: Vec<_> = r
        .perm()
        .into_iter()
        .flatten()
        .map(PermissionRef::from)
        .collect();
    assert_eq!(got, [perm, perm]);
    let f = enc.role_list_response(1, &HEADER, &["r"]).to_vec();
    let ResponseBodyView::RoleList(r) = resp(&f) else {
        panic!()
    };
    assert_eq!(strs(r.roles()), ["r"]);

    type Empty = for<'a> fn(&'a mut Encoder, u64, &Header) -> &'a [u8];
    let empties: [(Empty, &str); 11] = [
        (Encoder::auth_enable_response, "AuthEnableResponse"),
        (Encoder::auth_disable_response, "AuthDisableResponse"),
        (Encoder::user_add_response, "AuthUserAddResponse"),
        (Encoder::user_delete_response, "AuthUserDeleteResponse"),
        (
            Encoder::user_change_password_response,
            "AuthUserChangePasswordResponse",
        ),
        (
            Encoder::user_grant_role_response,
            "AuthUserGrantRoleResponse",
        ),
        (
            Encoder::user_revoke_role_response,
            "AuthUserRevokeRoleResponse",
        ),
        (Encoder::role_add_response, "AuthRoleAddResponse"),
        (Encoder::role_delete_response, "AuthRoleDeleteResponse"),
        (
            Encoder::role_grant_permission_response,
            "AuthRoleGrantPermissionResponse",
        ),
        (
            Encoder::role_revoke_permission_response,
            "AuthRoleRevokePermissionResponse",
        ),
    ];
    for (build, name) in empties {
        let f = build(&mut enc, 1, &HEADER).to_vec();
        assert_eq!(resp(&f).type_name(), name);
    }
}

#[test]
fn peer_messages() {
    let mut enc = Encoder::new();
    let f = enc.hello(0xc1, 1, 2, &["http://127.0.0.1:2379"]).to_vec();
    let PeerMessageView::Hello(h) = decode_peer_frame(&f).unwrap().message else {
        panic!()
    };
    assert_eq!((h.cluster_id(), h.from(), h.to()), (0xc1, 1, 2));
    let urls: Vec<&str> = h.client_urls().into_iter().flatten().collect();
    assert_eq!(urls, ["http://127.0.0.1:2379"]);

    let request = enc
        .put_request(
            5,
            &PutParams {
                key: b"k",
                value: b"v",
                ..Default::default()
            },
        )
        .to_vec();
    let entries = [
        EntryParams {
            index: 10,
            term: 2,
            kind: peer::EntryKind::Normal,
            data: &request,
        },
        EntryParams {
            index: 11,
            term: 2,
            kind: peer::EntryKind::ConfChangeV2,
            data: b"cc",
        },
        EntryParams {
            index: 12,
            term: 3,
            kind: peer::EntryKind::Normal,
            data: b"",
        },
    ];
    let m = RaftMessageParams {
        msg_type: peer::MessageType::App,
        to: 2,
        from: 1,
        term: 3,
        log_term: 2,
        index: 9,
        commit: 8,
        reject: true,
        reject_hint: 4,
        entries: &entries,
        snapshot: Some(SnapshotMetadataParams {
            index: 100,
            term: 2,
            conf_state: ConfStateParams {
                voters: &[1, 2, 3],
                learners: &[4],
                voters_outgoing: &[1, 2],
                learners_next: &[5],
                auto_leave: true,
            },
        }),
        context: b"ctx",
    };
    let f = enc.raft_message(&m).to_vec();
    let PeerMessageView::Raft(r) = decode_peer_frame(&f).unwrap().message else {
        panic!()
    };
    let got_entries: Vec<_> = r
        .entries()
        .into_iter()
        .flatten()
        .map(|e| EntryParams {
            index: e.index(),
            term: e.term(),
            kind: e.kind(),
            data: bytes(e.data()),
        })
        .collect();
    assert_eq!(got_entries, entries);
    // The entry payload is the client's frame, byte for byte, and still decodes.
    assert!(matches!(
        decode_request(got_entries[0].data).unwrap().body,
        RequestBodyView::Put(_)
    ));
    let snap = r.snapshot().unwrap();
    let cs = snap.conf_state().unwrap();
    let ids = |v: Option<flatbuffers::Vector<'_, u64>>| v.into_iter().flatten().collect::<Vec<_>>();
    let back = RaftMessageParams {
        msg_type: r.type_(),
        to: r.to(),
        from: r.from(),
        term: r.term(),
        log_term: r.log_term(),
        index: r.index(),
        commit: r.commit(),
        reject: r.reject(),
        reject_hint: r.reject_hint(),
        entries: &got_entries,
        snapshot: Some(SnapshotMetadataParams {
            index: snap.index(),
            term: snap.term(),
            conf_state: ConfStateParams {
                voters: &ids(cs.voters()),
                learners: &ids(cs.learners()),
                voters_outgoing: &ids(cs.voters_outgoing()),
                learners_next: &ids(cs.learners_next()),
                auto_leave: cs.auto_leave(),
            },
        }),
        context: bytes(r.context()),
    };
    assert_eq!(back, m);

    let c = SnapshotChunkParams {
        snapshot_index: 100,
        snapshot_term: 2,
        offset: 1 << 33,
        data: &[9; 4096],
        crc: 0x1234_5678,
        last: true,
    };
    let f = enc.snapshot_chunk(&c).to_vec();
    let PeerMessageView::SnapshotChunk(s) = decode_peer_frame(&f).unwrap().message else {
        panic!()
    };
    let back = SnapshotChunkParams {
        snapshot_index: s.snapshot_index(),
        snapshot_term: s.snapshot_term(),
        offset: s.offset(),
        data: bytes(s.data()),
        crc: s.crc(),
        last: s.last(),
    };
    assert_eq!(back, c);
}

#[test]
fn client_and_peer_frames_are_not_confused() {
    let mut enc = Encoder::new();
    let peer_frame = enc.hello(1, 2, 3, &[]).to_vec();
    // A Hello's union tag (1) is also RangeRequest's; the tables differ, so
    // reading must not go wrong, whatever the verdict.
    let _ = decode_request(&peer_frame).map(|v| format!("{v:?}"));
    let client_frame = enc.status_request(1).to_vec();
    let _ = decode_peer_frame(&client_frame).map(|v| format!("{v:?}"));
}
