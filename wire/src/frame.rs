//! Splitting a byte stream into frames.
//!
//! ```text
//! +----------------------+--------------------------------------+
//! | length: u32 LE       | one flatbuffer, `length` bytes       |
//! +----------------------+--------------------------------------+
//! ```
//!
//! A frame, as this crate passes it around, is the whole thing: prefix
//! included (the flatbuffer is aligned relative to the start of the frame,
//! as flatbuffers' size-prefixed `finish` lays it out).

use crate::error::WireError;
use crate::limits::{
    DECODER_GROWTH_BYTES_MAX, DECODER_RETAINED_BYTES_MAX, FRAME_BYTES_MAX_CEILING, FRAME_BYTES_MIN,
    FRAME_LENGTH_PREFIX_BYTES, PEER_FRAME_BYTES_MAX_DEFAULT, REQUEST_FRAME_BYTES_MAX_DEFAULT,
    RESPONSE_FRAME_BYTES_MAX_DEFAULT,
};

/// Reads the length prefix of a frame whose first four bytes are `prefix`.
pub(crate) fn read_length_prefix(prefix: &[u8]) -> usize {
    let bytes: [u8; FRAME_LENGTH_PREFIX_BYTES] = [prefix[0], prefix[1], prefix[2], prefix[3]];
    u32::from_le_bytes(bytes) as usize
}

/// Checks a frame length announced by a peer against the limits.
pub(crate) fn check_length(length: usize, frame_bytes_max: usize) -> Result<(), WireError> {
    if length > frame_bytes_max {
        return Err(WireError::FrameTooLarge {
            length,
            limit: frame_bytes_max,
        });
    }
    if length < FRAME_BYTES_MIN {
        return Err(WireError::FrameTooShort { length });
    }
    Ok(())
}

/// Incremental frame decoder for one connection: feed it what the socket
/// gave, take out complete frames.
///
/// Memory: the decoder never reserves space for a frame's announced length.
/// Its buffer grows with what the peer actually sent (one growth step of
/// [`DECODER_GROWTH_BYTES_MAX`] ahead, amortised doubling at most), the
/// announced length is checked against the limit as soon as its four bytes
/// have arrived, and after a large frame the buffer shrinks back to
/// [`DECODER_RETAINED_BYTES_MAX`] once it is drained.
///
/// After a framing error the decoder is poisoned: every later call returns
/// the same error, and the connection should be closed.
///
/// ```
/// use cairn_wire::{Encoder, FrameDecoder, PutParams};
/// let mut enc = Encoder::new();
/// let frame = enc.put_request(7, &PutParams { key: b"k", value: b"v", ..Default::default() }).to_vec();
///
/// let mut dec = FrameDecoder::for_requests();
/// // Bytes arrive in arbitrary pieces; frames come out whole.
/// dec.feed(&frame[..3]).unwrap();
/// assert!(dec.next_frame().unwrap().is_none());
/// dec.feed(&frame[3..]).unwrap();
/// assert_eq!(dec.next_frame().unwrap(), Some(&frame[..]));
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    /// `buf[start..filled]` is received, unconsumed data; `buf[filled..]` is
    /// initialised spare room handed out by [`read_buf`](Self::read_buf).
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    frame_bytes_max: usize,
    failed: Option<WireError>,
}

