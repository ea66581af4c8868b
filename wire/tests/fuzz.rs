//! Hostile bytes never panic the decoders: random frames, truncations and
//! bit flips of real frames are either rejected or decode to views that can
//! be read in full.
//!
//! Cases per property: 1000 by default; set CAIRN_WIRE_FUZZ_CASES (e.g.
//! 100000) for a long run.

mod fuzz_targets;

use cairn_wire::*;
use fuzz_targets::{decode_all_ways, seed_frames as corpus};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CAIRN_WIRE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Rewrites the length prefix so the frame gets past the length check and
/// into the verifier.
fn with_prefix(mut body: Vec<u8>) -> Vec<u8> {
    let len = (body.len() as u32).to_le_bytes();
    body.splice(0..0, len);
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all_ways(&with_prefix(body.clone()));
        // And as a raw stream through a decoder, prefix and all.
        let mut dec = FrameDecoder::for_requests();
        if dec.feed(&body).is_ok() {
            while let Ok(Some(frame)) = dec.next_frame() {
                decode_all_ways(frame);
            }
        }
    }

    #[test]
    fn bit_flips(which in 0usize..64, flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..8)) {
        let corpus = corpus();
        let mut frame = corpus[which % corpus.len()].clone();
        for (pos, bit) in flips {
            // Leave the prefix alone so the flipped frame reaches the verifier.
            let at = 4 + pos % (frame.len() - 4);
            frame[at] ^= 1 << bit;
        }
        decode_all_ways(&frame);
    }

    #[test]
    fn truncations(which in 0usize..64, keep in any::<usize>()) {
        let corpus = corpus();
        let frame = &corpus[which % corpus.len()];
        let keep = keep % (frame.len() - 4);
        decode_all_ways(&with_prefix(frame[4..4 + keep].to_vec()));
        // Truncated with the original prefix: a length mismatch, never a read.
        prop_assert!(decode_request(&frame[..4 + keep]).is_err());
    }

    #[test]
    fn random_overwrites(which in 0usize..64, at in any::<usize>(), junk in proptest::collection::vec(any::<u8>(), 1..16)) {
        let corpus = corpus();
        let mut frame = corpus[which % corpus.len()].clone();
        let start = 4 + at % (frame.len() - 4);
        for (i, b) in junk.into_iter().enumerate() {
            if let Some(slot) = frame.get_mut(start + i) {
                *slot = b;
            }
        }
        decode_all_ways(&frame);
    }
}

#[test]
fn the_corpus_itself_decodes() {
    for frame in corpus() {
        let ok = decode_request(&frame).is_ok()
            || decode_response(&frame).is_ok()
            || decode_peer_frame(&frame).is_ok();
        assert!(ok, "a frame we built does not decode");
    }
}
