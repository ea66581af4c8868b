//! The replicated auth store: users, roles, their permissions, whether auth
//! is on, and the auth revision. Every change arrives through the Raft log
//! and is applied on every member the same way; the store is saved in
//! snapshots.
//!
//! Passwords are kept only as bcrypt hashes. The hash is made by the member
//! that receives the request, before it is proposed, so no clear-text
//! password ever reaches the log or a snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::perm::RangeSet;
use super::AuthError;
use crate::limits::{
    AUTH_HASH_BYTES_MAX, AUTH_NAME_BYTES_MAX, AUTH_PERMS_PER_ROLE_MAX, AUTH_PERM_KEY_BYTES_MAX,
    AUTH_ROLES_MAX, AUTH_ROLES_PER_USER_MAX, AUTH_USERS_MAX,
};

pub const ROOT_USER: &str = "root";
pub const ROOT_ROLE: &str = "root";

/// READ, WRITE or READWRITE, as etcd numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermKind {
    Read = 0,
    Write = 1,
    ReadWrite = 2,
}

impl PermKind {
    pub fn from_u8(v: u8) -> Option<PermKind> {
        match v {
            0 => Some(PermKind::Read),
            1 => Some(PermKind::Write),
            2 => Some(PermKind::ReadWrite),
            _ => None,
        }
    }

    fn reads(self) -> bool {
        matches!(self, PermKind::Read | PermKind::ReadWrite)
    }

    fn writes(self) -> bool {
        matches!(self, PermKind::Write | PermKind::ReadWrite)
    }
}

/// One granted range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub kind: PermKind,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// The bcrypt hash; `None` for a `--no-password` user (certificate
    /// authentication only).
    pub password_hash: Option<String>,
    pub roles: BTreeSet<String>,
}

impl User {
    pub fn is_root(&self) -> bool {
        self.roles.contains(ROOT_ROLE)
    }
}

/// A user's permissions merged over all their roles.
#[derive(Debug, Default)]
pub struct Merged {
    pub root: bool,
    pub read: RangeSet,
    pub write: RangeSet,
}

#[derive(Debug, Default)]
pub struct AuthStore {
    enabled: bool,
    /// Bumped by every change; a request checked against an older one is
    /// refused ("revision of auth store is old").
    revision: u64,
    users: BTreeMap<String, User>,
    /// Each role's permissions, sorted by key.
    roles: BTreeMap<String, Vec<Permission>>,
    /// Merged permissions by user, rebuilt on every change.
    merged: HashMap<String, Merged>,
}

/// The first auth revision (0 means "no user" in a request).
const REVISION_INITIAL: u64 = 1;

