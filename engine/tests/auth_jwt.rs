//! JWT auth tokens (`--auth-token jwt,...`): every signing method round
//! trips, tokens etcd 3.4 issued are accepted, and forged, tampered,
//! expired and malformed tokens are refused without a panic.
//!
//! The keys, and the tokens etcd 3.4.23 issued with them, are in
//! `tests/data/jwt/`. Fuzz cases per property: 1000 by default; set
//! CAIRN_FUZZ_CASES (e.g. 100000) for a long run.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_engine::server::auth::jwt::{
    JwtKeys, SignMethod, ERR_VERIFY_ONLY, JWT_TOKEN_BYTES_MAX, JWT_TTL_DEFAULT,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn data(name: &str) -> String {
    format!("{}/tests/data/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The private and public key files of each method.
fn key_files(m: SignMethod) -> (&'static str, Option<&'static str>) {
    use SignMethod as M;
    match m {
        M::RS256 | M::RS384 | M::RS512 | M::PS256 | M::PS384 | M::PS512 => {
            ("rsa.pem", Some("rsa.pub.pem"))
        }
        M::ES256 => ("ec256.pem", Some("ec256.pub.pem")),
        M::ES384 => ("ec384.pem", Some("ec384.pub.pem")),
        M::ES512 => ("ec521.pem", Some("ec521.pub.pem")),
        M::HS256 | M::HS384 | M::HS512 => ("hs.key", None),
        M::EdDSA => ("ed25519.pem", Some("ed25519.pub.pem")),
    }
}

/// The keys of each method, loaded once.
fn keys(m: SignMethod) -> &'static JwtKeys {
    static KEYS: OnceLock<Vec<JwtKeys>> = OnceLock::new();
    let all = KEYS.get_or_init(|| SignMethod::ALL.into_iter().map(load_keys).collect());
    let i = SignMethod::ALL.iter().position(|x| *x == m).unwrap();
    &all[i]
}

fn load_keys(m: SignMethod) -> JwtKeys {
    let (private, public) = key_files(m);
    let mut flag = format!("jwt,sign-method={},priv-key={}", m.name(), data(private));
    if let Some(p) = public {
        flag.push_str(&format!(",pub-key={}", data(p)));
    }
    JwtKeys::from_flag(&flag).unwrap()
}

fn verify_only_keys(m: SignMethod) -> Option<JwtKeys> {
    let public = key_files(m).1?;
    let flag = format!("jwt,sign-method={},pub-key={}", m.name(), data(public));
    Some(JwtKeys::from_flag(&flag).unwrap())
}

fn at(unix_s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_s)
}

const NOW_S: u64 = 1_800_000_000;

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A token with any header and claims, validly signed with the HS key.
fn forge_hs(alg: &str, header: &Value, claims: &Value, secret: &[u8]) -> String {
    let alg = match alg {
        "HS384" => ring::hmac::HMAC_SHA384,
        "HS512" => ring::hmac::HMAC_SHA512,
        _ => ring::hmac::HMAC_SHA256,
    };
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let tag = ring::hmac::sign(&ring::hmac::Key::new(alg, secret), signed.as_bytes());
    format!("{signed}.{}", b64(tag.as_ref()))
}

fn hs_secret() -> Vec<u8> {
    std::fs::read(data("hs.key")).unwrap()
}

fn forge_claims(claims: &Value) -> String {
    forge_hs(
        "HS256",
        &json!({"alg": "HS256", "typ": "JWT"}),
        claims,
        &hs_secret(),
    )
}

#[test]
fn every_method_round_trips() {
    for m in SignMethod::ALL {
        let k = keys(m);
        assert!(!k.verify_only());
        let token = k.sign("alice", 42, at(NOW_S)).unwrap();
        assert_eq!(
            k.verify(&token, at(NOW_S)),
            Some(("alice".to_string(), 42)),
            "{}",
            m.name()
        );
        if let Some(v) = verify_only_keys(m) {
            assert!(v.verify_only());
            assert_eq!(v.verify(&token, at(NOW_S)), Some(("alice".into(), 42)));
            assert_eq!(v.sign("alice", 42, at(NOW_S)), Err(ERR_VERIFY_ONLY.into()));
        }
        // Another method's keys refuse it, even over the same RSA key.
        for other in SignMethod::ALL.into_iter().filter(|o| *o != m) {
            assert_eq!(
                keys(other).verify(&token, at(NOW_S)),
                None,
                "{m:?} as {other:?}"
            );
        }
    }
}

