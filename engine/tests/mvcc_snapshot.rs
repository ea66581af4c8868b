//! Online snapshots: chunks taken at revision R while writes and
//! compactions continue restore to the state at R.

use cairn_engine::mvcc::{
    DeleteRangeRequest, Error, KeyValue, Mvcc, MvccConfig, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn put(m: &mut Mvcc, key: &[u8], value: &[u8], lease: i64) {
    m.put(&PutRequest {
        key,
        value,
        lease,
        ..Default::default()
    })
    .expect("put");
}

/// A store with history: puts, overwrites, deletes, leases, a txn, a compaction.
fn busy_store(seed: u64, keys: usize, writes: usize) -> Mvcc {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut m = Mvcc::new(MvccConfig::default());
    for _ in 0..writes {
        let k = format!("key/{:04}", rng.gen_range(0..keys));
        match rng.gen_range(0..10) {
            0 => {
                m.delete_range(&DeleteRangeRequest {
                    key: k.as_bytes(),
                    range_end: b"",
                    prev_kv: false,
                })
                .expect("delete");
            }
            1 => {
                let k2 = format!("key/{:04}", rng.gen_range(0..keys));
                if k2 != k {
                    m.txn(&TxnRequest {
                        success: vec![
                            RequestOp::Put(PutRequest {
                                key: k.as_bytes(),
                                value: b"txn",
                                ..Default::default()
                            }),
                            RequestOp::Put(PutRequest {
                                key: k2.as_bytes(),
                                value: b"txn",
                                lease: 3,
                                ..Default::default()
                            }),
                        ],
                        ..Default::default()
                    })
                    .expect("txn");
                }
            }
            _ => {
                let len = rng.gen_range(0..200);
                let v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                put(&mut m, k.as_bytes(), &v, rng.gen_range(0..3));
            }
        }
    }
    let half = m.current_revision() / 2;
    m.compact(half).expect("compact");
    m
}

fn read_all(m: &Mvcc, rev: i64) -> Result<Vec<KeyValue>, Error> {
    let r = m.range(&RangeRequest {
        key: b"\0",
        range_end: b"\0",
        revision: rev,
        ..Default::default()
    })?;
    Ok(r.kvs)
}

fn take_chunks(m: &Mvcc, at: i64, max_bytes: usize) -> Vec<Vec<u8>> {
    let mut snap = m.snapshot_begin(at).expect("snapshot");
    let mut chunks = Vec::new();
    while let Some(c) = m.snapshot_chunk(&mut snap, max_bytes) {
        chunks.push(c);
    }
    chunks
}

#[test]
fn chunks_taken_while_writing_restore_the_state_at_their_revision() {
    let mut m = busy_store(1, 200, 2000);
    let at = m.current_revision();
    let hash_at = m.hash_kv(at).expect("hash");
    let reads_at: Vec<_> = (m.compact_revision()..=at)
        .map(|r| read_all(&m, r))
        .collect();

    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut snap = m.snapshot_begin(at).expect("snapshot");
    let mut chunks = Vec::new();
    let mut compacted = false;
    while let Some(chunk) = m.snapshot_chunk(&mut snap, 2048) {
        chunks.push(chunk);
        // Between chunks: more writes, and once a compaction past R.
        for _ in 0..20 {
            let k = format!("key/{:04}", rng.gen_range(0..260));
            put(&mut m, k.as_bytes(), b"later", 1);
        }
        m.delete_range(&DeleteRangeRequest {
            key: b"key/0",
            range_end: b"key/01",
            prev_kv: false,
        })
        .expect("delete");
        if !compacted && chunks.len() == 3 {
            m.compact(m.current_revision()).expect("compact");
            compacted = true;
        }
    }
    drop(snap);
    assert!(compacted && chunks.len() > 10, "the test spans many chunks");

    let restored = Mvcc::restore(MvccConfig::default(), &chunks).expect("restore");
    assert_eq!(restored.current_revision(), at);
    assert_eq!(restored.hash_kv(at), Ok(hash_at));
    let restored_reads: Vec<_> = (hash_at.compact_revision..=at)
        .map(|r| read_all(&restored, r))
        .collect();
    assert_eq!(restored_reads, reads_at);
    // The source finished its held compaction once the snapshot was dropped.
    m.finish_held_compaction();
    assert!(!m.compaction_held());
}

#[test]
fn an_older_revision_can_be_snapshotted() {
    let m = busy_store(3, 50, 400);
    let at = m.compact_revision() + 10;
    let chunks = take_chunks(&m, at, 1 << 20);
    let restored = Mvcc::restore(MvccConfig::default(), &chunks).expect("restore");
    assert_eq!(restored.current_revision(), at);
    assert_eq!(restored.hash_kv(0), m.hash_kv(at));
    assert_eq!(read_all(&restored, at), read_all(&m, at));
    assert_eq!(
        m.snapshot_begin(m.compact_revision() - 1).err(),
        Some(Error::Compacted)
    );
    assert_eq!(
        m.snapshot_begin(m.current_revision() + 1).err(),
        Some(Error::FutureRev)
    );
}

#[test]
fn hash_does_not_depend_on_chunking_or_on_how_the_index_was_built() {
    let m = busy_store(4, 100, 1500);
    let want = m.hash_kv(0).expect("hash");
    for max_bytes in [1, 100, 4096, 1 << 20] {
        let restored =
            Mvcc::restore(MvccConfig::default(), take_chunks(&m, 0, max_bytes)).expect("restore");
        assert_eq!(restored.hash_kv(0), Ok(want), "chunks of {max_bytes} bytes");
        // Restoring a restored index changes nothing either.
        let again =
            Mvcc::restore(MvccConfig::default(), take_chunks(&restored, 0, 777)).expect("restore");
        assert_eq!(again.hash_kv(0), Ok(want));
    }
}

#[test]
fn chunks_stay_bounded_even_for_one_key_with_long_history() {
    let mut m = Mvcc::new(MvccConfig::default());
    for i in 0..500u32 {
        put(&mut m, b"hot", &i.to_le_bytes().repeat(25), 0);
    }
    put(&mut m, b"cold", b"v", 0);
    let max_bytes = 1000;
    let chunks = take_chunks(&m, 0, max_bytes);
    assert!(chunks.len() > 40);
    // Header 40 + trailer 4 + one version (41 fixed + 100 value) + one key record head.
    let bound = max_bytes + 40 + 4 + 41 + 100 + 4 + 4 + 4;
    assert!(chunks.iter().all(|c| c.len() <= bound));
    let restored = Mvcc::restore(MvccConfig::default(), &chunks).expect("restore");
    assert_eq!(restored.hash_kv(0), m.hash_kv(0));
    assert_eq!(read_all(&restored, 200), read_all(&m, 200));
}

#[test]
fn damaged_or_incomplete_chunk_sequences_are_refused() {
    let m = busy_store(5, 30, 200);
    let chunks = take_chunks(&m, 0, 512);
    assert!(chunks.len() >= 3);
    let corrupt = |r: Result<Mvcc, Error>| matches!(r, Err(Error::CorruptSnapshot { .. }));

    let mut flipped = chunks.clone();
    flipped[1][60] ^= 0x40;
    assert!(corrupt(Mvcc::restore(MvccConfig::default(), &flipped)));

    let missing_last = &chunks[..chunks.len() - 1];
    assert!(corrupt(Mvcc::restore(MvccConfig::default(), missing_last)));

    let mut swapped = chunks.clone();
    swapped.swap(0, 1);
    assert!(corrupt(Mvcc::restore(MvccConfig::default(), &swapped)));

    let mut truncated = chunks.clone();
    truncated[0].truncate(30);
    assert!(corrupt(Mvcc::restore(MvccConfig::default(), &truncated)));

    let none: [&[u8]; 0] = [];
    assert!(corrupt(Mvcc::restore(MvccConfig::default(), none)));

    let mut extra = chunks.clone();
    extra.push(chunks[0].clone());
    assert!(corrupt(Mvcc::restore(MvccConfig::default(), &extra)));

    let err = Mvcc::restore(MvccConfig::default(), &flipped)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.starts_with("mvcc: snapshot chunk 1 is corrupt")),
        "{err:?}"
    );
}

#[test]
fn an_empty_store_snapshots_to_one_chunk() {
    let m = Mvcc::new(MvccConfig::default());
    let chunks = take_chunks(&m, 0, 1024);
    assert_eq!(chunks.len(), 1);
    let restored = Mvcc::restore(MvccConfig::default(), &chunks).expect("restore");
    assert_eq!(restored.current_revision(), 1);
    assert_eq!(restored.key_count(), 0);
    assert_eq!(restored.hash_kv(0), m.hash_kv(0));
}
