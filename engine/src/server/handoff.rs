//! Moving a lone client's connection to the shard's executor, and back.
//!
//! With more than one executor the shard's takes no client sockets of its
//! own (`mod.rs`): under load it is the one that saturates first. The
//! price is a hop between executors and back for every request, and when
//! requests are few that hop is the cost: an executor idle for longer than
//! `--spin-us` sleeps, so a lone client's put, which waits about one
//! fdatasync on the shard, comes back to a sleeping socket executor and
//! pays a thread wake-up (an inter-processor interrupt; in a VM, a virtual
//! CPU the host must schedule again) on top of the sync.
//!
//! So a connection moves to the shard's executor while the member serves
//! at most [`SHARD_EXECUTOR_CLIENT_CONNS_MAX`] client connections in all
//! and the connection sends one request at a time; it moves back to
//! another executor once either stops being true. A lone client is then
//! served with no hop, as `--cores 1` would serve it, while a thousand
//! clients, or one client pipelining many requests, keep the shard's
//! executor free for Raft, the WAL and apply.
//!
//! A connection moves only when it is quiet: every request it sent has
//! been answered and written, nothing of a next request has been read, and
//! it has answered at least one request where it is (so the decision sees
//! the connections a load generator opens before its first request). Only
//! plain-TCP connections of the native protocol that have sent nothing but
//! KV requests move: watches, leases, backups and TLS sessions hold state
//! on their executor. The socket moves as a duplicated descriptor over a
//! bounded channel mesh wired at start-up; no byte of it was read and not
//! handled, so nothing is lost or seen twice.
//!
//! [`SHARD_EXECUTOR_CLIENT_CONNS_MAX`]: crate::limits::SHARD_EXECUTOR_CLIENT_CONNS_MAX

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpStream;

use super::route::{Router, SHARD_EXECUTOR};
use super::{ServerError, Shared};
use crate::limits;

/// A quiet client connection on its way to another executor.
pub struct Handoff {
    fd: OwnedFd,
    mobility: Mobility,
}

/// What decides whether a connection may move.
#[derive(Clone, Copy, Debug)]
pub struct Mobility {
    /// Plain TCP, native protocol, nothing but KV requests so far.
    pub movable: bool,
    /// It has had more than one request in flight: it stays off the
    /// shard's executor for good.
    pub pipelined: bool,
}

/// The mesh that carries connections between executors.
pub type HandoffMesh = MeshBuilder<Handoff, Full>;

pub fn mesh(cores: usize) -> HandoffMesh {
    MeshBuilder::full(cores, limits::CONN_HANDOFF_CAPACITY)
}

/// This executor's end of the mesh.
pub struct Handoffs {
    me: usize,
    tx: Senders<Handoff>,
}

/// Join the mesh and serve every connection handed to this executor.
pub async fn join(
    shared: Arc<Shared>,
    router: Rc<Router>,
    mesh: HandoffMesh,
) -> Result<Rc<Handoffs>, ServerError> {
    let (tx, mut rx): (Senders<Handoff>, Receivers<Handoff>) = mesh
        .join()
        .await
        .map_err(|e| ServerError::Executors(format!("cannot join the connection mesh: {e}")))?;
    let handoffs = Rc::new(Handoffs {
        me: tx.peer_id(),
        tx,
    });
    for (_, stream) in rx.streams() {
        let shared = shared.clone();
        let router = router.clone();
        let handoffs = handoffs.clone();
        glommio::spawn_local(async move {
            while let Some(h) = stream.recv().await {
                adopt(shared.clone(), router.clone(), handoffs.clone(), h);
            }
        })
        .detach();
    }
    Ok(handoffs)
}

impl Handoffs {
    /// Where a quiet connection with `mobility`, served here, should be
    /// served instead, if anywhere.
    pub fn wanted(&self, shared: &Shared, mobility: Mobility) -> Option<usize> {
        destination(
            self.me,
            shared.cores,
            mobility,
            shared.client_conns.load(Ordering::Acquire),
            shared.shard_conns.load(Ordering::Acquire),
        )
    }