impl FrameDecoder {
    /// A decoder accepting frames of up to `frame_bytes_max` bytes (length
    /// prefix excluded).
    pub fn new(frame_bytes_max: usize) -> Self {
        assert!(
            (FRAME_BYTES_MIN..=FRAME_BYTES_MAX_CEILING).contains(&frame_bytes_max),
            "frame_bytes_max {frame_bytes_max} outside [{FRAME_BYTES_MIN}, {FRAME_BYTES_MAX_CEILING}]"
        );
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            filled: 0,
            frame_bytes_max,
            failed: None,
        }
    }

    /// A server's decoder for client requests, at the default request limit.
    pub fn for_requests() -> Self {
        Self::new(REQUEST_FRAME_BYTES_MAX_DEFAULT)
    }

    /// A client's decoder for server responses, at the default limit.
    pub fn for_responses() -> Self {
        Self::new(RESPONSE_FRAME_BYTES_MAX_DEFAULT)
    }

    /// A decoder for peer frames, at the default limit.
    pub fn for_peers() -> Self {
        Self::new(PEER_FRAME_BYTES_MAX_DEFAULT)
    }

    /// The largest frame (length prefix excluded) this decoder accepts.
    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.filled - self.start
    }

    /// Bytes of memory the decoder holds.
    pub fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends bytes received from the connection. Call [`next_frame`]
    /// until it returns `None` before feeding more, so the decoder holds at
    /// most one partial frame plus one read.
    ///
    /// [`next_frame`]: Self::next_frame
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.check_failed()?;
        self.compact();
        let end = self.filled + bytes.len();
        if end > self.buf.len() {
            self.buf.resize(end, 0);
        }
        self.buf[self.filled..end].copy_from_slice(bytes);
        self.filled = end;
        self.check_pending_header()
    }

    /// Spare room to read from the connection into, without a copy; report
    /// how much was read with [`commit`](Self::commit). Never empty.
    ///
    /// Panics if a complete frame is waiting: drain [`next_frame`] first,
    /// which bounds the memory a fast sender can make us hold.
    ///
    /// [`next_frame`]: Self::next_frame
    pub fn read_buf(&mut self) -> &mut [u8] {
        assert!(
            self.complete_frame_len().is_none(),
            "FrameDecoder::read_buf called while a complete frame is waiting"
        );
        self.compact();
        // Always one growth step: enough to take in many small pipelined
        // frames per read, and all a slow sender of a large frame can make
        // us hold beyond what it has actually sent.
        let spare = self.buf.len() - self.filled;
        if spare < DECODER_GROWTH_BYTES_MAX {
            self.buf.resize(self.filled + DECODER_GROWTH_BYTES_MAX, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Records that `n` bytes were read into [`read_buf`](Self::read_buf).
    pub fn commit(&mut self, n: usize) -> Result<(), WireError> {
        self.check_failed()?;
        assert!(
            self.filled + n <= self.buf.len(),
            "committed {n} bytes but only {} were handed out",
            self.buf.len() - self.filled
        );
        self.filled += n;
        self.check_pending_header()
    }

    /// The next complete frame, length prefix included, or `None` if more
    /// bytes are needed. The frame is not verified yet: pass it to
    /// [`decode_request`](crate::decode_request) and friends.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, WireError> {
        self.check_failed()?;
        self.check_pending_header()?;
        let Some(total) = self.complete_frame_len() else {
            return Ok(None);
        };
        let begin = self.start;
        self.start += total;
        // Check the next frame's header now, so an oversized announcement is
        // caught before the caller reads more.
        self.check_pending_header()?;
        Ok(Some(&self.buf[begin..begin + total]))
    }

    /// Call when the connection reached end of stream: an error if it
    /// stopped in the middle of a frame.
    pub fn finish(&self) -> Result<(), WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.buffered_bytes() {
            0 => Ok(()),
            buffered => Err(WireError::TruncatedFrame { buffered }),
        }
    }

    fn check_failed(&self) -> Result<(), WireError> {
        match &self.failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Length (prefix included) of the frame at `start`, if its prefix has
    /// arrived. Only called after the prefix passed `check_pending_header`.
    fn pending_length(&self) -> Option<usize> {
        if self.buffered_bytes() < FRAME_LENGTH_PREFIX_BYTES {
            return None;
        }
        Some(FRAME_LENGTH_PREFIX_BYTES + read_length_prefix(&self.buf[self.start..]))
    }

    fn complete_frame_len(&self) -> Option<usize> {
        self.pending_length()
            .filter(|total| *total <= self.buffered_bytes())
    }

    fn check_pending_header(&mut self) -> Result<(), WireError> {
        if self.buffered_bytes() < FRAME_LENGTH_PREFIX_BYTES {
            return Ok(());
        }
        let length = read_length_prefix(&self.buf[self.start..]);
        if let Err(err) = check_length(length, self.frame_bytes_max) {
            self.failed = Some(err.clone());
            return Err(err);
        }
        Ok(())
    }

    /// Moves unconsumed bytes to the front, and gives memory back after a
    /// large frame so idle connections stay small.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        if self.filled <= DECODER_RETAINED_BYTES_MAX && self.buf.len() > DECODER_RETAINED_BYTES_MAX
        {
            self.buf.truncate(DECODER_RETAINED_BYTES_MAX);
            self.buf.shrink_to(DECODER_RETAINED_BYTES_MAX);
        }
    }
}
