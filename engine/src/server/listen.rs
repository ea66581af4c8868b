//! Listening sockets, and closing every socket of a stopping server.
//!
//! Every executor binds its own listener on each client and peer address,
//! with `SO_REUSEPORT` so that they can share it and the kernel spreads
//! connections between them. Two consequences shape this module.
//!
//! **Stopping.** An accept in flight on io_uring holds its own reference to
//! the listening socket, so closing the descriptor does not make the socket
//! stop listening: it goes on completing handshakes until the ring lets go
//! of the request, which at exit happens only when the kernel tears the
//! ring down, after the process is gone. A restarted member could then share
//! its port with that dead listener. So when the server stops, each executor
//! calls [`shut_all`] first: `shutdown(2)` on its listeners takes them out of
//! the listening state at once (new connections are refused and the pending
//! accept fails), and on its client connections it ends them (the peer sees
//! end of stream and the connection's pending reads and writes complete).
//! Only the server's own sockets are shut: each executor keeps its own
//! register, so several servers in one process (tests) do not touch each
//! other's.
//!
//! **Start-up.** `SO_REUSEPORT` also lets a second server started by the
//! same user bind a port that a running one serves, where etcd fails with
//! "address already in use". [`check_free`] binds every address once without
//! `SO_REUSEPORT` before any executor binds: that bind fails while anything
//! listens there. The listeners set `SO_REUSEADDR`, so the connections a
//! stopped server leaves in `TIME_WAIT` do not fail the check for a minute
//! (a socket of the running server, or the previous one's listener, still
//! does). A SIGKILLed process cannot shut anything, and its listener
//! lingers a few milliseconds after it is gone, so the check retries a
//! taken address for a moment before it fails.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

use super::ServerError;
use crate::limits;

/// The sockets one executor closes when the server stops.
#[derive(Default)]
struct Register {
    next_id: u64,
    open: HashMap<u64, RawFd>,
    stopping: bool,
}

thread_local! {
    static REGISTER: RefCell<Register> = RefCell::new(Register::default());
}

/// A socket in this executor's register; leaving the register on drop.
/// Hold it no longer than the socket is open, since [`shut_all`] acts on
/// the descriptor number.
pub struct Registration {
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        REGISTER.with(|r| r.borrow_mut().open.remove(&self.id));
    }
}

/// Put a socket of this executor in the register; one registered after
/// [`shut_all`] is shut at once.
pub fn register(fd: RawFd) -> Registration {
    REGISTER.with(|r| {
        let mut r = r.borrow_mut();
        if r.stopping {
            shut(fd);
        }
        r.next_id += 1;
        let id = r.next_id;
        r.open.insert(id, fd);
        Registration { id }
    })
}

/// Shut every listener and client connection of this executor: the
/// server is stopping.
pub fn shut_all() {
    REGISTER.with(|r| {
        let mut r = r.borrow_mut();
        r.stopping = true;
        for fd in r.open.values() {
            shut(*fd);
        }
    });
}

/// Whether [`shut_all`] has run on this executor.
fn stopping() -> bool {
    REGISTER.with(|r| r.borrow().stopping)
}

fn shut(fd: RawFd) {
    // ENOTCONN (the peer has gone already) is as good as success.
    let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
}

/// One executor's listening socket on one address.
pub struct Listener {
    // Declared first so it is dropped first: the socket leaves the register
    // before its descriptor is closed.
    _registration: Registration,
    inner: TcpListener,
}

impl Listener {
    /// Bind `addr` with `SO_REUSEADDR` and `SO_REUSEPORT` and listen.
    pub fn bind(addr: SocketAddr) -> Result<Listener, ServerError> {
        let fail = |op: &'static str| move |source| ServerError::Listen { addr, op, source };
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(fail("socket"))?;
        socket.set_reuse_address(true).map_err(fail("setsockopt"))?;
        socket.set_reuse_port(true).map_err(fail("setsockopt"))?;
        socket.bind(&addr.into()).map_err(fail("bind"))?;
        socket
            .listen(limits::LISTEN_BACKLOG)
            .map_err(fail("listen"))?;
        let fd = socket.into_raw_fd();
        let registration = register(fd);
        // SAFETY: `fd` is a listening TCP socket that nothing else owns:
        // it was just created above and `into_raw_fd` gave up ownership.
        let inner = unsafe { TcpListener::from_raw_fd(fd) };
        Ok(Listener {
            _registration: registration,
            inner,
        })
    }

    /// The next connection, or `None` once the server is stopping.
    pub async fn accept(&self) -> Option<glommio::Result<TcpStream, ()>> {
        if stopping() {
            return None;
        }
        let accepted = self.inner.accept().await;
        if stopping() {
            // A connection accepted in the same instant is shut with the
            // rest: dropping it closes it.
            return None;
        }
        Some(accepted)
    }
}

/// Fail unless every address is free: bound by nothing that listens, in
/// this process or another. Runs before any executor binds. An address
/// still taken is retried for `LISTEN_BUSY_WAIT_MS` (the listener of a
/// process just killed lingers for a moment).
pub fn check_free(addrs: &[SocketAddr]) -> Result<(), ServerError> {
    let deadline = Instant::now() + Duration::from_millis(limits::LISTEN_BUSY_WAIT_MS);
    for (i, &addr) in addrs.iter().enumerate() {
        if addr.port() == 0 {
            // The kernel picks a free port.
            continue;
        }
        // The same address for two listeners (say a client and a peer URL):
        // etcd's second bind fails, and so does this.
        if addrs[..i].contains(&addr) {
            return Err(ServerError::Listen {
                addr,
                op: "bind",
                // EADDRINUSE, so the message reads as the OS says it.
                source: std::io::Error::from_raw_os_error(98),
            });
        }
        loop {
            match bind_exclusive(addr) {
                Err(ServerError::Listen { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrInUse
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(limits::LISTEN_BUSY_RETRY_MS));
                }
                other => {
                    other?;
                    break;
                }
            }
        }
    }
    Ok(())
}

fn bind_exclusive(addr: SocketAddr) -> Result<(), ServerError> {
    let fail = |op: &'static str| move |source| ServerError::Listen { addr, op, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(fail("socket"))?;
    socket.set_reuse_address(true).map_err(fail("setsockopt"))?;
    // Without SO_REUSEPORT, this bind fails while any socket listens on the
    // address (SO_REUSEADDR lets it past connections in TIME_WAIT only).
    // The socket is closed again at once, without listening.
    socket.bind(&addr.into()).map_err(fail("bind"))?;
    Ok(())
}

/// An OS error as Go prints it (`address already in use`), so start-up
/// failures read like etcd's.
pub fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_like_go() {
        let e = std::io::Error::from_raw_os_error(98);
        assert_eq!(os_error_text(&e), "address already in use");
        let e = std::io::Error::other("Custom text");
        assert_eq!(os_error_text(&e), "custom text");
    }

    #[test]
    fn a_listening_port_is_not_free_and_a_closed_one_is() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let err = check_free(&[addr]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("listen tcp {addr}: bind: address already in use")
        );
        drop(held);
        check_free(&[addr]).unwrap();
        let err = check_free(&[addr, addr]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("listen tcp {addr}: bind: address already in use"),
            "one address for two listeners"
        );
    }
}
