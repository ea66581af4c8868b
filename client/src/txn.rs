//! Transactions: compares, operations and the `Txn` builder.
//!
//! ```
//! use cairn_client::{Compare, CompareResult, GetOptions, Op, PutOptions, Txn};
//! let txn = Txn::new()
//!     .when([Compare::mod_revision("config", CompareResult::Greater, 0)])
//!     .and_then([Op::put("config", "v2", PutOptions::new())])
//!     .or_else([
//!         Op::put("config", "v1", PutOptions::new()),
//!         Op::get("config", GetOptions::new()),
//!     ]);
//! assert_eq!(txn.failure.len(), 2);
//! ```

use crate::options::{DeleteOptions, GetOptions, KeyRange, PutOptions};

/// How a compare's target relates to the given value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

impl CompareResult {
    /// The operator etcdctl's txn syntax writes: `=`, `>`, `<`, `!=`.
    pub fn parse(op: &str) -> Option<CompareResult> {
        match op {
            "=" | "==" => Some(CompareResult::Equal),
            ">" => Some(CompareResult::Greater),
            "<" => Some(CompareResult::Less),
            "!=" => Some(CompareResult::NotEqual),
            _ => None,
        }
    }
}

/// What a compare looks at, with the value it is compared against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    Version(i64),
    CreateRevision(i64),
    ModRevision(i64),
    Value(Vec<u8>),
    Lease(i64),
}

/// One guard of a txn: `target(key) result value`, over one key or a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: Vec<u8>,
    pub range: KeyRange,
    pub result: CompareResult,
    pub target: CompareTarget,
}

impl Compare {
    pub fn new(key: impl Into<Vec<u8>>, result: CompareResult, target: CompareTarget) -> Compare {
        Compare {
            key: key.into(),
            range: KeyRange::Single,
            result,
            target,
        }
    }
    pub fn version(key: impl Into<Vec<u8>>, result: CompareResult, version: i64) -> Compare {
        Compare::new(key, result, CompareTarget::Version(version))
    }
    pub fn create_revision(
        key: impl Into<Vec<u8>>,
        result: CompareResult,
        revision: i64,
    ) -> Compare {
        Compare::new(key, result, CompareTarget::CreateRevision(revision))
    }
    pub fn mod_revision(key: impl Into<Vec<u8>>, result: CompareResult, revision: i64) -> Compare {
        Compare::new(key, result, CompareTarget::ModRevision(revision))
    }
    pub fn value(
        key: impl Into<Vec<u8>>,
        result: CompareResult,
        value: impl Into<Vec<u8>>,
    ) -> Compare {
        Compare::new(key, result, CompareTarget::Value(value.into()))
    }
    pub fn lease(key: impl Into<Vec<u8>>, result: CompareResult, lease: i64) -> Compare {
        Compare::new(key, result, CompareTarget::Lease(lease))
    }
    /// Compare every key with the key as prefix.
    pub fn with_prefix(mut self) -> Self {
        self.range = KeyRange::Prefix;
        self
    }
    /// Compare every key in `[key, end)`.
    pub fn with_range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.range = KeyRange::End(end.into());
        self
    }
}

/// One operation: a request on its own or inside a txn branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Get {
        key: Vec<u8>,
        options: GetOptions,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        options: PutOptions,
    },
    Delete {
        key: Vec<u8>,
        options: DeleteOptions,
    },
    Txn(Txn),
}

impl Op {
    pub fn get(key: impl Into<Vec<u8>>, options: GetOptions) -> Op {
        Op::Get {
            key: key.into(),
            options,
        }
    }
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, options: PutOptions) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            options,
        }
    }
    pub fn delete(key: impl Into<Vec<u8>>, options: DeleteOptions) -> Op {
        Op::Delete {
            key: key.into(),
            options,
        }
    }
    pub fn txn(txn: Txn) -> Op {
        Op::Txn(txn)
    }

    /// True when the op only reads, so resending it cannot change the store.
    pub fn is_read_only(&self) -> bool {
        match self {
            Op::Get { .. } => true,
            Op::Put { .. } | Op::Delete { .. } => false,
            Op::Txn(txn) => txn.is_read_only(),
        }
    }
}

/// A transaction: if every compare holds, the success ops run, otherwise the
/// failure ops; atomically, at one revision. Ops may be nested txns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }
    /// Adds compares (all must hold for the success branch).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compare.extend(compares);
        self
    }
    /// Adds ops to the success branch.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.success.extend(ops);
        self
    }
    /// Adds ops to the failure branch.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.failure.extend(ops);
        self
    }
    /// True when neither branch writes.
    pub fn is_read_only(&self) -> bool {
        self.success
            .iter()
            .chain(&self.failure)
            .all(Op::is_read_only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_branches_and_read_only_looks_into_nested_txns() {
        let inner = Txn::new().and_then([Op::get("a", GetOptions::new())]);
        let txn = Txn::new()
            .when([Compare::value("a", CompareResult::Equal, "x")])
            .and_then([Op::txn(inner.clone())])
            .or_else([Op::get("b", GetOptions::new())]);
        assert!(txn.is_read_only());
        let writing = txn.or_else([Op::delete("c", DeleteOptions::new())]);
        assert!(!writing.is_read_only());
        assert!(
            !Op::txn(Txn::new().and_then([Op::put("k", "v", PutOptions::new())])).is_read_only()
        );
        assert_eq!(CompareResult::parse("!="), Some(CompareResult::NotEqual));
        assert_eq!(CompareResult::parse(">="), None);
    }
}
