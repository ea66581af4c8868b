//! A TCP proxy in front of one member's peer port, to cut, or slow down,
//! chosen links between members at run time.
//!
//! A member sends Raft traffic to a peer only over connections it dialled
//! itself (the peer URL in `--initial-cluster`), and it opens every such
//! connection with the peer preface and a Hello frame naming the sender.
//! So a proxy in front of member `j`'s peer port carries every link
//! `i -> j`, and it learns `i` from the Hello. That gives per-link control
//! with one proxy per member:
//!
//! - cutting `i -> j` = rule `Drop` for sender `i` at `j`'s proxy;
//! - isolating `k` = `Drop` for every sender at `k`'s proxy, and `Drop` for
//!   sender `k` at every other proxy.
//!
//! `Drop` behaves like a partition that loses packets: the sender's
//! connection stays open and whatever it writes vanishes. When a link's rule
//! changes, its open connections are closed, so no frame is ever cut in two
//! and delivered half; the sender redials and the new rule applies.
//! `Delay` holds every chunk for `ms` plus a random jitter before passing it
//! on, in order. `Lossy` drops a share of the sender's frames, each whole
//! (a lossy network as Raft sees it: messages go missing, none arrives cut).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cairn_wire::{decode_peer_frame, FrameDecoder, PeerMessageView};

/// What happens to the bytes of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Swallow everything (both directions of the connection).
    Drop,
    /// Hold each chunk `ms` + uniform `0..=jitter_ms` before passing it on.
    Delay {
        ms: u64,
        jitter_ms: u64,
    },
    /// Drop about `per_mille` in 1000 of the sender's frames after its
    /// Hello, each whole; pass the rest in order.
    Lossy {
        per_mille: u64,
    },
}

/// How often blocked reads wake up to notice rule changes and shutdown.
const POLL_MS: u64 = 50;
/// Bytes read per chunk from either side.
const CHUNK_BYTES: usize = 64 * 1024;
/// A sender that does not send its Hello within this time is cut off.
const HELLO_TIMEOUT_MS: u64 = 2_000;

#[derive(Default)]
struct Rules {
    /// Per sender member id; senders not listed get `default`.
    by_from: HashMap<u64, Mode>,
    default: Option<Mode>,
    /// Bumped on every change, so open connections notice and close.
    epoch: u64,
}

impl Rules {
    fn mode(&self, from: u64) -> Mode {
        self.by_from
            .get(&from)
            .copied()
            .or(self.default)
            .unwrap_or(Mode::Pass)
    }
}

struct Shared {
    target: SocketAddr,
    rules: Mutex<Rules>,
    stop: AtomicBool,
}

