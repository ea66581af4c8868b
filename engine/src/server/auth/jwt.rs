//! JWT auth tokens (`--auth-token jwt,...`), signed and checked as etcd
//! does.
//!
//! A JWT token carries its own claims: the user, the auth revision it was
//! issued at, and an expiry (`exp`, Unix seconds). Any member holding the
//! verification key accepts it without having seen it issued, so unlike
//! simple tokens nothing about a JWT token goes through the log. Because the
//! revision travels inside the token, any change to the auth store after
//! the token was issued makes requests carrying it fail with "revision of
//! auth store is old", and the client authenticates again (etcd's scheme).
//!
//! The flag value is etcd's:
//! `jwt,pub-key=<path>,priv-key=<path>,sign-method=<method>,ttl=<duration>`.
//! `sign-method` is one of RS256/384/512, PS256/384/512, ES256/384/512,
//! HS256/384/512 or EdDSA; `ttl` is a Go duration (`5m`, `1h30m`), 5
//! minutes when absent. Keys are PEM files (PKCS#8, PKCS#1 or SEC 1 private
//! keys; SubjectPublicKeyInfo, PKCS#1 public keys or a certificate). For
//! HS* the `priv-key` file's bytes, as they are, are the shared secret. A
//! `pub-key` without a `priv-key` makes a verify-only member: it accepts
//! tokens signed elsewhere but cannot issue any.
//!
//! Checking a token refuses: a token that is not three base64url segments,
//! a header whose `alg` is not exactly the configured method (so "none",
//! and an HS256 token keyed with an RSA public key, never pass), a bad
//! signature, and claims without a string `username`, an integer
//! `revision` and a numeric `exp` in the future.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use cairn_engine::server::auth::jwt::JwtKeys;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let secret = dir.path().join("secret");
//! std::fs::write(&secret, b"a long, random shared secret").unwrap();
//! let flag = format!("jwt,priv-key={},sign-method=HS256,ttl=10m", secret.display());
//! let keys = JwtKeys::from_flag(&flag).unwrap();
//!
//! let now = SystemTime::now();
//! let token = keys.sign("alice", 7, now).unwrap();
//! assert_eq!(keys.verify(&token, now), Some(("alice".to_string(), 7)));
//! // Ten minutes later it has expired.
//! assert_eq!(keys.verify(&token, now + Duration::from_secs(600)), None);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p521::ecdsa::signature::{Signer as _, Verifier as _};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};
use serde_json::Value;
use x509_parser::prelude::FromDer as _;

use crate::limits::AUTH_NAME_BYTES_MAX;

/// Longest token `verify` looks at. A cairn token is under 1 KiB (a 4096-bit
/// RSA signature is 683 base64 characters, a user name at most
/// AUTH_NAME_BYTES_MAX); the bound keeps the work spent on a hostile token
/// small.
pub const JWT_TOKEN_BYTES_MAX: usize = 8192;

/// Largest key file read: PEM keys are a few KiB even for RSA-8192 or a
/// certificate chain; a bigger file is a mistake.
const JWT_KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Token lifetime without a `ttl` option (etcd's default).
pub const JWT_TTL_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// Signed with the private key and checked with the public key at start-up,
/// to refuse a pair that does not belong together.
const PROBE: &[u8] = b"cairn jwt key probe";

// etcd's error texts.
const ERR_INVALID_OPTS: &str = "auth: invalid auth options";
const ERR_INVALID_METHOD: &str = "auth: invalid auth signature method";
const ERR_MISSING_KEY: &str = "auth: missing key data";
const ERR_KEY_MISMATCH: &str = "auth: public and private keys don't match";
pub const ERR_VERIFY_ONLY: &str = "auth: token signing attempted with verify-only key";

/// A JWS signature algorithm, named as in a token's `alg` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    HS256,
    HS384,
    HS512,
    EdDSA,
}

