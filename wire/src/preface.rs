//! The 8-byte connection preface.
//!
//! ```text
//! byte   0     1    2    3    4    5    6        7
//!      +-----+----+----+----+----+----+--------+---------+
//!      | C3  | 'c'| 'a'| 'i'| 'r'| 'n'| channel| version |
//!      +-----+----+----+----+----+----+--------+---------+
//! channel: 'C' (0x43) client protocol, 'P' (0x50) peer protocol
//! ```
//!
//! The first byte, 0xC3, is not ASCII, so the preface can never be mistaken
//! for an HTTP/1 request line (a method token such as `GET `) or the HTTP/2
//! client preface (`PRI * HTTP/2.0`), nor for a TLS record (0x16): one byte
//! tells a listener which protocol it is talking to.

use crate::error::WireError;
use crate::limits::PREFACE_BYTES;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;

const MAGIC: [u8; 6] = [0xC3, b'c', b'a', b'i', b'r', b'n'];

/// Which protocol a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Client requests and responses (`Request`/`Response` frames).
    Client,
    /// Member-to-member traffic (`PeerFrame` frames).
    Peer,
}

impl Channel {
    const fn byte(self) -> u8 {
        match self {
            Channel::Client => b'C',
            Channel::Peer => b'P',
        }
    }

    fn from_byte(byte: u8) -> Option<Channel> {
        match byte {
            b'C' => Some(Channel::Client),
            b'P' => Some(Channel::Peer),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Channel::Client => "client",
            Channel::Peer => "peer",
        }
    }
}

/// The preface a connection on `channel` starts with.
pub const fn preface(channel: Channel) -> [u8; PREFACE_BYTES] {
    [
        MAGIC[0],
        MAGIC[1],
        MAGIC[2],
        MAGIC[3],
        MAGIC[4],
        MAGIC[5],
        channel.byte(),
        PROTOCOL_VERSION,
    ]
}

/// The preface a client sends first.
pub const CLIENT_PREFACE: [u8; PREFACE_BYTES] = preface(Channel::Client);

/// The preface a member sends first on a peer connection.
pub const PEER_PREFACE: [u8; PREFACE_BYTES] = preface(Channel::Peer);

/// True if `first_bytes` (any number, even fewer than 8) could be the start of
/// a cairn preface. A listener can call this on its first read to route a
/// connection; [`check_preface`] then gives the precise verdict.
pub fn looks_like_cairn(first_bytes: &[u8]) -> bool {
    let n = first_bytes.len().min(MAGIC.len());
    first_bytes[..n] == MAGIC[..n]
}

/// Checks the first 8 bytes of a connection that must carry `expected`.
///
/// ```
/// use cairn_wire::{check_preface, Channel, CLIENT_PREFACE};
/// assert!(check_preface(&CLIENT_PREFACE, Channel::Client).is_ok());
/// let err = check_preface(b"PRI * HT", Channel::Client).unwrap_err();
/// assert!(err.to_string().starts_with("bad preface"));
/// ```
pub fn check_preface(bytes: &[u8; PREFACE_BYTES], expected: Channel) -> Result<(), WireError> {
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(WireError::BadPreface { found: *bytes });
    }
    let Some(found) = Channel::from_byte(bytes[6]) else {
        return Err(WireError::BadPreface { found: *bytes });
    };
    if found != expected {
        return Err(WireError::WrongChannel {
            expected: expected.name(),
            found: found.name(),
        });
    }
    if bytes[7] != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion {
            version: bytes[7],
            supported: PROTOCOL_VERSION,
        });
    }
    Ok(())
}
