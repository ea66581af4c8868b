//! Options of get, put and delete, as builders (etcd clientv3's `OpOption`s).

/// Which keys an operation covers, relative to its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyRange {
    /// The key alone.
    #[default]
    Single,
    /// Every key starting with the key (every key at all if the key is empty).
    Prefix,
    /// Every key greater than or equal to the key.
    FromKey,
    /// The keys in `[key, end)`.
    End(Vec<u8>),
}

impl KeyRange {
    /// The `(key, range_end)` pair sent on the wire for `key`, with etcd's
    /// conventions: `range_end` empty = one key, `"\0"` = every key >= key,
    /// key = range_end = `"\0"` = all keys.
    pub fn resolve(&self, key: &[u8]) -> (Vec<u8>, Vec<u8>) {
        match self {
            KeyRange::Single => (key.to_vec(), Vec::new()),
            KeyRange::Prefix if key.is_empty() => (vec![0], vec![0]),
            KeyRange::Prefix => (key.to_vec(), prefix_range_end(key)),
            KeyRange::FromKey if key.is_empty() => (vec![0], vec![0]),
            KeyRange::FromKey => (key.to_vec(), vec![0]),
            KeyRange::End(end) => (key.to_vec(), end.clone()),
        }
    }
}

/// The smallest key greater than every key with this prefix, or `"\0"` (all
/// keys from the prefix on) when no such key exists (a prefix of 0xff bytes).
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Order of a get's results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

/// What a get's results are sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// Options of [`Client::get`](crate::Client::get).
///
/// ```
/// use cairn_client::{GetOptions, SortOrder, SortTarget};
/// let options = GetOptions::new()
///     .with_prefix()
///     .with_limit(10)
///     .with_sort(SortTarget::Mod, SortOrder::Descend);
/// assert_eq!(options.limit, 10);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    pub range: KeyRange,
    /// Most keys returned; 0 = no limit.
    pub limit: i64,
    /// Read the store as of this revision; 0 = the latest.
    pub revision: i64,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    /// Answer from the member's local state without a linearizability check.
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

impl GetOptions {
    pub fn new() -> GetOptions {
        GetOptions::default()
    }
    pub fn with_prefix(mut self) -> Self {
        self.range = KeyRange::Prefix;
        self
    }
    pub fn with_from_key(mut self) -> Self {
        self.range = KeyRange::FromKey;
        self
    }
    pub fn with_range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.range = KeyRange::End(end.into());
        self
    }
    pub fn with_limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }
    pub fn with_revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }
    pub fn with_sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.sort_target = target;
        self.sort_order = order;
        self
    }
    pub fn with_serializable(mut self) -> Self {
        self.serializable = true;
        self
    }
    pub fn with_keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }
    pub fn with_count_only(mut self) -> Self {
        self.count_only = true;
        self
    }
    pub fn with_mod_revision_range(mut self, min: i64, max: i64) -> Self {
        self.min_mod_revision = min;
        self.max_mod_revision = max;
        self
    }
    pub fn with_create_revision_range(mut self, min: i64, max: i64) -> Self {
        self.min_create_revision = min;
        self.max_create_revision = max;
        self
    }
}

/// Options of [`Client::put`](crate::Client::put).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Lease to attach the key to; 0 = none.
    pub lease: i64,
    /// Return the key's previous state.
    pub prev_kv: bool,
    /// Keep the key's current value (fails if the key does not exist).
    pub ignore_value: bool,
    /// Keep the key's current lease (fails if the key does not exist).
    pub ignore_lease: bool,
}

impl PutOptions {
    pub fn new() -> PutOptions {
        PutOptions::default()
    }
    pub fn with_lease(mut self, lease: i64) -> Self {
        self.lease = lease;
        self
    }
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }
    pub fn with_ignore_value(mut self) -> Self {
        self.ignore_value = true;
        self
    }
    pub fn with_ignore_lease(mut self) -> Self {
        self.ignore_lease = true;
        self
    }
}

/// Options of [`Client::delete`](crate::Client::delete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub range: KeyRange,
    /// Return the deleted pairs.
    pub prev_kv: bool,
}

impl DeleteOptions {
    pub fn new() -> DeleteOptions {
        DeleteOptions::default()
    }
    pub fn with_prefix(mut self) -> Self {
        self.range = KeyRange::Prefix;
        self
    }
    pub fn with_from_key(mut self) -> Self {
        self.range = KeyRange::FromKey;
        self
    }
    pub fn with_range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.range = KeyRange::End(end.into());
        self
    }
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }
}

/// Options of [`Client::watch`](crate::Client::watch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchOptions {
    pub range: KeyRange,
    /// First revision to deliver; 0 = changes from now on.
    pub start_revision: i64,
    /// Ask for periodic progress notifications.
    pub progress_notify: bool,
    /// Deliver each changed key's previous state.
    pub prev_kv: bool,
    /// Leave out put events.
    pub no_put: bool,
    /// Leave out delete events.
    pub no_delete: bool,
}

impl WatchOptions {
    pub fn new() -> WatchOptions {
        WatchOptions::default()
    }
    pub fn with_prefix(mut self) -> Self {
        self.range = KeyRange::Prefix;
        self
    }
    pub fn with_from_key(mut self) -> Self {
        self.range = KeyRange::FromKey;
        self
    }
    pub fn with_range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.range = KeyRange::End(end.into());
        self
    }
    pub fn with_start_revision(mut self, revision: i64) -> Self {
        self.start_revision = revision;
        self
    }
    pub fn with_progress_notify(mut self) -> Self {
        self.progress_notify = true;
        self
    }
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }
    pub fn with_no_put(mut self) -> Self {
        self.no_put = true;
        self
    }
    pub fn with_no_delete(mut self) -> Self {
        self.no_delete = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_etcds_conventions() {
        assert_eq!(KeyRange::Single.resolve(b"a"), (b"a".to_vec(), vec![]));
        assert_eq!(
            KeyRange::Prefix.resolve(b"ab"),
            (b"ab".to_vec(), b"ac".to_vec())
        );
        assert_eq!(
            KeyRange::Prefix.resolve(b"a\xff"),
            (b"a\xff".to_vec(), b"b".to_vec())
        );
        assert_eq!(
            KeyRange::Prefix.resolve(b"\xff\xff"),
            (b"\xff\xff".to_vec(), vec![0])
        );
        assert_eq!(KeyRange::Prefix.resolve(b""), (vec![0], vec![0]));
        assert_eq!(KeyRange::FromKey.resolve(b"k"), (b"k".to_vec(), vec![0]));
        assert_eq!(KeyRange::FromKey.resolve(b""), (vec![0], vec![0]));
        assert_eq!(
            KeyRange::End(b"z".to_vec()).resolve(b"a"),
            (b"a".to_vec(), b"z".to_vec())
        );
    }
}
