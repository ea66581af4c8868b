//! A failed fdatasync or write stops the WAL: the appenders of that batch get
//! an error and every later append is refused.

mod wal_util;

use std::path::Path;

use cairn_engine::io::MemFs;
use cairn_engine::wal::{self, Record, WalError, WalOptions};

const DIR: &str = "/data/member/wal";

fn entry(index: u64) -> Record<'static> {
    Record::Entry {
        index,
        term: 1,
        kind: 0,
        payload: b"payload",
    }
}

#[test]
fn failed_fsync_fails_the_batch_and_stops_the_log() {
    wal_util::run(|| async {
        let fs = MemFs::new();
        let (log, _) = wal::open(fs.clone(), Path::new(DIR), WalOptions::default())
            .await
            .unwrap();
        let lsn = log.append(&[entry(1)]).await.unwrap();
        log.wait_durable(lsn).await.unwrap();

        fs.fail_next_fsync();
        // Several appenders in the failing batch: all of them learn.
        let mut waits = Vec::new();
        for i in 2..6 {
            let lsn = log.append(&[entry(i)]).await.unwrap();
            let l = log.clone();
            waits.push(glommio::spawn_local(
                async move { l.wait_durable(lsn).await },
            ));
        }
        for w in waits {
            let err = w.await.unwrap_err();
            assert!(matches!(err, WalError::FailStopped(_)), "{err}");
            assert!(err.to_string().contains("fdatasync"), "{err}");
        }
        let err = log.append(&[entry(6)]).await.unwrap_err();
        assert!(matches!(err, WalError::FailStopped(_)), "{err}");
        assert!(log.try_append(&[entry(6)]).is_err());
        assert!(log.sync().await.is_err());
        drop(log);

        // The acknowledged entry survives; the failed batch may or may not.
        let (_log, rec) = wal::open(fs.reopen(), Path::new(DIR), WalOptions::default())
            .await
            .unwrap();
        assert_eq!(rec.entries[0].index, 1);
    });
}

#[test]
fn failed_write_stops_the_log() {
    wal_util::run(|| async {
        let fs = MemFs::new();
        let (log, _) = wal::open(fs.clone(), Path::new(DIR), WalOptions::default())
            .await
            .unwrap();
        fs.fail_next_write();
        let lsn = log.append(&[entry(1)]).await.unwrap();
        let err = log.wait_durable(lsn).await.unwrap_err();
        assert!(err.to_string().contains("injected write failure"), "{err}");
        assert!(log.append(&[entry(2)]).await.is_err());
    });
}

#[test]
fn oversized_entry_is_refused_without_stopping_the_log() {
    wal_util::run(|| async {
        let fs = MemFs::new();
        let opts = WalOptions::default();
        let (log, _) = wal::open(fs.clone(), Path::new(DIR), opts).await.unwrap();
        let big = vec![0u8; opts.entry_payload_max() + 1];
        let rec = Record::Entry {
            index: 1,
            term: 1,
            kind: 0,
            payload: &big,
        };
        assert!(matches!(
            log.append(&[rec]).await,
            Err(WalError::EntryTooLarge { .. })
        ));
        let fits = &big[..opts.entry_payload_max()];
        let rec = Record::Entry {
            index: 1,
            term: 1,
            kind: 0,
            payload: fits,
        };
        let lsn = log.append(&[rec]).await.unwrap();
        log.wait_durable(lsn).await.unwrap();
    });
}
