//! The peer transport: Raft messages between members, over TCP, on the
//! shard's executor.
//!
//! Each member keeps one outbound connection per peer, fed by a bounded
//! queue of encoded frames; a sender task writes whatever is queued in one
//! socket write and reconnects with a back-off when the connection breaks.
//! A full queue drops the message and tells Raft the peer is unreachable;
//! Raft's own retries (probing, heartbeats) recover, so the shard never
//! waits on a slow peer.
//!
//! Inbound connections start with the peer preface and a Hello naming the
//! cluster and both members. A connection from another cluster, or meant
//! for another member, is refused and logged.
//!
//! A member joining a running cluster (`--initial-cluster-state existing`)
//! knows only the peer URLs of `--initial-cluster`, not the ids behind
//! them, nor its own id (the cluster chose it when `MemberAdd` applied). It
//! dials each URL with a *join query*: a Hello with cluster, from and to all
//! 0 whose URL list carries the joiner's own peer URLs. The member that
//! answers writes back one Hello on the same connection — its cluster id,
//! its own id as `from`, and as `to` the id its member table gives those
//! peer URLs (0 if none) — and closes it. See [`discover`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use cairn_raft::{self as raft, Entry, EntryKind, Message, MessageKind};
use cairn_wire::{
    check_preface, decode_peer_frame, peer, Channel, ConfStateParams, Encoder, EntryParams,
    FrameDecoder, PeerMessageView, RaftMessageParams, SnapshotMetadataParams, PEER_PREFACE,
};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;

use super::members::Members;
use super::shard::Event;
use crate::limits;

/// The outbound side: one queue per peer.
pub struct Peers {
    me: u64,
    cluster_id: u64,
    client_urls: Rc<Vec<String>>,
    queues: HashMap<u64, Rc<LocalSender<Vec<u8>>>>,
    /// Where each peer's sender task dials.
    addrs: HashMap<u64, SocketAddr>,
    enc: Encoder,
    /// The shard's events, for a peer telling this member it was removed.
    events: Rc<LocalSender<Event>>,
}

/// A snapshot streamed from the leader, waiting for the Raft message that
/// tells this member to install it.
///
/// On the wire a transfer is a run of `SnapshotChunk` frames on the same
/// connection as the Raft message that follows them: chunk `offset` 0
/// carries the snapshot file's metadata blob, chunks 1.. the MVCC chunks in
/// order, the final one has `last` set. Each carries its CRC-32.
pub struct IncomingSnapshot {
    pub index: u64,
    pub term: u64,
    pub meta: Vec<u8>,
    pub chunks: Vec<Vec<u8>>,
}

/// A peer's id and the address its peer URL names.
pub struct PeerAddr {
    pub id: u64,
    pub addr: SocketAddr,
}

impl Peers {
    /// Start a sender task per peer and a listener for inbound peers.
    pub fn start(
        cluster_id: u64,
        me: u64,
        client_urls: Rc<Vec<String>>,
        listen: &[SocketAddr],
        peers: Vec<PeerAddr>,
        events: Rc<LocalSender<Event>>,
        members: Rc<RefCell<Members>>,
    ) -> std::io::Result<Peers> {
        for addr in listen {
            let listener = super::listen::Listener::bind(*addr)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            tracing::info!(%addr, "serving peer traffic");
            let events_for_listener = events.clone();
            let members = members.clone();
            glommio::spawn_local(accept_loop(
                listener,
                cluster_id,
                me,
                events_for_listener,
                members,
            ))
            .detach();
        }
        let mut out = Peers {
            me,
            cluster_id,
            client_urls,
            queues: HashMap::new(),
            addrs: HashMap::new(),
            enc: Encoder::new(),
            events,
        };
        for p in peers {
            out.add(p);
        }
        Ok(out)
    }

