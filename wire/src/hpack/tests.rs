//! Tests of the header compression decoder and encoder.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

type Fields = Vec<(String, String)>;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn fields(list: &[(&str, &str)]) -> Fields {
    list.iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `block` emits under `max_list_size`, and the result.
fn decode_limited(d: &mut Decoder, block: &[u8], max: usize) -> (Fields, Result<(), DecodeError>) {
    let mut out = Vec::new();
    let result = d.decode(block, max, |n, v| out.push((text(n), text(v))));
    (out, result)
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Fields, DecodeError> {
    let (out, result) = decode_limited(d, block, usize::MAX);
    result.map(|()| out)
}

/// The dynamic table, newest first.
fn table(d: &Decoder) -> Fields {
    (0..d.table.entries.len())
        .map(|i| {
            let (n, v) = d.table.get(STATIC_TABLE.len() + 1 + i).unwrap();
            (text(n), text(v))
        })
        .collect()
}

/// Appends a string literal, Huffman-coded if `huffman`.
fn put_string(bytes: &[u8], huffman: bool, out: &mut Vec<u8>) {
    if huffman {
        let mut coded = Vec::new();
        huffman::encode(bytes, &mut coded);
        write_int(0x80, 7, coded.len(), out);
        out.extend_from_slice(&coded);
    } else {
        write_string(bytes, out);
    }
}

/// A literal with incremental indexing and a new name.
fn put_indexed_literal(name: &[u8], value: &[u8], huffman: bool, out: &mut Vec<u8>) {
    out.push(0x40);
    put_string(name, huffman, out);
    put_string(value, huffman, out);
}

/// Concatenates codes given as (bits, length); the total must be whole bytes.
fn pack(codes: &[(u32, u8)]) -> Vec<u8> {
    let total: u32 = codes.iter().map(|&(_, len)| u32::from(len)).sum();
    assert_eq!(total % 8, 0, "pack needs whole bytes");
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for &(code, len) in codes {
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn huffman_decode(src: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    huffman::decode(src, &mut out).map(|()| out)
}

// ---- RFC 7541 Appendix C ----

#[test]
fn c1_integers() {
    for (bytes, prefix, value) in [(&[0x0a][..], 5, 10), (&[0x1f, 0x9a, 0x0a], 5, 1337)] {
        let mut pos = 0;
        assert_eq!(read_int(bytes, &mut pos, prefix), Ok(value));
        assert_eq!(pos, bytes.len());
        let mut out = Vec::new();
        write_int(0, prefix, value, &mut out);
        assert_eq!(out, bytes);
    }
}

#[test]
fn c2_single_fields() {
    let cases = [
        (
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            ("custom-key", "custom-header"),
            55,
        ),
        (
            "040c 2f73 616d 706c 652f 7061 7468",
            (":path", "/sample/path"),
            0,
        ),
        (
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            ("password", "secret"),
            0,
        ),
        ("82", (":method", "GET"), 0),
    ];
    for (block, field, size) in cases {
        let mut d = Decoder::new(4096);
        assert_eq!(decode(&mut d, &hex(block)), Ok(fields(&[field])), "{block}");
        assert_eq!(d.table.size_bytes, size, "{block}");
        let expected = if size == 0 { vec![] } else { fields(&[field]) };
        assert_eq!(table(&d), expected, "{block}");
    }
}

/// C.3 and C.4: three requests on one connection.
fn check_requests(blocks: [&str; 3]) {
    let request = [(":method", "GET"), (":scheme", "http"), (":path", "/")];
    let authority = (":authority", "www.example.com");
    let cache = ("cache-control", "no-cache");
    let custom = ("custom-key", "custom-value");
    let third = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
    ];
    let expected = [
        ([&request[..], &[authority]].concat(), vec![authority], 57),
        (
            [&request[..], &[authority, cache]].concat(),
            vec![cache, authority],
            110,
        ),
        (
            [&third[..], &[authority, custom]].concat(),
            vec![custom, cache, authority],
            164,
        ),
    ];
    let mut d = Decoder::new(4096);
    for (block, (emitted, dynamic, size)) in blocks.iter().zip(expected) {
        assert_eq!(decode(&mut d, &hex(block)), Ok(fields(&emitted)), "{block}");
        assert_eq!(table(&d), fields(&dynamic), "{block}");
        assert_eq!(d.table.size_bytes, size, "{block}");
    }
}

#[test]
fn c3_requests_raw() {
    check_requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn c4_requests_huffman() {
    check_requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

/// C.5 and C.6: three responses with a 256-byte table, which evicts.
fn check_responses(blocks: [&str; 3]) {
    let status = |code| (":status", code);
    let private = ("cache-control", "private");
    let date1 = ("date", "Mon, 21 Oct 2013 20:13:21 GMT");
    let date2 = ("date", "Mon, 21 Oct 2013 20:13:22 GMT");
    let location = ("location", "https://www.example.com");
    let gzip = ("content-encoding", "gzip");
    let cookie = (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    );
    let expected = [
        (
            vec![status("302"), private, date1, location],
            vec![location, date1, private, status("302")],
            222,
        ),
        (
            vec![status("307"), private, date1, location],
            vec![status("307"), location, date1, private],
            222,
        ),
        (
            vec![status("200"), private, date2, location, gzip, cookie],
            vec![cookie, gzip, date2],
            215,
        ),
    ];
    let mut d = Decoder::new(256);
    for (block, (emitted, dynamic, size)) in blocks.iter().zip(expected) {
        assert_eq!(decode(&mut d, &hex(block)), Ok(fields(&emitted)), "{block}");
        assert_eq!(table(&d), fields(&dynamic), "{block}");
        assert_eq!(d.table.size_bytes, size, "{block}");
    }
}

#[test]
fn c5_responses_raw() {
    check_responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
}

const C6_1: &str = "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0
    82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3";
const C6_2: &str = "4883 640e ffc1 c0bf";

#[test]
fn c6_responses_huffman() {
    check_responses([
        C6_1,
        C6_2,
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

// ---- Huffman ----

#[test]
fn huffman_every_symbol() {
    for byte in 0..=255u8 {
        let mut coded = Vec::new();
        huffman::encode(&[byte], &mut coded);
        assert_eq!(huffman_decode(&coded), Ok(vec![byte]), "symbol {byte}");
    }
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let mut coded = Vec::new();
    huffman::encode(&all, &mut coded);
    assert_eq!(huffman_decode(&coded), Ok(all));
    assert_eq!(huffman_decode(&[]), Ok(vec![]));
    // Five-bit codes only: the most output per input byte.
    for n in 0..50 {
        let short = b"0aeio".repeat(n);
        let mut coded = Vec::new();
        huffman::encode(&short, &mut coded);
        assert_eq!(coded.len(), (short.len() * 5).div_ceil(8));
        assert_eq!(huffman_decode(&coded), Ok(short));
    }
}

#[test]
fn huffman_encoding_matches_rfc() {
    let mut coded = Vec::new();
    huffman::encode(b"www.example.com", &mut coded);
    assert_eq!(coded, hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"));
}

#[test]
fn huffman_padding_and_eos() {
    let a = huffman::CODES[usize::from(b'a')];
    let eos = huffman::CODES[256];
    assert_eq!(a, (0b00011, 5));
    assert_eq!(huffman_decode(&pack(&[a, (0b111, 3)])), Ok(b"a".to_vec()));
    // Padding must be ones.
    assert!(huffman_decode(&pack(&[a, (0b000, 3)])).is_err());
    assert!(huffman_decode(&pack(&[a, (0b110, 3)])).is_err());
    // Padding must be shorter than a byte.
    assert!(huffman_decode(&pack(&[a, (0x7ff, 11)])).is_err());
    assert!(huffman_decode(&[0xff]).is_err());
    // Seven bits of padding is the most allowed.
    let (sym, &code) = huffman::CODES
        .iter()
        .enumerate()
        .find(|(_, c)| c.1 % 8 == 1)
        .unwrap();
    assert_eq!(
        huffman_decode(&pack(&[code, (0x7f, 7)])),
        Ok(vec![sym as u8])
    );
    // EOS may not appear, alone or after a symbol.
    assert!(huffman_decode(&pack(&[eos, (0b11, 2)])).is_err());
    assert!(huffman_decode(&pack(&[a, eos, (0b11111, 5)])).is_err());
    // Decoding appends, and on failure leaves the output as it was.
    let mut dst = b"keep".to_vec();
    assert!(huffman::decode(&pack(&[a, (0b000, 3)]), &mut dst).is_err());
    assert_eq!(dst, b"keep");
    assert!(huffman::decode(&pack(&[a, (0b111, 3)]), &mut dst).is_ok());
    assert_eq!(dst, b"keepa");
    // The decoder reports it as a compression error.
    let mut block = vec![0x40, 0x01, b'x', 0x81];
    block.extend(pack(&[a, (0b000, 3)]));
    let result = decode(&mut Decoder::new(4096), &block);
    assert!(
        matches!(result, Err(DecodeError::Compression(_))),
        "{result:?}"
    );
}

// ---- decoding errors ----

#[test]
fn bad_indexes() {
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, &[0x80]), Err(INDEX_ZERO));
    assert_eq!(decode(&mut d, &[0xbe]), Err(INDEX_UNKNOWN));
    // A literal whose name index is past the table.
    assert_eq!(decode(&mut d, &[0x7e, 0x01, b'v']), Err(INDEX_UNKNOWN));
    assert_eq!(
        decode(&mut d, &[0x0f, 0x2f, 0x01, b'v']),
        Err(INDEX_UNKNOWN)
    );
    assert_eq!(
        decode(&mut d, &[0xbd]),
        Ok(fields(&[("www-authenticate", "")]))
    );
    let mut block = Vec::new();
    put_indexed_literal(b"k", b"v", false, &mut block);
    decode(&mut d, &block).unwrap();
    assert_eq!(decode(&mut d, &[0xbe]), Ok(fields(&[("k", "v")])));
    assert_eq!(decode(&mut d, &[0xbf]), Err(INDEX_UNKNOWN));
}

#[test]
fn bad_integers() {
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, &[0xff]), Err(INT_TRUNCATED));
    assert_eq!(decode(&mut d, &[0xff, 0x80]), Err(INT_TRUNCATED));
    // Six bytes after the prefix, even if they add nothing.
    assert_eq!(
        decode(&mut d, &[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        Err(INT_OVERFLOW)
    );
    // 127 + 2^31: too large, though only five bytes follow.
    assert_eq!(
        decode(&mut d, &[0xff, 0x80, 0x80, 0x80, 0x80, 0x08]),
        Err(INT_OVERFLOW)
    );
    // A large value that fits is read, and then refused as an index.
    let mut block = Vec::new();
    write_int(0x80, 7, INT_VALUE_MAX as usize, &mut block);
    assert_eq!(decode(&mut d, &block), Err(INDEX_UNKNOWN));
    let mut pos = 0;
    assert_eq!(read_int(&block, &mut pos, 7), Ok(INT_VALUE_MAX as usize));
}

#[test]
fn truncated_strings() {
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &[0x40, 0x05, b'a', b'b']),
        Err(STRING_TRUNCATED)
    );
    assert_eq!(
        decode(&mut d, &[0x40, 0x01, b'a', 0x02, b'b']),
        Err(STRING_TRUNCATED)
    );
    assert_eq!(decode(&mut d, &[0x40, 0x01, b'a']), Err(INT_TRUNCATED));
    assert_eq!(decode(&mut d, &[0x04, 0x85, 0x63]), Err(STRING_TRUNCATED));
    assert_eq!(decode(&mut d, &[0x04]), Err(INT_TRUNCATED));
    // A length near the integer limit is refused without reading it.
    let mut block = vec![0x04];
    write_int(0, 7, INT_VALUE_MAX as usize, &mut block);
    assert_eq!(decode(&mut d, &block), Err(STRING_TRUNCATED));
}

#[test]
fn table_size_updates() {
    let mut d = Decoder::new(4096);
    // 4096 is allowed; 4097 is not.
    assert_eq!(
        decode(&mut d, &hex("3fe1 1f82")),
        Ok(fields(&[(":method", "GET")]))
    );
    assert_eq!(
        decode(&mut d, &hex("3fe2 1f82")),
        Err(SIZE_UPDATE_TOO_LARGE)
    );
    // Only before the first field; two in a row are fine.
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, &hex("8220")), Err(SIZE_UPDATE_LATE));
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &hex("20 3fe1 01 82")),
        Ok(fields(&[(":method", "GET")]))
    );
    assert_eq!(d.table.size_bytes_max, 256);

    // Shrinking evicts the oldest entries.
    let mut d = Decoder::new(4096);
    check_requests_on(&mut d);
    assert_eq!(decode(&mut d, &hex("3f4f")), Ok(vec![])); // 110
    let kept = [
        ("custom-key", "custom-value"),
        ("cache-control", "no-cache"),
    ];
    assert_eq!(table(&d), fields(&kept));
    assert_eq!(d.table.size_bytes, 107);
    assert_eq!(decode(&mut d, &hex("20")), Ok(vec![]));
    assert_eq!(table(&d), vec![]);
    assert_eq!(d.table.size_bytes, 0);
    // With a zero-size table nothing is added, but the field is emitted.
    let mut block = Vec::new();
    put_indexed_literal(b"k", b"v", false, &mut block);
    assert_eq!(decode(&mut d, &block), Ok(fields(&[("k", "v")])));
    assert_eq!(table(&d), vec![]);
    // Growing again lets entries in.
    let mut grow = hex("3fe1 1f");
    grow.extend_from_slice(&block);
    assert_eq!(decode(&mut d, &grow), Ok(fields(&[("k", "v")])));
    assert_eq!(table(&d), fields(&[("k", "v")]));
}

fn check_requests_on(d: &mut Decoder) {
    for block in [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ] {
        decode(d, &hex(block)).unwrap();
    }
    assert_eq!(d.table.size_bytes, 164);
}

#[test]
fn entry_larger_than_table_empties_it() {
    let mut d = Decoder::new(100);
    let mut block = Vec::new();
    put_indexed_literal(b"a", &[b'v'; 10], false, &mut block);
    decode(&mut d, &block).unwrap();
    assert_eq!(d.table.size_bytes, 43);
    let mut block = Vec::new();
    put_indexed_literal(b"b", &[b'w'; 68], true, &mut block); // 101 bytes
    let big = ("b".to_owned(), "w".repeat(68));
    assert_eq!(decode(&mut d, &block), Ok(vec![big]));
    assert_eq!(table(&d), vec![]);
    assert_eq!(d.table.size_bytes, 0);
    assert_eq!(decode(&mut d, &[0xbe]), Err(INDEX_UNKNOWN));
}

#[test]
fn name_of_an_evicted_entry() {
    // The new entry's name comes from the entry its insertion evicts.
    let mut d = Decoder::new(100);
    let mut block = Vec::new();
    put_indexed_literal(b"name-x", &[b'v'; 40], false, &mut block); // 78 bytes
    decode(&mut d, &block).unwrap();
    let mut block = vec![0x7e]; // 0x40 | 62
    put_string(&[b'w'; 30], false, &mut block); // 68 bytes
    let field = ("name-x".to_owned(), "w".repeat(30));
    assert_eq!(decode(&mut d, &block), Ok(vec![field.clone()]));
    assert_eq!(table(&d), vec![field]);
    assert_eq!(d.table.size_bytes, 68);
}

#[test]
fn header_list_too_large() {
    let mut block = vec![0x82]; // :method GET, 42 bytes
    put_indexed_literal(b"x-big", &[b'v'; 100], true, &mut block); // 137 bytes
    block.push(0x84); // :path /, 38 bytes
    let mut d = Decoder::new(4096);
    let (emitted, result) = decode_limited(&mut d, &block, 100);
    assert_eq!(result, Err(DecodeError::HeaderListTooLarge));
    // Emitting stops at the field that crosses the limit, and does not resume.
    assert_eq!(emitted, fields(&[(":method", "GET")]));
    // The table still took the entry, so the next block can refer to it.
    let big = ("x-big".to_owned(), "v".repeat(100));
    assert_eq!(decode(&mut d, &[0xbe]), Ok(vec![big]));

    // A list exactly at the limit is fine.
    let mut d = Decoder::new(4096);
    assert_eq!(decode_limited(&mut d, &[0x82], 42).1, Ok(()));
    assert_eq!(
        decode_limited(&mut d, &[0x82], 41).1,
        Err(DecodeError::HeaderListTooLarge)
    );
    // A malformed block is a compression error even when also too large.
    let mut bad = block.clone();
    bad.push(0x80);
    assert_eq!(decode_limited(&mut d, &bad, 100).1, Err(INDEX_ZERO));
}

#[test]
fn scratch_is_released_after_a_huge_block() {
    let mut d = Decoder::new(4096);
    let mut block = vec![0x04];
    put_string(&vec![b'x'; 100_000], true, &mut block);
    assert_eq!(decode(&mut d, &block).unwrap()[0].1.len(), 100_000);
    assert!(d.value_scratch.capacity() <= SCRATCH_BYTES_KEEP_MAX);
}

// ---- encoding ----

#[test]
fn encode_status_round_trip() {
    for (code, index) in [
        (200, 8),
        (204, 9),
        (206, 10),
        (304, 11),
        (400, 12),
        (404, 13),
        (500, 14),
    ] {
        let mut out = Vec::new();
        encode_status(code, &mut out);
        assert_eq!(out, [0x80 | index]);
        let status = (":status".to_owned(), code.to_string());
        assert_eq!(decode(&mut Decoder::new(4096), &out), Ok(vec![status]));
    }
    for code in [0, 7, 100, 418, 431, 503, 65535] {
        let mut out = Vec::new();
        encode_status(code, &mut out);
        let digits = code.to_string();
        assert_eq!(out[..2], [0x08, digits.len() as u8]);
        assert_eq!(out[2..], *digits.as_bytes());
        let status = (":status".to_owned(), digits);
        assert_eq!(decode(&mut Decoder::new(4096), &out), Ok(vec![status]));
    }
}

#[test]
fn encode_field_bytes() {
    let mut out = Vec::new();
    encode_table_size_zero(&mut out);
    encode_field(b"content-type", b"application/grpc", &mut out);
    encode_field(b"grpc-status", b"0", &mut out);
    let mut expected = hex("20 0f10 10");
    expected.extend_from_slice(b"application/grpc");
    expected.extend_from_slice(b"\x00\x0bgrpc-status\x01\x30");
    assert_eq!(out, expected);
    let mut d = Decoder::new(4096);
    let got = decode(&mut d, &out);
    assert_eq!(
        got,
        Ok(fields(&[
            ("content-type", "application/grpc"),
            ("grpc-status", "0")
        ]))
    );
    assert_eq!(d.table.size_bytes_max, 0);
    // A 200-byte value needs a two-byte length: 127 + 73.
    let mut out = Vec::new();
    encode_field(b":authority", &[b'a'; 200], &mut out);
    assert_eq!(out[..3], [0x01, 0x7f, 0x49]);
    assert_eq!(decode(&mut d, &out).unwrap()[0].1.len(), 200);
    assert_eq!(table(&d), vec![]);
}

/// The dynamic table as RFC 7541 §4 describes it, newest first.
struct Model {
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    size_max: usize,
}

impl Model {
    fn size(&self) -> usize {
        self.entries
            .iter()
            .map(|(n, v)| n.len() + v.len() + 32)
            .sum()
    }

    fn shrink(&mut self) {
        while self.size() > self.size_max {
            self.entries.pop_back();
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        self.entries.push_front((name.to_vec(), value.to_vec()));
        self.shrink();
    }
}

/// One header block in the model test.
#[derive(Debug, Clone)]
enum Op {
    Insert {
        name: Vec<u8>,
        value: Vec<u8>,
        huffman: bool,
    },
    Resize(usize),
    Lookup(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(any::<u8>(), 0..24), prop::collection::vec(any::<u8>(), 0..120), any::<bool>())
            .prop_map(|(name, value, huffman)| Op::Insert { name, value, huffman }),
        1 => (0usize..=300).prop_map(Op::Resize),
        3 => (0usize..12).prop_map(Op::Lookup),
    ]
}

fn field_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let name = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (0..STATIC_TABLE.len()).prop_map(|i| STATIC_TABLE[i].0.to_vec()),
    ];
    (name, prop::collection::vec(any::<u8>(), 0..300))
}

