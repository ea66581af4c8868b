//! `cairnctl snapshot save|status|restore`: backups, as etcdctl's.
//!
//! A backup file is a cairn snapshot file followed by the SHA-256 of its
//! bytes (the layout is in `docs/storage.md`). `save` streams one from a
//! single member over its own connection (the stream is long and must not
//! share the request timeout of the pooled client), writes it to
//! `<file>.part`, checks the SHA-256, syncs and renames it. `status` reads
//! the file's header and chunks. `restore` builds a data dir, which needs
//! the server's storage code: it runs `cairn snapshot restore` (the binary
//! named by `CAIRNCTL_CAIRN_BINARY`, else the `cairn` next to `cairnctl`,
//! else the one on `PATH`), so the client library
//! stays free of the storage engine (see `docs/operations.md`).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_wire::{decode_response, Encoder, FrameDecoder, ResponseBodyView, CLIENT_PREFACE};
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ctl::args::GlobalArgs;
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::gofmt::humanize_bytes;
use crate::ctl::print::OutputFormat;
use crate::ctl::run::Io;
use crate::Endpoint;

/// Bytes of the SHA-256 that ends a backup.
const HASH_BYTES: usize = 32;
/// Bytes of a snapshot file's header and trailer.
const SNAP_HEADER_BYTES: usize = 32;
const SNAP_TRAILER_BYTES: usize = 32;
const SNAP_MAGIC: &[u8; 8] = b"CAIRNSNP";
const TRAILER_MAGIC: &[u8; 8] = b"CAIRNEND";
/// An MVCC chunk's header and trailer (`docs/mvcc.md`).
const MVCC_CHUNK_HEADER_BYTES: usize = 40;
const MVCC_CHUNK_TRAILER_BYTES: usize = 4;
/// Fixed bytes of one stored version in an MVCC chunk, besides its value.
const MVCC_VERSION_FIXED_BYTES: usize = 8 + 4 + 1 + 8 + 8 + 8 + 4;
/// Largest chunk `status` reads into memory (the server's limit).
const SNAP_CHUNK_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Snapshot related commands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stores a snapshot of a member's state to a file
    Save(SaveArgs),
    /// Gets backend snapshot status of a given file
    Status(StatusArgs),
    /// Restores a member's data directory from a backup file
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The file to write.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The backup file.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Path to the output data directory.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Initial cluster configuration for restore bootstrap.
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Initial cluster token for the cluster during restore bootstrap.
    #[arg(long, default_value = "cairn-cluster")]
    pub initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster.
    #[arg(long, default_value = "http://127.0.0.1:2380")]
    pub initial_advertise_peer_urls: String,
    /// Ignore snapshot integrity hash value (required if copied from data directory).
    #[arg(long)]
    pub skip_hash_check: bool,
}