#[test]
fn tokens_etcd_issued_are_accepted_and_ours_match_them() {
    let file = std::fs::read_to_string(data("etcd-3.4-tokens.txt")).unwrap();
    let mut seen = 0;
    for line in file.lines().filter(|l| !l.starts_with('#')) {
        let (name, token) = line.split_once(' ').unwrap();
        let m = SignMethod::from_name(name).unwrap();
        let segments: Vec<&str> = token.split('.').collect();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).unwrap()).unwrap();
        let exp = claims["exp"].as_u64().unwrap();
        let k = keys(m);
        let issued = at(exp - 300);
        assert_eq!(k.verify(token, issued), Some(("alice".into(), 4)), "{name}");
        if let Some(v) = verify_only_keys(m) {
            assert_eq!(v.verify(token, issued), Some(("alice".into(), 4)));
        }
        // etcd's tokens are good through the second before exp.
        assert!(k.verify(token, at(exp - 1)).is_some());
        assert_eq!(k.verify(token, at(exp)), None, "{name} past exp");
        // Ours carry the same header and claims, byte for byte; RS and
        // HS signatures are deterministic, so those tokens are identical.
        let ours = k.sign("alice", 4, issued).unwrap();
        let our_segments: Vec<&str> = ours.split('.').collect();
        assert_eq!(our_segments[..2], segments[..2], "{name}");
        if name.starts_with("RS") || name.starts_with("HS") {
            assert_eq!(ours, token, "{name}");
        }
        seen += 1;
    }
    assert_eq!(seen, 12);
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let flag = format!(
        "jwt,sign-method=ES256,priv-key={},ttl=1m30s",
        data("ec256.pem")
    );
    let k = JwtKeys::from_flag(&flag).unwrap();
    assert_eq!(k.ttl(), Duration::from_secs(90));
    let token = k.sign("bob", 1, at(NOW_S)).unwrap();
    assert!(k.verify(&token, at(NOW_S + 89)).is_some());
    assert_eq!(k.verify(&token, at(NOW_S + 90)), None);
    assert_eq!(k.verify(&token, at(NOW_S + 10_000)), None);

    let base = json!({"username": "bob", "revision": 1, "exp": NOW_S + 10});
    let mut early = base.clone();
    early["nbf"] = json!(NOW_S + 5);
    let hs = keys(SignMethod::HS256);
    assert_eq!(hs.verify(&forge_claims(&early), at(NOW_S)), None);
    assert!(hs.verify(&forge_claims(&early), at(NOW_S + 5)).is_some());
    assert_eq!(keys(SignMethod::RS256).ttl(), JWT_TTL_DEFAULT);
}

#[test]
fn tampered_payloads_and_signatures_are_refused() {
    for m in [
        SignMethod::RS256,
        SignMethod::PS256,
        SignMethod::ES256,
        SignMethod::ES512,
        SignMethod::HS256,
        SignMethod::EdDSA,
    ] {
        let k = keys(m);
        let token = k.sign("alice", 9, at(NOW_S)).unwrap();
        let seg: Vec<&str> = token.split('.').collect();
        // Root instead of alice, the signature kept.
        let forged =
            serde_json::to_vec(&json!({"exp": NOW_S + 300, "revision": 9, "username": "root"}))
                .unwrap();
        let t = format!("{}.{}.{}", seg[0], b64(&forged), seg[2]);
        assert_eq!(k.verify(&t, at(NOW_S)), None, "{m:?} payload");
        // A later exp, the signature kept.
        let longer =
            serde_json::to_vec(&json!({"exp": NOW_S + 9999, "revision": 9, "username": "alice"}))
                .unwrap();
        let t = format!("{}.{}.{}", seg[0], b64(&longer), seg[2]);
        assert_eq!(k.verify(&t, at(NOW_S)), None, "{m:?} exp");
        // Each bit of the signature matters.
        let sig = URL_SAFE_NO_PAD.decode(seg[2]).unwrap();
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            let t = format!("{}.{}.{}", seg[0], seg[1], b64(&bad));
            assert_eq!(k.verify(&t, at(NOW_S)), None, "{m:?} sig byte {i}");
        }
        // No signature, a short one, another token's.
        let other = k.sign("alice", 10, at(NOW_S)).unwrap();
        let other_sig = other.rsplit('.').next().unwrap();
        for s in ["", "AA", other_sig] {
            let t = format!("{}.{}.{s}", seg[0], seg[1]);
            assert_eq!(k.verify(&t, at(NOW_S)), None, "{m:?} sig {s:?}");
        }
    }
}