proptest! {
    #[test]
    fn int_round_trip(value in 0..=INT_VALUE_MAX, prefix in 4u32..=7, high in any::<u8>()) {
        let first = high & !((1u8 << prefix) - 1);
        let mut out = Vec::new();
        write_int(first, prefix, value as usize, &mut out);
        prop_assert_eq!(out[0] & !((1u8 << prefix) - 1), first);
        let mut pos = 0;
        prop_assert_eq!(read_int(&out, &mut pos, prefix), Ok(value as usize));
        prop_assert_eq!(pos, out.len());
    }

    #[test]
    fn encode_field_round_trip(list in prop::collection::vec(field_strategy(), 0..12), status in any::<u16>()) {
        let mut out = Vec::new();
        encode_table_size_zero(&mut out);
        encode_status(status, &mut out);
        for (name, value) in &list {
            encode_field(name, value, &mut out);
        }
        let mut d = Decoder::new(4096);
        let mut got = Vec::new();
        d.decode(&out, usize::MAX, |n, v| got.push((n.to_vec(), v.to_vec()))).unwrap();
        let mut expected = vec![(b":status".to_vec(), status.to_string().into_bytes())];
        expected.extend(list);
        prop_assert_eq!(got, expected);
        prop_assert_eq!(d.table.entries.len(), 0);
    }

    /// The dynamic table against the model, through insertions, evictions,
    /// resizes and buffer compaction.
    #[test]
    fn dynamic_table_matches_model(ops in prop::collection::vec(op(), 1..200)) {
        let mut d = Decoder::new(300);
        let mut model = Model { entries: VecDeque::new(), size_max: 300 };
        for op in ops {
            let mut block = Vec::new();
            let mut got = Vec::new();
            match &op {
                Op::Insert { name, value, huffman } => {
                    put_indexed_literal(name, value, *huffman, &mut block);
                    model.insert(name, value);
                }
                Op::Resize(size) => {
                    write_int(0x20, 5, *size, &mut block);
                    model.size_max = *size;
                    model.shrink();
                }
                Op::Lookup(age) => write_int(0x80, 7, STATIC_TABLE.len() + 1 + age, &mut block),
            }
            let result = d.decode(&block, usize::MAX, |n, v| got.push((n.to_vec(), v.to_vec())));
            match &op {
                Op::Insert { name, value, .. } => {
                    prop_assert_eq!(result, Ok(()));
                    prop_assert_eq!(&got, &vec![(name.clone(), value.clone())]);
                }
                Op::Resize(_) => prop_assert_eq!(result, Ok(())),
                Op::Lookup(age) => match model.entries.get(*age) {
                    Some(entry) => prop_assert_eq!(&got, &vec![entry.clone()]),
                    None => prop_assert_eq!(result, Err(INDEX_UNKNOWN)),
                },
            }
            let mut entries = Vec::new();
            for i in 0..d.table.entries.len() {
                let (n, v) = d.table.get(STATIC_TABLE.len() + 1 + i).unwrap();
                entries.push((n.to_vec(), v.to_vec()));
            }
            prop_assert_eq!(entries, model.entries.iter().cloned().collect::<Vec<_>>());
            prop_assert_eq!(d.table.size_bytes, model.size());
            prop_assert!(d.table.bytes.len() <= 600);
        }
    }

    /// Any input is an answer or an error, never a panic, and the table
    /// never outgrows its limit.
    #[test]
    fn arbitrary_input_does_not_panic(blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..8)) {
        let mut d = Decoder::new(128);
        for block in blocks {
            let _ = d.decode(&block, 256, |_, _| {});
            prop_assert!(d.table.size_bytes <= d.table.size_bytes_max);
        }
    }

    /// A valid block with one byte changed, then a block that refers to
    /// the entries the first one should have added.
    #[test]
    fn corrupted_blocks_do_not_panic(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut d = Decoder::new(256);
        let mut block = hex(C6_1);
        let i = at.index(block.len());
        block[i] = byte;
        let _ = decode(&mut d, &block);
        let _ = decode(&mut d, &hex(C6_2));
    }
}
