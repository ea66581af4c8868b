//! The fake server's membership and maintenance answers.

use cairn_wire::{rpc, Encoder, MemberRef};

use super::{header, Conn, Failure, State};

#[derive(Debug, Clone)]
pub(crate) struct FakeMember {
    id: u64,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    is_learner: bool,
}

/// The member the fake server itself is.
pub(crate) fn founding_member(id: u64) -> FakeMember {
    FakeMember {
        id,
        name: "default".to_string(),
        peer_urls: vec!["http://127.0.0.1:23800".to_string()],
        client_urls: vec!["http://127.0.0.1:23790".to_string()],
        is_learner: false,
    }
}

const MEMBER_NOT_FOUND: Failure = Failure(rpc::ErrorCode::NotFound, "etcdserver: member not found");
const NOT_LEARNER: Failure = Failure(
    rpc::ErrorCode::FailedPrecondition,
    "etcdserver: can only promote a learner member",
);

/// Borrowed views of `members`, for the encoder.
fn with_refs<R>(members: &[FakeMember], f: impl FnOnce(&[MemberRef<'_>]) -> R) -> R {
    let peers: Vec<Vec<&str>> = members
        .iter()
        .map(|m| m.peer_urls.iter().map(String::as_str).collect())
        .collect();
    let clients: Vec<Vec<&str>> = members
        .iter()
        .map(|m| m.client_urls.iter().map(String::as_str).collect())
        .collect();
    let refs: Vec<MemberRef<'_>> = members
        .iter()
        .enumerate()
        .map(|(i, m)| MemberRef {
            id: m.id,
            name: &m.name,
            peer_urls: &peers[i],
            client_urls: &clients[i],
            is_learner: m.is_learner,
        })
        .collect();
    f(&refs)
}

pub(crate) fn answer(
    s: &mut State,
    enc: &mut Encoder,
    conn: &Conn,
    id: u64,
    body: &cairn_wire::RequestBodyView<'_>,
) -> Option<Result<Vec<u8>, Failure>> {
    use cairn_wire::RequestBodyView as B;
    let strings =
        |v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<&str>>>| -> Vec<String> {
            v.into_iter().flatten().map(str::to_string).collect()
        };
    let result = match body {
        B::MemberList(_) => {
            let h = header(s, conn.member_id);
            Ok(with_refs(&s.members, |refs| {
                enc.member_list_response(id, &h, refs).to_vec()
            }))
        }
        B::MemberAdd(a) => {
            let added = FakeMember {
                id: 0x6b21_a64b_f866_7db1 + s.members.len() as u64,
                name: String::new(),
                peer_urls: strings(a.peer_urls()),
                client_urls: Vec::new(),
                is_learner: a.is_learner(),
            };
            s.members.push(added.clone());
            let h = header(s, conn.member_id);
            let all = s.members.clone();
            Ok(with_refs(&[added], |new| {
                with_refs(&all, |refs| {
                    enc.member_add_response(id, &h, &new[0], refs).to_vec()
                })
            }))
        }
        B::MemberRemove(r) => {
            let before = s.members.len();
            s.members.retain(|m| m.id != r.id());
            if s.members.len() == before {
                return Some(Err(MEMBER_NOT_FOUND));
            }
            let h = header(s, conn.member_id);
            Ok(with_refs(&s.members, |refs| {
                enc.member_remove_response(id, &h, refs).to_vec()
            }))
        }
        B::MemberUpdate(u) => {
            let Some(m) = s.members.iter_mut().find(|m| m.id == u.id()) else {
                return Some(Err(MEMBER_NOT_FOUND));
            };
            m.peer_urls = strings(u.peer_urls());
            let h = header(s, conn.member_id);
            Ok(with_refs(&s.members, |refs| {
                enc.member_update_response(id, &h, refs).to_vec()
            }))
        }
        B::MemberPromote(p) => {
            let Some(m) = s.members.iter_mut().find(|m| m.id == p.id()) else {
                return Some(Err(MEMBER_NOT_FOUND));
            };
            if !m.is_learner {
                return Some(Err(NOT_LEARNER));
            }
            m.is_learner = false;
            let h = header(s, conn.member_id);
            Ok(with_refs(&s.members, |refs| {
                enc.member_promote_response(id, &h, refs).to_vec()
            }))
        }
        B::HashKv(_) => {
            let hash = s.kv.iter().fold(17u32, |acc, (k, v)| {
                let bytes = k.iter().chain(&v.value);
                bytes.fold(acc, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(*b)))
            });
            let h = header(s, conn.member_id);
            Ok(enc
                .hash_kv_response(id, &h, hash, s.compacted, s.revision)
                .to_vec())
        }
        B::Defragment(_) => {
            let h = header(s, conn.member_id);
            Ok(enc.defragment_response(id, &h).to_vec())
        }
        B::MoveLeader(_) => {
            let h = header(s, conn.member_id);
            Ok(enc.move_leader_response(id, &h).to_vec())
        }
        _ => return None,
    };
    Some(result)
}