impl SignMethod {
    pub const ALL: [SignMethod; 13] = [
        SignMethod::RS256,
        SignMethod::RS384,
        SignMethod::RS512,
        SignMethod::PS256,
        SignMethod::PS384,
        SignMethod::PS512,
        SignMethod::ES256,
        SignMethod::ES384,
        SignMethod::ES512,
        SignMethod::HS256,
        SignMethod::HS384,
        SignMethod::HS512,
        SignMethod::EdDSA,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SignMethod::RS256 => "RS256",
            SignMethod::RS384 => "RS384",
            SignMethod::RS512 => "RS512",
            SignMethod::PS256 => "PS256",
            SignMethod::PS384 => "PS384",
            SignMethod::PS512 => "PS512",
            SignMethod::ES256 => "ES256",
            SignMethod::ES384 => "ES384",
            SignMethod::ES512 => "ES512",
            SignMethod::HS256 => "HS256",
            SignMethod::HS384 => "HS384",
            SignMethod::HS512 => "HS512",
            SignMethod::EdDSA => "EdDSA",
        }
    }

    pub fn from_name(name: &str) -> Option<SignMethod> {
        SignMethod::ALL.into_iter().find(|m| m.name() == name)
    }

    fn family(self) -> Family {
        use SignMethod as M;
        match self {
            M::RS256 | M::RS384 | M::RS512 | M::PS256 | M::PS384 | M::PS512 => Family::Rsa,
            M::ES256 | M::ES384 | M::ES512 => Family::Ec,
            M::HS256 | M::HS384 | M::HS512 => Family::Hmac,
            M::EdDSA => Family::Ed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
    Hmac,
    Ed,
}

/// A private key, able to sign.
enum SigningKey {
    Rsa(rs::RsaKeyPair, &'static dyn rs::RsaEncoding),
    Ecdsa(rs::EcdsaKeyPair),
    P521(p521::ecdsa::SigningKey),
    Ed25519(rs::Ed25519KeyPair),
    Hmac(ring::hmac::Key),
}

/// A public key (or the HMAC secret), able to check signatures.
enum VerifyingKey {
    Ring(rs::UnparsedPublicKey<Vec<u8>>),
    P521(p521::ecdsa::VerifyingKey),
    Hmac(ring::hmac::Key),
}

/// The keys and settings of `--auth-token jwt,...`.
pub struct JwtKeys {
    method: SignMethod,
    ttl: Duration,
    /// `None` on a verify-only member.
    signing: Option<SigningKey>,
    verifying: VerifyingKey,
    /// The base64url header every token this member signs starts with.
    header_b64: String,
    rng: SystemRandom,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys.
        f.debug_struct("JwtKeys")
            .field("method", &self.method)
            .field("ttl", &self.ttl)
            .field("verify_only", &self.signing.is_none())
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Parse etcd's `--auth-token` value for JWT tokens and load its keys.
    /// Errors read like etcd's ("auth: missing key data", "auth: public
    /// and private keys don't match", ...), with the detail after a colon.
    pub fn from_flag(value: &str) -> Result<JwtKeys, String> {
        let opts = decompose(value)?;
        let method_name = opts.get("sign-method").copied().unwrap_or("");
        let method = SignMethod::from_name(method_name)
            .ok_or_else(|| format!("{ERR_INVALID_METHOD}: {method_name:?}"))?;
        let ttl = match opts.get("ttl") {
            None => JWT_TTL_DEFAULT,
            Some(s) => {
                parse_go_duration(s).map_err(|e| format!("{ERR_INVALID_OPTS}: ttl {s:?}: {e}"))?
            }
        };
        if ttl.as_secs() == 0 {
            return Err(format!(
                "{ERR_INVALID_OPTS}: ttl {:?} is shorter than a second (exp counts whole seconds)",
                opts.get("ttl").copied().unwrap_or("")
            ));
        }
        let read = |name: &str| -> Result<Option<Vec<u8>>, String> {
            match opts.get(name) {
                None => Ok(None),
                Some(path) => read_key_file(path)
                    .map(Some)
                    .map_err(|e| format!("{ERR_INVALID_OPTS}: {name} {path}: {e}")),
            }
        };
        let private = read("priv-key")?;
        let public = if method.family() == Family::Hmac {
            // The secret is the priv-key file; a pub-key has no role.
            None
        } else {
            read("pub-key")?
        };
        let (signing, verifying) = match (private, public) {
            (None, None) => return Err(ERR_MISSING_KEY.to_string()),
            (None, Some(pub_pem)) => {
                let v = load_public(method, &pub_pem)
                    .map_err(|e| format!("{ERR_INVALID_OPTS}: pub-key: {e}"))?;
                (None, v)
            }
            (Some(priv_pem), pub_pem) => {
                let s = load_private(method, &priv_pem)
                    .map_err(|e| format!("{ERR_INVALID_OPTS}: priv-key: {e}"))?;
                let own = s.verifying_key(method);
                if let Some(pub_pem) = pub_pem {
                    let given = load_public(method, &pub_pem)
                        .map_err(|e| format!("{ERR_INVALID_OPTS}: pub-key: {e}"))?;
                    let sig = s
                        .sign(&SystemRandom::new(), PROBE)
                        .map_err(|e| format!("{ERR_INVALID_OPTS}: priv-key: {e}"))?;
                    if !given.verify(PROBE, &sig) {
                        return Err(ERR_KEY_MISMATCH.to_string());
                    }
                }
                (Some(s), own)
            }
        };
        let header = format!(r#"{{"alg":"{}","typ":"JWT"}}"#, method.name());
        Ok(JwtKeys {
            method,
            ttl,
            signing,
            verifying,
            header_b64: URL_SAFE_NO_PAD.encode(header),
            rng: SystemRandom::new(),
        })
    }

    pub fn method(&self) -> SignMethod {
        self.method
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether this member only checks tokens (a `pub-key` without a
    /// `priv-key`).
    pub fn verify_only(&self) -> bool {
        self.signing.is_none()
    }

    /// A token for `user` at auth `revision`, expiring `ttl` after `now`
    /// (claims `exp`, `revision`, `username`, as etcd writes them).
    pub fn sign(&self, user: &str, revision: u64, now: SystemTime) -> Result<String, String> {
        let Some(key) = &self.signing else {
            return Err(ERR_VERIFY_ONLY.to_string());
        };
        let exp = now
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .ok_or_else(|| "auth: token expiry out of range".to_string())?
            .as_secs();
        // serde_json writes an object's keys in the order given; these
        // are sorted, as Go's encoder sorts a map's keys.
        let mut claims = serde_json::Map::new();
        claims.insert("exp".into(), Value::from(exp));
        claims.insert("revision".into(), Value::from(revision));
        claims.insert("username".into(), Value::from(user));
        let payload = Value::Object(claims).to_string();
        let mut token = String::with_capacity(self.header_b64.len() + 2 * payload.len() + 700);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut token);
        let sig = key.sign(&self.rng, token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut token);
        Ok(token)
    }

    /// The user and auth revision of a valid token; `None` for anything
    /// else (bad form, other algorithm, bad signature, expired, claims
    /// missing or of the wrong type).
    pub fn verify(&self, token: &str, now: SystemTime) -> Option<(String, u64)> {
        if token.len() > JWT_TOKEN_BYTES_MAX {
            return None;
        }
        let mut parts = token.split('.');
        let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        // Header first: its algorithm must be ours before any key is used.
        let header = decode_object(header)?;
        if header.get("alg")?.as_str()? != self.method.name() {
            return None;
        }
        let signed = &token[..header_len(token)?];
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        if !self.verifying.verify(signed.as_bytes(), &sig) {
            return None;
        }
        let claims = decode_object(payload)?;
        let now_s = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
        // RFC 7519: valid strictly before exp, and from nbf on.
        if now_s >= claims.get("exp")?.as_f64()? {
            return None;
        }
        if let Some(nbf) = claims.get("nbf") {
            if now_s < nbf.as_f64()? {
                return None;
            }
        }
        let user = claims.get("username")?.as_str()?;
        let revision = claims.get("revision")?.as_u64()?;
        if user.is_empty() || user.len() > AUTH_NAME_BYTES_MAX {
            return None;
        }
        Some((user.to_string(), revision))
    }
}

/// Length of `header.payload`: everything before the second dot.
fn header_len(token: &str) -> Option<usize> {
    let first = token.find('.')?;
    let second = token[first + 1..].find('.')?;
    Some(first + 1 + second)
}

fn decode_object(segment: &str) -> Option<serde_json::Map<String, Value>> {
    let raw = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&raw).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

impl SigningKey {
    fn sign(&self, rng: &SystemRandom, msg: &[u8]) -> Result<Vec<u8>, String> {
        let failed = |_| "auth: cannot sign the token".to_string();
        match self {
            SigningKey::Rsa(k, padding) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(*padding, rng, msg, &mut sig).map_err(failed)?;
                Ok(sig)
            }
            SigningKey::Ecdsa(k) => Ok(k.sign(rng, msg).map_err(failed)?.as_ref().to_vec()),
            SigningKey::P521(k) => {
                let sig: p521::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_vec())
            }
            SigningKey::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            SigningKey::Hmac(k) => Ok(ring::hmac::sign(k, msg).as_ref().to_vec()),
        }
    }

    /// The key that checks this key's signatures.
    fn verifying_key(&self, method: SignMethod) -> VerifyingKey {
        let ring = |public: &[u8]| {
            VerifyingKey::Ring(rs::UnparsedPublicKey::new(
                ring_verify_alg(method),
                public.to_vec(),
            ))
        };
        match self {
            SigningKey::Rsa(k, _) => ring(k.public_key().as_ref()),
            SigningKey::Ecdsa(k) => ring(k.public_key().as_ref()),
            SigningKey::Ed25519(k) => ring(k.public_key().as_ref()),
            SigningKey::P521(k) => VerifyingKey::P521(k.into()),
            SigningKey::Hmac(k) => VerifyingKey::Hmac(k.clone()),
        }
    }
}

impl VerifyingKey {
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            VerifyingKey::Ring(k) => k.verify(msg, sig).is_ok(),
            VerifyingKey::P521(k) => {
                p521::ecdsa::Signature::from_slice(sig).is_ok_and(|sig| k.verify(msg, &sig).is_ok())
            }
            VerifyingKey::Hmac(k) => ring::hmac::verify(k, msg, sig).is_ok(),
        }
    }
}

