//! Which protocol a client connection speaks, from its first bytes.
//!
//! The client port serves cairn's native protocol, etcd's gRPC API (HTTP/2)
//! and plain HTTP/1 (health, version, metrics). The connection reader takes
//! the native preface's bytes as it always has; only when they are not the
//! native preface does it look further, so the native path costs nothing
//! extra. The bytes already taken are replayed in front of the socket for
//! the protocol that gets it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};

/// A protocol other than the native one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The HTTP/2 connection preface (`PRI * HTTP/2.0`): gRPC.
    Http2,
    /// An HTTP/1 request line.
    Http1,
}

/// Recognise the first bytes of a connection that are not the native
/// preface; `None` means close it.
pub fn sniff(first: &[u8]) -> Option<Protocol> {
    const HTTP2: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const METHODS: [&[u8]; 6] = [
        b"GET ",
        b"HEAD ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
    ];
    let n = first.len().min(HTTP2.len());
    if n > 0 && first[..n] == HTTP2[..n] {
        return Some(Protocol::Http2);
    }
    if METHODS.iter().any(|m| {
        let k = first.len().min(m.len());
        k > 0 && first[..k] == m[..k]
    }) {
        return Some(Protocol::Http1);
    }
    None
}

/// A stream with bytes already read from it put back in front.
pub struct Replay<S> {
    head: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Replay<S> {
    pub fn new(head: &[u8], inner: S) -> Replay<S> {
        Replay {
            head: head.to_vec(),
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pos < this.head.len() {
            let n = buf.len().min(this.head.len() - this.pos);
            buf[..n].copy_from_slice(&this.head[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::io::AsyncReadExt;

    #[test]
    fn first_bytes_choose_the_protocol() {
        assert_eq!(sniff(b"PRI * HT"), Some(Protocol::Http2));
        assert_eq!(sniff(b"GET /hea"), Some(Protocol::Http1));
        assert_eq!(sniff(b"HEAD /ve"), Some(Protocol::Http1));
        assert_eq!(sniff(b"POST /v3"), Some(Protocol::Http1));
        assert_eq!(sniff(b"\x16\x03\x01\x02\x00\x01\x00\x01"), None);
        assert_eq!(sniff(b"GETX /ab"), None);
    }

    #[test]
    fn replay_gives_the_taken_bytes_first() {
        let mut r = Replay::new(b"ab", futures_lite::io::Cursor::new(b"cd".to_vec()));
        let mut s = String::new();
        futures_lite::future::block_on(r.read_to_string(&mut s)).unwrap();
        assert_eq!(s, "abcd");
    }
}