#[test]
fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    let claims = json!({"exp": NOW_S + 300, "revision": 1, "username": "root"});
    let pem = std::fs::read(data("rsa.pub.pem")).unwrap();
    let der = pem::parse(&pem).unwrap().contents().to_vec();
    for secret in [pem, der] {
        let t = forge_hs(
            "HS256",
            &json!({"alg": "HS256", "typ": "JWT"}),
            &claims,
            &secret,
        );
        for k in [
            keys(SignMethod::RS256),
            &verify_only_keys(SignMethod::RS256).unwrap(),
        ] {
            assert_eq!(k.verify(&t, at(NOW_S)), None);
        }
    }
}

#[test]
fn alg_none_is_refused() {
    let claims = json!({"exp": NOW_S + 300, "revision": 1, "username": "root"});
    let payload = b64(claims.to_string().as_bytes());
    for alg in ["none", "None", "NONE", "", "hs256"] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        for m in [SignMethod::HS256, SignMethod::RS256, SignMethod::ES256] {
            let k = keys(m);
            assert_eq!(k.verify(&format!("{header}.{payload}."), at(NOW_S)), None);
            // Signed, too: the alg still must be ours.
            let signed = format!("{header}.{payload}");
            let real = k.sign("root", 1, at(NOW_S)).unwrap();
            let sig = real.rsplit('.').next().unwrap();
            assert_eq!(k.verify(&format!("{signed}.{sig}"), at(NOW_S)), None);
        }
    }
    assert!(JwtKeys::from_flag("jwt,sign-method=none").is_err());
}

#[test]
fn claims_of_the_wrong_shape_are_refused() {
    let hs = keys(SignMethod::HS256);
    let good = json!({"exp": NOW_S + 300, "revision": 3, "username": "u"});
    assert_eq!(
        hs.verify(&forge_claims(&good), at(NOW_S)),
        Some(("u".into(), 3))
    );
    // Extra claims, a fractional exp and a header without typ are fine.
    let extra = json!({"exp": (NOW_S as f64) + 0.5, "revision": 3, "username": "u", "iss": "x"});
    let t = forge_hs("HS256", &json!({"alg": "HS256"}), &extra, &hs_secret());
    assert!(hs.verify(&t, at(NOW_S)).is_some());
    let mut bad = Vec::new();
    for (field, v) in [
        ("exp", Value::Null),
        ("exp", json!("9999999999")),
        ("revision", Value::Null),
        ("revision", json!("3")),
        ("revision", json!(-1)),
        ("revision", json!(3.5)),
        ("username", Value::Null),
        ("username", json!(7)),
        ("username", json!("")),
        ("username", json!("x".repeat(129))),
        ("nbf", json!("0")),
    ] {
        let mut c = good.clone();
        match v {
            Value::Null => {
                c.as_object_mut().unwrap().remove(field);
            }
            v => c[field] = v,
        }
        bad.push(forge_claims(&c));
    }
    for claims in [json!([1, 2]), json!("alice"), json!(null)] {
        bad.push(forge_claims(&claims));
    }
    for t in bad {
        assert_eq!(hs.verify(&t, at(NOW_S)), None, "{t}");
    }
}