    /// Start sending to a peer (a member added at runtime, or one whose
    /// address changed: the old sender stops and a new one dials).
    pub fn add(&mut self, p: PeerAddr) {
        if p.id == self.me || self.addrs.get(&p.id) == Some(&p.addr) {
            return;
        }
        self.remove(p.id);
        let (tx, rx) = local_channel::new_bounded(limits::PEER_QUEUE_FRAMES_MAX);
        self.queues.insert(p.id, Rc::new(tx));
        self.addrs.insert(p.id, p.addr);
        let task = send_loop(
            self.cluster_id,
            self.me,
            self.client_urls.clone(),
            p,
            rx,
            self.events.clone(),
        );
        glommio::spawn_local(task).detach();
    }

    /// Stop sending to a peer: dropping its queue ends its sender task.
    pub fn remove(&mut self, id: u64) {
        self.queues.remove(&id);
        self.addrs.remove(&id);
    }

    /// The outbound queue of a peer, for a task that must wait for room
    /// (a snapshot transfer) rather than drop.
    pub fn queue(&self, id: u64) -> Option<Rc<LocalSender<Vec<u8>>>> {
        self.queues.get(&id).cloned()
    }

    /// Queue messages for their peers. Returns the peers whose queue was full
    /// (or who are unknown), for `report_unreachable`.
    pub fn send(&mut self, msgs: Vec<Message>) -> Vec<u64> {
        let mut unreachable = Vec::new();
        for m in msgs {
            debug_assert_ne!(m.to, self.me, "local messages are stepped, not sent");
            let Some(q) = self.queues.get(&m.to) else {
                unreachable.push(m.to);
                continue;
            };
            let frame = encode(&mut self.enc, &m).to_vec();
            if q.try_send(frame).is_err() {
                unreachable.push(m.to);
            }
        }
        unreachable.sort_unstable();
        unreachable.dedup();
        unreachable
    }
}

fn kind_to_wire(k: MessageKind) -> peer::MessageType {
    use peer::MessageType as T;
    match k {
        MessageKind::Append => T::App,
        MessageKind::AppendResponse => T::AppResp,
        MessageKind::Vote => T::Vote,
        MessageKind::VoteResponse => T::VoteResp,
        MessageKind::PreVote => T::PreVote,
        MessageKind::PreVoteResponse => T::PreVoteResp,
        MessageKind::Heartbeat => T::Heartbeat,
        MessageKind::HeartbeatResponse => T::HeartbeatResp,
        MessageKind::Snapshot => T::Snap,
        MessageKind::TimeoutNow => T::TimeoutNow,
        MessageKind::Propose => T::Prop,
        MessageKind::ReadIndex => T::ReadIndex,
        MessageKind::ReadIndexResponse => T::ReadIndexResp,
        MessageKind::TransferLeader => T::TransferLeader,
    }
}

fn kind_from_wire(t: peer::MessageType) -> Option<MessageKind> {
    use peer::MessageType as T;
    Some(match t {
        T::App => MessageKind::Append,
        T::AppResp => MessageKind::AppendResponse,
        T::Vote => MessageKind::Vote,
        T::VoteResp => MessageKind::VoteResponse,
        T::PreVote => MessageKind::PreVote,
        T::PreVoteResp => MessageKind::PreVoteResponse,
        T::Heartbeat => MessageKind::Heartbeat,
        T::HeartbeatResp => MessageKind::HeartbeatResponse,
        T::Snap => MessageKind::Snapshot,
        T::TimeoutNow => MessageKind::TimeoutNow,
        T::Prop => MessageKind::Propose,
        T::ReadIndex => MessageKind::ReadIndex,
        T::ReadIndexResp => MessageKind::ReadIndexResponse,
        T::TransferLeader => MessageKind::TransferLeader,
        // Local-only message types never cross the wire.
        _ => return None,
    })
}

/// Marker in `context` of a Vote that comes from a leader transfer (the
/// Raft type carries it as a flag; the wire has only the context bytes).
const CAMPAIGN_TRANSFER: &[u8] = b"transfer";

