//! Views of peer (member-to-member) frames.

use super::{known_enum, union_view};
use crate::error::WireError;
use crate::limits::PEER_VERIFY_DEPTH_MAX;
use crate::peer;
use crate::verify::verified_root;

/// A verified peer frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerFrameView<'a> {
    pub message: PeerMessageView<'a>,
    /// The whole root table, for fields added after this view was written.
    pub raw: peer::PeerFrame<'a>,
}

union_view! {
    /// A peer message, by type.
    pub enum PeerMessageView from peer::PeerFrame.body_type as PeerBody {
        missing: WireError::MissingBody,
        unknown: WireError::UnknownPeerMessageType,
        Hello(Hello) = body_as_hello,
        Raft(RaftMessage) = body_as_raft_message,
        SnapshotChunk(SnapshotChunk) = body_as_snapshot_chunk,
    }
}

/// Verifies `frame` (length prefix included) as a peer frame; also rejects
/// Raft message types and entry kinds this build does not know.
pub fn decode_peer_frame(frame: &[u8]) -> Result<PeerFrameView<'_>, WireError> {
    let raw = verified_root::<peer::PeerFrame<'_>>(frame, PEER_VERIFY_DEPTH_MAX)?;
    let message = PeerMessageView::new(raw)?;
    if let PeerMessageView::Raft(m) = &message {
        known_enum("type", m.type_().variant_name(), m.type_().0.into())?;
        for e in m.entries().into_iter().flatten() {
            known_enum("kind", e.kind().variant_name(), e.kind().0.into())?;
        }
    }
    Ok(PeerFrameView { message, raw })
}
