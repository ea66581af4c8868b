//! The connection preface tells cairn from HTTP and from the wrong channel.

use cairn_wire::*;

#[test]
fn own_prefaces_pass() {
    assert_eq!(check_preface(&CLIENT_PREFACE, Channel::Client), Ok(()));
    assert_eq!(check_preface(&PEER_PREFACE, Channel::Peer), Ok(()));
    assert_eq!(preface(Channel::Client), CLIENT_PREFACE);
    assert_eq!(CLIENT_PREFACE.len(), limits::PREFACE_BYTES);
}

#[test]
fn http_is_not_cairn() {
    for first in [
        &b"PRI * HTTP/2.0\r\n"[..8],
        b"GET / HT",
        b"POST /v3",
        b"\x16\x03\x01\x02\x00\x01\x00\x01",
    ] {
        let bytes: [u8; 8] = first.try_into().unwrap();
        let err = check_preface(&bytes, Channel::Client).unwrap_err();
        assert!(matches!(err, WireError::BadPreface { .. }), "{err}");
        assert!(err.to_string().starts_with("bad preface"), "{err}");
        assert!(err.is_fatal_to_connection());
        assert!(!looks_like_cairn(first));
    }
}

#[test]
fn a_partial_preface_can_be_routed() {
    for n in 0..=8 {
        assert!(looks_like_cairn(&CLIENT_PREFACE[..n]));
    }
}

#[test]
fn wrong_channel_is_named() {
    let err = check_preface(&PEER_PREFACE, Channel::Client).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad preface: a peer connection reached a client port"
    );
    let mut unknown_channel = CLIENT_PREFACE;
    unknown_channel[6] = b'X';
    assert!(matches!(
        check_preface(&unknown_channel, Channel::Client),
        Err(WireError::BadPreface { .. })
    ));
}

#[test]
fn other_versions_are_refused() {
    let mut newer = CLIENT_PREFACE;
    newer[7] = PROTOCOL_VERSION + 1;
    let err = check_preface(&newer, Channel::Client).unwrap_err();
    assert_eq!(
        err,
        WireError::UnsupportedVersion {
            version: PROTOCOL_VERSION + 1,
            supported: PROTOCOL_VERSION
        }
    );
    assert_eq!(
        err.to_string(),
        "unsupported protocol version 2 (this build speaks version 1)"
    );
}
