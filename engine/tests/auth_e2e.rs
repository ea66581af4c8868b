//! Authentication and RBAC end to end, over the native protocol: the
//! permission matrix (every operation kind, each nested txn form, watches
//! with and without prev_kv, lease and maintenance operations) × {allowed,
//! denied by range, denied by type, no token, bad token, expired token,
//! revoked role}, management rules, persistence across restarts and
//! snapshots, and that no clear-text password reaches the disk.

mod common;

use std::time::Duration;

use cairn_wire::{
    decode_response, rpc, CompareParams, DeleteRangeParams, PermissionRef, PutParams, RangeParams,
    RequestOpParams, ResponseBodyView, TxnParams, WatchCreateParams,
};
use common::{Client, Server};

const DENIED: &str = "etcdserver: permission denied";
const NO_USER: &str = "etcdserver: user name is empty";
const BAD_TOKEN: &str = "etcdserver: invalid auth token";

type Outcome = Result<common::Reply, (rpc::ErrorCode, String)>;

fn call(
    c: &mut Client,
    token: Option<&str>,
    build: impl FnOnce(&mut cairn_wire::Encoder, u64) -> Vec<u8>,
) -> Outcome {
    let id = c.id();
    c.enc.set_token(token);
    let frame = build(&mut c.enc, id);
    c.enc.set_token(None);
    let r = c.call(frame).expect("call");
    assert_eq!(r.id, id);
    match r.error.clone() {
        Some(e) => Err(e),
        None => Ok(r),
    }
}

fn ok(o: Outcome, what: &str) -> common::Reply {
    match o {
        Ok(r) => r,
        Err(e) => panic!("{what}: expected success, got {e:?}"),
    }
}

fn refused(o: Outcome, message: &str, what: &str) {
    match o {
        Ok(r) => panic!("{what}: expected {message:?}, got success with {:?}", r.kvs),
        Err((_, m)) => assert_eq!(m, message, "{what}"),
    }
}

fn authenticate(c: &mut Client, name: &str, password: &str) -> Result<String, String> {
    let r = call(c, None, |e, id| {
        e.authenticate_request(id, name, password).to_vec()
    });
    match r {
        Err((_, m)) => Err(m),
        Ok(_) => match decode_response(&c.frame).expect("response").body {
            Ok(ResponseBodyView::Authenticate(a)) => Ok(a.token().unwrap_or("").to_string()),
            other => panic!("not an authenticate response: {other:?}"),
        },
    }
}

fn put<'a>(key: &'a [u8]) -> PutParams<'a> {
    PutParams {
        key,
        value: b"v",
        ..Default::default()
    }
}

fn range<'a>(key: &'a [u8], range_end: &'a [u8]) -> RangeParams<'a> {
    RangeParams {
        key,
        range_end,
        ..Default::default()
    }
}

fn grant(
    c: &mut Client,
    token: Option<&str>,
    role: &str,
    t: rpc::PermissionType,
    key: &[u8],
    end: &[u8],
) {
    let p = PermissionRef {
        perm_type: t,
        key,
        range_end: end,
    };
    ok(
        call(c, token, |e, id| {
            e.role_grant_permission_request(id, role, &p).to_vec()
        }),
        "grant permission",
    );
}

/// root, and two users: `alice` reads `a/` and writes `a/w/`; `wonly`
/// writes `w/` and reads nothing.
fn set_up(c: &mut Client) {
    ok(
        call(c, None, |e, id| {
            e.user_add_request(id, "root", "rootpw", false).to_vec()
        }),
        "root",
    );
    ok(
        call(c, None, |e, id| {
            e.user_grant_role_request(id, "root", "root").to_vec()
        }),
        "root role",
    );
    for (user, pw) in [("alice", "alicepw-secret"), ("wonly", "wpw")] {
        ok(
            call(c, None, |e, id| {
                e.user_add_request(id, user, pw, false).to_vec()
            }),
            user,
        );
    }
    for role in ["reader", "writer", "wonly"] {
        ok(
            call(c, None, |e, id| e.role_add_request(id, role).to_vec()),
            role,
        );
    }
    grant(c, None, "reader", rpc::PermissionType::Read, b"a/", b"a0");
    grant(
        c,
        None,
        "writer",
        rpc::PermissionType::Write,
        b"a/w/",
        b"a/w0",
    );
    grant(c, None, "wonly", rpc::PermissionType::Write, b"w/", b"w0");
    for (user, role) in [("alice", "reader"), ("alice", "writer"), ("wonly", "wonly")] {
        ok(
            call(c, None, |e, id| {
                e.user_grant_role_request(id, user, role).to_vec()
            }),
            "grant role",
        );
    }
    // Data written before auth is on.
    for k in [&b"a/x"[..], b"a/w/1", b"b", b"w/1"] {
        c.put(k, b"v").expect("seed");
    }
}