/// Encode a Raft message as a peer frame.
pub fn encode<'e>(enc: &'e mut Encoder, m: &Message) -> &'e [u8] {
    let entries: Vec<EntryParams<'_>> = m
        .entries
        .iter()
        .map(|e| EntryParams {
            index: e.index,
            term: e.term,
            kind: match e.kind {
                EntryKind::Normal => peer::EntryKind::Normal,
                EntryKind::ConfChange => peer::EntryKind::ConfChange,
            },
            data: &e.data,
        })
        .collect();
    let ctx_bytes = m.context.to_le_bytes();
    let context: &[u8] = if m.campaign_transfer {
        CAMPAIGN_TRANSFER
    } else if m.context == 0 {
        &[]
    } else {
        &ctx_bytes
    };
    let snapshot = m.snapshot.as_ref().map(|s| {
        let cs = &s.metadata.conf_state;
        SnapshotMetadataParams {
            index: s.metadata.index,
            term: s.metadata.term,
            conf_state: ConfStateParams {
                voters: &cs.voters,
                learners: &cs.learners,
                voters_outgoing: &cs.voters_outgoing,
                learners_next: &cs.learners_next,
                auto_leave: cs.auto_leave,
            },
        }
    });
    enc.raft_message(&RaftMessageParams {
        msg_type: kind_to_wire(m.kind),
        to: m.to,
        from: m.from,
        term: m.term,
        log_term: m.log_term,
        index: m.index,
        commit: m.commit,
        reject: m.reject,
        reject_hint: m.reject_hint,
        entries: &entries,
        snapshot,
        context,
    })
}

/// Decode a verified peer Raft message.
pub fn decode(m: peer::RaftMessage<'_>) -> Option<Message> {
    let kind = kind_from_wire(m.type_())?;
    let context_bytes = cairn_wire::bytes(m.context());
    let campaign_transfer = context_bytes == CAMPAIGN_TRANSFER;
    let context = if campaign_transfer || context_bytes.len() != 8 {
        0
    } else {
        let mut b = [0u8; 8];
        b.copy_from_slice(context_bytes);
        u64::from_le_bytes(b)
    };
    let entries = m
        .entries()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            index: e.index(),
            term: e.term(),
            kind: if e.kind() == peer::EntryKind::ConfChange {
                EntryKind::ConfChange
            } else {
                EntryKind::Normal
            },
            data: Bytes::copy_from_slice(cairn_wire::bytes(e.data())),
        })
        .collect();
    let snapshot = m.snapshot().map(|s| {
        let ids = |v: Option<flatbuffers::Vector<'_, u64>>| {
            v.map(|v| v.iter().collect()).unwrap_or_default()
        };
        let cs = s.conf_state();
        raft::Snapshot {
            metadata: raft::SnapshotMetadata {
                index: s.index(),
                term: s.term(),
                conf_state: raft::ConfState {
                    voters: ids(cs.and_then(|c| c.voters())),
                    learners: ids(cs.and_then(|c| c.learners())),
                    voters_outgoing: ids(cs.and_then(|c| c.voters_outgoing())),
                    learners_next: ids(cs.and_then(|c| c.learners_next())),
                    auto_leave: cs.is_some_and(|c| c.auto_leave()),
                },
            },
            data: Bytes::new(),
        }
    });
    Some(Message {
        kind,
        from: m.from(),
        to: m.to(),
        term: m.term(),
        log_term: m.log_term(),
        index: m.index(),
        entries,
        commit: m.commit(),
        snapshot,
        reject: m.reject(),
        reject_hint: m.reject_hint(),
        context,
        campaign_transfer,
    })
}