pub(crate) async fn run(
    g: &GlobalArgs,
    format: OutputFormat,
    c: SnapshotCommand,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    match c {
        SnapshotCommand::Save(a) => save(g, &a.file, io).await,
        SnapshotCommand::Status(a) => {
            let s = status(&a.file)?;
            print_status(io.stdout, format, &s)
        }
        SnapshotCommand::Restore(a) => restore(&a, io),
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> CtlError {
    CtlError::new(ExitCode::Io, format!("{what} {}: {e}", path.display()))
}

/// Stream a backup from the one endpoint into `file`.
async fn save(g: &GlobalArgs, file: &Path, io: &mut Io<'_>) -> Result<(), CtlError> {
    if g.endpoints.len() != 1 {
        return Err(CtlError::bad_args(format!(
            "snapshot must be requested to one selected node, not multiple [{}]",
            g.endpoints.join(" ")
        )));
    }
    let endpoint = Endpoint::parse(g.endpoints[0].trim()).map_err(CtlError::from)?;
    let part = PathBuf::from(format!("{}.part", file.display()));
    let result = stream_to(g, &endpoint, &part, io).await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, file).map_err(|e| io_error("cannot rename", &part, e))?;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync", &dir, e))?;
    writeln!(io.stdout, "Snapshot saved at {}", file.display())?;
    Ok(())
}

/// An encoder whose requests carry a token of `--user`, if given: the
/// snapshot stream has its own connection, which must log in too.
async fn login_encoder(g: &GlobalArgs, endpoint: &Endpoint) -> Result<Encoder, CtlError> {
    let mut encoder = Encoder::new();
    let Some(login) = crate::ctl::auth::credentials(g) else {
        return Ok(encoder);
    };
    let client = crate::ctl::run::connect(g, std::slice::from_ref(&endpoint.original)).await?;
    match client.authenticate(&login.user, &login.password).await {
        Ok(r) => encoder.set_token(Some(&r.token)),
        Err(crate::Error::AuthNotEnabled) => {}
        Err(e) => return Err(CtlError::new(ExitCode::BadConnection, e.to_string())),
    }
    Ok(encoder)
}

async fn stream_to(
    g: &GlobalArgs,
    endpoint: &Endpoint,
    part: &Path,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    let lost = |e: String| {
        CtlError::new(
            ExitCode::BadConnection,
            format!("failed to receive snapshot from {}: {e}", endpoint.original),
        )
    };
    let mut sock = tokio::time::timeout(
        g.dial_timeout,
        tokio::net::TcpStream::connect(&endpoint.address),
    )
    .await
    .map_err(|_| lost("dial timeout".into()))?
    .map_err(|e| lost(e.to_string()))?;
    let mut encoder = login_encoder(g, endpoint).await?;
    let mut hello = CLIENT_PREFACE.to_vec();
    hello.extend_from_slice(encoder.snapshot_request(1));
    sock.write_all(&hello)
        .await
        .map_err(|e| lost(e.to_string()))?;

    let mut out = std::fs::File::create(part).map_err(|e| io_error("cannot create", part, e))?;
    let progress = std::io::stderr().is_terminal();
    // The SHA-256 covers everything but the last HASH_BYTES of the stream,
    // which are the SHA-256 itself; hold back that many bytes.
    let mut sha = Sha256::new();
    let mut held: Vec<u8> = Vec::new();
    let mut received = 0u64;
    let mut decoder = FrameDecoder::for_responses();
    // Idle time allowed between two messages; the stream as a whole may
    // take as long as the member's state needs.
    let idle = g.command_timeout.max(Duration::from_secs(1));
    loop {
        while let Some(frame) = decoder.next_frame().map_err(|e| lost(e.to_string()))? {
            let view = decode_response(frame).map_err(|e| lost(e.to_string()))?;
            let body = match view.body {
                Err(e) => return Err(CtlError::new(ExitCode::Error, e.message.to_string())),
                Ok(ResponseBodyView::Snapshot(s)) => s,
                Ok(other) => return Err(lost(format!("unexpected {}", other.type_name()))),
            };
            let blob = body.blob().map(|b| b.bytes()).unwrap_or(&[]);
            out.write_all(blob)
                .map_err(|e| io_error("cannot write", part, e))?;
            received += blob.len() as u64;
            held.extend_from_slice(blob);
            if held.len() > HASH_BYTES {
                let cut = held.len() - HASH_BYTES;
                sha.update(&held[..cut]);
                held.drain(..cut);
            }
            if progress {
                let _ = write!(
                    io.stderr,
                    "\rreceived {} (about {} to go)    ",
                    humanize_bytes(received),
                    humanize_bytes(body.remaining_bytes())
                );
            }
            if body.remaining_bytes() == 0 {
                if progress {
                    let _ = writeln!(io.stderr);
                }
                if held.len() != HASH_BYTES || sha.finalize()[..] != held[..] {
                    return Err(lost(
                        "the stream's sha256 does not match its content".into(),
                    ));
                }
                out.sync_all()
                    .map_err(|e| io_error("cannot sync", part, e))?;
                return Ok(());
            }
        }
        let buf = decoder.read_buf();
        let n = tokio::time::timeout(idle, sock.read(buf))
            .await
            .map_err(|_| lost("timed out waiting for data".into()))?
            .map_err(|e| lost(e.to_string()))?;
        if n == 0 {
            return Err(lost(
                "connection closed before the end of the snapshot".into(),
            ));
        }
        decoder.commit(n).map_err(|e| lost(e.to_string()))?;
    }
}

/// What `snapshot status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// CRC-32 (IEEE) of the snapshot file, without the SHA-256.
    pub hash: u32,
    pub revision: i64,
    /// Every stored revision of every key (etcd counts its key bucket,
    /// which holds one entry per revision, the same way).
    pub total_key: u64,
    pub total_size: u64,
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Reads a backup (or a bare snapshot file) and summarises it.
pub fn status(path: &Path) -> Result<SnapshotStatus, CtlError> {
    let bad = |reason: &str| {
        CtlError::new(
            ExitCode::Error,
            format!("{} is not a valid cairn snapshot: {reason}", path.display()),
        )
    };
    let mut f = std::fs::File::open(path).map_err(|e| io_error("cannot open", path, e))?;
    let total_size = f
        .metadata()
        .map_err(|e| io_error("cannot stat", path, e))?
        .len();
    let mut read = |len: usize| -> Result<Vec<u8>, CtlError> {
        let mut b = vec![0u8; len];
        f.read_exact(&mut b)
            .map_err(|e| io_error("cannot read", path, e))?;
        Ok(b)
    };
    if total_size < (SNAP_HEADER_BYTES + SNAP_TRAILER_BYTES) as u64 {
        return Err(bad("the file is too short"));
    }
    let header = read(SNAP_HEADER_BYTES)?;
    if &header[..8] != SNAP_MAGIC {
        return Err(bad("no snapshot header"));
    }
    let mut crc = crc32fast_hasher();
    crc.update(&header);
    let meta_len = le_u32(&header[12..16]) as usize;
    let meta = read(meta_len)?;
    crc.update(&meta);
    if meta.len() < 9 {
        return Err(bad("metadata too short"));
    }
    let revision = le_u64(&meta[1..9]) as i64;
    let mut at = (SNAP_HEADER_BYTES + meta_len) as u64;
    let mut total_key = 0u64;
    loop {
        let head = read(8)?;
        if &head[..] == TRAILER_MAGIC {
            crc.update(&head);
            let rest = read(SNAP_TRAILER_BYTES - 8)?;
            crc.update(&rest);
            at += SNAP_TRAILER_BYTES as u64;
            break;
        }
        let len = le_u32(&head[..4]) as usize;
        if len > SNAP_CHUNK_BYTES_MAX || at + 8 + len as u64 > total_size {
            return Err(bad(&format!("bad chunk length {len} at offset {at}")));
        }
        let chunk = read(len)?;
        if crc32(&chunk) != le_u32(&head[4..8]) {
            return Err(bad(&format!("chunk checksum mismatch at offset {at}")));
        }
        crc.update(&head);
        crc.update(&chunk);
        total_key += count_versions(&chunk).ok_or_else(|| bad("undecodable chunk"))?;
        at += 8 + len as u64;
    }
    if at != total_size && at + HASH_BYTES as u64 != total_size {
        return Err(bad("bytes after the trailer"));
    }
    Ok(SnapshotStatus {
        hash: crc.finalize(),
        revision,
        total_key,
        total_size,
    })
}

fn crc32fast_hasher() -> Crc32 {
    Crc32 { state: !0 }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = crc32fast_hasher();
    c.update(bytes);
    c.finalize()
}

/// CRC-32 (IEEE), bitwise: `status` reads a file once, so speed is moot and
/// the client needs no table or extra crate for it.
struct Crc32 {
    state: u32,
}

impl Crc32 {
    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.state ^= u32::from(*b);
            for _ in 0..8 {
                let mask = (self.state & 1).wrapping_neg();
                self.state = (self.state >> 1) ^ (0xedb8_8320 & mask);
            }
        }
    }

    fn finalize(self) -> u32 {
        !self.state
    }
}