fn start(dir: &std::path::Path, extra: &[&str]) -> (Server, Client) {
    let mut args = vec!["--bcrypt-cost", "4"];
    args.extend_from_slice(extra);
    let s = Server::start(dir, &args);
    let c = Client::connect(s.addr).expect("connect");
    (s, c)
}

#[test]
fn the_permission_matrix_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, mut c) = start(dir.path(), &[]);
    set_up(&mut c);
    // Before auth is on, a token is not needed and Authenticate is refused.
    assert_eq!(
        authenticate(&mut c, "alice", "alicepw-secret"),
        Err("etcdserver: authentication is not enabled".into())
    );
    ok(
        call(&mut c, None, |e, id| e.auth_enable_request(id).to_vec()),
        "enable",
    );
    let root = authenticate(&mut c, "root", "rootpw").expect("root token");
    let alice = authenticate(&mut c, "alice", "alicepw-secret").expect("alice token");
    let wonly = authenticate(&mut c, "wonly", "wpw").expect("wonly token");
    assert_eq!(
        authenticate(&mut c, "alice", "wrong"),
        Err("etcdserver: authentication failed, invalid user ID or password".into())
    );
    assert_eq!(
        authenticate(&mut c, "nobody", "x"),
        Err("etcdserver: authentication failed, invalid user ID or password".into())
    );
    let (a, w, r) = (
        Some(alice.as_str()),
        Some(wonly.as_str()),
        Some(root.as_str()),
    );

    // No token, a made-up token.
    refused(
        call(&mut c, None, |e, id| {
            e.range_request(id, &range(b"a/x", b"")).to_vec()
        }),
        NO_USER,
        "range, no token",
    );
    refused(
        call(&mut c, None, |e, id| {
            e.put_request(id, &put(b"a/w/2")).to_vec()
        }),
        NO_USER,
        "put, no token",
    );
    refused(
        call(&mut c, Some("forged.1"), |e, id| {
            e.range_request(id, &range(b"a/x", b"")).to_vec()
        }),
        BAD_TOKEN,
        "range, forged token",
    );

    // Range: allowed inside, denied outside or across the edge; serializable too.
    let got = ok(
        call(&mut c, a, |e, id| {
            e.range_request(id, &range(b"a/x", b"")).to_vec()
        }),
        "range a/x",
    );
    assert_eq!(got.kvs.len(), 1);
    ok(
        call(&mut c, a, |e, id| {
            e.range_request(id, &range(b"a/", b"a0")).to_vec()
        }),
        "range a/ prefix",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.range_request(id, &range(b"b", b"")).to_vec()
        }),
        DENIED,
        "range b",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.range_request(id, &range(b"a/", b"c")).to_vec()
        }),
        DENIED,
        "range across",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.range_request(id, &range(b"a/", b"\0")).to_vec()
        }),
        DENIED,
        "range from key",
    );
    let serial = RangeParams {
        serializable: true,
        ..range(b"b", b"")
    };
    refused(
        call(&mut c, a, |e, id| e.range_request(id, &serial).to_vec()),
        DENIED,
        "serializable range b",
    );
    // Denied by type: wonly may write w/ but not read it.
    refused(
        call(&mut c, w, |e, id| {
            e.range_request(id, &range(b"w/1", b"")).to_vec()
        }),
        DENIED,
        "wonly reads",
    );

    // Put: by range and type, prev_kv needs READ, lease attachments.
    ok(
        call(&mut c, a, |e, id| {
            e.put_request(id, &put(b"a/w/2")).to_vec()
        }),
        "put a/w/2",
    );
    refused(
        call(&mut c, a, |e, id| e.put_request(id, &put(b"a/x")).to_vec()),
        DENIED,
        "put where alice only reads",
    );
    refused(
        call(&mut c, a, |e, id| e.put_request(id, &put(b"b")).to_vec()),
        DENIED,
        "put b",
    );
    ok(
        call(&mut c, w, |e, id| e.put_request(id, &put(b"w/2")).to_vec()),
        "wonly put",
    );
    let with_prev = PutParams {
        prev_kv: true,
        ..put(b"w/1")
    };
    refused(
        call(&mut c, w, |e, id| e.put_request(id, &with_prev).to_vec()),
        DENIED,
        "put prev_kv without READ",
    );
    let with_prev = PutParams {
        prev_kv: true,
        ..put(b"a/w/1")
    };
    let got = ok(
        call(&mut c, a, |e, id| e.put_request(id, &with_prev).to_vec()),
        "put prev_kv with READ",
    );
    assert_eq!(got.kvs.len(), 1, "the previous value is returned");

    // Delete: range, type, prev_kv.
    let del = |k: &'static [u8], end: &'static [u8], prev_kv| DeleteRangeParams {
        key: k,
        range_end: end,
        prev_kv,
    };
    ok(
        call(&mut c, w, |e, id| {
            e.delete_range_request(id, &del(b"w/2", b"", false))
                .to_vec()
        }),
        "wonly delete",
    );
    refused(
        call(&mut c, w, |e, id| {
            e.delete_range_request(id, &del(b"w/1", b"", true)).to_vec()
        }),
        DENIED,
        "delete prev_kv without READ",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.delete_range_request(id, &del(b"a/", b"a0", false))
                .to_vec()
        }),
        DENIED,
        "delete beyond a/w/",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.delete_range_request(id, &del(b"b", b"", false)).to_vec()
        }),
        DENIED,
        "delete b",
    );

    // Txn: every compare and every op of both branches, nested ones too,
    // whichever branch runs.
    let inside_put = [RequestOpParams::Put(put(b"a/w/3"))];
    let outside_put = [RequestOpParams::Put(put(b"b"))];
    let outside_range = [RequestOpParams::Range(range(b"b", b""))];
    let outside_delete = [RequestOpParams::DeleteRange(del(b"b", b"", false))];
    let prev_delete = [RequestOpParams::DeleteRange(del(b"w/1", b"", true))];
    let cmp_inside = [CompareParams {
        key: b"a/x",
        target: rpc::CompareTarget::Version,
        ..Default::default()
    }];
    let cmp_outside = [CompareParams {
        key: b"b",
        target: rpc::CompareTarget::Version,
        ..Default::default()
    }];
    let nested_outside = TxnParams {
        success: &outside_put,
        ..Default::default()
    };
    let nested_op = [RequestOpParams::Txn(nested_outside)];
    let txns: Vec<(&str, TxnParams<'_>, Option<&str>, bool)> = vec![
        (
            "txn inside",
            TxnParams {
                compare: &cmp_inside,
                success: &inside_put,
                failure: &inside_put,
            },
            a,
            true,
        ),
        (
            "txn compare outside",
            TxnParams {
                compare: &cmp_outside,
                success: &inside_put,
                failure: &[],
            },
            a,
            false,
        ),
        (
            "txn failure branch put outside",
            TxnParams {
                compare: &cmp_inside,
                success: &inside_put,
                failure: &outside_put,
            },
            a,
            false,
        ),
        (
            "txn range outside",
            TxnParams {
                success: &outside_range,
                ..Default::default()
            },
            a,
            false,
        ),
        (
            "txn delete outside",
            TxnParams {
                failure: &outside_delete,
                ..Default::default()
            },
            a,
            false,
        ),
        (
            "txn delete prev_kv without READ",
            TxnParams {
                success: &prev_delete,
                ..Default::default()
            },
            w,
            false,
        ),
        (
            "nested txn outside",
            TxnParams {
                success: &nested_op,
                ..Default::default()
            },
            a,
            false,
        ),
        (
            "root txn anything",
            TxnParams {
                compare: &cmp_outside,
                success: &outside_put,
                failure: &nested_op,
            },
            r,
            true,
        ),
    ];
    for (what, t, token, allowed) in &txns {
        let o = call(&mut c, *token, |e, id| e.txn_request(id, t).to_vec());
        if *allowed {
            ok(o, what);
        } else {
            refused(o, DENIED, what);
        }
    }
    assert_eq!(
        c.get_key_as(r, b"b"),
        Some(b"v".to_vec()),
        "no denied txn touched b"
    );

    // Watches: the whole range must be readable, with or without prev_kv.
    for (what, key, end, prev_kv, token, allowed) in [
        ("watch a/x", &b"a/x"[..], &b""[..], false, a, true),
        ("watch a/ prefix with prev_kv", b"a/", b"a0", true, a, true),
        ("watch b", b"b", b"", false, a, false),
        ("watch b with prev_kv", b"b", b"", true, a, false),
        ("watch across", b"a/", b"c", false, a, false),
        ("watch w/ by a writer", b"w/", b"w0", false, w, false),
        ("watch, no token", b"a/x", b"", false, None, false),
    ] {
        let p = WatchCreateParams {
            key,
            range_end: end,
            prev_kv,
            ..Default::default()
        };
        // A watch of its own connection: its events carry its request id.
        let mut wc = Client::connect(_s.addr).expect("connect");
        let o = call(&mut wc, token, |e, id| {
            e.watch_create_request(id, &p).to_vec()
        });
        match (allowed, o) {
            (true, Ok(_)) => {}
            (false, Err((_, m))) => assert!(m == DENIED || m == NO_USER, "{what}: {m}"),
            (_, o) => panic!("{what}: {o:?}"),
        }
    }

    // Leases: granting needs a user; revoking or reading a lease's keys
    // needs WRITE or READ on every key attached to it.
    let lease = match call(&mut c, a, |e, id| e.lease_grant_request(id, 60, 0).to_vec()) {
        Ok(_) => c.last_lease().id,
        Err(e) => panic!("lease grant: {e:?}"),
    };
    refused(
        call(&mut c, None, |e, id| {
            e.lease_grant_request(id, 60, 0).to_vec()
        }),
        NO_USER,
        "lease grant, no token",
    );
    let leased = PutParams {
        lease,
        ..put(b"a/w/l")
    };
    ok(
        call(&mut c, a, |e, id| e.put_request(id, &leased).to_vec()),
        "put with own lease",
    );
    ok(
        call(&mut c, a, |e, id| {
            e.lease_time_to_live_request(id, lease, true).to_vec()
        }),
        "ttl with keys",
    );
    let rooted = PutParams {
        lease,
        ..put(b"zz")
    };
    ok(
        call(&mut c, r, |e, id| e.put_request(id, &rooted).to_vec()),
        "root attaches zz",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.lease_time_to_live_request(id, lease, true).to_vec()
        }),
        DENIED,
        "ttl reveals zz",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.lease_revoke_request(id, lease).to_vec()
        }),
        DENIED,
        "revoke with zz",
    );
    let leased2 = PutParams {
        lease,
        ..put(b"a/w/l2")
    };
    refused(
        call(&mut c, a, |e, id| e.put_request(id, &leased2).to_vec()),
        DENIED,
        "attach to a lease holding zz",
    );
    ok(
        call(&mut c, r, |e, id| {
            e.lease_revoke_request(id, lease).to_vec()
        }),
        "root revokes",
    );

    // Maintenance and cluster operations: root only, status and alarm
    // list for any user.
    ok(
        call(&mut c, a, |e, id| e.status_request(id).to_vec()),
        "status",
    );
    refused(
        call(&mut c, None, |e, id| e.status_request(id).to_vec()),
        NO_USER,
        "status, no token",
    );
    ok(
        call(&mut c, a, |e, id| {
            e.alarm_request(id, rpc::AlarmAction::Get, 0, rpc::AlarmType::None)
                .to_vec()
        }),
        "alarm list",
    );
    for (what, build) in [
        (
            "hashkv",
            Box::new(|e: &mut cairn_wire::Encoder, id| e.hash_kv_request(id, 0).to_vec())
                as Box<dyn Fn(&mut cairn_wire::Encoder, u64) -> Vec<u8>>,
        ),
        (
            "defragment",
            Box::new(|e: &mut cairn_wire::Encoder, id| e.defragment_request(id).to_vec()),
        ),
        (
            "snapshot",
            Box::new(|e: &mut cairn_wire::Encoder, id| e.snapshot_request(id).to_vec()),
        ),
        (
            "move leader",
            Box::new(|e: &mut cairn_wire::Encoder, id| e.move_leader_request(id, 1).to_vec()),
        ),
        (
            "member add",
            Box::new(|e: &mut cairn_wire::Encoder, id| {
                e.member_add_request(id, &["http://127.0.0.1:1"], true)
                    .to_vec()
            }),
        ),
        (
            "alarm disarm",
            Box::new(|e: &mut cairn_wire::Encoder, id| {
                e.alarm_request(id, rpc::AlarmAction::Deactivate, 0, rpc::AlarmType::NoSpace)
                    .to_vec()
            }),
        ),
        (
            "user add",
            Box::new(|e: &mut cairn_wire::Encoder, id| {
                e.user_add_request(id, "eve", "x", false).to_vec()
            }),
        ),
        (
            "role grant",
            Box::new(|e: &mut cairn_wire::Encoder, id| {
                e.user_grant_role_request(id, "alice", "root").to_vec()
            }),
        ),
        (
            "auth disable",
            Box::new(|e: &mut cairn_wire::Encoder, id| e.auth_disable_request(id).to_vec()),
        ),
        (
            "user list",
            Box::new(|e: &mut cairn_wire::Encoder, id| e.user_list_request(id).to_vec()),
        ),
        (
            "role get of another role",
            Box::new(|e: &mut cairn_wire::Encoder, id| e.role_get_request(id, "wonly").to_vec()),
        ),
    ] {
        refused(call(&mut c, a, |e, id| build(e, id)), DENIED, what);
    }
    ok(
        call(&mut c, r, |e, id| e.hash_kv_request(id, 0).to_vec()),
        "root hashkv",
    );
    // One's own user and roles are readable.
    ok(
        call(&mut c, a, |e, id| e.user_get_request(id, "alice").to_vec()),
        "own user",
    );
    ok(
        call(&mut c, a, |e, id| e.role_get_request(id, "reader").to_vec()),
        "own role",
    );
    ok(
        call(&mut c, None, |e, id| e.auth_status_request(id).to_vec()),
        "auth status needs no token",
    );

    // A revoked role takes effect at once for the same token.
    ok(
        call(&mut c, r, |e, id| {
            e.user_revoke_role_request(id, "alice", "reader").to_vec()
        }),
        "revoke reader",
    );
    refused(
        call(&mut c, a, |e, id| {
            e.range_request(id, &range(b"a/x", b"")).to_vec()
        }),
        DENIED,
        "range after revoke",
    );
    ok(
        call(&mut c, a, |e, id| {
            e.put_request(id, &put(b"a/w/4")).to_vec()
        }),
        "writer role still held",
    );
    // A changed password voids the user's tokens; a deleted user's too.
    ok(
        call(&mut c, r, |e, id| {
            e.user_change_password_request(id, "wonly", "new").to_vec()
        }),
        "passwd",
    );
    refused(
        call(&mut c, w, |e, id| e.put_request(id, &put(b"w/3")).to_vec()),
        BAD_TOKEN,
        "token after passwd",
    );
    assert!(authenticate(&mut c, "wonly", "wpw").is_err());
    let w2 = authenticate(&mut c, "wonly", "new").expect("new password");
    ok(
        call(&mut c, Some(&w2), |e, id| {
            e.put_request(id, &put(b"w/3")).to_vec()
        }),
        "put with new token",
    );
    ok(
        call(&mut c, r, |e, id| {
            e.user_delete_request(id, "wonly").to_vec()
        }),
        "delete user",
    );
    refused(
        call(&mut c, Some(&w2), |e, id| {
            e.put_request(id, &put(b"w/4")).to_vec()
        }),
        BAD_TOKEN,
        "token of a deleted user",
    );

    // Management rules of etcd.
    refused(
        call(&mut c, r, |e, id| {
            e.user_delete_request(id, "root").to_vec()
        }),
        "etcdserver: invalid auth management",
        "delete root",
    );
    refused(
        call(&mut c, r, |e, id| {
            e.role_delete_request(id, "root").to_vec()
        }),
        "etcdserver: invalid auth management",
        "delete root role",
    );
    refused(
        call(&mut c, r, |e, id| {
            e.user_add_request(id, "alice", "x", false).to_vec()
        }),
        "etcdserver: user name already exists",
        "user twice",
    );
    refused(
        call(&mut c, r, |e, id| {
            e.user_grant_role_request(id, "alice", "nope").to_vec()
        }),
        "etcdserver: role name not found",
        "missing role",
    );
    refused(
        call(&mut c, r, |e, id| {
            e.user_revoke_role_request(id, "alice", "reader").to_vec()
        }),
        "etcdserver: role is not granted to the user",
        "revoke twice",
    );
    refused(
        call(&mut c, r, |e, id| {
            e.role_revoke_permission_request(id, "reader", b"zz", b"")
                .to_vec()
        }),
        "etcdserver: permission is not granted to the role",
        "revoke missing perm",
    );

    // Off again: no token needed.
    ok(
        call(&mut c, r, |e, id| e.auth_disable_request(id).to_vec()),
        "disable",
    );
    c.put(b"b", b"after").expect("put without auth");
}

