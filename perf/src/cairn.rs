//! The cairn target: cairn's native protocol through `cairn-client`. One
//! [`Client`] is one connection, so `--conns N` opens N clients, spread
//! round-robin over the endpoints, and the harness's clients share them.

use std::time::Duration;

use bytes::Bytes;
use cairn_client::{Client, ConnectOptions, GetOptions, Op, PutOptions, Txn};

use crate::error::PerfError;
use crate::limits::{CAIRN_REQUEST_TIMEOUT_MS, CONNS_MAX, DIAL_TIMEOUT_MS, ERROR_KIND_CHARS_MAX};
use crate::target::{Consistency, OpError, RangeOptions, RangeResult, Target};

/// One connection to a cairn member.
#[derive(Clone, Debug)]
pub struct CairnConn {
    client: Client,
}

/// Opens `conns` connections, spread round-robin over `endpoints`.
pub async fn connect(endpoints: &[String], conns: usize) -> Result<Vec<CairnConn>, PerfError> {
    if endpoints.is_empty() {
        return Err(PerfError::config("no endpoints given"));
    }
    if conns == 0 || conns > CONNS_MAX {
        return Err(PerfError::config(format!(
            "--conns must be between 1 and {CONNS_MAX}"
        )));
    }
    let mut out = Vec::with_capacity(conns);
    for i in 0..conns {
        out.push(CairnConn::connect(&endpoints[i % endpoints.len()]).await?);
    }
    Ok(out)
}

impl CairnConn {
    /// Connects to one endpoint (`host:port` or `http://host:port`).
    pub async fn connect(endpoint: &str) -> Result<CairnConn, PerfError> {
        let options = ConnectOptions::default()
            .with_dial_timeout(Duration::from_millis(DIAL_TIMEOUT_MS))
            .with_request_timeout(Duration::from_millis(CAIRN_REQUEST_TIMEOUT_MS));
        let client =
            Client::connect([endpoint], options)
                .await
                .map_err(|e| PerfError::Connect {
                    endpoint: endpoint.to_string(),
                    reason: e.to_string(),
                })?;
        Ok(CairnConn { client })
    }

    /// The underlying client, for checks after a run.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Target for CairnConn {
    async fn put(&self, key: Bytes, value: Bytes) -> Result<(), OpError> {
        self.client
            .put(key, value, PutOptions::new())
            .await
            .map(|_| ())
            .map_err(op_error)
    }

    async fn range(
        &self,
        key: Bytes,
        range_end: Bytes,
        options: RangeOptions,
    ) -> Result<RangeResult, OpError> {
        let mut get = GetOptions::new().with_limit(options.limit);
        if !range_end.is_empty() {
            get = get.with_range_end(range_end);
        }
        if options.consistency == Consistency::Serializable {
            get = get.with_serializable();
        }
        if options.count_only {
            get = get.with_count_only();
        }
        let response = self.client.get(key, get).await.map_err(op_error)?;
        Ok(RangeResult {
            kvs: response
                .kvs
                .into_iter()
                .map(|kv| (Bytes::from(kv.key), Bytes::from(kv.value)))
                .collect(),
            count: response.count,
        })
    }

    async fn txn_put(&self, puts: Vec<(Bytes, Bytes)>) -> Result<(), OpError> {
        let ops = puts
            .into_iter()
            .map(|(key, value)| Op::put(key, value, PutOptions::new()));
        let response = self
            .client
            .txn(Txn::new().and_then(ops))
            .await
            .map_err(op_error)?;
        if !response.succeeded {
            return Err(OpError::new("txn: success branch not taken"));
        }
        Ok(())
    }
}

/// The client's errors print as etcd's tools print them; that text is the
/// kind.
fn op_error(error: cairn_client::Error) -> OpError {
    let mut kind = error.to_string();
    if let Some((cut, _)) = kind.char_indices().nth(ERROR_KIND_CHARS_MAX) {
        kind.truncate(cut);
    }
    OpError::new(kind)
}

/// Whether a cairn at `url` answers a read.
pub async fn answers(url: &str) -> bool {
    let Ok(conn) = CairnConn::connect(url).await else {
        return false;
    };
    let options = RangeOptions {
        consistency: Consistency::Linearizable,
        limit: 1,
        count_only: true,
    };
    conn.range(
        Bytes::from_static(b"cairn-perf-probe"),
        Bytes::new(),
        options,
    )
    .await
    .is_ok()
}
