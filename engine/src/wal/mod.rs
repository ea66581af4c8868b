//! The write-ahead log: segmented, preallocated, CRC-framed records written with O_DIRECT and group commit.