/// One proxy: listens on `port`, forwards to `target`.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            target,
            rules: Mutex::new(Rules::default()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let acceptor = thread::spawn(move || accept_loop(listener, s));
        Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Set the rule for traffic from member `from` (a member id).
    pub fn set_from(&self, from: u64, mode: Mode) {
        let mut r = self.shared.rules.lock().unwrap();
        r.by_from.insert(from, mode);
        r.epoch += 1;
    }

    /// Set the rule for every sender without a rule of its own.
    pub fn set_default(&self, mode: Mode) {
        let mut r = self.shared.rules.lock().unwrap();
        r.default = Some(mode);
        r.epoch += 1;
    }

    /// Everything passes again.
    pub fn heal(&self) {
        let mut r = self.shared.rules.lock().unwrap();
        r.by_from.clear();
        r.default = None;
        r.epoch += 1;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let s = shared.clone();
                thread::spawn(move || serve(stream, s));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Read the preface and the Hello; returns the bytes read and the sender.
fn read_hello(stream: &mut TcpStream) -> Option<(Vec<u8>, u64)> {
    stream
        .set_read_timeout(Some(Duration::from_millis(HELLO_TIMEOUT_MS)))
        .ok()?;
    let mut preface = [0u8; cairn_wire::limits::PREFACE_BYTES];
    stream.read_exact(&mut preface).ok()?;
    let mut dec = FrameDecoder::for_peers();
    let mut seen = preface.to_vec();
    loop {
        if let Some(frame) = dec.next_frame().ok()? {
            let from = match decode_peer_frame(frame).ok()?.message {
                PeerMessageView::Hello(h) => h.from(),
                _ => return None,
            };
            return Some((seen, from));
        }
        let buf = dec.read_buf();
        let n = stream.read(buf).ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
        dec.commit(n).ok()?;
    }
}

fn serve(mut inbound: TcpStream, shared: Arc<Shared>) {
    let Some((head, from)) = read_hello(&mut inbound) else {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    let (mode, epoch) = {
        let r = shared.rules.lock().unwrap();
        (r.mode(from), r.epoch)
    };
    let _ = inbound.set_read_timeout(Some(Duration::from_millis(POLL_MS)));
    let current = |s: &Shared| {
        let r = s.rules.lock().unwrap();
        (!s.stop.load(Ordering::SeqCst) && r.epoch == epoch).then(|| r.mode(from))
    };
    if mode == Mode::Drop {
        // Swallow until the rule changes, then hang up.
        let mut buf = vec![0u8; CHUNK_BYTES];
        while current(&shared).is_some() {
            match inbound.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
        }
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut outbound) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(1))
    else {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    let _ = outbound.set_nodelay(true);
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_read_timeout(Some(Duration::from_millis(POLL_MS)));
    if outbound.write_all(&head).is_err() {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    }
    let (Ok(in2), Ok(out2)) = (inbound.try_clone(), outbound.try_clone()) else {
        return;
    };
    let s2 = shared.clone();
    let back = thread::spawn(move || pump(out2, in2, &s2, from, epoch, false));
    pump(inbound, outbound, &shared, from, epoch, true);
    let _ = back.join();
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Copy `src` to `dst` under the link's rule until either side closes or
/// the rule changes; then close both.
/// `forward`: `src` is the sender's side (its frames may be dropped).
fn pump(
    mut src: TcpStream,
    mut dst: TcpStream,
    shared: &Shared,
    from: u64,
    epoch: u64,
    forward: bool,
) {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut jitter = from ^ epoch ^ 0x2545_f491_4f6c_dd1d;
    // Frames of the sender, for `Lossy` (after the Hello, read already).
    let mut frames = FrameDecoder::for_peers();
    loop {
        let mode = {
            let r = shared.rules.lock().unwrap();
            if shared.stop.load(Ordering::SeqCst) || r.epoch != epoch {
                break;
            }
            r.mode(from)
        };
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        };
        if let Mode::Delay { ms, jitter_ms } = mode {
            jitter ^= jitter << 13;
            jitter ^= jitter >> 7;
            jitter ^= jitter << 17;
            let extra = if jitter_ms == 0 {
                0
            } else {
                jitter % (jitter_ms + 1)
            };
            thread::sleep(Duration::from_millis(ms + extra));
        }
        if let (Mode::Lossy { per_mille }, true) = (mode, forward) {
            let mut out = Vec::new();
            let mut rest = &buf[..n];
            let mut broken = false;
            while !rest.is_empty() && !broken {
                let room = frames.read_buf();
                let k = room.len().min(rest.len());
                room[..k].copy_from_slice(&rest[..k]);
                rest = &rest[k..];
                broken = frames.commit(k).is_err();
                loop {
                    match frames.next_frame() {
                        Ok(Some(frame)) => {
                            jitter ^= jitter << 13;
                            jitter ^= jitter >> 7;
                            jitter ^= jitter << 17;
                            if jitter % 1000 >= per_mille {
                                out.extend_from_slice(frame);
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            broken = true;
                            break;
                        }
                    }
                }
            }
            if broken || dst.write_all(&out).is_err() {
                break;
            }
            continue;
        }
        if dst.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = src.shutdown(Shutdown::Both);
    let _ = dst.shutdown(Shutdown::Both);
}
