//! FrameDecoder: frames come out whole however the bytes are split, and
//! memory stays bounded whatever a peer announces.

use cairn_wire::limits::{
    DECODER_GROWTH_BYTES_MAX, DECODER_RETAINED_BYTES_MAX, REQUEST_FRAME_BYTES_MAX_DEFAULT,
};
use cairn_wire::*;
use proptest::prelude::*;

/// Ten frames of assorted sizes, concatenated, and their boundaries.
fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut enc = Encoder::new();
    let mut frames = Vec::new();
    for i in 0..10u64 {
        let value = vec![i as u8; (i as usize * 997) % 5000];
        frames.push(
            enc.put_request(
                i,
                &PutParams {
                    key: format!("k{i}").as_bytes(),
                    value: &value,
                    ..Default::default()
                },
            )
            .to_vec(),
        );
    }
    (frames.concat(), frames)
}

fn drain(dec: &mut FrameDecoder, out: &mut Vec<Vec<u8>>) {
    while let Some(f) = dec.next_frame().expect("valid stream") {
        out.push(f.to_vec());
    }
}

#[test]
fn byte_by_byte() {
    let (bytes, frames) = stream();
    let mut dec = FrameDecoder::for_requests();
    let mut got = Vec::new();
    for b in &bytes {
        dec.feed(std::slice::from_ref(b)).unwrap();
        drain(&mut dec, &mut got);
    }
    assert_eq!(got, frames);
    assert_eq!(dec.buffered_bytes(), 0);
    assert_eq!(dec.finish(), Ok(()));
    for (i, f) in got.iter().enumerate() {
        assert_eq!(decode_request(f).unwrap().id, i as u64);
    }
}

#[test]
fn all_at_once() {
    let (bytes, frames) = stream();
    let mut dec = FrameDecoder::for_requests();
    dec.feed(&bytes).unwrap();
    let mut got = Vec::new();
    drain(&mut dec, &mut got);
    assert_eq!(got, frames);
}

proptest! {
    #[test]
    fn random_splits(cuts in proptest::collection::vec(0usize..40_000, 0..30)) {
        let (bytes, frames) = stream();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut dec = FrameDecoder::for_requests();
        let mut got = Vec::new();
        for w in cuts.windows(2) {
            dec.feed(&bytes[w[0]..w[1]]).unwrap();
            drain(&mut dec, &mut got);
        }
        prop_assert_eq!(got, frames);
        prop_assert_eq!(dec.finish(), Ok(()));
    }

    #[test]
    fn random_reads_into_read_buf(sizes in proptest::collection::vec(1usize..3000, 1..200)) {
        let (bytes, frames) = stream();
        let mut dec = FrameDecoder::for_requests();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut sizes = sizes.into_iter().cycle();
        while pos < bytes.len() {
            let buf = dec.read_buf();
            prop_assert!(!buf.is_empty());
            let n = sizes.next().unwrap().min(buf.len()).min(bytes.len() - pos);
            buf[..n].copy_from_slice(&bytes[pos..pos + n]);
            pos += n;
            dec.commit(n).unwrap();
            drain(&mut dec, &mut got);
        }
        prop_assert_eq!(got, frames);
    }
}

#[test]
fn oversized_length_is_rejected_before_allocation() {
    let mut dec = FrameDecoder::for_requests();
    // 4 GiB - 1 announced: refused on the four prefix bytes alone.
    let err = dec.feed(&u32::MAX.to_le_bytes()).unwrap_err();
    assert_eq!(
        err,
        WireError::FrameTooLarge {
            length: u32::MAX as usize,
            limit: REQUEST_FRAME_BYTES_MAX_DEFAULT
        }
    );
    assert!(err.is_fatal_to_connection());
    assert!(
        dec.capacity_bytes() < 64,
        "held {} bytes",
        dec.capacity_bytes()
    );
    // Poisoned: the stream is no longer aligned on frames.
    assert_eq!(dec.next_frame().unwrap_err(), err);
    assert_eq!(dec.feed(b"more").unwrap_err(), err);
}