impl AuthStore {
    pub fn new() -> AuthStore {
        AuthStore {
            revision: REVISION_INITIAL,
            ..AuthStore::default()
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// A role's granted permissions (for the root role, what was granted
    /// to it explicitly, as etcd 3.4 shows it; it may do everything
    /// regardless).
    pub fn role(&self, name: &str) -> Result<Vec<Permission>, AuthError> {
        self.roles.get(name).cloned().ok_or(AuthError::RoleNotFound)
    }

    pub fn merged(&self, user: &str) -> Option<&Merged> {
        self.merged.get(user)
    }

    fn changed(&mut self) {
        self.revision += 1;
        self.merged = self
            .users
            .iter()
            .map(|(name, user)| {
                let perms = || {
                    user.roles
                        .iter()
                        .filter_map(|r| self.roles.get(r))
                        .flatten()
                };
                let read = RangeSet::from_ranges(
                    perms()
                        .filter(|p| p.kind.reads())
                        .map(|p| (p.key.as_slice(), p.range_end.as_slice())),
                );
                let write = RangeSet::from_ranges(
                    perms()
                        .filter(|p| p.kind.writes())
                        .map(|p| (p.key.as_slice(), p.range_end.as_slice())),
                );
                (
                    name.clone(),
                    Merged {
                        root: user.is_root(),
                        read,
                        write,
                    },
                )
            })
            .collect();
    }

    pub fn enable(&mut self) -> Result<(), AuthError> {
        if self.enabled {
            return Ok(());
        }
        let root = self
            .users
            .get(ROOT_USER)
            .ok_or(AuthError::RootUserNotExist)?;
        if !root.is_root() {
            return Err(AuthError::RootRoleNotExist);
        }
        self.enabled = true;
        // etcd keeps the revision on enable; requests carry it from now on.
        self.changed();
        Ok(())
    }

    pub fn disable(&mut self) {
        if self.enabled {
            self.enabled = false;
            self.changed();
        }
    }

    pub fn user_add(&mut self, name: &str, password_hash: Option<String>) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        if self.users.contains_key(name) {
            return Err(AuthError::UserAlreadyExist);
        }
        let hash_len = password_hash.as_ref().map_or(0, String::len);
        if name.len() > AUTH_NAME_BYTES_MAX
            || self.users.len() >= AUTH_USERS_MAX
            || hash_len > AUTH_HASH_BYTES_MAX
        {
            return Err(AuthError::StoreFull);
        }
        self.users.insert(
            name.to_string(),
            User {
                password_hash,
                roles: BTreeSet::new(),
            },
        );
        self.changed();
        Ok(())
    }

    pub fn user_delete(&mut self, name: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT_USER {
            return Err(AuthError::InvalidAuthMgmt);
        }
        self.users.remove(name).ok_or(AuthError::UserNotFound)?;
        self.changed();
        Ok(())
    }

    /// A no-password user keeps having none, as in etcd.
    pub fn user_change_password(
        &mut self,
        name: &str,
        password_hash: String,
    ) -> Result<(), AuthError> {
        let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
        if password_hash.len() > AUTH_HASH_BYTES_MAX {
            return Err(AuthError::StoreFull);
        }
        if user.password_hash.is_some() {
            user.password_hash = Some(password_hash);
        }
        self.changed();
        Ok(())
    }

    pub fn user_grant_role(&mut self, name: &str, role: &str) -> Result<(), AuthError> {
        if !self.users.contains_key(name) {
            return Err(AuthError::UserNotFound);
        }
        // etcd lets the root role be granted before it was added.
        if role != ROOT_ROLE && !self.roles.contains_key(role) {
            return Err(AuthError::RoleNotFound);
        }
        let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
        if !user.roles.contains(role) && user.roles.len() >= AUTH_ROLES_PER_USER_MAX {
            return Err(AuthError::StoreFull);
        }
        if user.roles.insert(role.to_string()) {
            self.changed();
        }
        Ok(())
    }

    pub fn user_revoke_role(&mut self, name: &str, role: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT_USER && role == ROOT_ROLE {
            return Err(AuthError::InvalidAuthMgmt);
        }
        let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
        if !user.roles.remove(role) {
            return Err(AuthError::RoleNotGranted);
        }
        self.changed();
        Ok(())
    }

    pub fn role_add(&mut self, name: &str) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::RoleEmpty);
        }
        if self.roles.contains_key(name) {
            return Err(AuthError::RoleAlreadyExist);
        }
        if name.len() > AUTH_NAME_BYTES_MAX || self.roles.len() >= AUTH_ROLES_MAX {
            return Err(AuthError::StoreFull);
        }
        self.roles.insert(name.to_string(), Vec::new());
        self.changed();
        Ok(())
    }

    pub fn role_delete(&mut self, name: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT_ROLE {
            return Err(AuthError::InvalidAuthMgmt);
        }
        self.roles.remove(name).ok_or(AuthError::RoleNotFound)?;
        for user in self.users.values_mut() {
            user.roles.remove(name);
        }
        self.changed();
        Ok(())
    }

    /// Grant a range, or change the kind of an identical range already
    /// granted.
    pub fn role_grant_permission(&mut self, name: &str, perm: Permission) -> Result<(), AuthError> {
        // The range must hold a key: a non-empty end after the key, or
        // one of the two special ends.
        let valid = perm.range_end.is_empty()
            || perm.range_end == [0]
            || perm.key.as_slice() < perm.range_end.as_slice();
        if !valid {
            return Err(AuthError::InvalidAuthMgmt);
        }
        if perm.key.len() > AUTH_PERM_KEY_BYTES_MAX
            || perm.range_end.len() > AUTH_PERM_KEY_BYTES_MAX
        {
            return Err(AuthError::StoreFull);
        }
        let perms = self.roles.get_mut(name).ok_or(AuthError::RoleNotFound)?;
        let same = perms
            .iter()
            .position(|p| p.key == perm.key && p.range_end == perm.range_end);
        match same {
            Some(i) => perms[i].kind = perm.kind,
            None if perms.len() >= AUTH_PERMS_PER_ROLE_MAX => return Err(AuthError::StoreFull),
            None => {
                let at = perms.partition_point(|p| p.key <= perm.key);
                perms.insert(at, perm);
            }
        }
        self.changed();
        Ok(())
    }

    pub fn role_revoke_permission(
        &mut self,
        name: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), AuthError> {
        let perms = self.roles.get_mut(name).ok_or(AuthError::RoleNotFound)?;
        let before = perms.len();
        perms.retain(|p| !(p.key == key && p.range_end == range_end));
        if perms.len() == before {
            return Err(AuthError::PermissionNotGranted);
        }
        self.changed();
        Ok(())
    }

    /// The store for a snapshot.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(ENCODING_VERSION);
        out.push(u8::from(self.enabled));
        out.extend_from_slice(&self.revision.to_le_bytes());
        put_len(out, self.users.len());
        for (name, user) in &self.users {
            put_bytes(out, name.as_bytes());
            match &user.password_hash {
                Some(h) => {
                    out.push(1);
                    put_bytes(out, h.as_bytes());
                }
                None => out.push(0),
            }
            put_len(out, user.roles.len());
            for r in &user.roles {
                put_bytes(out, r.as_bytes());
            }
        }
        put_len(out, self.roles.len());
        for (name, perms) in &self.roles {
            put_bytes(out, name.as_bytes());
            put_len(out, perms.len());
            for p in perms {
                out.push(p.kind as u8);
                put_bytes(out, &p.key);
                put_bytes(out, &p.range_end);
            }
        }
    }

    pub fn decode(b: &[u8]) -> Result<AuthStore, String> {
        let mut r = Reader { b, at: 0 };
        let bad = |what: &str| format!("auth store in snapshot: {what}");
        if r.u8()? != ENCODING_VERSION {
            return Err(bad("unknown version"));
        }
        let enabled = r.u8()? == 1;
        let revision = r.u64()?;
        let mut users = BTreeMap::new();
        for _ in 0..r.len()? {
            let name = r.string()?;
            let password_hash = match r.u8()? {
                0 => None,
                _ => Some(r.string()?),
            };
            let mut roles = BTreeSet::new();
            for _ in 0..r.len()? {
                roles.insert(r.string()?);
            }
            users.insert(
                name,
                User {
                    password_hash,
                    roles,
                },
            );
        }
        let mut roles = BTreeMap::new();
        for _ in 0..r.len()? {
            let name = r.string()?;
            let mut perms = Vec::new();
            for _ in 0..r.len()? {
                let kind = PermKind::from_u8(r.u8()?).ok_or_else(|| bad("unknown permission"))?;
                let key = r.bytes()?.to_vec();
                let range_end = r.bytes()?.to_vec();
                perms.push(Permission {
                    kind,
                    key,
                    range_end,
                });
            }
            roles.insert(name, perms);
        }
        if r.at != b.len() {
            return Err(bad("trailing bytes"));
        }
        let mut store = AuthStore {
            enabled,
            revision: revision.saturating_sub(1),
            users,
            roles,
            merged: HashMap::new(),
        };
        // Rebuild the merged permissions (this bumps the revision back).
        store.changed();
        Ok(store)
    }
}