trait GetAs {
    fn get_key_as(&mut self, token: Option<&str>, key: &[u8]) -> Option<Vec<u8>>;
}

impl GetAs for Client {
    fn get_key_as(&mut self, token: Option<&str>, key: &[u8]) -> Option<Vec<u8>> {
        let r = ok(
            call(self, token, |e, id| {
                e.range_request(id, &range(key, b"")).to_vec()
            }),
            "get",
        );
        r.kvs.first().map(|kv| kv.1.clone())
    }
}

#[test]
fn tokens_expire_when_unused() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, mut c) = start(dir.path(), &["--auth-token-ttl", "1"]);
    ok(
        call(&mut c, None, |e, id| {
            e.user_add_request(id, "root", "pw", false).to_vec()
        }),
        "root",
    );
    ok(
        call(&mut c, None, |e, id| {
            e.user_grant_role_request(id, "root", "root").to_vec()
        }),
        "root role",
    );
    ok(
        call(&mut c, None, |e, id| e.auth_enable_request(id).to_vec()),
        "enable",
    );
    let t = authenticate(&mut c, "root", "pw").expect("token");
    // Use keeps it alive.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        ok(
            call(&mut c, Some(&t), |e, id| {
                e.put_request(id, &put(b"k")).to_vec()
            }),
            "put while in use",
        );
    }
    std::thread::sleep(Duration::from_millis(2500));
    refused(
        call(&mut c, Some(&t), |e, id| {
            e.put_request(id, &put(b"k")).to_vec()
        }),
        BAD_TOKEN,
        "expired token",
    );
}

