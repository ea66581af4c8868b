//! Maintenance.Snapshot: the native backup stream, chunk for chunk, in the
//! layout etcd's clients check.
//!
//! The native `SnapshotRequest` streams a backup (a cairn snapshot file
//! followed by its SHA-256, see `server/maintenance.rs`) as pushes under
//! the request's id, and answers with the last chunk (`remaining_bytes`
//! 0). Each becomes one `SnapshotResponse`. A push is reported written once
//! HTTP/2 took it, so a slow reader holds the shard at its backup window
//! instead of filling memory.
//!
//! etcd's database files are whole 512-byte pages, and `etcdctl snapshot
//! save` refuses a download whose length is not a multiple of 512 plus the
//! 32-byte SHA-256. So the last message pads the snapshot file with zeros
//! to a multiple of [`SNAPSHOT_ALIGN_BYTES`] and ends with the SHA-256 of
//! everything before it (file and padding), as etcd's does. The native
//! hash is checked against the bytes relayed before it is replaced.
//!
//! ```text
//!  native:  snapshot file | sha256(file)
//!  gRPC:    snapshot file | zeros (0..511) | sha256(file + zeros)
//! ```

use std::rc::Rc;

use crate::server::http2::SendStream;
use bytes::Bytes;
use cairn_wire::etcdpb as pb;
use cairn_wire::{decode_response, ResponseBodyView};
use glommio::channels::local_channel;
use sha2::{Digest, Sha256};

use super::codec::{frame, Status};
use super::convert::header;
use super::session::Session;
use super::stream::{write, Requests, StreamResult};
use crate::limits;

/// etcd's snapshot files are whole pages of this many bytes, and its
/// clients check a download's length against it.
pub const SNAPSHOT_ALIGN_BYTES: u64 = 512;

/// Bytes of the SHA-256 that ends a backup.
const HASH_BYTES: usize = 32;

pub async fn serve(
    session: Rc<Session>,
    token: Option<String>,
    mut reqs: Requests,
    mut send: SendStream,
) -> StreamResult {
    match reqs.next::<pb::SnapshotRequest>().await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let status = Status::internal("grpc: request stream ended without a whole message");
            return Err((status, send));
        }
        Err(status) => return Err((status, send)),
    }
    // The backup's push window plus its final answer always fit.
    let (tx, rx) = local_channel::new_bounded(limits::BACKUP_PUSH_WINDOW + 1);
    let (id, f) = session.encode_as(token.as_deref(), |e, id| e.snapshot_request(id));
    if let Err(status) = session.open_stream(id, f, Rc::new(tx)).await {
        return Err((status, send));
    }
    let result = relay(&session, &rx, &mut send).await;
    // A stream that ended early leaves the rest of the backup to be
    // dropped (and its pushes credited) by the session; the chunks already
    // queued are credited here, or the shard's backup window would never
    // reopen and the backup would hold compaction until the connection
    // closes.
    session.forget(id);
    while let Some(d) = rx.recv().await {
        session.push_done(&d).await;
    }
    match result {
        Ok(true) => {
            let ok = Status {
                code: 0,
                message: String::new(),
            };
            ok.end(&mut send);
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(status) => Err((status, send)),
    }
}

/// Write the chunks until the last one: `Ok(true)` when all were written,
/// `Ok(false)` when the client went away.
async fn relay(
    session: &Session,
    rx: &local_channel::LocalReceiver<super::session::Delivered>,
    send: &mut SendStream,
) -> Result<bool, Status> {
    let mut relayed = Relayed::default();
    loop {
        let Some(d) = rx.recv().await else {
            return Err(Status::new(
                cairn_wire::rpc::ErrorCode::Unavailable,
                "etcdserver: server stopped",
            ));
        };
        let view = decode_response(&d.frame).map_err(|e| Status::internal(e.to_string()))?;
        let chunk = match view.body {
            Ok(ResponseBodyView::Snapshot(s)) => s,
            Ok(_) => return Err(Status::internal("etcdserver: unexpected response type")),
            Err(e) => {
                return Err(Status {
                    code: e.code.0,
                    message: e.message.to_owned(),
                })
            }
        };
        let blob = cairn_wire::bytes(chunk.blob());
        let blob = if d.push {
            relayed.chunk(blob)
        } else {
            relayed.last(blob)?
        };
        let msg = frame(&pb::SnapshotResponse {
            header: Some(header(&view.header)),
            remaining_bytes: chunk.remaining_bytes(),
            blob,
        });
        let written = write(send, msg).await.is_ok();
        session.push_done(&d).await;
        if !written {
            return Ok(false);
        }
        if !d.push {
            // The answer: the last chunk.
            return Ok(true);
        }
    }
}

