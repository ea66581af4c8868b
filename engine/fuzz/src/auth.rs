//! Auth targets: the parsers of the auth paths that read untrusted or
//! on-disk bytes (the auth store's snapshot encoding, the auth section of a
//! log envelope, simple-token lookups, JWT verification). The stable
//! mutation loops over the same functions are `engine/tests/fuzz_auth.rs`;
//! the seeds libFuzzer starts from are committed in
//! `engine/tests/corpus/auth_*/` (written by [`maybe_write_seeds`]).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use cairn_engine::limits::AUTH_NAME_BYTES_MAX;
use cairn_engine::server::auth::jwt::JwtKeys;
use cairn_engine::server::auth::{
    decode_envelope_section, encode_envelope_section, token, AuthInfo, AuthStore, PermKind,
    Permission,
};

use crate::fuzz_util;

/// The committed corpus directory of target `name`.
pub fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("corpus")
        .join(name)
}

/// Writes `seeds` into the committed corpus of `name` when
/// `CAIRN_FUZZ_WRITE_CORPUS` is set (as the stable fuzz tests do for theirs).
pub fn maybe_write_seeds(name: &str, seeds: &[Vec<u8>]) {
    fuzz_util::maybe_write_corpus(&corpus_dir(name), seeds);
}

// ---- auth store ----

/// Target `auth_store`: `data` as the auth section of a snapshot. Decoding
/// never panics; a store that decodes encodes to bytes that decode to a
/// store encoding to the same bytes.
pub fn store(data: &[u8]) {
    let Ok(store) = AuthStore::decode(data) else {
        return;
    };
    let mut again = Vec::new();
    store.encode(&mut again);
    let second = AuthStore::decode(&again).expect("a re-encoded store decodes");
    let mut third = Vec::new();
    second.encode(&mut third);
    assert_eq!(again, third, "encoding a decoded store is not stable");
}

/// Most bytes the `auth_store` target may allocate: the decoded users,
/// roles and permissions (each a small multiple of the bytes naming it),
/// the merged per-user permissions, the two encodings, and bookkeeping.
pub fn store_budget_bytes(len: usize) -> usize {
    64 * len + 256 * 1024
}

/// A store with users, roles, permissions of every kind and a password
/// hash, enabled.
pub fn store_seeds() -> Vec<Vec<u8>> {
    let mut s = AuthStore::new();
    let ok = |r: Result<_, _>| r.expect("building the seed store");
    ok(s.user_add(
        "root",
        Some("$2b$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY".into()),
    ));
    ok(s.user_grant_role("root", "root"));
    ok(s.user_add("cert", None));
    ok(s.role_add("r"));
    for (k, e, kind) in [
        (&b"a/"[..], &b"a0"[..], PermKind::Read),
        (b"k", b"", PermKind::Write),
        (b"z", b"\0", PermKind::ReadWrite),
    ] {
        ok(s.role_grant_permission(
            "r",
            Permission {
                kind,
                key: k.to_vec(),
                range_end: e.to_vec(),
            },
        ));
    }
    ok(s.user_grant_role("cert", "r"));
    let mut disabled = Vec::new();
    s.encode(&mut disabled);
    ok(s.enable());
    let mut enabled = Vec::new();
    s.encode(&mut enabled);
    let mut empty = Vec::new();
    AuthStore::new().encode(&mut empty);
    vec![enabled, disabled, empty]
}

// ---- log envelope ----

/// Target `auth_envelope`: `data` as a log envelope's auth section and the
/// bytes after it. What decodes re-encodes to exactly the input.
pub fn envelope(data: &[u8]) {
    let Some((info, rest)) = decode_envelope_section(data) else {
        return;
    };
    let mut again = Vec::new();
    encode_envelope_section(&info, &mut again);
    again.extend_from_slice(rest);
    assert_eq!(again, data, "an envelope section re-encodes differently");
}

/// The user name and the re-encoded section.
pub fn envelope_budget_bytes(len: usize) -> usize {
    2 * len + 1024
}