#[test]
fn malformed_tokens_are_refused() {
    let hs = keys(SignMethod::HS256);
    let good = hs.sign("u", 1, at(NOW_S)).unwrap();
    let seg: Vec<&str> = good.split('.').collect();
    let not_json = b64(b"{not json");
    let padded = format!("{}=.{}.{}", seg[0], seg[1], seg[2]);
    let oversize = format!(
        "{}.{}.{}",
        seg[0],
        b64(json!({"exp": NOW_S + 300, "revision": 1, "username": "u", "pad": "x".repeat(JWT_TOKEN_BYTES_MAX)})
            .to_string()
            .as_bytes()),
        seg[2]
    );
    let cases = [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        format!("{}.{}", seg[0], seg[1]),
        format!("{good}.{}", seg[2]),
        format!("{}..{}", seg[0], seg[2]),
        format!("!!.{}.{}", seg[1], seg[2]),
        format!("{}.{}.{}*", seg[0], seg[1], seg[2]),
        format!("{not_json}.{}.{}", seg[1], seg[2]),
        format!("{}.{not_json}.{}", seg[0], seg[2]),
        format!("{}.{}.{}", b64(b"[1]"), seg[1], seg[2]),
        padded,
        oversize,
        "\u{0}\u{ff}é.€.💥".into(),
        format!(" {good}"),
    ];
    for t in cases {
        assert_eq!(hs.verify(&t, at(NOW_S)), None, "{t:?}");
    }
    assert!(hs.verify(&good, at(NOW_S)).is_some());
}

#[test]
fn keys_that_do_not_match_are_refused_at_start() {
    for (m, private, public) in [
        ("RS256", "rsa.pem", "other-rsa.pub.pem"),
        ("PS512", "rsa-pkcs1.pem", "other-rsa.pub.pem"),
        ("ES256", "ec256.pem", "other-ec256.pub.pem"),
        ("ES512", "ec521.pem", "other-ec521.pub.pem"),
    ] {
        let flag = format!(
            "jwt,sign-method={m},priv-key={},pub-key={}",
            data(private),
            data(public)
        );
        assert_eq!(
            JwtKeys::from_flag(&flag).unwrap_err(),
            "auth: public and private keys don't match"
        );
    }
    // A key of another type or curve than the method's.
    for (m, file, which) in [
        ("ES384", "ec256.pem", "priv-key"),
        ("ES256", "ec384.pub.pem", "pub-key"),
        ("RS256", "ec256.pem", "priv-key"),
        ("ES512", "rsa.pub.pem", "pub-key"),
        ("EdDSA", "ec256.pub.pem", "pub-key"),
    ] {
        let flag = format!("jwt,sign-method={m},{which}={}", data(file));
        let e = JwtKeys::from_flag(&flag).unwrap_err();
        assert!(
            e.starts_with("auth: invalid auth options"),
            "{m} {file}: {e}"
        );
    }
}

#[test]
fn every_key_format_etcd_reads_is_loaded() {
    let sign_with = |m: &str, private: &str, public: &str| {
        let flag = format!(
            "jwt,sign-method={m},priv-key={},pub-key={}",
            data(private),
            data(public)
        );
        let k = JwtKeys::from_flag(&flag).unwrap();
        k.sign("alice", 1, at(NOW_S)).unwrap()
    };
    let rs = keys(SignMethod::RS256);
    // PKCS#1 private and public keys, a certificate as the public key.
    for (private, public) in [
        ("rsa-pkcs1.pem", "rsa-pkcs1.pub.pem"),
        ("rsa.pem", "rsa.crt.pem"),
    ] {
        let t = sign_with("RS256", private, public);
        assert!(rs.verify(&t, at(NOW_S)).is_some());
    }
    // SEC 1 and PKCS#8 P-521 keys.
    let t = sign_with("ES512", "ec521-pkcs8.pem", "ec521.pub.pem");
    assert!(keys(SignMethod::ES512).verify(&t, at(NOW_S)).is_some());
}

/// One set of keys serves every executor.
#[test]
fn keys_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>(_: &T) {}
    let k = keys(SignMethod::ES512);
    shared(k);
    let token = std::thread::scope(|s| {
        s.spawn(|| k.sign("alice", 1, at(NOW_S)).unwrap())
            .join()
            .unwrap()
    });
    assert!(k.verify(&token, at(NOW_S)).is_some());
}