const ENCODING_VERSION: u8 = 1;

fn put_len(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("auth store sizes are bounded by the request limits");
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| "auth store in snapshot: truncated".to_string())?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn len(&mut self) -> Result<usize, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        let n = u32::from_le_bytes(a) as usize;
        // A count can never exceed the bytes left: refuse before allocating.
        if n > self.b.len() - self.at {
            return Err("auth store in snapshot: count larger than the data".into());
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.len()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| "auth store in snapshot: a name is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_root() -> AuthStore {
        let mut s = AuthStore::new();
        s.user_add("root", Some("h".into())).unwrap();
        s.user_grant_role("root", ROOT_ROLE).unwrap();
        s
    }

    #[test]
    fn enable_needs_root_with_the_root_role() {
        let mut s = AuthStore::new();
        assert_eq!(s.enable(), Err(AuthError::RootUserNotExist));
        s.user_add("root", Some("h".into())).unwrap();
        assert_eq!(s.enable(), Err(AuthError::RootRoleNotExist));
        s.user_grant_role("root", ROOT_ROLE).unwrap();
        s.enable().unwrap();
        assert!(s.enabled());
        assert_eq!(s.user_delete("root"), Err(AuthError::InvalidAuthMgmt));
        assert_eq!(
            s.user_revoke_role("root", ROOT_ROLE),
            Err(AuthError::InvalidAuthMgmt)
        );
    }

    #[test]
    fn every_change_bumps_the_revision() {
        let mut s = store_with_root();
        let r0 = s.revision();
        s.role_add("r").unwrap();
        s.role_grant_permission(
            "r",
            Permission {
                kind: PermKind::Read,
                key: b"a".to_vec(),
                range_end: b"b".to_vec(),
            },
        )
        .unwrap();
        assert_eq!(s.revision(), r0 + 2);
        // A refused change does not.
        assert_eq!(s.role_add("r"), Err(AuthError::RoleAlreadyExist));
        assert_eq!(s.revision(), r0 + 2);
    }

    #[test]
    fn merged_permissions_follow_roles() {
        let mut s = store_with_root();
        s.user_add("u", Some("h".into())).unwrap();
        s.role_add("r").unwrap();
        s.role_grant_permission(
            "r",
            Permission {
                kind: PermKind::Read,
                key: b"a".to_vec(),
                range_end: b"b".to_vec(),
            },
        )
        .unwrap();
        s.user_grant_role("u", "r").unwrap();
        let m = s.merged("u").unwrap();
        assert!(m.read.covers(b"a1", b""));
        assert!(!m.write.covers(b"a1", b""));
        s.role_delete("r").unwrap();
        assert!(!s.merged("u").unwrap().read.covers(b"a1", b""));
        assert!(s.user("u").unwrap().roles.is_empty());
    }

    #[test]
    fn a_snapshot_round_trip_keeps_everything() {
        let mut s = store_with_root();
        s.user_add("cert", None).unwrap();
        s.role_add("r").unwrap();
        s.role_grant_permission(
            "r",
            Permission {
                kind: PermKind::ReadWrite,
                key: b"k".to_vec(),
                range_end: vec![0],
            },
        )
        .unwrap();
        s.user_grant_role("cert", "r").unwrap();
        s.enable().unwrap();
        let mut b = Vec::new();
        s.encode(&mut b);
        let d = AuthStore::decode(&b).unwrap();
        assert_eq!(d.revision(), s.revision());
        assert!(d.enabled());
        assert_eq!(d.users, s.users);
        assert_eq!(d.roles, s.roles);
        assert!(d.merged("cert").unwrap().write.covers(b"kz", b""));
        for cut in 0..b.len() {
            assert!(AuthStore::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}