#[test]
fn auth_survives_restarts_and_snapshots_and_no_password_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, mut c) = start(dir.path(), &["--snapshot-count", "20"]);
    set_up(&mut c);
    ok(
        call(&mut c, None, |e, id| e.auth_enable_request(id).to_vec()),
        "enable",
    );
    let root = authenticate(&mut c, "root", "rootpw").expect("root");
    // Enough entries for a snapshot to hold the auth store.
    for i in 0..40 {
        let k = format!("a/w/{i}");
        ok(
            call(&mut c, Some(&root), |e, id| {
                e.put_request(id, &put(k.as_bytes())).to_vec()
            }),
            "fill",
        );
    }
    drop(c);
    s.kill9();
    // Ready is "root can authenticate" (a plain put needs a token now).
    s.wait_put = false;
    s.spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        if let Ok(mut c) = Client::connect(s.addr) {
            // A status call that fails only for want of a user: serving.
            let id = c.id();
            let f = c.enc.status_request(id).to_vec();
            if let Ok(r) = c.call(f) {
                if r.error.as_ref().is_some_and(|e| e.1 == NO_USER) {
                    break c;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cairn did not come back"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    refused(
        call(&mut c, None, |e, id| {
            e.range_request(id, &range(b"b", b"")).to_vec()
        }),
        NO_USER,
        "still enabled",
    );
    let alice = authenticate(&mut c, "alice", "alicepw-secret").expect("alice after restart");
    ok(
        call(&mut c, Some(&alice), |e, id| {
            e.range_request(id, &range(b"a/x", b"")).to_vec()
        }),
        "alice reads",
    );
    refused(
        call(&mut c, Some(&alice), |e, id| {
            e.range_request(id, &range(b"b", b"")).to_vec()
        }),
        DENIED,
        "alice denied",
    );
    drop(c);
    s.stop();
    // Neither the WAL nor a snapshot holds a clear-text password or a token.
    let mut files = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    let needles: [&[u8]; 3] = [b"alicepw-secret", b"rootpw", alice.as_bytes()];
    let mut snapshots = 0;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        snapshots += usize::from(f.to_string_lossy().contains("snap"));
        for n in needles {
            assert!(
                !data.windows(n.len()).any(|w| w == n),
                "{} holds {:?}",
                f.display(),
                String::from_utf8_lossy(n)
            );
        }
    }
    assert!(snapshots > 0, "a snapshot was written");
}