fn ring_verify_alg(method: SignMethod) -> &'static dyn rs::VerificationAlgorithm {
    use SignMethod as M;
    match method {
        M::RS256 => &rs::RSA_PKCS1_2048_8192_SHA256,
        M::RS384 => &rs::RSA_PKCS1_2048_8192_SHA384,
        M::RS512 => &rs::RSA_PKCS1_2048_8192_SHA512,
        M::PS256 => &rs::RSA_PSS_2048_8192_SHA256,
        M::PS384 => &rs::RSA_PSS_2048_8192_SHA384,
        M::PS512 => &rs::RSA_PSS_2048_8192_SHA512,
        M::ES256 => &rs::ECDSA_P256_SHA256_FIXED,
        M::ES384 => &rs::ECDSA_P384_SHA384_FIXED,
        M::EdDSA => &rs::ED25519,
        M::ES512 | M::HS256 | M::HS384 | M::HS512 => {
            unreachable!("{} is not checked with a ring public key", method.name())
        }
    }
}

fn rsa_padding(method: SignMethod) -> &'static dyn rs::RsaEncoding {
    use SignMethod as M;
    match method {
        M::RS256 => &rs::RSA_PKCS1_SHA256,
        M::RS384 => &rs::RSA_PKCS1_SHA384,
        M::RS512 => &rs::RSA_PKCS1_SHA512,
        M::PS256 => &rs::RSA_PSS_SHA256,
        M::PS384 => &rs::RSA_PSS_SHA384,
        _ => &rs::RSA_PSS_SHA512,
    }
}