#[test]
fn limit_is_exact_and_message_is_clear() {
    let limit = 1_572_964;
    let mut dec = FrameDecoder::new(limit);
    let err = dec.feed(&9_999_999u32.to_le_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "frame length 9999999 exceeds the limit of 1572964 bytes"
    );

    let mut dec = FrameDecoder::new(limit);
    dec.feed(&(limit as u32).to_le_bytes()).unwrap();
    let mut dec = FrameDecoder::new(limit);
    assert!(dec.feed(&(limit as u32 + 1).to_le_bytes()).is_err());
}

#[test]
fn an_oversized_frame_behind_a_good_one_is_caught_when_reached() {
    let (_, frames) = stream();
    let mut bytes = frames[0].clone();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut dec = FrameDecoder::for_requests();
    dec.feed(&bytes).unwrap();
    assert!(matches!(
        dec.next_frame(),
        Err(WireError::FrameTooLarge { .. })
    ));
}

#[test]
fn tiny_length_is_rejected() {
    let mut dec = FrameDecoder::for_requests();
    assert_eq!(
        dec.feed(&[3, 0, 0, 0]).unwrap_err(),
        WireError::FrameTooShort { length: 3 }
    );
}

#[test]
fn slow_sender_of_a_maximal_frame_costs_only_what_it_sent() {
    let mut dec = FrameDecoder::for_requests();
    let mut sent = (REQUEST_FRAME_BYTES_MAX_DEFAULT as u32)
        .to_le_bytes()
        .to_vec();
    sent.extend_from_slice(&[0; 100]);
    dec.feed(&sent).unwrap();
    assert!(dec.capacity_bytes() <= 2 * sent.len());
    // Through read_buf, the decoder hands out one growth step at a time.
    let step = dec.read_buf().len();
    assert!(step <= DECODER_GROWTH_BYTES_MAX, "offered {step} bytes");
    dec.commit(10).unwrap();
    assert!(dec.capacity_bytes() <= sent.len() + DECODER_GROWTH_BYTES_MAX + 64);
    assert!(dec.next_frame().unwrap().is_none());
}

#[test]
fn memory_is_given_back_after_a_large_frame() {
    let mut enc = Encoder::new();
    let big = vec![0u8; 1_000_000];
    let frame = enc
        .put_request(
            1,
            &PutParams {
                key: b"k",
                value: &big,
                ..Default::default()
            },
        )
        .to_vec();
    let small = enc
        .put_request(
            2,
            &PutParams {
                key: b"k",
                ..Default::default()
            },
        )
        .to_vec();
    let mut dec = FrameDecoder::for_requests();
    dec.feed(&frame).unwrap();
    assert_eq!(
        dec.next_frame().unwrap().map(<[u8]>::len),
        Some(frame.len())
    );
    dec.feed(&small).unwrap();
    assert!(
        dec.capacity_bytes() <= DECODER_RETAINED_BYTES_MAX,
        "kept {}",
        dec.capacity_bytes()
    );
    assert_eq!(dec.next_frame().unwrap(), Some(&small[..]));
}

#[test]
fn end_of_stream_mid_frame_is_reported() {
    let (bytes, _) = stream();
    let mut dec = FrameDecoder::for_requests();
    dec.feed(&bytes[..10]).unwrap();
    assert!(dec.next_frame().unwrap().is_none());
    let err = dec.finish().unwrap_err();
    assert_eq!(err, WireError::TruncatedFrame { buffered: 10 });
    assert_eq!(
        err.to_string(),
        "connection closed in the middle of a frame (10 bytes buffered)"
    );
}

#[test]
#[should_panic(expected = "complete frame is waiting")]
fn read_buf_insists_on_draining_first() {
    let (bytes, _) = stream();
    let mut dec = FrameDecoder::for_requests();
    dec.feed(&bytes).unwrap();
    let _ = dec.read_buf();
}