#[test]
fn a_token_from_one_member_works_on_the_others() {
    let mut cluster = common::Cluster::start(3, &["--bcrypt-cost", "4"]);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut c = Client::connect_retry(cluster.members[leader].addr, Duration::from_secs(5));
    ok(
        call(&mut c, None, |e, id| {
            e.user_add_request(id, "root", "pw", false).to_vec()
        }),
        "root",
    );
    ok(
        call(&mut c, None, |e, id| {
            e.user_grant_role_request(id, "root", "root").to_vec()
        }),
        "root role",
    );
    ok(
        call(&mut c, None, |e, id| e.auth_enable_request(id).to_vec()),
        "enable",
    );
    let follower = (leader + 1) % 3;
    let mut f = Client::connect_retry(cluster.members[follower].addr, Duration::from_secs(5));
    // The follower may not have applied the enable yet: it answers "not
    // enabled" until it has, as an etcd follower would.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let t = loop {
        match authenticate(&mut f, "root", "pw") {
            Ok(t) => break t,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for m in 0..3 {
        let mut x = Client::connect_retry(cluster.members[m].addr, Duration::from_secs(5));
        // A member learns the token when it applies the Authenticate
        // entry, which may be a moment after the one that answered.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match call(&mut x, Some(&t), |e, id| {
                e.put_request(id, &put(b"k")).to_vec()
            }) {
                Ok(_) => break,
                Err((_, m)) if m == BAD_TOKEN && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("put with the token: {e:?}"),
            }
        }
        ok(
            call(&mut x, Some(&t), |e, id| {
                e.range_request(id, &range(b"k", b"")).to_vec()
            }),
            "get with the token",
        );
        refused(
            call(&mut x, None, |e, id| e.put_request(id, &put(b"k")).to_vec()),
            NO_USER,
            "no token",
        );
    }
    cluster.members[follower].kill9();
}