pub fn envelope_seeds() -> Vec<Vec<u8>> {
    let mut seed = Vec::new();
    encode_envelope_section(
        &AuthInfo {
            user: "alice".into(),
            revision: 7,
        },
        &mut seed,
    );
    seed.extend_from_slice(b"frame bytes");
    let mut root = Vec::new();
    encode_envelope_section(
        &AuthInfo {
            user: "root".into(),
            revision: u64::MAX,
        },
        &mut root,
    );
    vec![seed, root]
}

// ---- simple tokens ----

/// Target `auth_token`: `data` is a token handed out, a newline, and a
/// token presented (or the same bytes for both). The presented token names
/// the user exactly when it equals the one handed out, and not once the
/// TTL has passed unused.
pub fn token_lookup(data: &[u8]) {
    let (given, presented) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    let given = String::from_utf8_lossy(given);
    let presented = String::from_utf8_lossy(presented);
    let ttl = Duration::from_secs(60);
    let now = Instant::now();
    let mut tokens = token::Tokens::new(ttl);
    tokens.insert(token::hash(&given), "alice", now);
    let user = tokens.user(&presented, now).map(str::to_string);
    assert_eq!(
        user.is_some(),
        presented == given,
        "{presented:?} looked up against {given:?}"
    );
    if user.is_some() {
        assert_eq!(user.as_deref(), Some("alice"));
    }
    assert_eq!(tokens.user(&presented, now + 2 * ttl), None);
}

/// Both strings decoded lossily (an invalid byte becomes a 3-byte
/// replacement character), the map entry, and the assertion's message.
pub fn token_budget_bytes(len: usize) -> usize {
    8 * len + 16 * 1024
}

pub fn token_seeds() -> Vec<Vec<u8>> {
    let t = token::generate(1);
    vec![
        t.clone().into_bytes(),
        format!("{t}\n{t}").into_bytes(),
        format!("{t}\n{}", token::generate(2)).into_bytes(),
    ]
}

// ---- JWT ----

/// An HS256 key pair of the target, loaded once through the flag parser as
/// a member would.
fn jwt_keys() -> &'static JwtKeys {
    static KEYS: OnceLock<JwtKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("cairn-fuzz-jwt-{}.key", std::process::id()));
        std::fs::write(&path, b"fuzzing secret\n").expect("write the JWT key file");
        let keys = JwtKeys::from_flag(&format!(
            "jwt,sign-method=HS256,priv-key={},ttl=5m",
            path.display()
        ))
        .expect("load the JWT key");
        let _ = std::fs::remove_file(&path);
        keys
    })
}

/// A fixed time for signing and checking, so runs repeat.
fn jwt_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Target `auth_jwt`: `data` as a presented JWT (verification never
/// panics, and only a token this member signed passes), and as a user name
/// (up to the first newline) and revision: the token signed for them
/// verifies to exactly them.
pub fn jwt(data: &[u8]) {
    let keys = jwt_keys();
    let now = jwt_now();
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = keys.verify(s, now);
    }
    let (name, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let user = String::from_utf8_lossy(name);
    let mut rev = [0u8; 8];
    for (slot, b) in rev.iter_mut().zip(rest) {
        *slot = *b;
    }
    let revision = u64::from_le_bytes(rev);
    let Ok(signed) = keys.sign(&user, revision, now) else {
        return;
    };
    let valid = !user.is_empty() && user.len() <= AUTH_NAME_BYTES_MAX;
    let checked = keys.verify(&signed, now);
    if valid {
        assert_eq!(
            checked,
            Some((user.to_string(), revision)),
            "a token we signed does not verify"
        );
    } else {
        assert_eq!(checked, None, "a token for an impossible user verifies");
    }
    // Expired: a second after the TTL.
    assert_eq!(keys.verify(&signed, now + keys.ttl()), None);
}

/// The decoded header, claims and signature, the lossy user name, the
/// signed token, and the key's own working memory.
pub fn jwt_budget_bytes(len: usize) -> usize {
    16 * len + 64 * 1024
}

pub fn jwt_seeds() -> Vec<Vec<u8>> {
    let keys = jwt_keys();
    let mut seeds = vec![b"alice\n\x07".to_vec()];
    if let Ok(t) = keys.sign("alice", 7, jwt_now()) {
        seeds.push(t.into_bytes());
    }
    seeds
}