async fn send_loop(
    cluster_id: u64,
    me: u64,
    client_urls: Rc<Vec<String>>,
    peer: PeerAddr,
    rx: LocalReceiver<Vec<u8>>,
    events: Rc<LocalSender<Event>>,
) {
    let urls: Vec<&str> = client_urls.iter().map(String::as_str).collect();
    let mut backoff_ms = limits::PEER_RECONNECT_BACKOFF_MIN_MS;
    let mut batch = Vec::with_capacity(limits::PEER_WRITE_BATCH_BYTES_MAX);
    loop {
        let connected =
            glommio::timer::timeout(Duration::from_millis(limits::PEER_DIAL_TIMEOUT_MS), async {
                let s = TcpStream::connect(peer.addr).await?;
                super::tls::dial_peer(s, peer.addr)
                    .await
                    .map_err(glommio::GlommioError::IoError)
            })
            .await;
        let stream = match connected {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %format!("{:x}", peer.id), addr = %peer.addr, "cannot reach peer: {e}");
                // Drop what queued up meanwhile: Raft resends what matters,
                // and stale messages only slow the peer's catch-up.
                loop {
                    match futures_lite::future::poll_once(rx.recv()).await {
                        Some(Some(_)) => {}
                        // The peer was removed: stop dialing it.
                        Some(None) => return,
                        None => break,
                    }
                }
                glommio::timer::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(limits::PEER_RECONNECT_BACKOFF_MAX_MS);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (rd, mut stream) = futures_lite::io::split(stream);
        // The peer writes back only to say this member was removed; the
        // watcher ends (is dropped) with the connection.
        let _watcher =
            glommio::spawn_local(watch_for_removal(rd, cluster_id, peer.id, events.clone()));
        let mut enc = Encoder::new();
        batch.clear();
        batch.extend_from_slice(&PEER_PREFACE);
        batch.extend_from_slice(enc.hello(cluster_id, me, peer.id, &urls));
        if stream.write_all(&batch).await.is_err() {
            continue;
        }
        tracing::info!(peer = %format!("{:x}", peer.id), addr = %peer.addr, "connected to peer");
        backoff_ms = limits::PEER_RECONNECT_BACKOFF_MIN_MS;
        loop {
            let Some(frame) = rx.recv().await else { return };
            batch.clear();
            batch.extend_from_slice(&frame);
            while batch.len() < limits::PEER_WRITE_BATCH_BYTES_MAX {
                match futures_lite::future::poll_once(rx.recv()).await {
                    Some(Some(f)) => batch.extend_from_slice(&f),
                    _ => break,
                }
            }
            crate::steptrace::mark("peer-send", batch.len() as u64);
            if let Err(e) = stream.write_all(&batch).await {
                tracing::info!(peer = %format!("{:x}", peer.id), "lost connection to peer: {e}");
                break;
            }
        }
    }
}

/// Read what a dialed peer writes back: a Hello from it addressed to no
/// member means "you were removed from the cluster" (a removed member that
/// was down when it happened learns it this way, as etcd's do from their
/// peers' answers).
async fn watch_for_removal<R: futures_lite::io::AsyncRead + Unpin>(
    mut rd: R,
    cluster_id: u64,
    peer: u64,
    events: Rc<LocalSender<Event>>,
) {
    let mut decoder = FrameDecoder::for_peers();
    loop {
        let n = match rd.read(decoder.read_buf()).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if decoder.commit(n).is_err() {
            return;
        }
        // The first whole frame is all a peer ever writes back.
        match decoder.next_frame() {
            Ok(None) => continue,
            Ok(Some(frame)) => {
                if let Ok(PeerMessageView::Hello(h)) = decode_peer_frame(frame).map(|v| v.message) {
                    if h.cluster_id() == cluster_id && h.from() == peer && h.to() == 0 {
                        let _ = events.send(Event::RemovedByPeer { by: peer }).await;
                    }
                }
                return;
            }
            Err(_) => return,
        }
    }
}

