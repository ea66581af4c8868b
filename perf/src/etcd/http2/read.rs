//! Frames from the server: cut out of the bytes read, checked, header
//! blocks decoded, and handed to the connection's state.
//!
//! The reader owns the HPACK decoder: every header block is decoded, even
//! one for a stream already forgotten, so that the decoder's dynamic table
//! stays in step with the server's encoder; except a block seen lately
//! that leaves the table as it is (`recent.rs`).

use bytes::{Buf, BytesMut};
use cairn_wire::hpack::{DecodeError, Decoder};

use super::conn::Conn;
use super::frame::{self, Head, Reason, HEADER_BYTES};
use super::recent::RecentBlocks;
use crate::etcd::grpc::{transport, Fields};
use crate::limits::{HTTP2_CONTROL_OUT_BYTES_MAX, HTTP2_HEADER_BLOCK_BYTES_MAX};
use crate::target::OpError;

/// A header block whose CONTINUATION frames are still to come.
struct Partial {
    stream: u32,
    end_stream: bool,
    block: Vec<u8>,
}

pub(super) struct FrameReader {
    decoder: Decoder,
    partial: Option<Partial>,
    /// The fields of the block being decoded; kept to reuse.
    fields: Fields,
    recent: RecentBlocks,
}

impl FrameReader {
    pub(super) fn new() -> FrameReader {
        FrameReader {
            decoder: Decoder::new(frame::DEFAULT_HEADER_TABLE_BYTES),
            partial: None,
            fields: Fields::default(),
            recent: RecentBlocks::default(),
        }
    }

    /// Handles every whole frame at the start of `buf` and takes it off;
    /// a frame cut short stays for the next read. An error is the
    /// connection's: the server broke the protocol.
    pub(super) fn read_frames(
        &mut self,
        buf: &mut BytesMut,
        conn: &mut Conn,
    ) -> Result<(), OpError> {
        while buf.len() >= HEADER_BYTES {
            let head = Head::parse(buf);
            // The client advertises no SETTINGS_MAX_FRAME_SIZE, so the
            // default is the most the server may send; it also bounds
            // what is buffered for a frame cut short.
            if head.len > frame::DEFAULT_MAX_FRAME {
                return Err(protocol(format!(
                    "a frame of {} bytes, over the {} allowed",
                    head.len,
                    frame::DEFAULT_MAX_FRAME
                )));
            }
            if buf.len() < HEADER_BYTES + head.len {
                break;
            }
            if self.partial.is_some() && head.kind != frame::CONTINUATION {
                return Err(protocol("a header block interrupted".to_string()));
            }
            if head.kind == frame::DATA {
                // The answer's bytes are handed on without a copy.
                let payload = buf
                    .split_to(HEADER_BYTES + head.len)
                    .freeze()
                    .slice(HEADER_BYTES..);
                let (start, end) = frame::content(&head, &payload)
                    .ok_or_else(|| protocol("DATA padding longer than the frame".to_string()))?;
                if head.stream == 0 {
                    return Err(protocol("DATA on stream 0".to_string()));
                }
                conn.on_data(
                    head.stream,
                    payload.slice(start..end),
                    head.len,
                    head.has(frame::END_STREAM),
                );
            } else {
                let payload = &buf[HEADER_BYTES..HEADER_BYTES + head.len];
                self.frame(head, payload, conn)?;
                buf.advance(HEADER_BYTES + head.len);
            }
            if conn.control_bytes() > HTTP2_CONTROL_OUT_BYTES_MAX {
                return Err(transport(
                    "the server sends frames to acknowledge faster than it reads".to_string(),
                ));
            }
        }
        Ok(())
    }

