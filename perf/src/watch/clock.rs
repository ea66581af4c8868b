//! Put start times carried in the values written, so that a watcher can
//! tell how long an event took from the put's start to its delivery without
//! any shared table: every value of a watch workload begins with the
//! nanoseconds from a process-wide epoch to the put's (scheduled) start.
//! Putters and watchers run in the same process, so one monotonic clock
//! serves both.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the time stamp at the start of a value.
pub const STAMP_BYTES: usize = 8;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A value of `len` bytes (at least [`STAMP_BYTES`]) stamped with `at`.
pub fn stamped_value(len: usize, at: Instant) -> Bytes {
    assert!(len >= STAMP_BYTES, "watch values hold a time stamp");
    let nanos = u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX);
    let mut value = BytesMut::with_capacity(len);
    value.put_u64(nanos);
    value.resize(len, b'x');
    value.freeze()
}

/// The instant stamped into `value`, or `None` for a value this process did
/// not write.
pub fn stamp_of(value: &[u8]) -> Option<Instant> {
    let bytes: [u8; STAMP_BYTES] = value.get(..STAMP_BYTES)?.try_into().ok()?;
    epoch().checked_add(Duration::from_nanos(u64::from_be_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_as_the_instant_written() {
        let at = Instant::now() + Duration::from_millis(3);
        let value = stamped_value(32, at);
        assert_eq!(value.len(), 32);
        let back = stamp_of(&value).unwrap();
        let error = if back > at { back - at } else { at - back };
        assert!(error < Duration::from_micros(1));
        assert_eq!(stamp_of(b"short"), None);
    }
}