fn hmac_alg(method: SignMethod) -> ring::hmac::Algorithm {
    match method {
        SignMethod::HS256 => ring::hmac::HMAC_SHA256,
        SignMethod::HS384 => ring::hmac::HMAC_SHA384,
        _ => ring::hmac::HMAC_SHA512,
    }
}

/// Splits `jwt,name=value,...` into its options, refusing what etcd
/// refuses (a part that is not one `name=value`, a repeated name), and
/// also unknown names: a misspelt option would otherwise be silently
/// without effect.
fn decompose(value: &str) -> Result<HashMap<&str, &str>, String> {
    let mut parts = value.split(',');
    let kind = parts.next().unwrap_or("");
    if kind != "jwt" {
        return Err(format!(
            "{ERR_INVALID_OPTS}: token type {kind:?} is not \"jwt\""
        ));
    }
    let mut opts = HashMap::new();
    for part in parts {
        let mut kv = part.split('=');
        let (Some(k), Some(v), None) = (kv.next(), kv.next(), kv.next()) else {
            return Err(format!(
                "{ERR_INVALID_OPTS}: {part:?} is not one name=value"
            ));
        };
        if !matches!(k, "pub-key" | "priv-key" | "sign-method" | "ttl") {
            return Err(format!(
                "{ERR_INVALID_OPTS}: unknown option {k:?} (known: pub-key, priv-key, sign-method, ttl)"
            ));
        }
        if opts.insert(k, v).is_some() {
            return Err(format!("{ERR_INVALID_OPTS}: option {k:?} given twice"));
        }
    }
    // An empty value counts as absent, as in etcd.
    opts.retain(|_, v| !v.is_empty());
    Ok(opts)
}

