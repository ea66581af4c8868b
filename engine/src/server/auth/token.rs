//! Simple tokens: random strings handed out by Authenticate, each naming a
//! user until it has been unused for the token TTL.
//!
//! A token is made by the member that checked the password; what goes
//! through the Raft log (so that every member accepts the token) is only its
//! SHA-256, never the token itself. Expiry is each member's own business:
//! it decides whether a request is admitted, never how a logged entry
//! applies, so members cannot diverge over it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::limits::AUTH_TOKENS_MAX;

pub type TokenHash = [u8; 32];

/// Bytes of randomness in a token (printed as 32 hex characters).
const TOKEN_RANDOM_BYTES: usize = 16;

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh token: random hex, then `.` and the log index it was proposed
/// after (as etcd's simple tokens end in a counter), so two never collide.
pub fn generate(index: u64) -> String {
    let mut raw = [0u8; TOKEN_RANDOM_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let mut s = String::with_capacity(2 * TOKEN_RANDOM_BYTES + 21);
    for b in raw {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('.');
    s.push_str(&index.to_string());
    s
}

struct Entry {
    user: String,
    deadline: Instant,
}

pub struct Tokens {
    ttl: Duration,
    by_hash: HashMap<TokenHash, Entry>,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Tokens {
        Tokens {
            ttl,
            by_hash: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Remember a token; at the limit, the one closest to expiry goes.
    pub fn insert(&mut self, hash: TokenHash, user: &str, now: Instant) {
        if self.by_hash.len() >= AUTH_TOKENS_MAX && !self.by_hash.contains_key(&hash) {
            self.expire(now);
            if self.by_hash.len() >= AUTH_TOKENS_MAX {
                let oldest = self
                    .by_hash
                    .iter()
                    .min_by_key(|(_, e)| e.deadline)
                    .map(|(h, _)| *h);
                if let Some(h) = oldest {
                    self.by_hash.remove(&h);
                }
            }
        }
        self.by_hash.insert(
            hash,
            Entry {
                user: user.to_string(),
                deadline: now + self.ttl,
            },
        );
    }

    /// The user a token names; using it restarts its TTL.
    pub fn user(&mut self, token: &str, now: Instant) -> Option<&str> {
        let e = self.by_hash.get_mut(&hash(token))?;
        if e.deadline <= now {
            return None;
        }
        e.deadline = now + self.ttl;
        Some(e.user.as_str())
    }

    pub fn invalidate_user(&mut self, user: &str) {
        self.by_hash.retain(|_, e| e.user != user);
    }

    pub fn clear(&mut self) {
        self.by_hash.clear();
    }

    pub fn expire(&mut self, now: Instant) {
        self.by_hash.retain(|_, e| e.deadline > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_until_unused_for_the_ttl() {
        let t0 = Instant::now();
        let mut t = Tokens::new(Duration::from_secs(10));
        let tok = generate(7);
        assert!(tok.ends_with(".7"));
        t.insert(hash(&tok), "alice", t0);
        assert_eq!(t.user(&tok, t0 + Duration::from_secs(9)), Some("alice"));
        // Used at 9 s: good until 19 s.
        assert_eq!(t.user(&tok, t0 + Duration::from_secs(18)), Some("alice"));
        assert_eq!(t.user(&tok, t0 + Duration::from_secs(40)), None);
        assert_eq!(t.user("not-a-token", t0), None);
    }

    #[test]
    fn invalidating_a_user_drops_only_their_tokens() {
        let now = Instant::now();
        let mut t = Tokens::new(Duration::from_secs(10));
        let (a, b) = (generate(1), generate(2));
        assert_ne!(a, b);
        t.insert(hash(&a), "alice", now);
        t.insert(hash(&b), "bob", now);
        t.invalidate_user("alice");
        assert_eq!(t.user(&a, now), None);
        assert_eq!(t.user(&b, now), Some("bob"));
    }

    #[test]
    fn the_table_is_bounded() {
        let now = Instant::now();
        let mut t = Tokens::new(Duration::from_secs(10));
        for i in 0..(AUTH_TOKENS_MAX as u64 + 10) {
            t.insert(hash(&i.to_string()), "u", now + Duration::from_micros(i));
        }
        assert_eq!(t.len(), AUTH_TOKENS_MAX);
        // The newest survived.
        let last = (AUTH_TOKENS_MAX as u64 + 9).to_string();
        assert_eq!(t.user(&last, now), Some("u"));
    }
}