/// The bytes relayed so far: their length and running SHA-256.
#[derive(Default)]
struct Relayed {
    sha: Sha256,
    len: u64,
}

impl Relayed {
    /// A chunk before the last: relayed as it is.
    fn chunk(&mut self, blob: &[u8]) -> Bytes {
        self.sha.update(blob);
        self.len += blob.len() as u64;
        Bytes::copy_from_slice(blob)
    }

    /// The last chunk (the file's end and the native SHA-256): check the
    /// hash, then pad the file and hash it again.
    fn last(&mut self, blob: &[u8]) -> Result<Bytes, Status> {
        let Some(body_len) = blob.len().checked_sub(HASH_BYTES) else {
            return Err(Status::new(
                cairn_wire::rpc::ErrorCode::DataLoss,
                "etcdserver: snapshot stream ended without its sha256",
            ));
        };
        let (body, native) = blob.split_at(body_len);
        self.sha.update(body);
        self.len += body_len as u64;
        if self.sha.clone().finalize().as_slice() != native {
            return Err(Status::new(
                cairn_wire::rpc::ErrorCode::DataLoss,
                "etcdserver: snapshot stream does not match its sha256",
            ));
        }
        let pad = (SNAPSHOT_ALIGN_BYTES - self.len % SNAPSHOT_ALIGN_BYTES) % SNAPSHOT_ALIGN_BYTES;
        // Under 512 by construction.
        let zeros = vec![0u8; pad as usize];
        self.sha.update(&zeros);
        let mut out = Vec::with_capacity(body.len() + zeros.len() + HASH_BYTES);
        out.extend_from_slice(body);
        out.extend_from_slice(&zeros);
        out.extend_from_slice(&std::mem::take(&mut self.sha).finalize());
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client writes for a native stream of `file` cut at `cuts`.
    fn relay_all(file: &[u8], cuts: &[usize]) -> Result<Vec<u8>, Status> {
        let mut native = file.to_vec();
        native.extend_from_slice(&Sha256::digest(file));
        let mut r = Relayed::default();
        let mut out = Vec::new();
        let mut at = 0;
        for &c in cuts {
            out.extend_from_slice(&r.chunk(&native[at..c]));
            at = c;
        }
        out.extend_from_slice(&r.last(&native[at..])?);
        Ok(out)
    }

    #[test]
    fn download_has_etcds_length_and_hash_of_everything_before_it() {
        for len in [100usize, 511, 512, 513, 1000, 4096] {
            let file: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let out = relay_all(&file, &[len / 3, len / 2]).unwrap();
            // etcdctl's check: pages plus the hash.
            assert_eq!(out.len() as u64 % SNAPSHOT_ALIGN_BYTES, HASH_BYTES as u64);
            let (before, sha) = out.split_at(out.len() - HASH_BYTES);
            assert_eq!(Sha256::digest(before).as_slice(), sha);
            assert_eq!(&before[..len], &file[..]);
            assert!(before[len..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn a_stream_that_does_not_match_its_hash_is_data_loss() {
        let file = vec![7u8; 300];
        let mut native = file.clone();
        native.extend_from_slice(&Sha256::digest(b"something else"));
        let mut r = Relayed::default();
        let _ = r.chunk(&native[..100]);
        let e = r.last(&native[100..]).unwrap_err();
        assert_eq!(e.code, cairn_wire::rpc::ErrorCode::DataLoss.0);
        let e = Relayed::default().last(&[1, 2, 3]).unwrap_err();
        assert_eq!(e.code, cairn_wire::rpc::ErrorCode::DataLoss.0);
    }
}