/// With `--client-cert-auth`, a request without a token acts as the user
/// named by its client certificate's CN, as in etcd.
#[test]
fn a_client_certificate_names_the_user_of_requests_without_a_token() {
    use cairn_client::{ConnectOptions, GetOptions, PutOptions, TlsOptions};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "auth test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let issue = |cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        let (c, k) = (
            dir.path().join(format!("{cn}.pem")),
            dir.path().join(format!("{cn}-key.pem")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let (server_cert, server_key) = issue("server");
    let plain = format!("127.0.0.1:{}", common::free_port());
    let tls_url = format!("https://127.0.0.1:{}", common::free_port());
    let peer = format!("http://127.0.0.1:{}", common::free_port());
    let listen = format!("http://{plain},{tls_url}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "--name",
            "cn",
            "--no-pin",
            "--cores",
            "1",
            "--log-level",
            "warn",
            "--bcrypt-cost",
            "4",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &listen,
            "--advertise-client-urls",
            &listen,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .arg("--cert-file")
        .arg(&server_cert)
        .arg("--key-file")
        .arg(&server_key)
        .arg("--trusted-ca-file")
        .arg(&ca_path)
        .arg("--client-cert-auth")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start cairn");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        if let Ok(mut c) = Client::connect(plain.parse().unwrap()) {
            if c.put(b"__ready", b"1").is_ok() {
                break c;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cairn did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    ok(
        call(&mut c, None, |e, id| {
            e.user_add_request(id, "root", "rootpw", false).to_vec()
        }),
        "root",
    );
    ok(
        call(&mut c, None, |e, id| {
            e.user_grant_role_request(id, "root", "root").to_vec()
        }),
        "root role",
    );
    ok(
        call(&mut c, None, |e, id| {
            e.user_add_request(id, "reader", "", true).to_vec()
        }),
        "reader",
    );
    ok(
        call(&mut c, None, |e, id| e.role_add_request(id, "r").to_vec()),
        "role",
    );
    grant(&mut c, None, "r", rpc::PermissionType::Read, b"k", b"");
    ok(
        call(&mut c, None, |e, id| {
            e.user_grant_role_request(id, "reader", "r").to_vec()
        }),
        "grant",
    );
    c.put(b"k", b"v").expect("seed");
    ok(
        call(&mut c, None, |e, id| e.auth_enable_request(id).to_vec()),
        "enable",
    );
    // A no-password user cannot authenticate with a password.
    assert!(authenticate(&mut c, "reader", "").is_err());

    let (reader_cert, reader_key) = issue("reader");
    let (root_cert, root_key) = issue("root");
    let (stranger_cert, stranger_key) = issue("stranger");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let connect = |cert: std::path::PathBuf, key: std::path::PathBuf| {
            let tls = TlsOptions::new()
                .with_ca_file(&ca_path)
                .with_client_cert(cert, key);
            let opts = ConnectOptions::default()
                .with_dial_timeout(Duration::from_secs(2))
                .with_request_timeout(Duration::from_secs(5));
            cairn_client::Client::connect_with_tls([tls_url.clone()], opts, Some(tls))
        };
        let reader = connect(reader_cert, reader_key)
            .await
            .expect("reader connects");
        let got = reader
            .get("k", GetOptions::default())
            .await
            .expect("reader reads k");
        assert_eq!(got.kvs[0].value, b"v");
        let e = reader
            .put("k", "x", PutOptions::default())
            .await
            .expect_err("reader writes");
        assert!(e.to_string().contains("permission denied"), "{e}");
        let e = reader
            .get("other", GetOptions::default())
            .await
            .expect_err("reader reads other");
        assert!(e.to_string().contains("permission denied"), "{e}");
        let root = connect(root_cert, root_key).await.expect("root connects");
        root.put("other", "y", PutOptions::default())
            .await
            .expect("root writes");
        let stranger = connect(stranger_cert, stranger_key)
            .await
            .expect("stranger connects");
        let e = stranger
            .get("k", GetOptions::default())
            .await
            .expect_err("unknown user");
        assert!(e.to_string().contains("permission denied"), "{e}");
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// With `--auth-token jwt,...`, Authenticate hands out signed JWTs: they
/// work on any member without a table (here: across a restart), a forged
/// one is refused, and one signed before a permission change is refused as
/// old until its holder logs in again.
#[test]
fn jwt_tokens_carry_their_user_and_revision() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jwt");
    let flag = format!(
        "jwt,pub-key={},priv-key={},sign-method=ES256,ttl=5m",
        keys.join("ec256.pub.pem").display(),
        keys.join("ec256.pem").display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut s, mut c) = start(dir.path(), &["--auth-token", &flag]);
    ok(
        call(&mut c, None, |e, id| {
            e.user_add_request(id, "root", "pw", false).to_vec()
        }),
        "root",
    );
    ok(
        call(&mut c, None, |e, id| {
            e.user_grant_role_request(id, "root", "root").to_vec()
        }),
        "role",
    );
    ok(
        call(&mut c, None, |e, id| e.auth_enable_request(id).to_vec()),
        "enable",
    );
    let t = authenticate(&mut c, "root", "pw").expect("jwt");
    assert_eq!(t.matches('.').count(), 2, "a JWT: {t}");
    ok(
        call(&mut c, Some(&t), |e, id| {
            e.put_request(id, &put(b"k")).to_vec()
        }),
        "put with the jwt",
    );
    // A changed signature.
    let mut forged = t.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    refused(
        call(&mut c, Some(&forged), |e, id| {
            e.put_request(id, &put(b"k")).to_vec()
        }),
        BAD_TOKEN,
        "forged",
    );
    // No token table: the token still works after a restart.
    drop(c);
    s.wait_put = false;
    s.kill9();
    s.spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        if let Ok(mut c) = Client::connect(s.addr) {
            let id = c.id();
            c.enc.set_token(Some(&t));
            let f = c.enc.put_request(id, &put(b"k2")).to_vec();
            c.enc.set_token(None);
            if matches!(c.call(f), Ok(r) if r.error.is_none()) {
                break c;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the jwt was not accepted after a restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // A permission change makes every earlier token old.
    ok(
        call(&mut c, Some(&t), |e, id| {
            e.role_add_request(id, "r").to_vec()
        }),
        "role add",
    );
    refused(
        call(&mut c, Some(&t), |e, id| {
            e.put_request(id, &put(b"k")).to_vec()
        }),
        "etcdserver: revision of auth store is old",
        "old jwt",
    );
    let t2 = authenticate(&mut c, "root", "pw").expect("new jwt");
    ok(
        call(&mut c, Some(&t2), |e, id| {
            e.put_request(id, &put(b"k")).to_vec()
        }),
        "put with the new jwt",
    );
}
