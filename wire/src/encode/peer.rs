//! Peer (member-to-member) frames: Hello, Raft messages, snapshot chunks.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, Vector, WIPOffset};

use super::{opt_bytes, Builder, Encoder};
use crate::peer;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryParams<'a> {
    pub index: u64,
    pub term: u64,
    pub kind: peer::EntryKind,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfStateParams<'a> {
    pub voters: &'a [u64],
    pub learners: &'a [u64],
    pub voters_outgoing: &'a [u64],
    pub learners_next: &'a [u64],
    pub auto_leave: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotMetadataParams<'a> {
    pub index: u64,
    pub term: u64,
    pub conf_state: ConfStateParams<'a>,
}

/// A Raft message's fields, plain: the engine maps its Raft types to these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftMessageParams<'a> {
    pub msg_type: peer::MessageType,
    pub to: u64,
    pub from: u64,
    pub term: u64,
    pub log_term: u64,
    pub index: u64,
    pub commit: u64,
    pub reject: bool,
    pub reject_hint: u64,
    pub entries: &'a [EntryParams<'a>],
    pub snapshot: Option<SnapshotMetadataParams<'a>>,
    pub context: &'a [u8],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotChunkParams<'a> {
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    pub offset: u64,
    pub data: &'a [u8],
    /// CRC-32 (IEEE) of `data`, computed by the caller.
    pub crc: u32,
    pub last: bool,
}

fn ids(fbb: &mut Builder, v: &[u64]) -> Option<WIPOffset<Vector<'static, u64>>> {
    if v.is_empty() {
        None
    } else {
        Some(fbb.create_vector(v))
    }
}

fn build_snapshot_metadata(
    fbb: &mut Builder,
    m: &SnapshotMetadataParams<'_>,
) -> WIPOffset<peer::SnapshotMetadata<'static>> {
    let cs = &m.conf_state;
    let voters = ids(fbb, cs.voters);
    let learners = ids(fbb, cs.learners);
    let voters_outgoing = ids(fbb, cs.voters_outgoing);
    let learners_next = ids(fbb, cs.learners_next);
    let conf_state = peer::ConfState::create(
        fbb,
        &peer::ConfStateArgs {
            voters,
            learners,
            voters_outgoing,
            learners_next,
            auto_leave: cs.auto_leave,
        },
    );
    peer::SnapshotMetadata::create(
        fbb,
        &peer::SnapshotMetadataArgs {
            index: m.index,
            term: m.term,
            conf_state: Some(conf_state),
        },
    )
}

impl Encoder {
    /// The first frame on a peer connection (after the preface), with the
    /// caller's advertised client URLs.
    pub fn hello(&mut self, cluster_id: u64, from: u64, to: u64, client_urls: &[&str]) -> &[u8] {
        let fbb = self.begin();
        let client_urls = if client_urls.is_empty() {
            None
        } else {
            let urls: Vec<_> = client_urls.iter().map(|u| fbb.create_string(u)).collect();
            Some(fbb.create_vector(&urls))
        };
        let body = peer::Hello::create(
            fbb,
            &peer::HelloArgs {
                cluster_id,
                from,
                to,
                client_urls,
            },
        )
        .as_union_value();
        finish_peer(&mut self.fbb, peer::PeerBody::Hello, body)
    }

    pub fn raft_message(&mut self, m: &RaftMessageParams<'_>) -> &[u8] {
        let fbb = self.begin();
        let entries = if m.entries.is_empty() {
            None
        } else {
            let offsets: Vec<_> = m
                .entries
                .iter()
                .map(|e| {
                    let data = opt_bytes(fbb, e.data);
                    peer::Entry::create(
                        fbb,
                        &peer::EntryArgs {
                            index: e.index,
                            term: e.term,
                            kind: e.kind,
                            data,
                        },
                    )
                })
                .collect();
            Some(fbb.create_vector(&offsets))
        };
        let snapshot = m.snapshot.as_ref().map(|s| build_snapshot_metadata(fbb, s));
        let context = opt_bytes(fbb, m.context);
        let body = peer::RaftMessage::create(
            fbb,
            &peer::RaftMessageArgs {
                type_: m.msg_type,
                to: m.to,
                from: m.from,
                term: m.term,
                log_term: m.log_term,
                index: m.index,
                commit: m.commit,
                reject: m.reject,
                reject_hint: m.reject_hint,
                entries,
                snapshot,
                context,
            },
        )
        .as_union_value();
        finish_peer(&mut self.fbb, peer::PeerBody::RaftMessage, body)
    }

    pub fn snapshot_chunk(&mut self, c: &SnapshotChunkParams<'_>) -> &[u8] {
        let fbb = self.begin();
        let data = opt_bytes(fbb, c.data);
        let body = peer::SnapshotChunk::create(
            fbb,
            &peer::SnapshotChunkArgs {
                snapshot_index: c.snapshot_index,
                snapshot_term: c.snapshot_term,
                offset: c.offset,
                data,
                crc: c.crc,
                last: c.last,
            },
        )
        .as_union_value();
        finish_peer(&mut self.fbb, peer::PeerBody::SnapshotChunk, body)
    }
}

fn finish_peer<'e>(
    fbb: &'e mut FlatBufferBuilder<'static>,
    body_type: peer::PeerBody,
    body: WIPOffset<UnionWIPOffset>,
) -> &'e [u8] {
    let root = peer::PeerFrame::create(
        fbb,
        &peer::PeerFrameArgs {
            body_type,
            body: Some(body),
        },
    );
    fbb.finish_size_prefixed(root, None);
    fbb.finished_data()
}