#[test]
fn flag_options_are_checked_like_etcds() {
    let err = |v: &str| JwtKeys::from_flag(v).unwrap_err();
    assert!(err("simple").starts_with("auth: invalid auth options"));
    assert!(err("jwt,sign-method").contains("not one name=value"));
    assert!(err("jwt,sign-method=RS256,sign-method=RS256").contains("twice"));
    assert!(err("jwt,sign-method=RS256,privkey=x").contains("unknown option"));
    assert_eq!(
        err("jwt,sign-method=none"),
        r#"auth: invalid auth signature method: "none""#
    );
    assert!(err("jwt").starts_with("auth: invalid auth signature method"));
    assert_eq!(err("jwt,sign-method=RS256"), "auth: missing key data");
    assert_eq!(
        err("jwt,sign-method=HS256,pub-key=/x"),
        "auth: missing key data"
    );
    assert!(err("jwt,sign-method=HS256,priv-key=/nonexistent/k").contains("cannot open"));
    let hs = |ttl: &str| {
        JwtKeys::from_flag(&format!(
            "jwt,sign-method=HS256,priv-key={},ttl={ttl}",
            data("hs.key")
        ))
    };
    assert_eq!(hs("1h30m").unwrap().ttl(), Duration::from_secs(5400));
    assert_eq!(hs("").unwrap().ttl(), JWT_TTL_DEFAULT);
    for bad in ["5", "-5m", "500ms", "0", "1y"] {
        assert!(hs(bad).unwrap_err().contains("ttl"), "{bad}");
    }
}

fn fuzz_cases() -> u32 {
    std::env::var("CAIRN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// One edit of a token's text.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, char),
    Remove(usize),
    Truncate(usize),
    Swap(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        4 => proptest::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect::<Vec<_>>()
        ),
        1 => proptest::sample::select(vec!['.', '=', '+', '/', ' ', 'é', '\u{0}']),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Swap(i, j)),
    ]
}

fn apply(token: &str, edits: &[Edit]) -> String {
    let mut c: Vec<char> = token.chars().collect();
    for e in edits {
        let n = c.len().max(1);
        match *e {
            Edit::Replace(i, ch) if !c.is_empty() => c[i % n] = ch,
            Edit::Insert(i, ch) => c.insert(i % (c.len() + 1), ch),
            Edit::Remove(i) if !c.is_empty() => {
                c.remove(i % n);
            }
            Edit::Truncate(i) => c.truncate(i % (c.len() + 1)),
            Edit::Swap(i, j) if !c.is_empty() => c.swap(i % n, j % n),
            _ => {}
        }
    }
    c.into_iter().collect()
}

/// A claim value of any JSON shape.
fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..4_000_000_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,8}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

    /// Arbitrary text is refused, never panics.
    #[test]
    fn random_text_is_refused(s in ".{0,300}", dots in proptest::collection::vec(any::<usize>(), 0..4)) {
        let mut c: Vec<char> = s.chars().collect();
        for d in dots {
            c.insert(d % (c.len() + 1), '.');
        }
        let t: String = c.into_iter().collect();
        for m in [SignMethod::HS256, SignMethod::ES256] {
            prop_assert_eq!(keys(m).verify(&t, at(NOW_S)), None);
        }
    }

    /// Any edit of a valid token that changes it makes it invalid.
    #[test]
    fn edited_tokens_are_refused(edits in proptest::collection::vec(edit(), 1..4), es in any::<bool>()) {
        let k = keys(if es { SignMethod::ES256 } else { SignMethod::HS256 });
        let token = k.sign("alice", 5, at(NOW_S)).unwrap();
        let t = apply(&token, &edits);
        let got = k.verify(&t, at(NOW_S));
        if t == token {
            prop_assert_eq!(got, Some(("alice".to_string(), 5)));
        } else {
            prop_assert_eq!(got, None, "{}", t);
        }
    }

    /// Validly signed claims of any shape: accepted exactly when they are
    /// a non-empty user name, an integer revision and a future exp.
    #[test]
    fn signed_claims_are_judged_by_their_shape(
        username in json_value(),
        name in "[a-z]{0,3}",
        revision in json_value(),
        exp in json_value(),
        drop in 0usize..4,
    ) {
        let hs = keys(SignMethod::HS256);
        let username = if name.is_empty() { username } else { Value::from(name) };
        let mut claims = json!({"username": username, "revision": revision, "exp": exp});
        let fields = ["username", "revision", "exp"];
        if let Some(f) = fields.get(drop) {
            claims.as_object_mut().unwrap().remove(*f);
        }
        let got = hs.verify(&forge_claims(&claims), at(NOW_S));
        let want = (|| {
            let user = claims.get("username")?.as_str()?;
            let rev = claims.get("revision")?.as_u64()?;
            let exp = claims.get("exp")?.as_f64()?;
            (!user.is_empty() && exp > NOW_S as f64).then(|| (user.to_string(), rev))
        })();
        prop_assert_eq!(got, want);
    }
}
