//! Member and cluster identity, fixed when a member first starts.
//!
//! Like etcd, a member's id is derived from its peer URLs and the cluster
//! token, and the cluster id from the sorted member ids and the token, so
//! every member of a new cluster computes the same ids without talking.
//! The ids and the initial membership are then written to
//! `<data-dir>/member/identity` and read back on every restart: changing
//! flags later cannot change who a member is.
//!
//! File format (text, so an operator can read it):
//!
//! ```text
//! cairn-identity 1
//! cluster-id <16 hex digits>
//! member-id <16 hex digits>
//! state existing                                                (only for a member that joined a running cluster)
//! member <16 hex digits> <name> <peer-url>[,<peer-url>...]     (one per initial member)
//! crc32 <8 hex digits>                                          (of every line above)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Config, InitialMember};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: u64,
    /// The initial members: (id, name, peer URLs).
    pub members: Vec<(u64, String, Vec<String>)>,
    /// Joined a running cluster (`--initial-cluster-state existing`): the
    /// membership comes from the leader's snapshot, not from `members`.
    pub joined: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged: {reason}; restore the member from a snapshot or remove its data dir"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

/// FNV-1a, 64 bits: small, stable across versions and platforms, and good
/// enough to spread ids; not a security boundary.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separate parts so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // 0 means "no member" everywhere.
    h.max(1)
}

pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let mut parts: Vec<&[u8]> = urls.iter().map(|u| u.as_bytes()).collect();
    parts.push(token.as_bytes());
    fnv1a(&parts)
}

pub fn cluster_id(member_ids: &[u64], token: &str) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let bytes: Vec<[u8; 8]> = ids.iter().map(|id| id.to_le_bytes()).collect();
    let mut parts: Vec<&[u8]> = bytes.iter().map(|b| &b[..]).collect();
    parts.push(token.as_bytes());
    fnv1a(&parts)
}

impl Identity {
    /// The identity a new member derives from its flags.
    pub fn from_config(config: &Config) -> Result<Identity, IdentityError> {
        let initial: Vec<InitialMember> = config.initial_members()?;
        let token = &config.initial_cluster_token;
        let members: Vec<(u64, String, Vec<String>)> = initial
            .iter()
            .map(|m| {
                (
                    member_id(&m.peer_urls, token),
                    m.name.clone(),
                    m.peer_urls.clone(),
                )
            })
            .collect();
        let ids: Vec<u64> = members.iter().map(|m| m.0).collect();
        let me = members
            .iter()
            .find(|m| m.1 == config.name)
            .map(|m| m.0)
            .unwrap_or(0);
        assert!(
            me != 0,
            "initial_members() guarantees this member is listed"
        );
        Ok(Identity {
            cluster_id: cluster_id(&ids, token),
            member_id: me,
            members,
            joined: false,
        })
    }

    fn encode(&self) -> String {
        let mut s = String::new();
        s.push_str("cairn-identity 1\n");
        s.push_str(&format!("cluster-id {:016x}\n", self.cluster_id));
        s.push_str(&format!("member-id {:016x}\n", self.member_id));
        if self.joined {
            s.push_str("state existing\n");
        }
        for (id, name, urls) in &self.members {
            s.push_str(&format!("member {id:016x} {name} {}\n", urls.join(",")));
        }
        let crc = crc32fast::hash(s.as_bytes());
        s.push_str(&format!("crc32 {crc:08x}\n"));
        s
    }

    fn decode(path: &Path, text: &str) -> Result<Identity, IdentityError> {
        let bad = |reason: &str| IdentityError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let Some(crc_at) = text.rfind("crc32 ") else {
            return Err(bad("no checksum line"));
        };
        let (body, crc_line) = text.split_at(crc_at);
        let want = u32::from_str_radix(crc_line.trim_start_matches("crc32 ").trim(), 16)
            .map_err(|_| bad("unreadable checksum"))?;
        if crc32fast::hash(body.as_bytes()) != want {
            return Err(bad("checksum mismatch"));
        }
        let hex = |s: Option<&str>| {
            s.and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| bad("unreadable id"))
        };
        let mut lines = body.lines();
        if lines.next() != Some("cairn-identity 1") {
            return Err(bad("unknown version"));
        }
        let cluster_id = hex(lines.next().and_then(|l| l.strip_prefix("cluster-id ")))?;
        let member_id = hex(lines.next().and_then(|l| l.strip_prefix("member-id ")))?;
        let mut members = Vec::new();
        let mut joined = false;
        for line in lines {
            if line == "state existing" {
                joined = true;
                continue;
            }
            let mut f = line
                .strip_prefix("member ")
                .ok_or_else(|| bad("unexpected line"))?
                .split(' ');
            let id = hex(f.next())?;
            let name = f
                .next()
                .ok_or_else(|| bad("member without name"))?
                .to_string();
            let urls = f
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect();
            members.push((id, name, urls));
        }
        Ok(Identity {
            cluster_id,
            member_id,
            members,
            joined,
        })
    }

    /// Read the identity of an existing member, or derive and durably write
    /// a new one. Returns the identity and whether it was just created.
    pub fn load_or_create(
        member_dir: &Path,
        config: &Config,
    ) -> Result<(Identity, bool), IdentityError> {
        if let Some(identity) = Identity::load(member_dir)? {
            return Ok((identity, false));
        }
        let identity = Identity::from_config(config)?;
        identity.save(member_dir)?;
        Ok((identity, true))
    }

    /// The identity written by an earlier start, if any.
    pub fn load(member_dir: &Path) -> Result<Option<Identity>, IdentityError> {
        let path = member_dir.join("identity");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Identity::decode(&path, &text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IdentityError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    /// Write the identity durably (temporary file, fsync, rename, fsync of
    /// the directory), so a crash leaves the old file or the new one.
    pub fn save(&self, member_dir: &Path) -> Result<(), IdentityError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| IdentityError::Io { op, path, source }
        };
        let path = member_dir.join("identity");
        std::fs::create_dir_all(member_dir).map_err(io("create", member_dir))?;
        let tmp = member_dir.join("identity.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(self.encode().as_bytes())
            .map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
        std::fs::File::open(member_dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync", member_dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = member_id(&["http://127.0.0.1:2380".into()], "t");
        assert_eq!(a, member_id(&["http://127.0.0.1:2380".into()], "t"));
        assert_ne!(a, member_id(&["http://127.0.0.1:2380".into()], "u"));
        assert_ne!(a, member_id(&["http://127.0.0.1:2381".into()], "t"));
        assert_eq!(cluster_id(&[1, 2, 3], "t"), cluster_id(&[3, 1, 2], "t"));
    }

    #[test]
    fn identity_round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::try_parse_from(["cairn"]).unwrap();
        let (first, created) = Identity::load_or_create(dir.path(), &config).unwrap();
        assert!(created);
        let (again, created) = Identity::load_or_create(dir.path(), &config).unwrap();
        assert!(!created);
        assert_eq!(first, again);

        let joined = Identity {
            joined: true,
            ..first.clone()
        };
        let other = tempfile::tempdir().unwrap();
        joined.save(other.path()).unwrap();
        assert_eq!(Identity::load(other.path()).unwrap(), Some(joined));

        let path = dir.path().join("identity");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("member-id ", "member-id f");
        std::fs::write(&path, text).unwrap();
        let err = Identity::load_or_create(dir.path(), &config)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("identity is damaged: checksum mismatch"),
            "{err}"
        );
    }
}
