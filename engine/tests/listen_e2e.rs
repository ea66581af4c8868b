//! The listening ports of the real `cairn` binary: a stopped server leaves
//! nothing that accepts connections, so a new one can take its ports at
//! once; a second server on a port that a running one serves fails at
//! start-up as etcd does, instead of sharing the port.

mod common;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Client, Server};

/// How long after the stopped process has been reaped the test keeps
/// checking that nothing accepts on its ports.
const REFUSED_CHECK_MS: u64 = 500;

fn assert_refused(addr: SocketAddr, what: &str) {
    let until = Instant::now() + Duration::from_millis(REFUSED_CHECK_MS);
    while Instant::now() < until {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => panic!("connecting to the stopped server's {what} port {addr}: {e}"),
            Ok(_) => panic!("the stopped server's {what} port {addr} accepted a connection"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads until the server closes the connection; fails if it stays open.
fn assert_closed_by_server(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

#[test]
fn a_stopped_server_accepts_nothing_and_a_new_one_takes_its_ports() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let peer_addr: SocketAddr = format!("127.0.0.1:{}", server.peer_port).parse().unwrap();

    // Connections in every state at the stop: a native client that has
    // written, one that has not sent its preface, and a peer connection.
    let mut native = Client::connect(server.addr).unwrap();
    native.put(b"k", b"before").unwrap();
    let mut silent = TcpStream::connect(server.addr).unwrap();
    let _peer = TcpStream::connect(peer_addr).unwrap();

    server.stop();
    assert_refused(server.addr, "client");
    assert_refused(peer_addr, "peer");
    assert_closed_by_server(&mut native.stream);
    assert_closed_by_server(&mut silent);

    // The same ports, while the old connections are still open on the
    // client side: the new server starts and serves.
    server.spawn();
    let mut c = Client::connect(server.addr).unwrap();
    assert_eq!(c.get_key(b"k").as_deref(), Some(&b"before"[..]));
    c.put(b"k", b"after").unwrap();
    server.stop();
}

/// Starts a second `cairn` with the given ports and returns its exit
/// status and standard error.
fn second_server(dir: &std::path::Path, client_port: u16, peer_port: u16) -> (bool, String) {
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["--name", "second", "--no-pin", "--cores", "2"])
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("run cairn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_second_server_on_a_taken_port_fails_like_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path(), &[]);
    let port = first.addr.port();
    let second_dir = tempfile::tempdir().unwrap();

    for (client_port, peer_port, taken) in [
        (port, free_port(), port),
        (free_port(), first.peer_port, first.peer_port),
    ] {
        let data = second_dir.path().join(format!("d{taken}"));
        let (ok, stderr) = second_server(&data, client_port, peer_port);
        assert!(
            !ok,
            "a second cairn started on taken port {taken}:\n{stderr}"
        );
        let expected = format!("listen tcp 127.0.0.1:{taken}: bind: address already in use");
        assert!(
            stderr.contains(&expected),
            "expected {expected:?} in:\n{stderr}"
        );
        assert!(
            !data.exists(),
            "the refused server created its data dir {}",
            data.display()
        );
    }

    // The first server was not disturbed.
    let mut c = Client::connect(first.addr).unwrap();
    c.put(b"still", b"here").unwrap();
    assert_eq!(c.get_key(b"still").as_deref(), Some(&b"here"[..]));
}