    fn frame(&mut self, head: Head, payload: &[u8], conn: &mut Conn) -> Result<(), OpError> {
        let on_stream = head.stream != 0;
        match head.kind {
            frame::HEADERS => {
                let (start, end) = frame::content(&head, payload)
                    .ok_or_else(|| protocol("HEADERS padding longer than the frame".to_string()))?;
                if !on_stream {
                    return Err(protocol("HEADERS on stream 0".to_string()));
                }
                let block = &payload[start..end];
                let end_stream = head.has(frame::END_STREAM);
                if head.has(frame::END_HEADERS) {
                    self.header_block(head.stream, end_stream, block, conn)?;
                } else {
                    self.partial = Some(Partial {
                        stream: head.stream,
                        end_stream,
                        block: block.to_vec(),
                    });
                }
            }
            frame::CONTINUATION => {
                let Some(partial) = &mut self.partial else {
                    return Err(protocol("CONTINUATION without HEADERS".to_string()));
                };
                if partial.stream != head.stream {
                    return Err(protocol("CONTINUATION on another stream".to_string()));
                }
                if partial.block.len() + payload.len() > HTTP2_HEADER_BLOCK_BYTES_MAX {
                    return Err(protocol(format!(
                        "a header block over {HTTP2_HEADER_BLOCK_BYTES_MAX} bytes"
                    )));
                }
                partial.block.extend_from_slice(payload);
                if head.has(frame::END_HEADERS) {
                    if let Some(partial) = self.partial.take() {
                        self.header_block(
                            partial.stream,
                            partial.end_stream,
                            &partial.block,
                            conn,
                        )?;
                    }
                }
            }
            frame::RST_STREAM => {
                let code = four_bytes(payload)
                    .filter(|_| on_stream)
                    .ok_or_else(|| protocol("RST_STREAM not of 4 bytes on a stream".to_string()))?;
                conn.on_reset(head.stream, Reason(code));
            }
            frame::SETTINGS => {
                if on_stream || payload.len() % frame::SETTING_BYTES != 0 {
                    return Err(protocol("malformed SETTINGS".to_string()));
                }
                if !head.has(frame::ACK) {
                    conn.on_settings(payload)?;
                }
            }
            frame::PING => {
                if on_stream || payload.len() != frame::PING_BYTES {
                    return Err(protocol("malformed PING".to_string()));
                }
                if !head.has(frame::ACK) {
                    conn.on_ping(payload);
                }
            }
            frame::GOAWAY => {
                let (Some(last), Some(code)) = (
                    payload.get(..4).and_then(four_bytes),
                    payload.get(4..8).and_then(four_bytes),
                ) else {
                    return Err(protocol("GOAWAY shorter than 8 bytes".to_string()));
                };
                if on_stream {
                    return Err(protocol("GOAWAY on a stream".to_string()));
                }
                conn.on_goaway(last & frame::STREAM_ID_MAX, Reason(code));
            }
            frame::WINDOW_UPDATE => {
                let increment = four_bytes(payload)
                    .ok_or_else(|| protocol("WINDOW_UPDATE not of 4 bytes".to_string()))?;
                conn.on_window_update(head.stream, increment & frame::STREAM_ID_MAX)?;
            }
            frame::PUSH_PROMISE => {
                return Err(protocol("PUSH_PROMISE, with push disabled".to_string()));
            }
            // PRIORITY and frame types this client does not know are
            // ignored (RFC 9113 §5.5).
            _ => {}
        }
        Ok(())
    }

    fn header_block(
        &mut self,
        stream: u32,
        end_stream: bool,
        block: &[u8],
        conn: &mut Conn,
    ) -> Result<(), OpError> {
        if let Some(fields) = self.recent.get(block) {
            conn.on_headers(stream, fields, end_stream);
            return Ok(());
        }
        let fields = &mut self.fields;
        fields.clear();
        let decoded = self
            .decoder
            .decode(block, HTTP2_HEADER_BLOCK_BYTES_MAX, |name, value| {
                fields.record(name, value)
            });
        match decoded {
            Ok(()) => {
                self.recent.decoded(block, Some(&self.fields));
                conn.on_headers(stream, &self.fields, end_stream);
            }
            Err(DecodeError::HeaderListTooLarge) => {
                self.recent.decoded(block, None);
                let error = transport(format!(
                    "response headers over {HTTP2_HEADER_BLOCK_BYTES_MAX} bytes"
                ));
                conn.on_bad_headers(stream, error, end_stream);
            }
            Err(DecodeError::Compression(why)) => {
                return Err(transport(format!("COMPRESSION_ERROR: {why}")));
            }
        }
        Ok(())
    }
}

fn four_bytes(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn protocol(why: String) -> OpError {
    transport(format!("{}: {why}", Reason::PROTOCOL_ERROR))
}
