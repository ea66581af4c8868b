//! Snapshot files in `<data-dir>/member/snap/`.