/// The number of stored versions in one MVCC chunk, or `None` if it does
/// not parse.
fn count_versions(chunk: &[u8]) -> Option<u64> {
    if chunk.len() < MVCC_CHUNK_HEADER_BYTES + MVCC_CHUNK_TRAILER_BYTES || &chunk[..4] != b"CMVS" {
        return None;
    }
    let records = le_u32(&chunk[32..36]);
    let body_len = le_u32(&chunk[36..40]) as usize;
    let body = chunk.get(MVCC_CHUNK_HEADER_BYTES..MVCC_CHUNK_HEADER_BYTES + body_len)?;
    let mut pos = 0usize;
    let mut total = 0u64;
    for _ in 0..records {
        let key_len = le_u32(body.get(pos..pos + 4)?) as usize;
        pos = pos.checked_add(4 + key_len)?;
        let versions = le_u32(body.get(pos..pos + 4)?);
        pos += 4;
        for _ in 0..versions {
            let fixed = body.get(pos..pos + MVCC_VERSION_FIXED_BYTES)?;
            let value_len = le_u32(&fixed[MVCC_VERSION_FIXED_BYTES - 4..]) as usize;
            pos = pos.checked_add(MVCC_VERSION_FIXED_BYTES + value_len)?;
            if pos > body.len() {
                return None;
            }
        }
        total += u64::from(versions);
    }
    Some(total)
}