fn read_key_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut b = Vec::new();
    f.take(JWT_KEY_FILE_BYTES_MAX + 1)
        .read_to_end(&mut b)
        .map_err(|e| format!("cannot read: {e}"))?;
    if b.len() as u64 > JWT_KEY_FILE_BYTES_MAX {
        return Err(format!(
            "larger than {JWT_KEY_FILE_BYTES_MAX} bytes: not a key file"
        ));
    }
    if b.is_empty() {
        return Err("empty file".into());
    }
    Ok(b)
}

/// The first PEM block of a key file (the one Go's `pem.Decode` takes).
fn first_pem(file: &[u8]) -> Result<pem::Pem, String> {
    let blocks = pem::parse_many(file).map_err(|e| format!("not PEM: {e}"))?;
    blocks
        .into_iter()
        .next()
        .ok_or_else(|| "no PEM block in the file".to_string())
}

// DER contents of the object identifiers keys are told apart by.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn curve_oid(method: SignMethod) -> &'static [u8] {
    match method {
        SignMethod::ES256 => OID_P256,
        SignMethod::ES384 => OID_P384,
        _ => OID_P521,
    }
}

fn load_private(method: SignMethod, file: &[u8]) -> Result<SigningKey, String> {
    let rejected = |e: ring::error::KeyRejected| format!("not a {} key: {e}", method.name());
    if method.family() == Family::Hmac {
        // The file's bytes, newline and all, as etcd uses them.
        return Ok(SigningKey::Hmac(ring::hmac::Key::new(
            hmac_alg(method),
            file,
        )));
    }
    let block = first_pem(file)?;
    let (tag, der) = (block.tag(), block.contents());
    let rng = SystemRandom::new();
    match (method.family(), tag) {
        (Family::Rsa, "PRIVATE KEY") => Ok(SigningKey::Rsa(
            rs::RsaKeyPair::from_pkcs8(der).map_err(rejected)?,
            rsa_padding(method),
        )),
        (Family::Rsa, "RSA PRIVATE KEY") => Ok(SigningKey::Rsa(
            rs::RsaKeyPair::from_der(der).map_err(rejected)?,
            rsa_padding(method),
        )),
        (Family::Ec, "PRIVATE KEY" | "EC PRIVATE KEY") if method == SignMethod::ES512 => {
            let secret = if tag == "PRIVATE KEY" {
                use p521::pkcs8::DecodePrivateKey as _;
                p521::SecretKey::from_pkcs8_der(der).map_err(|e| format!("not a P-521 key: {e}"))?
            } else {
                p521::SecretKey::from_sec1_der(der).map_err(|e| format!("not a P-521 key: {e}"))?
            };
            let key = p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes())
                .map_err(|e| format!("not a P-521 key: {e}"))?;
            Ok(SigningKey::P521(key))
        }
        (Family::Ec, "PRIVATE KEY" | "EC PRIVATE KEY") => {
            let alg = if method == SignMethod::ES256 {
                &rs::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &rs::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pkcs8 = if tag == "PRIVATE KEY" {
                der.to_vec()
            } else {
                sec1_to_pkcs8(curve_oid(method), der)
            };
            Ok(SigningKey::Ecdsa(
                rs::EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng).map_err(rejected)?,
            ))
        }
        (Family::Ed, "PRIVATE KEY") => Ok(SigningKey::Ed25519(
            rs::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?,
        )),
        _ => Err(format!(
            "a {tag:?} PEM block is not a private key for {}",
            method.name()
        )),
    }
}