    /// Take a slot on `dest` for a connection; false if it has none left.
    pub fn claim(&self, shared: &Shared, dest: usize) -> bool {
        dest != SHARD_EXECUTOR
            || shared
                .shard_conns
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < limits::SHARD_EXECUTOR_CLIENT_CONNS_MAX).then_some(n + 1)
                })
                .is_ok()
    }

    /// Send the quiet connection on socket `fd` to `dest`, which
    /// [`claim`](Self::claim) gave a slot. The caller then drops its own
    /// descriptor: the socket lives on in the copy sent. Returns whether
    /// the connection is on its way (if not, it closes with this executor's
    /// copy: the server is stopping).
    pub async fn send(&self, shared: &Shared, fd: RawFd, dest: usize, mobility: Mobility) -> bool {
        // SAFETY: the caller's stream keeps `fd` open until this returns.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let sent = match borrowed.try_clone_to_owned() {
            Ok(fd) => {
                tracing::debug!(from = self.me, to = dest, "a quiet client connection moves");
                self.tx
                    .send_to(dest, Handoff { fd, mobility })
                    .await
                    .is_ok()
            }
            Err(e) => {
                tracing::warn!("closing a client connection: cannot move it: {e}");
                false
            }
        };
        if !sent {
            self.left(shared, dest);
        }
        if self.me == SHARD_EXECUTOR {
            self.left(shared, self.me);
        }
        sent
    }

    /// A connection that held a slot on `executor` left it.
    fn left(&self, shared: &Shared, executor: usize) {
        if executor == SHARD_EXECUTOR {
            let before = shared.shard_conns.fetch_sub(1, Ordering::AcqRel);
            assert!(before > 0, "a connection left a slot nobody held");
        }
    }
}

/// Where a quiet connection with `mobility` on executor `me` of `cores`
/// should move, given the member's client connections and those the
/// shard's executor serves.
fn destination(
    me: usize,
    cores: usize,
    mobility: Mobility,
    client_conns: usize,
    shard_conns: usize,
) -> Option<usize> {
    if cores < 2 || !mobility.movable {
        return None;
    }
    let few = client_conns <= limits::SHARD_EXECUTOR_CLIENT_CONNS_MAX;
    if me == SHARD_EXECUTOR {
        // Back to an executor that serves sockets; which one matters
        // little, as these connections are few.
        (!few || mobility.pipelined).then_some(SHARD_EXECUTOR + 1)
    } else {
        let room = shard_conns < limits::SHARD_EXECUTOR_CLIENT_CONNS_MAX;
        (few && room && !mobility.pipelined).then_some(SHARD_EXECUTOR)
    }
}

/// Serve a connection handed to this executor until it closes or moves on.
fn adopt(shared: Arc<Shared>, router: Rc<Router>, handoffs: Rc<Handoffs>, h: Handoff) {
    // SAFETY: the descriptor is an open, connected TCP socket that the
    // handoff alone owns; the stream takes that ownership over.
    let stream = unsafe { TcpStream::from_raw_fd(h.fd.into_raw_fd()) };
    let registration = super::listen::register(stream.as_raw_fd());
    let slot = super::conn::ServedSlot::take();
    glommio::spawn_local(async move {
        let moved =
            super::conn::serve_moved(shared.clone(), router, handoffs.clone(), stream, h.mobility)
                .await;
        drop(registration);
        drop(slot);
        if !moved {
            handoffs.left(&shared, handoffs.me);
            shared.client_conns.fetch_sub(1, Ordering::AcqRel);
        }
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    const KV: Mobility = Mobility {
        movable: true,
        pipelined: false,
    };
    const PIPELINED: Mobility = Mobility {
        movable: true,
        pipelined: true,
    };
    const STUCK: Mobility = Mobility {
        movable: false,
        pipelined: false,
    };
    const FEW: usize = limits::SHARD_EXECUTOR_CLIENT_CONNS_MAX;

    #[test]
    fn a_lone_sequential_client_moves_to_the_shard_executor() {
        assert_eq!(destination(1, 2, KV, 1, 0), Some(SHARD_EXECUTOR));
        assert_eq!(destination(3, 4, KV, FEW, 0), Some(SHARD_EXECUTOR));
        // Where it is already, it stays.
        assert_eq!(destination(SHARD_EXECUTOR, 2, KV, 1, 1), None);
    }

    #[test]
    fn many_connections_or_pipelining_keep_the_shard_executor_free() {
        assert_eq!(destination(1, 2, KV, FEW + 1, 0), None);
        assert_eq!(destination(1, 2, PIPELINED, 1, 0), None);
        assert_eq!(destination(1, 2, KV, FEW, FEW), None, "no slot left");
        // One already there goes back when either holds.
        assert_eq!(destination(SHARD_EXECUTOR, 2, KV, FEW + 1, 1), Some(1));
        assert_eq!(destination(SHARD_EXECUTOR, 2, PIPELINED, 1, 1), Some(1));
    }

    #[test]
    fn connections_with_state_on_their_executor_never_move() {
        assert_eq!(destination(1, 2, STUCK, 1, 0), None);
        assert_eq!(destination(SHARD_EXECUTOR, 2, STUCK, FEW + 5, 1), None);
    }

    #[test]
    fn one_executor_has_nowhere_to_move_to() {
        assert_eq!(destination(SHARD_EXECUTOR, 1, KV, 1, 0), None);
        assert_eq!(destination(SHARD_EXECUTOR, 1, PIPELINED, 100, 0), None);
    }
}
