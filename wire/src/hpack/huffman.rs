//! Huffman decoding of HPACK string literals (RFC 7541 §5.2, Appendix B).
//!
//! The decoder is a state machine that consumes four bits at a time. Its
//! states are the 256 internal nodes of the code tree; each transition says
//! where the four bits lead, whether they completed a symbol, and whether the
//! string may end there. Every code is at least five bits long, so four bits
//! complete at most one symbol. The transition table (12 KiB) is computed at
//! compile time from [`CODES`], so a wrong table cannot build.

/// The code of every symbol 0..=256 (256 is EOS) as (bits, bit length),
/// most significant bit first: RFC 7541 Appendix B.
#[rustfmt::skip]
pub(crate) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28),
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24),
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28),
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28),
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10), (0xf9, 8),
    (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), (0x2, 5),
    (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7),
    (0xfb, 8), (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
    (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7),
    (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7),
    (0x6d, 7), (0x6e, 7), (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), (0x7ffd, 15),
    (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5),
    (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7),
    (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), (0x79, 7), (0x7a, 7), (0x7b, 7),
    (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20),
    (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22),
    (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), (0x7fffdd, 23),
    (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22),
    (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23),
    (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23),
    (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22),
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22),
    (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23), (0x1fffe0, 21),
    (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23),
    (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23),
    (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20),
    (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26),
    (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27), (0x3ffffe5, 26),
    (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26),
    (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28),
    (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20),
    (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22),
    (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24),
    (0x3ffffea, 26), (0x7ffff4, 23), (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26),
    (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27),
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27),
    (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
];

/// The symbol that may only appear as padding, never inside a string.
const EOS: usize = 256;

/// The transition completed a symbol; `Step::sym` holds it. It must be 1:
/// `decode` adds it to the output length.
const EMIT: u8 = 1;
/// The transition decoded EOS: the string is malformed.
const FAIL: u8 = 2;
/// The string may end after this transition: the bits since the last symbol
/// are at most seven ones, which is valid padding.
const ACCEPT: u8 = 4;

/// One transition of the state machine.
#[derive(Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

/// Internal nodes of the code tree: a full binary tree with 257 leaves.
const NODES: usize = 256;
/// Marks a child that is a leaf; the low bits are its symbol.
const LEAF: u16 = 0x8000;

static STEPS: [[Step; 16]; NODES] = build_steps();

const fn build_steps() -> [[Step; 16]; NODES] {
    // Build the tree. Node 0 is the root and never anyone's child, so a
    // child of 0 means "not yet created".
    let mut children = [[0u16; 2]; NODES];
    let mut depth = [0u8; NODES];
    let mut all_ones = [false; NODES];
    all_ones[0] = true;
    let mut nodes = 1;
    let mut sym = 0;
    while sym < CODES.len() {
        let (code, len) = CODES[sym];
        // `decode` sizes its output on this.
        assert!(len >= 5, "a code shorter than five bits");
        let mut node = 0;
        let mut bit_index = len as u32;
        while bit_index > 1 {
            bit_index -= 1;
            let bit = ((code >> bit_index) & 1) as usize;
            let child = children[node][bit];
            assert!(child & LEAF == 0, "codes are not prefix-free");
            if child == 0 {
                assert!(nodes < NODES, "too many internal nodes");
                children[node][bit] = nodes as u16;
                depth[nodes] = depth[node] + 1;
                all_ones[nodes] = all_ones[node] && bit == 1;
                node = nodes;
                nodes += 1;
            } else {
                node = child as usize;
            }
        }
        let bit = (code & 1) as usize;
        assert!(children[node][bit] == 0, "codes are not prefix-free");
        children[node][bit] = LEAF | sym as u16;
        sym += 1;
    }
    assert!(nodes == NODES, "the code tree is not full");

    // Walk four bits from every node.
    let mut steps = [[Step {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; NODES];
    let mut state = 0;
    while state < NODES {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut step = Step {
                next: 0,
                sym: 0,
                flags: 0,
            };
            let mut bit_index = 4;
            while bit_index > 0 {
                bit_index -= 1;
                let child = children[node][(nibble >> bit_index) & 1];
                if child & LEAF == 0 {
                    node = child as usize;
                    continue;
                }
                let leaf = (child & !LEAF) as usize;
                if leaf == EOS {
                    step.flags = FAIL;
                    break;
                }
                assert!(step.flags & EMIT == 0, "two symbols in four bits");
                step.flags |= EMIT;
                step.sym = leaf as u8;
                node = 0;
            }
            if step.flags & FAIL == 0 {
                step.next = node as u8;
                if all_ones[node] && depth[node] <= 7 {
                    step.flags |= ACCEPT;
                }
            }
            steps[state][nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    steps
}

/// Decodes the Huffman-coded `src` and appends the result to `dst`.
///
/// Fails if `src` contains EOS, or ends in more than seven bits of padding,
/// padding that is not all ones, or part of a symbol. On failure `dst` is
/// left as it was.
pub(crate) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), &'static str> {
    let start = dst.len();
    // Every code is at least five bits, so at most 8/5 of a symbol per
    // input byte; one byte more for the store below that does not count.
    dst.resize(start + src.len() / 5 * 8 + 9, 0);
    let out = &mut dst[start..];
    let mut len = 0;
    let mut state = 0usize;
    let mut accept = true;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = STEPS[state][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                dst.truncate(start);
                return Err("hpack: EOS inside a Huffman-coded string");
            }
            // Stored whether or not a symbol was completed, and counted only
            // if one was: no branch on the data.
            out[len] = step.sym;
            len += usize::from(step.flags & EMIT);
            state = usize::from(step.next);
            accept = step.flags & ACCEPT != 0;
        }
    }
    if !accept {
        dst.truncate(start);
        return Err("hpack: invalid padding in a Huffman-coded string");
    }
    dst.truncate(start + len);
    Ok(())
}

/// Huffman-codes `src` and appends it to `dst`, padded with ones.
/// The server writes its strings raw; tests use this to make input.
#[cfg(test)]
pub(crate) fn encode(src: &[u8], dst: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &byte in src {
        let (code, len) = CODES[usize::from(byte)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            dst.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
}
