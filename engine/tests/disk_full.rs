//! A full disk under a running member: when the WAL cannot get space (the
//! next segment's preallocation or a write fails with ENOSPC) the member
//! must stop (fail-stop) without acknowledging the write, and once space is
//! back it restarts with every acknowledged write.
//!
//! Runs on a real tmpfs of a chosen size (`mount -t tmpfs -o size=…`), so it
//! needs root, as CI has; elsewhere it prints why it is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, Server};

/// The file system's size: one 64 MiB WAL segment (`WAL_SEGMENT_BYTES`)
/// plus room for the identity file and the in-progress writes, but not for
/// a second segment.
const TMPFS_MIB: u64 = 72;
/// The size it is grown to when "space is back".
const TMPFS_GROWN_MIB: u64 = 400;
/// Value size of the writes: a few hundred fill a segment.
const VALUE_BYTES: usize = 256 * 1024;
/// More writes than fit: 100 MiB.
const WRITES_MAX: usize = 400;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, mib: u64) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(st.success(), "remount {} failed", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_member_out_of_disk_stops_and_restarts_with_every_acknowledged_write() {
    let base = tempfile::tempdir().unwrap();
    let fs = match Tmpfs::mount(base.path(), TMPFS_MIB) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("SKIPPED: cannot mount a small tmpfs (needs root): {e}");
            return;
        }
    };
    let data = base.path().join("data");
    let mut server = Server::start(&data, &[]);
    let mut c = Client::connect(server.addr).unwrap();

    let value = vec![b'v'; VALUE_BYTES];
    let mut acked: Vec<String> = Vec::new();
    let mut failure = None;
    for n in 0..WRITES_MAX {
        let key = format!("full/{n:04}");
        match c.put(key.as_bytes(), &value) {
            Ok(_) => acked.push(key),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the disk never filled up");

    // Fail-stop: the member exits rather than serving with a log it cannot
    // extend.
    let child = server.child.as_mut().expect("started");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the member kept running after a write failed with: {failure}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !status.success(),
        "a member out of disk exited with {status}"
    );
    server.child = None;
    eprintln!(
        "disk full after {} acknowledged writes of {} KiB; first failure: {failure}; member exited with {status}",
        acked.len(),
        VALUE_BYTES / 1024
    );

    // Space is back: the member restarts with everything it acknowledged.
    fs.resize(TMPFS_GROWN_MIB);
    server.spawn();
    let mut c = Client::connect(server.addr).unwrap();
    for key in &acked {
        let got = c.get_key(key.as_bytes());
        assert_eq!(
            got.as_ref().map(Vec::len),
            Some(VALUE_BYTES),
            "acknowledged {key} lost after the disk filled up"
        );
    }
    c.put(b"after", b"space is back").unwrap();
    drop(c);
    drop(server);
    drop(fs);
}