fn load_public(method: SignMethod, file: &[u8]) -> Result<VerifyingKey, String> {
    let block = first_pem(file)?;
    let der = block.contents();
    let (alg_oid, params, key) = match block.tag() {
        "RSA PUBLIC KEY" => (OID_RSA.to_vec(), None, der.to_vec()),
        "PUBLIC KEY" => {
            let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
                .map_err(|e| format!("not a public key: {e}"))?;
            spki_parts(&spki)
        }
        "CERTIFICATE" => {
            let (_, cert) = x509_parser::parse_x509_certificate(der)
                .map_err(|e| format!("not a certificate: {e}"))?;
            spki_parts(cert.public_key())
        }
        other => {
            return Err(format!(
                "a {other:?} PEM block is not a public key for {}",
                method.name()
            ))
        }
    };
    let expected = match method.family() {
        Family::Rsa => (OID_RSA, None),
        Family::Ec => (OID_EC_PUBLIC_KEY, Some(curve_oid(method))),
        Family::Ed => (OID_ED25519, None),
        Family::Hmac => unreachable!("HMAC has no public key"),
    };
    let params_ok = match expected.1 {
        None => true,
        Some(curve) => params.as_deref() == Some(curve),
    };
    if alg_oid != expected.0 || !params_ok {
        return Err(format!(
            "the key's type or curve is not one for {}",
            method.name()
        ));
    }
    if method == SignMethod::ES512 {
        let k = p521::ecdsa::VerifyingKey::from_sec1_bytes(&key)
            .map_err(|e| format!("not a P-521 point: {e}"))?;
        return Ok(VerifyingKey::P521(k));
    }
    Ok(VerifyingKey::Ring(rs::UnparsedPublicKey::new(
        ring_verify_alg(method),
        key,
    )))
}

/// (algorithm OID, curve OID when it names one, key bytes).
fn spki_parts(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> (Vec<u8>, Option<Vec<u8>>, Vec<u8>) {
    let params = spki
        .algorithm
        .parameters
        .as_ref()
        .filter(|p| p.header.tag().0 == 6)
        .map(|p| p.data.to_vec());
    (
        spki.algorithm.algorithm.as_bytes().to_vec(),
        params,
        spki.subject_public_key.data.to_vec(),
    )
}

/// Wraps a SEC 1 `ECPrivateKey` in the PKCS#8 envelope ring reads.
fn sec1_to_pkcs8(curve: &[u8], sec1: &[u8]) -> Vec<u8> {
    let mut alg = der_tlv(0x06, OID_EC_PUBLIC_KEY);
    alg.extend(der_tlv(0x06, curve));
    let mut body = der_tlv(0x02, &[0]);
    body.extend(der_tlv(0x30, &alg));
    body.extend(der_tlv(0x04, sec1));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A Go duration (`time.ParseDuration`): decimal numbers with units ns,
/// us (µs), ms, s, m, h, e.g. `300ms`, `1.5h`, `2h45m`. Negative ones are
/// refused here: a token lifetime is positive.
fn parse_go_duration(s: &str) -> Result<Duration, String> {
    const NS: u128 = 1;
    const MAX_NS: u128 = i64::MAX as u128; // Go's Duration is an i64.
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err("must be positive".into());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty".into());
    }
    let mut total: u128 = 0;
    let mut r = rest;
    while !r.is_empty() {
        let int_len = r.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = r.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err("expected a number".into());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        let unit_ns = match unit {
            "ns" => NS,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit".into()),
            u => return Err(format!("unknown unit {u:?}")),
        };
        let too_long = || "out of range".to_string();
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u128>().map_err(|_| too_long())?
        };
        let mut part = whole.checked_mul(unit_ns).ok_or_else(too_long)?;
        // Fraction digits past the 18th cannot change a nanosecond count.
        let frac = &frac[..frac.len().min(18)];
        if !frac.is_empty() {
            let digits: u128 = frac.parse().map_err(|_| too_long())?;
            part += digits * unit_ns / 10u128.pow(frac.len() as u32);
        }
        total = total.checked_add(part).ok_or_else(too_long)?;
        if total > MAX_NS {
            return Err(too_long());
        }
        r = next;
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_as_go_does() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("2µs"), Duration::from_micros(2));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in [
            "",
            "5",
            "m",
            "-5m",
            "5x",
            "1..5s",
            "99999999999999999999h",
            ".",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