fn print_status(
    out: &mut dyn Write,
    format: OutputFormat,
    s: &SnapshotStatus,
) -> Result<(), CtlError> {
    match format {
        OutputFormat::Simple => writeln!(
            out,
            "{:x}, {}, {}, {}",
            s.hash,
            s.revision,
            s.total_key,
            humanize_bytes(s.total_size)
        )?,
        OutputFormat::Json => writeln!(
            out,
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}",
            s.hash, s.revision, s.total_key, s.total_size
        )?,
        OutputFormat::Fields => {
            writeln!(out, "\"Hash\" : {}", s.hash)?;
            writeln!(out, "\"Revision\" : {}", s.revision)?;
            writeln!(out, "\"Keys\" : {}", s.total_key)?;
            writeln!(out, "\"Size\" : {}", s.total_size)?;
        }
        OutputFormat::Table => crate::ctl::print::table::render(
            out,
            &["hash", "revision", "total keys", "total size"],
            &[vec![
                format!("{:x}", s.hash),
                s.revision.to_string(),
                s.total_key.to_string(),
                humanize_bytes(s.total_size),
            ]],
        )?,
        OutputFormat::Protobuf => {
            return Err(CtlError::bad_feature(
                "printer \"protobuf\" is not supported by snapshot status",
            ))
        }
    }
    Ok(())
}

/// Runs `cairn snapshot restore` with the same flags.
fn restore(a: &RestoreArgs, io: &mut Io<'_>) -> Result<(), CtlError> {
    let cairn = std::env::var_os("CAIRNCTL_CAIRN_BINARY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|d| d.join("cairn")))
                .filter(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("cairn"));
    let mut cmd = std::process::Command::new(&cairn);
    cmd.args(["snapshot", "restore"]).arg(&a.file);
    if let Some(d) = &a.data_dir {
        cmd.args(["--data-dir", d]);
    }
    cmd.args(["--name", &a.name]);
    if let Some(c) = &a.initial_cluster {
        cmd.args(["--initial-cluster", c]);
    }
    cmd.args(["--initial-cluster-token", &a.initial_cluster_token]);
    cmd.args([
        "--initial-advertise-peer-urls",
        &a.initial_advertise_peer_urls,
    ]);
    if a.skip_hash_check {
        cmd.arg("--skip-hash-check");
    }
    let output = cmd.output().map_err(|e| {
        CtlError::new(
            ExitCode::Error,
            format!(
                "snapshot restore runs {}, which could not be started: {e}",
                cairn.display()
            ),
        )
    })?;
    io.stdout.write_all(&output.stdout)?;
    if output.status.success() {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Err(CtlError::new(ExitCode::Error, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_ieee_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn versions_are_counted_across_records() {
        let mut body = Vec::new();
        for (key, versions) in [(&b"a"[..], 2u32), (&b"bb"[..], 1)] {
            body.extend_from_slice(&(key.len() as u32).to_le_bytes());
            body.extend_from_slice(key);
            body.extend_from_slice(&versions.to_le_bytes());
            for _ in 0..versions {
                body.extend_from_slice(&[0u8; MVCC_VERSION_FIXED_BYTES - 4]);
                body.extend_from_slice(&3u32.to_le_bytes());
                body.extend_from_slice(b"val");
            }
        }
        let mut chunk = vec![0u8; MVCC_CHUNK_HEADER_BYTES];
        chunk[..4].copy_from_slice(b"CMVS");
        chunk[32..36].copy_from_slice(&2u32.to_le_bytes());
        chunk[36..40].copy_from_slice(&(body.len() as u32).to_le_bytes());
        chunk.extend_from_slice(&body);
        chunk.extend_from_slice(&[0u8; 4]);
        assert_eq!(count_versions(&chunk), Some(3));
        let cut = chunk.len() - 10;
        chunk[36..40].copy_from_slice(&((body.len() - 10) as u32).to_le_bytes());
        assert_eq!(count_versions(&chunk[..cut]), None);
    }
}