async fn accept_loop(
    listener: super::listen::Listener,
    cluster_id: u64,
    me: u64,
    events: Rc<LocalSender<Event>>,
    members: Rc<RefCell<Members>>,
) {
    while let Some(accepted) = listener.accept().await {
        match accepted {
            Ok(stream) => {
                let events = events.clone();
                let members = members.clone();
                glommio::spawn_local(async move {
                    let Some(stream) = super::tls::accept_peer(stream).await else {
                        return;
                    };
                    if let Err(e) = serve_peer(stream, cluster_id, me, events, members).await {
                        tracing::warn!("closing peer connection: {e}");
                    }
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!("peer accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(limits::ACCEPT_BACKOFF_MS)).await;
            }
        }
    }
}

async fn serve_peer(
    mut stream: super::tls::MaybeTls,
    cluster_id: u64,
    me: u64,
    events: Rc<LocalSender<Event>>,
    members: Rc<RefCell<Members>>,
) -> Result<(), String> {
    let mut preface = [0u8; cairn_wire::limits::PREFACE_BYTES];
    stream
        .read_exact(&mut preface)
        .await
        .map_err(|e| e.to_string())?;
    check_preface(&preface, Channel::Peer).map_err(|e| e.to_string())?;
    let mut decoder = FrameDecoder::for_peers();
    let mut hello_seen = false;
    let mut incoming: Option<IncomingSnapshot> = None;
    loop {
        let n = stream
            .read(decoder.read_buf())
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return decoder.finish().map_err(|e| e.to_string());
        }
        decoder.commit(n).map_err(|e| e.to_string())?;
        crate::steptrace::mark("peer-recv", n as u64);
        while let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
            let view = decode_peer_frame(frame).map_err(|e| e.to_string())?;
            match view.message {
                PeerMessageView::Hello(h) if h.cluster_id() == 0 && h.from() == 0 => {
                    let urls: Vec<String> = h
                        .client_urls()
                        .into_iter()
                        .flatten()
                        .map(str::to_string)
                        .collect();
                    let joiner = members.borrow().by_peer_url(&urls).map_or(0, |m| m.id);
                    tracing::info!(
                        joiner = %format!("{joiner:x}"),
                        ?urls,
                        "answering a join query"
                    );
                    let mut enc = Encoder::new();
                    let answer = enc.hello(cluster_id, me, joiner, &[]).to_vec();
                    stream.write_all(&answer).await.map_err(|e| e.to_string())?;
                    return Ok(());
                }
                PeerMessageView::Hello(h) => {
                    if h.cluster_id() != cluster_id {
                        return Err(format!(
                            "member {:x} belongs to cluster {:x}, not {:x}",
                            h.from(),
                            h.cluster_id(),
                            cluster_id
                        ));
                    }
                    if h.to() != me {
                        return Err(format!(
                            "peer {:x} meant member {:x}, this is {:x}",
                            h.from(),
                            h.to(),
                            me
                        ));
                    }
                    if members.borrow().is_removed(h.from()) {
                        // Tell it, so that it stops asking for votes.
                        let mut enc = Encoder::new();
                        let notice = enc.hello(cluster_id, me, 0, &[]).to_vec();
                        let _ = stream.write_all(&notice).await;
                        return Err(format!(
                            "member {:x} was removed from the cluster; told it so",
                            h.from()
                        ));
                    }
                    hello_seen = true;
                    let urls: Vec<String> = h
                        .client_urls()
                        .into_iter()
                        .flatten()
                        .map(str::to_string)
                        .collect();
                    if events
                        .send(Event::PeerClientUrls { id: h.from(), urls })
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                _ if !hello_seen => return Err("peer sent messages before its hello".into()),
                PeerMessageView::Raft(m) => {
                    let Some(msg) = decode(m) else {
                        return Err("peer sent a local-only raft message".into());
                    };
                    if msg.to != me {
                        return Err(format!("raft message for {:x} arrived at {:x}", msg.to, me));
                    }
                    if events.send(Event::Peer(msg)).await.is_err() {
                        return Ok(());
                    }
                }
                PeerMessageView::SnapshotChunk(c) => {
                    let data = cairn_wire::bytes(c.data());
                    if crc32fast::hash(data) != c.crc() {
                        return Err(format!("snapshot chunk {} failed its checksum", c.offset()));
                    }
                    let (index, term) = (c.snapshot_index(), c.snapshot_term());
                    if c.offset() == 0 {
                        incoming = Some(IncomingSnapshot {
                            index,
                            term,
                            meta: data.to_vec(),
                            chunks: Vec::new(),
                        });
                    } else {
                        let Some(snap) = incoming
                            .as_mut()
                            .filter(|s| s.index == index && s.term == term)
                        else {
                            return Err("snapshot chunk without its beginning".into());
                        };
                        if c.offset() != snap.chunks.len() as u64 + 1 {
                            return Err(format!("snapshot chunk {} out of order", c.offset()));
                        }
                        snap.chunks.push(data.to_vec());
                    }
                    if c.last() {
                        let Some(snap) = incoming.take() else {
                            return Err("snapshot ended without its beginning".into());
                        };
                        tracing::info!(
                            index,
                            term,
                            chunks = snap.chunks.len(),
                            "received snapshot"
                        );
                        if events.send(Event::SnapshotReceived(snap)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// What a member joining a running cluster learns from its peers.
pub struct Joined {
    pub cluster_id: u64,
    pub member_id: u64,
    pub peers: Vec<PeerAddr>,
}

/// One round of join queries to `addrs` (see the module docs). `None`
/// until some member's table holds `own_peer_urls` (the `MemberAdd` has
/// not applied there yet) or no member answered; the caller retries.
pub async fn discover(addrs: &[SocketAddr], own_peer_urls: &[String]) -> Option<Joined> {
    let urls: Vec<&str> = own_peer_urls.iter().map(String::as_str).collect();
    let mut peers = Vec::new();
    let mut found: Option<(u64, u64)> = None;
    for addr in addrs {
        let asked =
            glommio::timer::timeout(Duration::from_millis(limits::PEER_DIAL_TIMEOUT_MS), async {
                Ok(join_query(*addr, &urls).await)
            })
            .await;
        let Ok(Ok((cluster_id, from, to))) = asked else {
            tracing::debug!(%addr, "no answer to the join query");
            continue;
        };
        peers.push(PeerAddr {
            id: from,
            addr: *addr,
        });
        if to != 0 {
            found = Some((cluster_id, to));
        }
    }
    let (cluster_id, member_id) = found?;
    Some(Joined {
        cluster_id,
        member_id,
        peers,
    })
}

/// Ask one member; returns (cluster id, its id, the id it gives us).
async fn join_query(addr: SocketAddr, own_peer_urls: &[&str]) -> Result<(u64, u64, u64), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut stream = super::tls::dial_peer(stream, addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut enc = Encoder::new();
    let mut out = PEER_PREFACE.to_vec();
    out.extend_from_slice(enc.hello(0, 0, 0, own_peer_urls));
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut decoder = FrameDecoder::for_peers();
    loop {
        let n = stream
            .read(decoder.read_buf())
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before answering".into());
        }
        decoder.commit(n).map_err(|e| e.to_string())?;
        if let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
            let view = decode_peer_frame(frame).map_err(|e| e.to_string())?;
            let PeerMessageView::Hello(h) = view.message else {
                return Err("answered a join query with something else".into());
            };
            return Ok((h.cluster_id(), h.from(), h.to()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_messages_round_trip_through_peer_frames() {
        let mut m = Message::new(MessageKind::Append, 1, 2, 7);
        m.log_term = 6;
        m.index = 41;
        m.commit = 40;
        m.entries = vec![
            Entry {
                index: 42,
                term: 7,
                kind: EntryKind::Normal,
                data: Bytes::from_static(b"put"),
            },
            Entry {
                index: 43,
                term: 7,
                kind: EntryKind::ConfChange,
                data: Bytes::from_static(b"cc"),
            },
        ];
        m.context = 99;
        let mut enc = Encoder::new();
        let frame = encode(&mut enc, &m).to_vec();
        let view = decode_peer_frame(&frame).unwrap();
        let PeerMessageView::Raft(r) = view.message else {
            panic!("not raft")
        };
        assert_eq!(decode(r).unwrap(), m);

        let mut v = Message::new(MessageKind::Vote, 3, 1, 9);
        v.campaign_transfer = true;
        let frame = encode(&mut enc, &v).to_vec();
        let PeerMessageView::Raft(r) = decode_peer_frame(&frame).unwrap().message else {
            panic!()
        };
        assert_eq!(decode(r).unwrap(), v);
    }
}
