//! The shard: one Raft group, one WAL, one MVCC index, owned by one
//! executor.
//!
//! The shard runs one loop over events: requests from connections, clock
//! ticks, and WAL durability notices. Each pass
//!
//! 1. turns all waiting write requests into **one** Raft proposal (one
//!    batch of entries, so one WAL write and one fdatasync), and all
//!    waiting linearizable reads into **one** ReadIndex round;
//! 2. drains Raft's `Ready`: hands entries and hard state to the WAL (the
//!    durability notice comes back later as an event, so the next batch can
//!    be proposed while this one is being synced), applies committed entries
//!    to the MVCC index and answers their requests, and answers reads whose
//!    barrier has been applied.
//!
//! A log entry's payload is a 16-byte envelope (proposing member, proposal
//! sequence number) followed by the client's request frame exactly as it
//! was received and verified. The envelope lets the member that proposed a
//! request find its waiting client when the entry is applied, whoever
//! appended it to the log.
//!
//! Leases (`super::lease`) and watches (`super::watch`) hang off the same
//! loop: lease grants and revocations are log entries; the leader answers
//! keep-alives from its own deadlines and, on each tick, proposes the
//! revocation of expired leases; every applied write's events go to the
//! watch hub, which publishes them once to each executor holding watches
//! (those filter, encode and push them to their connections) and answers
//! the executors' history reads for watches that fell behind. See
//! `docs/watch-lease.md`.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use cairn_raft::{self as raft, RawNode};
use cairn_wire::{decode_request, rpc, Encoder, Header, RequestBodyView, StatusResult};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use super::apply::{self, Class};
use super::lease::{self, Leases};
use super::maintenance::{Maintenance, PendingDefrag};
use super::members::Members;
use super::meta::Identity;
use super::peer::{IncomingSnapshot, PeerAddr, Peers};
use super::raftlog::RaftLog;
use super::route::{ConnId, Router, ToShard};
use super::snapshot::{self, SnapMeta, SnapshotOutcome};
use super::watch::WatchHub;
use super::Shared;
use super::{auth, compaction, corrupt};
use crate::io::DmaFs;
use crate::limits;
use crate::mvcc::{Event as MvccEvent, Mvcc, MvccConfig};
use crate::snap::{self as snapfile, SnapStore};
use crate::wal::{self, Lsn, Record, Wal, WalOptions};
use std::cell::RefCell;

#[path = "shard_members.rs"]
mod membership;

#[path = "shard_auth.rs"]
mod auth_glue;

/// Bytes of the envelope in front of every proposed request frame.
const ENVELOPE_BYTES: usize = 16;

/// Upper bound of the random first sequence number: far below the auth
/// flag bit (2^62) and the name-publishing number (2^64 - 1), with room
/// for 2^60 proposals after it.
const SEQ_START_MAX: u64 = 1 << 60;

/// A request waiting for its answer, and where the answer goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    executor: usize,
    conn: ConnId,
}

/// Events the shard loop reacts to.
pub(super) enum Event {
    Requests(ToShard),
    Tick,
    Persisted(PersistJob),
    Snapshot(SnapshotOutcome),
    /// A Raft message from a peer.
    Peer(raft::Message),
    /// A peer's advertised client URLs, from its Hello.
    PeerClientUrls {
        id: u64,
        urls: Vec<String>,
    },
    /// A snapshot streamed by the leader, to install when Raft says so.
    SnapshotReceived(IncomingSnapshot),
    /// A snapshot transfer to a peer ended.
    SnapshotSent {
        to: u64,
        ok: bool,
    },
    /// A password hash or check finished on the blocking pool.
    Auth(auth_glue::AuthJob),
    /// A peer said this member was removed from the cluster (while it was
    /// down, or before its own log showed it).
    RemovedByPeer {
        by: u64,
    },
}

/// Persist jobs in flight are at most the persist queue plus the one the
/// persister is waiting on, and at most one snapshot runs, so this queue of
/// finished work never fills: the persister never waits on the shard (which
/// may be waiting on it).
const PERSISTED_CAPACITY: usize = limits::SHARD_PERSIST_QUEUE_MAX + 3;

/// A Ready's writes, handed to the WAL and waiting to become durable.
pub(super) struct PersistJob {
    lsn: Lsn,
    entries: Vec<raft::Entry>,
    hard_state: Option<raft::HardState>,
    messages: Vec<raft::Message>,
}

/// Linearizable reads sharing one ReadIndex round.
struct ReadBatch {
    reads: Vec<(Origin, Bytes)>,
    deadline: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alarm {
    NoSpace,
    /// Raised for this member id by a corruption check.
    Corrupt(u64),
}

pub struct Shard {
    shared: Arc<Shared>,
    router: Rc<Router>,
    identity: Identity,
    node: RawNode<RaftLog>,
    log: RaftLog,
    wal: Wal<DmaFs>,
    mvcc: Rc<RefCell<Mvcc>>,
    snap_store: SnapStore<DmaFs>,
    /// Index of the latest durable snapshot.
    snapshot_index: u64,
    snapshotting: bool,
    enc: Encoder,
    events: LocalReceiver<Event>,
    events_tx: Rc<LocalSender<Event>>,
    persisted: LocalReceiver<Event>,
    persisted_tx: Rc<LocalSender<Event>>,
    /// Raft messages and snapshots from peers, served before requests.
    peer_events: LocalReceiver<Event>,
    tick_interval: Duration,
    next_tick: Instant,
    persist_tx: LocalSender<PersistJob>,
    /// Hard state not yet written: a commit-only change waits for the next
    /// WAL write instead of costing an fdatasync of its own.
    unwritten_hard_state: Option<raft::HardState>,
    /// WAL writes handed to the persister and not yet reported durable,
    /// and the position of the latest one.
    persist_in_flight: usize,
    last_lsn: Lsn,
    /// The next proposal's sequence number. It starts at a random point
    /// (below `SEQ_START_MAX`): entries this member proposed before a
    /// restart may still apply after it, and their numbers must not match
    /// a new request's, or that request would get their answer.
    next_seq: u64,
    pending_writes: HashMap<u64, (Origin, u64, Instant)>,
    /// The commit index found at start-up: requests wait until the log up
    /// to it is applied again, so none is answered from state older than
    /// what the member had already acknowledged.
    replay_until: u64,
    /// Requests that arrived during that replay, in order.
    held: Vec<(Origin, Bytes)>,
    peers: Peers,
    request_timeout: Duration,
    incoming_snapshot: Option<IncomingSnapshot>,
    /// A MoveLeader waiting for its target to lead: where to answer, the
    /// request id, the target, the deadline.
    pending_move: Option<(Origin, u64, u64, Instant)>,
    /// Every member's advertised client URLs, as far as known.
    client_urls: HashMap<u64, Vec<String>>,
    mvcc_config: MvccConfig,
    fs: DmaFs,
    next_read_ctx: u64,
    reads_waiting_index: BTreeMap<u64, ReadBatch>,
    /// Reads whose barrier index is known, by that index.
    reads_waiting_apply: BTreeMap<u64, Vec<ReadBatch>>,
    applied: u64,
    term: u64,
    leader: u64,
    alarms: Vec<Alarm>,
    quota_bytes: u64,
    leases: Leases,
    watches: WatchHub,
    /// The replicated member table (shared with the peer listener, which
    /// answers join queries from it).
    members: Rc<RefCell<Members>>,
    /// Membership requests waiting for their conf change, by member id.
    pending_members: HashMap<u64, membership::PendingMember>,
    /// A member was added: snapshot now, so there is one to send it.
    member_snapshot_wanted: bool,
    /// The membership at the index of the snapshot being written.
    snapshot_conf_state: Option<raft::ConfState>,
    /// Index of the snapshot last sent to each peer since the log was last
    /// truncated: the peer needs the entries after it (at most one per
    /// member).
    snapshots_sent: HashMap<u64, u64>,
    /// When this member's own removal applied.
    removed_at: Option<Instant>,
    /// When this member last proposed its name for the member table.
    name_proposed_at: Option<Instant>,
    /// Backups streaming to clients and defragmentations waiting.
    maint: Maintenance,
    /// The leader's auto-compaction schedule, if configured.
    compactor: Option<compaction::Compactor>,
    checker: corrupt::Checker,
    /// Users, roles, permissions and this member's tokens.
    auth: auth_glue::AuthState,
}

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Identity(#[from] super::meta::IdentityError),
    #[error("cannot open the WAL: {0}")]
    Wal(#[from] wal::WalError),
    #[error("cannot open the data directory: {0}")]
    Io(#[from] crate::io::IoError),
    #[error("cannot start raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("{0}")]
    Recovery(String),
}

impl Shard {
    /// Open the member's storage and rebuild its state: identity, WAL
    /// replay, Raft node. Runs on the shard's executor.
    pub async fn open(shared: Arc<Shared>, router: Rc<Router>) -> Result<Shard, ShardError> {
        let config = &shared.config;
        let data_dir = config.data_dir();
        let member_dir = data_dir.join("member");
        let (identity, created) = membership::identity(&shared, &member_dir).await?;
        tracing::info!(
            name = %config.name,
            member_id = %format!("{:x}", identity.member_id),
            cluster_id = %format!("{:x}", identity.cluster_id),
            data_dir = %data_dir.display(),
            "{} member",
            if created { "starting a new" } else { "restarting" }
        );

        let wal_dir = wal::dir(&data_dir);
        let fs = DmaFs::new(&member_dir).await?;
        let (wal, recovered) = wal::open(fs.clone(), &wal_dir, WalOptions::default()).await?;
        tracing::info!(
            entries = recovered.entries.len(),
            last_index = recovered.last_index(),
            commit = recovered.hard_state.commit,
            "replayed the WAL"
        );

        let mvcc_config = MvccConfig {
            txn_ops_max: config.max_txn_ops,
            ..MvccConfig::default()
        };
        let snap_store = SnapStore::open(fs.clone(), &snapfile::dir(&data_dir))
            .await
            .map_err(|e| ShardError::Recovery(e.to_string()))?;
        let restored = snapshot::restore(&snap_store, &recovered, mvcc_config)
            .await
            .map_err(ShardError::Recovery)?;
        let (snap_index, snap_term, mut mvcc, meta) = match restored {
            Some(r) => (r.index, r.term, r.mvcc, r.meta),
            None => (0, 0, Mvcc::new(mvcc_config), SnapMeta::default()),
        };
        if let Some(kv) = &config.experimental_test_inject_divergent_kv {
            corrupt::inject(&mut mvcc, kv);
        }

        // The membership: the snapshot's table, else the initial one (a
        // member that joined a running cluster starts with none and gets
        // it with the leader's snapshot); WAL replay applies later changes.
        let members = match meta.members.clone() {
            Some(m) => m,
            None if identity.joined => Members::default(),
            None => Members::initial(&identity.members),
        };
        let conf_state = members.conf_state();
        let log = RaftLog::new(conf_state);
        log.restore(snap_index, snap_term, &recovered)
            .map_err(|e| ShardError::Recovery(format!("WAL does not form a Raft log: {e}")))?;

        let election_tick =
            (config.election_timeout_ms / config.heartbeat_interval_ms).max(2) as usize;
        let mut rc = raft::Config::new(identity.member_id, election_tick, 1);
        rc.applied = snap_index;
        rc.seed = identity.member_id ^ recovered.hard_state.term;
        let mut node = RawNode::new(&rc, log.clone())?;
        let peer_addrs: Vec<PeerAddr> = membership::initial_peers(&identity, &members);
        let lone_voter = !identity.joined && members.len() == 1 && members.voters().count() == 1;
        let members = Rc::new(RefCell::new(members));
        if lone_voter {
            // A lone voter need not wait out an election timeout.
            node.campaign();
        }

        let (events_tx, events) = local_channel::new_bounded(limits::SHARD_EVENTS_CAPACITY);
        let events_tx = Rc::new(events_tx);
        let (persist_tx, persist_rx) = local_channel::new_bounded(limits::SHARD_PERSIST_QUEUE_MAX);
        let (persisted_tx, persisted) = local_channel::new_bounded(PERSISTED_CAPACITY);
        let persisted_tx = Rc::new(persisted_tx);
        spawn_persister(
            shared.clone(),
            wal.clone(),
            persist_rx,
            persisted_tx.clone(),
        );
        let inbox = router
            .take_shard_inbox()
            .ok_or_else(|| ShardError::Recovery("shard inbox already taken".into()))?;
        spawn_inbox_forwarder(inbox, events_tx.clone());
        let listen = config
            .peer_listen_addrs()
            .map_err(|e| ShardError::Recovery(e.to_string()))?;
        let tick_interval = Duration::from_millis(config.heartbeat_interval_ms);
        let (peer_tx, peer_events) = local_channel::new_bounded(limits::SHARD_PEER_EVENTS_CAPACITY);
        let member_id = identity.member_id;
        let own_client_urls: Vec<String> = config
            .advertise_client_urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        let peers = Peers::start(
            identity.cluster_id,
            identity.member_id,
            Rc::new(own_client_urls.clone()),
            &listen,
            peer_addrs,
            Rc::new(peer_tx),
            members.clone(),
        )
        .map_err(|e| ShardError::Recovery(format!("cannot listen for peers: {e}")))?;
        // etcd's request timeout: 5 s plus two election timeouts.
        let request_timeout =
            Duration::from_millis(limits::REQUEST_TIMEOUT_BASE_MS + 2 * config.election_timeout_ms);
        spawn_ticker(shared.clone(), events_tx.clone());
        let mut leases = Leases::new(
            identity.cluster_id,
            config.election_timeout_ms,
            config.heartbeat_interval_ms,
        );
        // Deadlines restart at the full TTL, as etcd's do after a restart.
        leases.replace(&meta.leases, Instant::now());
        let watches = WatchHub::new(
            router.clone(),
            shared.watch_backlog.clone(),
            config.experimental_watch_publish_backlog_bytes,
            shared.cores,
        );
        let auth_store = match &meta.auth {
            Some(b) => crate::server::auth::AuthStore::decode(b).map_err(ShardError::Recovery)?,
            None => crate::server::auth::AuthStore::new(),
        };
        let mut alarms = if meta.nospace {
            vec![Alarm::NoSpace]
        } else {
            Vec::new()
        };
        alarms.extend(meta.corrupt.iter().map(|id| Alarm::Corrupt(*id)));

        Ok(Shard {
            auth: auth_glue::AuthState::new(&config.auth, auth_store)
                .map_err(ShardError::Recovery)?,
            leases,
            watches,
            members,
            pending_members: HashMap::new(),
            member_snapshot_wanted: false,
            snapshot_conf_state: None,
            snapshots_sent: HashMap::new(),
            removed_at: None,
            name_proposed_at: None,
            maint: Maintenance::new(),
            compactor: compaction::Policy::from_config(config)
                .ok()
                .flatten()
                .map(|p| compaction::Compactor::new(p, Instant::now())),
            checker: corrupt::Checker::new(
                config.experimental_initial_corrupt_check,
                config.experimental_corrupt_check_time,
                Instant::now(),
            ),
            quota_bytes: config.quota_bytes(),
            shared,
            router,
            identity,
            node,
            log,
            wal,
            mvcc: Rc::new(RefCell::new(mvcc)),
            snap_store,
            snapshot_index: snap_index,
            snapshotting: false,
            enc: Encoder::new(),
            events,
            events_tx,
            persisted,
            persisted_tx,
            peer_events,
            tick_interval,
            next_tick: Instant::now(),
            persist_tx,
            unwritten_hard_state: None,
            persist_in_flight: 0,
            last_lsn: Lsn(0),
            next_seq: 1 + rand::Rng::gen_range(&mut rand::rngs::OsRng, 0..SEQ_START_MAX),
            replay_until: recovered.hard_state.commit.max(snap_index),
            held: Vec::new(),
            pending_writes: HashMap::new(),
            peers,
            request_timeout,
            incoming_snapshot: None,
            pending_move: None,
            client_urls: HashMap::from([(member_id, own_client_urls)]),
            mvcc_config,
            fs,
            next_read_ctx: 1,
            reads_waiting_index: BTreeMap::new(),
            reads_waiting_apply: BTreeMap::new(),
            applied: snap_index,
            term: recovered.hard_state.term,
            leader: 0,
            alarms,
        })
    }

    /// Serve until the server stops or the WAL fails.
    pub async fn run(mut self) {
        let _keep_alive = self.events_tx.clone();
        while !self.shared.stopping() {
            // Durability notices first: they unblock commits; then Raft
            // messages from peers, so replication never queues behind
            // client requests; then everything else.
            let next = futures_lite::future::or(
                self.persisted.recv(),
                futures_lite::future::or(self.peer_events.recv(), self.events.recv()),
            );
            let Some(first) = next.await else {
                break;
            };
            let mut writes: Vec<Bytes> = Vec::new();
            let mut reads: Vec<(Origin, Bytes)> = Vec::new();
            self.handle(first, &mut writes, &mut reads);
            // Take everything that is already waiting, so one pass batches
            // as many requests as possible into one proposal.
            while writes.len() < limits::PROPOSAL_BATCH_MAX {
                let next = futures_lite::future::or(
                    self.persisted.recv(),
                    futures_lite::future::or(self.peer_events.recv(), self.events.recv()),
                );
                match futures_lite::future::poll_once(next).await {
                    Some(Some(ev)) => self.handle(ev, &mut writes, &mut reads),
                    _ => break,
                }
            }
            if !self.held.is_empty() && self.applied >= self.replay_until {
                for (origin, frame) in std::mem::take(&mut self.held) {
                    self.admit(origin, frame, &mut writes, &mut reads);
                }
            }
            self.catch_up_ticks();
            self.propose(writes, reads);
            if let Err(e) = self.drain_ready().await {
                self.shared.fail(e);
                break;
            }
            self.pump_backups();
            self.router.flush();
            self.maybe_snapshot();
        }
        self.hand_over().await;
        tracing::info!("shard stopped");
    }

    /// Advance Raft's logical clock by the time that has passed. Ticks come
    /// from the clock, not from a queue, so a saturated shard keeps its
    /// heartbeats, elections and request timeouts on time. After a stall
    /// (the process was paused) at most `TICKS_CATCH_UP_MAX` ticks are
    /// replayed at once, as a stall is not evidence that peers are gone.
    fn catch_up_ticks(&mut self) {
        let now = Instant::now();
        if now < self.next_tick {
            return;
        }
        let mut ticks = 0;
        while now >= self.next_tick && ticks < limits::TICKS_CATCH_UP_MAX {
            self.node.tick();
            self.next_tick += self.tick_interval;
            ticks += 1;
        }
        if now >= self.next_tick {
            self.next_tick = now + self.tick_interval;
        }
        self.expire_requests();
        self.expire_member_requests(now);
        self.maybe_publish_name(now);
        self.check_removed();
        self.expire_leases();
        self.maintenance_tick(now);
        let header = self.header();
        self.watches.tick(&header);
    }

    /// Auto compaction and corruption checks, on every tick.
    fn maintenance_tick(&mut self, now: Instant) {
        // A compaction's versions are freed a step per write; without
        // writes, a step per tick.
        self.mvcc
            .borrow_mut()
            .compaction_step(limits::COMPACTION_STEP_KEYS);
        let leader = self.is_leader();
        let pending = &self.pending_writes;
        self.auth.expire(now, |seq| pending.contains_key(&seq));
        if let Some(c) = self.compactor.as_mut() {
            let (current, compacted) = {
                let m = self.mvcc.borrow();
                (m.current_revision(), m.compact_revision())
            };
            if let Some(rev) = c.due(now, current, compacted, leader) {
                tracing::info!(revision = rev, "auto compaction: proposing a compaction");
                let frame = self.enc.compaction_request(0, rev, false).to_vec();
                self.propose_internal(&frame);
            }
        }
        if !self.checker.enabled() {
            return;
        }
        if let Some(round) = self.checker.take_result() {
            self.corrupt_check_done(round);
        }
        let me = self.identity.member_id;
        let peers: Vec<(u64, std::net::SocketAddr)> = self
            .client_urls
            .iter()
            .filter(|(id, _)| **id != me)
            .filter_map(|(id, urls)| {
                let url = urls.first()?;
                crate::config::parse_url("advertise-client-urls", url)
                    .ok()
                    .map(|a| (*id, a))
            })
            .collect();
        let all_known = peers.len() + 1 >= self.node.status().conf_state.voters.len();
        self.checker
            .tick(now, leader, self.leader != 0, peers, all_known, &self.mvcc);
    }

    /// A corruption check came back: stop on a start-up mismatch, raise
    /// CORRUPT for the odd members of a leader's round.
    fn corrupt_check_done(&mut self, round: corrupt::Round) {
        for (id, v) in &round.verdicts {
            match v {
                corrupt::Verdict::Skipped(why) => {
                    tracing::debug!(peer = %format!("{id:x}"), "corruption check skipped: {why}")
                }
                corrupt::Verdict::Mismatch {
                    revision,
                    mine,
                    theirs,
                } => tracing::error!(
                    peer = %format!("{id:x}"),
                    revision,
                    local_hash = mine,
                    peer_hash = theirs,
                    "found data inconsistency with a peer"
                ),
                corrupt::Verdict::Match => {}
            }
        }
        let mismatched = round
            .verdicts
            .iter()
            .any(|(_, v)| matches!(v, corrupt::Verdict::Mismatch { .. }));
        if round.initial && mismatched {
            self.shared.fail(
                "etcdserver: found data inconsistency with peers (--experimental-initial-corrupt-check); \
                 restore this member from a good one"
                    .into(),
            );
            return;
        }
        if round.initial || !self.is_leader() {
            return;
        }
        for id in corrupt::odd_members(self.identity.member_id, &round.verdicts) {
            if self.alarms.contains(&Alarm::Corrupt(id)) {
                continue;
            }
            tracing::error!(member = %format!("{id:x}"), "raising the CORRUPT alarm");
            let frame = self
                .enc
                .alarm_request(0, rpc::AlarmAction::Activate, id, rpc::AlarmType::Corrupt)
                .to_vec();
            self.propose_internal(&frame);
        }
    }

    /// Propose a request nobody waits for (the member's own decisions).
    fn propose_internal(&mut self, frame: &[u8]) {
        let mut payload = BytesMut::with_capacity(ENVELOPE_BYTES + frame.len());
        payload.put_u64_le(0);
        payload.put_u64_le(0);
        payload.put_slice(frame);
        if let Err(e) = self.node.propose(vec![payload.freeze()]) {
            tracing::warn!("could not propose yet: {e}");
        }
    }

    fn corrupt_alarms(&self) -> Vec<u64> {
        self.alarms
            .iter()
            .filter_map(|a| match a {
                Alarm::Corrupt(id) => Some(*id),
                Alarm::NoSpace => None,
            })
            .collect()
    }

    fn corrupt(&self) -> bool {
        self.alarms.iter().any(|a| matches!(a, Alarm::Corrupt(_)))
    }

    /// Start a snapshot once enough entries were applied since the last.
    fn maybe_snapshot(&mut self) {
        let count = self.shared.config.snapshot_count;
        let forced = (self.maint.snapshot_wanted() || self.member_snapshot_wanted)
            && self.applied > self.snapshot_index;
        if self.snapshotting || (self.applied < self.snapshot_index + count && !forced) {
            if self.maint.snapshot_wanted() && !self.snapshotting {
                // Nothing applied since the last snapshot: already compact.
                let header = self.header();
                self.maint.snapshot_done(&self.router, &header, None);
                self.router.flush();
            }
            return;
        }
        let Ok(term) = raft::Storage::term(&self.log, self.applied) else {
            // Applied but not yet in the stable log view; try next pass.
            return;
        };
        self.snapshotting = true;
        self.member_snapshot_wanted = false;
        // The membership as of the snapshot's index, for Raft's snapshot
        // metadata when it is durable (a change may apply meanwhile).
        self.snapshot_conf_state = Some(self.node.status().conf_state);
        let meta = SnapMeta {
            revision: self.mvcc.borrow().current_revision(),
            nospace: self.alarms.contains(&Alarm::NoSpace),
            leases: self.leases.table.entries().collect(),
            members: Some(self.members.borrow().clone()),
            auth: Some(self.auth_snapshot()),
            corrupt: self.corrupt_alarms(),
        };
        tracing::info!(
            index = self.applied,
            revision = meta.revision,
            "starting snapshot"
        );
        snapshot::spawn(
            self.mvcc.clone(),
            self.snap_store.clone(),
            self.wal.clone(),
            self.applied,
            term,
            meta,
            self.persisted_tx.clone(),
        );
    }

    fn snapshot_finished(&mut self, outcome: SnapshotOutcome) {
        self.snapshotting = false;
        // Compactions asked for while the snapshot held them go on now, a
        // step at a time like any other (later writes and ticks take the
        // rest), so the end of a snapshot never stalls the shard.
        self.mvcc
            .borrow_mut()
            .compaction_step(limits::COMPACTION_STEP_KEYS);
        let header = self.header();
        let error = match &outcome {
            SnapshotOutcome::Done { .. } => None,
            SnapshotOutcome::Failed { error, .. } => Some(error.as_str()),
        };
        self.maint.snapshot_done(&self.router, &header, error);
        match outcome {
            SnapshotOutcome::Done { index } => {
                tracing::info!(index, "snapshot durable");
                self.snapshot_index = index;
                let conf_state = self
                    .snapshot_conf_state
                    .take()
                    .unwrap_or_else(|| self.node.status().conf_state);
                self.log.set_snapshot(index, conf_state);
                // Keep a tail of entries so a slightly lagging follower can
                // catch up from the log instead of a whole snapshot. The
                // first entry always goes: a member joining a running
                // cluster must start from a snapshot, as the cluster's
                // first membership is not in the log.
                let keep_from = index
                    .saturating_sub(limits::SNAPSHOT_CATCH_UP_ENTRIES)
                    .max(1)
                    .min(self.snapshot_catch_up_floor());
                self.log.compact(keep_from);
            }
            SnapshotOutcome::Failed { index, error } => {
                // The WAL still holds everything; the next attempt comes
                // after another --snapshot-count entries.
                tracing::error!(index, "snapshot failed: {error}");
                self.snapshot_index = index;
            }
        }
    }

    /// The lowest index the log may be truncated to so that a peer sent an
    /// older snapshot (still in flight, being installed, or catching up
    /// from it) continues from the log, instead of being sent the new
    /// snapshot as well: a joining member is sent the latest durable
    /// snapshot while the one its addition asked for is still written.
    /// Each send holds back one truncation only, so a peer that never
    /// catches up does not keep the log growing.
    fn snapshot_catch_up_floor(&mut self) -> u64 {
        let progress = self.node.status().progress;
        let floor = self
            .snapshots_sent
            .drain()
            .filter_map(|(peer, sent)| progress.get(&peer).map(|p| p.matched.max(sent)))
            .min();
        floor.unwrap_or(u64::MAX)
    }

    /// Start streaming a backup of this member's state (see
    /// `super::maintenance`).
    fn start_backup(&mut self, origin: Origin, id: u64) {
        let term = raft::Storage::term(&self.log, self.applied).unwrap_or(self.term);
        let meta = SnapMeta {
            revision: self.mvcc.borrow().current_revision(),
            nospace: self.alarms.contains(&Alarm::NoSpace),
            leases: self.leases.table.entries().collect(),
            auth: Some(self.auth_snapshot()),
            corrupt: self.corrupt_alarms(),
            ..SnapMeta::default()
        };
        let started = self.maint.start_backup(
            (origin.executor, origin.conn),
            id,
            &self.mvcc.borrow(),
            self.applied,
            term,
            &meta,
        );
        if let Err(e) = started {
            self.reply_error(
                origin,
                id,
                rpc::ErrorCode::ResourceExhausted,
                &e.to_string(),
            );
        }
    }

    /// Cut the next chunk of every backup with room in its window; come
    /// around again soon if there is more (a wake-up, not a busy loop: the
    /// next pass serves whatever requests arrived first).
    fn pump_backups(&mut self) {
        if !self.maint.has_work() {
            return;
        }
        let header = self.header();
        let more = self.maint.pump(&self.mvcc.borrow(), &self.router, &header);
        if more {
            let _ = self.events_tx.try_send(Event::Tick);
        }
    }

    fn header(&self) -> Header {
        Header {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision: self.mvcc.borrow().current_revision(),
            raft_term: self.term,
        }
    }

    fn handle(&mut self, ev: Event, writes: &mut Vec<Bytes>, reads: &mut Vec<(Origin, Bytes)>) {
        match ev {
            // A wake-up for an idle shard; the clock itself is read in
            // catch_up_ticks, so a busy shard never loses ticks.
            Event::Tick => {}
            Event::SnapshotReceived(snap) => self.incoming_snapshot = Some(snap),
            Event::PeerClientUrls { id, urls } => {
                self.client_urls.insert(id, urls);
            }
            Event::SnapshotSent { to, ok } => self.node.report_snapshot(to, ok),
            Event::Peer(m) if self.drops_before_snapshot(&m) => {}
            Event::Peer(m) => {
                if let Err(e) = self.node.step(m) {
                    tracing::debug!("dropping raft message from a peer: {e}");
                }
            }
            Event::Persisted(job) => self.persisted(job),
            Event::Snapshot(outcome) => self.snapshot_finished(outcome),
            Event::Auth(job) => self.auth_job_done(job, writes),
            Event::RemovedByPeer { by } => self.removed_by_peer(by),
            Event::Requests(msg) => {
                let origin = Origin {
                    executor: msg.origin,
                    conn: msg.conn,
                };
                let conn = (msg.origin, msg.conn);
                // Watch pushes are credited on the connection's executor;
                // what is reported here are backup chunks.
                self.maint.written(conn, msg.pushes_written);
                if let Some(report) = msg.watch {
                    let header = self.header();
                    let mvcc = self.mvcc.borrow();
                    self.watches.report(msg.origin, report, &mvcc, &header);
                }
                if msg.closed {
                    self.maint.closed(conn);
                    self.auth_conn_closed(conn);
                } else if let Some(user) = msg.cert_user {
                    self.auth_cert_user(conn, user);
                }
                for frame in msg.frames {
                    if self.applied < self.replay_until {
                        self.hold(origin, frame);
                    } else {
                        self.admit(origin, frame, writes, reads);
                    }
                }
            }
        }
    }

    /// Keep a request until the start-up replay is done.
    fn hold(&mut self, origin: Origin, frame: Bytes) {
        if self.held.len() >= limits::SHARD_PENDING_MAX {
            let id = decode_request(&frame).map(|r| r.id).unwrap_or(0);
            self.reply_error(
                origin,
                id,
                rpc::ErrorCode::ResourceExhausted,
                "etcdserver: too many requests",
            );
            return;
        }
        self.held.push((origin, frame));
    }

    /// Sort one verified request frame into writes, reads, or an answer now.
    fn admit(
        &mut self,
        origin: Origin,
        frame: Bytes,
        writes: &mut Vec<Bytes>,
        reads: &mut Vec<(Origin, Bytes)>,
    ) {
        // SAFETY: every frame of a `ToShard` message was accepted by
        // `decode_request` on the connection's executor, or built by the
        // encoder (gRPC's translation), before it was sent here
        // (`route::ToShard::frames`); held frames are such frames too.
        let Ok(req) = (unsafe { cairn_wire::decode_verified_request(&frame) }) else {
            // Checked by the connection; failing here is a bug there.
            unreachable_frame(&frame);
            return;
        };
        let Some(auth_info) = self.auth_admit(origin, &req, writes) else {
            return;
        };
        match &req.body {
            RequestBodyView::Snapshot(_) => return self.start_backup(origin, req.id),
            RequestBodyView::Defragment(_) => {
                self.mvcc.borrow_mut().finish_held_compaction();
                return self.maint.defrag_requested(PendingDefrag {
                    executor: origin.executor,
                    conn: origin.conn,
                    id: req.id,
                });
            }
            _ => {}
        }
        let class = match self.member_class(origin, req.id, &req.body, apply::classify(&req.body)) {
            Some(Some(class)) => class,
            Some(None) => return,
            None => apply::classify(&req.body),
        };
        match class {
            Class::KeepAlive if self.is_leader() => self.keep_alive(origin, req.id, &req.body),
            Class::Watch => {
                let header = self.header();
                self.watches
                    .request((origin.executor, origin.conn), req.id, &req.body, &header);
            }
            Class::Write | Class::KeepAlive => {
                if self.corrupt() && corrupt::refused_when_corrupt(&req.body) {
                    self.reply_error(
                        origin,
                        req.id,
                        rpc::ErrorCode::DataLoss,
                        corrupt::CORRUPT_CLUSTER,
                    );
                    return;
                }
                if self.alarms.contains(&Alarm::NoSpace) && apply::may_grow(&req.body) {
                    self.reply_error(
                        origin,
                        req.id,
                        rpc::ErrorCode::ResourceExhausted,
                        "etcdserver: mvcc: database space exceeded",
                    );
                    return;
                }
                self.enqueue_write(origin, req.id, &frame, auth_info.as_ref(), writes);
            }
            Class::MoveLeader => {
                if let RequestBodyView::MoveLeader(m) = req.body {
                    self.move_leader(origin, req.id, m.target_id());
                }
            }
            Class::LinearRead => reads.push((origin, frame)),
            Class::LocalRead => self.serve_read(origin, &frame),
            Class::Unsupported => {
                let msg = format!(
                    "etcdserver: {} is not supported by this version of cairn yet",
                    req.body.type_name()
                );
                self.reply_error(origin, req.id, rpc::ErrorCode::Unimplemented, &msg);
            }
        }
    }

    /// Start handing leadership to `target` (etcd's MoveLeader). Only the
    /// leader can; the answer comes when the target leads, or after the
    /// request timeout.
    fn move_leader(&mut self, origin: Origin, id: u64, target: u64) {
        let is_voter = self.node.status().conf_state.voters.contains(&target);
        if !self.is_leader() {
            self.reply_error(
                origin,
                id,
                rpc::ErrorCode::FailedPrecondition,
                "etcdserver: not leader",
            );
        } else if !is_voter {
            self.reply_error(
                origin,
                id,
                rpc::ErrorCode::FailedPrecondition,
                "etcdserver: bad leader transferee",
            );
        } else if target == self.identity.member_id {
            let header = self.header();
            let frame = self.enc.move_leader_response(id, &header).to_vec();
            self.router.reply(origin.executor, origin.conn, frame);
        } else if self.pending_move.is_some() {
            self.reply_error(
                origin,
                id,
                rpc::ErrorCode::FailedPrecondition,
                "etcdserver: leader transfer already in progress",
            );
        } else {
            tracing::info!(target = %format!("{target:x}"), "transferring leadership");
            self.node.transfer_leader(target);
            self.pending_move = Some((origin, id, target, Instant::now() + self.request_timeout));
        }
    }

    fn propose(&mut self, writes: Vec<Bytes>, reads: Vec<(Origin, Bytes)>) {
        if !writes.is_empty() {
            crate::steptrace::mark("propose", writes.len() as u64);
            let seqs: Vec<u64> = writes.iter().map(|p| envelope(p).1).collect();
            if let Err(e) = self.node.propose(writes) {
                let message = match e {
                    raft::Error::ProposalDropped(_) if self.leader == 0 => "etcdserver: no leader",
                    _ => "etcdserver: too many requests",
                };
                for seq in seqs {
                    if let Some((origin, id, _)) = self.pending_writes.remove(&seq) {
                        self.reply_error(origin, id, rpc::ErrorCode::Unavailable, message);
                    }
                }
            }
        }
        if !reads.is_empty() {
            let ctx = self.next_read_ctx;
            self.next_read_ctx += 1;
            self.node.read_index(ctx);
            self.reads_waiting_index.insert(
                ctx,
                ReadBatch {
                    reads,
                    deadline: Instant::now() + self.request_timeout,
                },
            );
        }
    }

    /// Handle every Ready Raft has, in the order its contract asks.
    async fn drain_ready(&mut self) -> Result<(), String> {
        while self.node.has_ready() {
            let rd = self.node.ready();
            if let Some(ss) = rd.soft_state {
                if ss.leader != self.leader {
                    tracing::info!(leader = %format!("{:x}", ss.leader), "leader changed");
                    if ss.leader != 0 {
                        crate::stats::LEADER_CHANGES
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if ss.leader == self.identity.member_id {
                        // A new leader cannot know when clients last renewed:
                        // every lease gets its full TTL (as etcd's Promote).
                        self.leases.table.renew_all(Instant::now());
                    }
                }
                self.leader = ss.leader;
                if let Some((origin, id, target, _)) = self.pending_move {
                    if ss.leader == target {
                        self.pending_move = None;
                        let header = self.header();
                        let frame = self.enc.move_leader_response(id, &header).to_vec();
                        self.router.reply(origin.executor, origin.conn, frame);
                    }
                }
            }
            if let Some(hs) = rd.hard_state {
                self.term = hs.term;
            }
            // A leader's appends without entries only announce a new commit
            // index: they go out after this Ready's entries are applied and
            // answered, since the answers are on the clients' path and the
            // notices are not. Not past a membership change, whose apply may
            // drop a peer that must still hear of the commit (a removed
            // member learns of its removal so).
            let is_notice =
                |m: &raft::Message| m.kind == raft::MessageKind::Append && m.entries.is_empty();
            let defer = !rd.committed_entries.is_empty()
                && rd.messages.iter().any(is_notice)
                && rd
                    .committed_entries
                    .iter()
                    .all(|e| e.kind != raft::EntryKind::ConfChange);
            let (notices, messages): (Vec<_>, Vec<_>) = if defer {
                rd.messages.into_iter().partition(is_notice)
            } else {
                (Vec::new(), rd.messages)
            };
            self.send(messages);

            if let Some(snap) = rd.snapshot {
                self.install_snapshot(snap).await?;
            }
            let hard_state = rd.hard_state.or(self.unwritten_hard_state.take());
            let appended = !rd.entries.is_empty();
            if appended || rd.must_sync {
                let lsn = self.write_wal(&rd.entries, hard_state).await?;
                self.last_lsn = lsn;
                self.persist_in_flight += 1;
                let job = PersistJob {
                    lsn,
                    entries: rd.entries,
                    hard_state,
                    messages: rd.persisted_messages,
                };
                if self.persist_tx.send(job).await.is_err() {
                    return Err("WAL persister stopped".into());
                }
            } else {
                self.unwritten_hard_state = hard_state;
                if self.persist_in_flight == 0 {
                    self.send(rd.persisted_messages);
                } else if !rd.persisted_messages.is_empty() {
                    // Nothing to write here, but an acknowledgement may
                    // cover entries of an earlier Ready still being synced:
                    // it waits behind them.
                    let job = PersistJob {
                        lsn: self.last_lsn,
                        entries: Vec::new(),
                        hard_state: None,
                        messages: rd.persisted_messages,
                    };
                    self.persist_in_flight += 1;
                    if self.persist_tx.send(job).await.is_err() {
                        return Err("WAL persister stopped".into());
                    }
                }
            }

            if !rd.committed_entries.is_empty() {
                if appended {
                    // The WAL's flusher takes the entries just appended
                    // once this task yields, but the executor submits its
                    // write to the kernel only when no task is runnable.
                    // Let that happen before the apply, so the disk writes
                    // the next batch while this one is applied.
                    yield_to_reactor().await;
                }
                crate::steptrace::mark("apply", rd.committed_entries.len() as u64);
            }
            for (i, entry) in rd.committed_entries.into_iter().enumerate() {
                if i > 0 && i % limits::APPLY_ENTRIES_PER_PASS == 0 {
                    self.router.flush();
                    yield_to_reactor().await;
                }
                crate::failpoint::hit("apply-before");
                self.apply_entry(&entry);
                crate::failpoint::hit("apply-after");
            }
            self.node.on_applied(self.applied);
            if !notices.is_empty() {
                self.router.flush();
                self.send(notices);
            }

            for rs in rd.read_states {
                if let Some(batch) = self.reads_waiting_index.remove(&rs.context) {
                    self.reads_waiting_apply
                        .entry(rs.index)
                        .or_default()
                        .push(batch);
                }
            }
            self.serve_ready_reads();
        }
        Ok(())
    }

    async fn write_wal(
        &mut self,
        entries: &[raft::Entry],
        hs: Option<raft::HardState>,
    ) -> Result<Lsn, String> {
        crate::failpoint::hit("wal-before-save");
        // Sized up front: growing it by doubling costs reallocations onto
        // fresh pages on every Ready of a busy shard.
        let mut records: Vec<Record<'_>> = Vec::with_capacity(entries.len() + 1);
        records.extend(entries.iter().map(|e| Record::Entry {
            index: e.index,
            term: e.term,
            kind: super::raftlog::kind_code(e.kind),
            payload: &e.data,
        }));
        if let Some(hs) = hs {
            records.push(Record::HardState(wal::HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            }));
        }
        self.wal
            .append(&records)
            .await
            .map_err(|e| format!("WAL append failed, stopping (fail-stop): {e}"))
    }

    /// Entries and hard state of a Ready are durable.
    fn persisted(&mut self, job: PersistJob) {
        self.persist_in_flight -= 1;
        if let Some(hs) = job.hard_state {
            self.log.set_hard_state(hs);
        }
        if let Some(last) = job.entries.last() {
            let (index, term) = (last.index, last.term);
            self.log.append(&job.entries);
            self.node.on_persisted(index, term);
        }
        self.send(job.messages);
    }

    /// Send messages to peers; messages to this member are stepped here.
    fn send(&mut self, msgs: Vec<raft::Message>) {
        if msgs.is_empty() {
            return;
        }
        let me = self.identity.member_id;
        let (local, remote): (Vec<_>, Vec<_>) = msgs.into_iter().partition(|m| m.to == me);
        for m in local {
            self.step_local(m);
        }
        let (snaps, remote): (Vec<_>, Vec<_>) = remote
            .into_iter()
            .partition(|m| m.kind == raft::MessageKind::Snapshot);
        for m in snaps {
            self.send_snapshot(m);
        }
        for id in self.peers.send(remote) {
            self.node.report_unreachable(id);
        }
    }

    /// Stream the snapshot a Raft message names to its peer, then the
    /// message itself, on the peer's ordered queue; report the outcome.
    fn send_snapshot(&mut self, m: raft::Message) {
        let to = m.to;
        let Some(queue) = self.peers.queue(to) else {
            self.node.report_snapshot(to, false);
            return;
        };
        let Some(index) = m.snapshot.as_ref().map(|s| s.metadata.index) else {
            self.node.report_snapshot(to, false);
            return;
        };
        let store = self.snap_store.clone();
        let fs = self.fs.clone();
        let events = self.events_tx.clone();
        tracing::info!(peer = %format!("{to:x}"), index, "sending snapshot");
        self.snapshots_sent.insert(to, index);
        glommio::spawn_local(async move {
            let result = async {
                let info = store
                    .list()
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .find(|i| i.index == index)
                    .ok_or_else(|| format!("snapshot {index} is no longer on disk"))?;
                let term = info.term;
                let mut reader = crate::snap::SnapReader::open(&fs, info)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut enc = Encoder::new();
                let mut seq = 0u64;
                let mut pending = Some(reader.meta.clone());
                while let Some(data) = pending.take() {
                    let next = reader.next_chunk().await.map_err(|e| e.to_string())?;
                    let frame = enc
                        .snapshot_chunk(&cairn_wire::SnapshotChunkParams {
                            snapshot_index: index,
                            snapshot_term: term,
                            offset: seq,
                            data: &data,
                            crc: crc32fast::hash(&data),
                            last: next.is_none(),
                        })
                        .to_vec();
                    queue
                        .send(frame)
                        .await
                        .map_err(|_| "peer queue closed".to_string())?;
                    seq += 1;
                    pending = next;
                }
                let frame = super::peer::encode(&mut enc, &m).to_vec();
                queue
                    .send(frame)
                    .await
                    .map_err(|_| "peer queue closed".to_string())?;
                Ok::<(), String>(())
            }
            .await;
            if let Err(e) = &result {
                tracing::warn!(peer = %format!("{to:x}"), "snapshot transfer failed: {e}");
            }
            let _ = events
                .send(Event::SnapshotSent {
                    to,
                    ok: result.is_ok(),
                })
                .await;
        })
        .detach();
    }

    /// Replace the state machine with the snapshot the leader sent, keep
    /// it durably (snapshot file, then a WAL marker), and tell Raft.
    async fn install_snapshot(&mut self, snap: raft::Snapshot) -> Result<(), String> {
        crate::failpoint::hit("snap-before-install");
        let (index, term) = (snap.metadata.index, snap.metadata.term);
        let incoming = self
            .incoming_snapshot
            .take()
            .filter(|s| s.index == index && s.term == term)
            .ok_or_else(|| {
                format!("raft asked to install snapshot {index} but its data did not arrive")
            })?;
        let meta = SnapMeta::decode(&incoming.meta)?;
        let mut writer = self
            .snap_store
            .create(index, term, &incoming.meta)
            .await
            .map_err(|e| e.to_string())?;
        for c in &incoming.chunks {
            writer.write_chunk(c).await.map_err(|e| e.to_string())?;
        }
        writer.finish().await.map_err(|e| e.to_string())?;
        let mvcc = Mvcc::restore(self.mvcc_config, &incoming.chunks).map_err(|e| e.to_string())?;
        let seen_rev = self.mvcc.borrow().current_revision();
        *self.mvcc.borrow_mut() = mvcc;
        self.alarms = if meta.nospace {
            vec![Alarm::NoSpace]
        } else {
            Vec::new()
        };
        self.alarms
            .extend(meta.corrupt.iter().map(|id| Alarm::Corrupt(*id)));
        self.install_auth(meta.auth.as_deref())?;
        self.leases.replace(&meta.leases, Instant::now());
        if let Some(members) = meta.members {
            *self.members.borrow_mut() = members;
            self.sync_peers(&[]);
        }
        {
            // Watches continue after the last revision they could have seen,
            // reading the rest from the new index's history.
            let header = self.header();
            self.watches.reset(seen_rev + 1, &header);
        }
        self.log.install_snapshot(snap);
        let lsn = self
            .wal
            .append(&[Record::Snapshot(wal::SnapshotMarker { index, term })])
            .await
            .map_err(|e| format!("WAL append failed, stopping (fail-stop): {e}"))?;
        self.wal
            .wait_durable(lsn)
            .await
            .map_err(|e| format!("WAL sync failed, stopping (fail-stop): {e}"))?;
        crate::failpoint::hit("snap-after-install");
        self.applied = index;
        self.snapshot_index = index;
        self.node.on_persisted(index, term);
        tracing::info!(
            index,
            term,
            revision = self.mvcc.borrow().current_revision(),
            "installed snapshot from the leader"
        );
        Ok(())
    }

    /// Answer requests that waited longer than the request timeout (a
    /// proposal lost with a leader, a read barrier that never came back)
    /// with etcd's timeout error. The request may still be applied later.
    fn expire_requests(&mut self) {
        let now = Instant::now();
        if let Some((origin, id, _, deadline)) = self.pending_move {
            if deadline <= now {
                self.pending_move = None;
                self.reply_error(
                    origin,
                    id,
                    rpc::ErrorCode::DeadlineExceeded,
                    "etcdserver: request timed out, leader transfer took too long",
                );
            }
        }
        let expired: Vec<u64> = self
            .pending_writes
            .iter()
            .filter(|(_, p)| p.2 <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            if let Some((origin, id, _)) = self.pending_writes.remove(&seq) {
                self.reply_error(
                    origin,
                    id,
                    rpc::ErrorCode::Unavailable,
                    "etcdserver: request timed out",
                );
            }
        }
        let expired: Vec<u64> = self
            .reads_waiting_index
            .iter()
            .filter(|(_, b)| b.deadline <= now)
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in expired {
            if let Some(batch) = self.reads_waiting_index.remove(&ctx) {
                for (origin, frame) in batch.reads {
                    let id = decode_request(&frame).map(|r| r.id).unwrap_or(0);
                    self.reply_error(
                        origin,
                        id,
                        rpc::ErrorCode::Unavailable,
                        "etcdserver: request timed out",
                    );
                }
            }
        }
        self.router.flush();
    }

    /// A message to ourselves (a lone voter's vote and append responses).
    fn step_local(&mut self, m: raft::Message) {
        if m.to == self.identity.member_id {
            if let Err(e) = self.node.step(m) {
                tracing::debug!("dropping local raft message: {e}");
            }
        }
    }

    fn apply_entry(&mut self, entry: &raft::Entry) {
        self.applied = entry.index;
        if entry.kind == raft::EntryKind::ConfChange {
            self.apply_conf_change_entry(entry);
            return;
        }
        if entry.kind != raft::EntryKind::Normal || entry.data.is_empty() {
            // Leader no-ops carry nothing; membership changes arrive with
            // the cluster milestone.
            return;
        }
        if entry.data.len() < ENVELOPE_BYTES {
            tracing::error!(
                index = entry.index,
                "log entry too short for its envelope; skipped"
            );
            return;
        }
        let (proposer, seq) = envelope(&entry.data);
        let mut frame = &entry.data[ENVELOPE_BYTES..];
        if seq == membership::PUBLISH_SEQ {
            self.apply_publish(proposer, frame);
            return;
        }
        let mut auth_info = None;
        let seq = if seq & auth::ENVELOPE_AUTH_FLAG != 0 {
            let Some((info, rest)) = auth::decode_envelope_section(frame) else {
                tracing::error!(
                    index = entry.index,
                    "log entry's auth section does not decode; skipped"
                );
                return;
            };
            auth_info = Some(info);
            frame = rest;
            seq & !auth::ENVELOPE_AUTH_FLAG
        } else {
            seq
        };
        let origin = if proposer == self.identity.member_id {
            self.pending_writes
                .remove(&seq)
                .map(|(origin, _, _)| origin)
        } else {
            None
        };
        let Ok(req) = decode_request(frame) else {
            // Entries are verified before they are proposed and CRC-checked
            // on disk; every member skips the same entry the same way.
            tracing::error!(index = entry.index, "log entry does not decode; skipped");
            return;
        };
        let id = req.id;
        if let Some(result) = self.apply_auth(auth_info.as_ref(), &req.body) {
            let Some(origin) = origin else {
                self.drop_pending_token(seq);
                return;
            };
            let header = self.header();
            let frame = match result {
                Ok(reply) => self.auth_reply_frame(id, seq, &header, reply),
                Err(e) => {
                    self.drop_pending_token(seq);
                    self.enc
                        .error_response(id, Some(&header), e.code(), e.message())
                        .to_vec()
                }
            };
            self.router.reply(origin.executor, origin.conn, frame);
            return;
        }
        let checked = self.auth_check_apply(proposer, auth_info.as_ref(), &req.body);
        self.mvcc
            .borrow_mut()
            .set_events(self.watches.wants_events());
        let result = match checked.and_then(|()| self.apply_write(entry.index, &req.body)) {
            Ok((applied, events)) => {
                if !events.is_empty() {
                    let header = self.header();
                    self.watches.applied(events, &header);
                }
                Ok(applied)
            }
            Err(e) => Err(e),
        };
        self.check_quota();
        let Some(origin) = origin else { return };
        if let Ok(Applied::MemberAdd { member }) = result {
            self.propose_member_add(origin, id, member);
            return;
        }
        let header = self.header();
        let frame = match result {
            Ok(Applied::Put(r)) => apply::encode_put(&mut self.enc, id, &header, &r).to_vec(),
            Ok(Applied::Delete(r)) => apply::encode_delete(&mut self.enc, id, &header, &r).to_vec(),
            Ok(Applied::Txn(r)) => apply::encode_txn(&mut self.enc, id, &header, &r).to_vec(),
            Ok(Applied::Compact) => self.enc.compaction_response(id, &header).to_vec(),
            Ok(Applied::Alarm) => self.alarm_frame(id, &header),
            Ok(Applied::LeaseGrant { id: lease_id, ttl }) => self
                .enc
                .lease_grant_response(id, &header, lease_id, ttl, "")
                .to_vec(),
            Ok(Applied::LeaseRevoke) => self.enc.lease_revoke_response(id, &header).to_vec(),
            Ok(Applied::MemberUpdate) => self.member_update_frame(id, &header),
            Ok(Applied::MemberAdd { .. }) => return,
            Ok(Applied::KeepAlive { id: lease_id, ttl }) => self
                .enc
                .lease_keep_alive_response(id, &header, lease_id, ttl)
                .to_vec(),
            Err((code, msg)) => self
                .enc
                .error_response(id, Some(&header), code, &msg)
                .to_vec(),
        };
        self.router.reply(origin.executor, origin.conn, frame);
    }

    /// Apply one logged request; returns the outcome and the events it
    /// produced (for the watches).
    fn apply_write(
        &mut self,
        index: u64,
        body: &RequestBodyView<'_>,
    ) -> Result<(Applied, Vec<MvccEvent>), (rpc::ErrorCode, String)> {
        let mvcc_err = |e: crate::mvcc::Error| apply::mvcc_error(&e);
        if let Some(result) = self.apply_member_write(index, body) {
            return result.map(|applied| (applied, Vec::new()));
        }
        if self.corrupt() && corrupt::refused_when_corrupt(body) {
            return Err((rpc::ErrorCode::DataLoss, corrupt::CORRUPT_CLUSTER.into()));
        }
        match body {
            RequestBodyView::Put(p) => {
                if self.alarms.contains(&Alarm::NoSpace) {
                    return Err(nospace());
                }
                self.check_put_leases(body)?;
                let r = self
                    .mvcc
                    .borrow_mut()
                    .put(&apply::put_request(*p))
                    .map_err(mvcc_err)?;
                Ok((Applied::Put(r.response), r.events))
            }
            RequestBodyView::DeleteRange(d) => {
                let r = self
                    .mvcc
                    .borrow_mut()
                    .delete_range(&apply::delete_request(*d))
                    .map_err(mvcc_err)?;
                Ok((Applied::Delete(r.response), r.events))
            }
            RequestBodyView::Txn(t) => {
                if self.alarms.contains(&Alarm::NoSpace) && apply::may_grow(body) {
                    return Err(nospace());
                }
                self.check_put_leases(body)?;
                let r = self
                    .mvcc
                    .borrow_mut()
                    .txn(&apply::txn_request(*t))
                    .map_err(mvcc_err)?;
                Ok((Applied::Txn(r.response), r.events))
            }
            RequestBodyView::Compaction(c) => {
                crate::failpoint::hit("compact-during");
                self.mvcc
                    .borrow_mut()
                    .compact(c.revision())
                    .map_err(mvcc_err)?;
                Ok((Applied::Compact, Vec::new()))
            }
            RequestBodyView::LeaseGrant(g) => {
                let lease_id = self.leases.resolve_id(g.id(), index);
                let ttl = self
                    .leases
                    .table
                    .grant(lease_id, g.ttl(), Instant::now())
                    .map_err(lease::error)?;
                Ok((Applied::LeaseGrant { id: lease_id, ttl }, Vec::new()))
            }
            RequestBodyView::LeaseRevoke(r) => {
                self.leases.table.revoke(r.id()).map_err(lease::error)?;
                let deleted = self.mvcc.borrow_mut().delete_lease_keys(r.id());
                Ok((Applied::LeaseRevoke, deleted.events))
            }
            RequestBodyView::LeaseKeepAlive(k) => {
                // Proposed by a follower; every member renews. The follower
                // answers, and it knows only that the lease still exists.
                let now = Instant::now();
                let ttl = if self.is_leader() {
                    self.leases.table.keep_alive(k.id(), now)
                } else {
                    self.leases.table.renew(k.id(), now)
                }
                .unwrap_or(0);
                Ok((Applied::KeepAlive { id: k.id(), ttl }, Vec::new()))
            }
            RequestBodyView::Alarm(a) => {
                match (a.action(), a.alarm()) {
                    (rpc::AlarmAction::Activate, rpc::AlarmType::NoSpace)
                        if !self.alarms.contains(&Alarm::NoSpace) =>
                    {
                        self.alarms.push(Alarm::NoSpace);
                    }
                    (rpc::AlarmAction::Activate, rpc::AlarmType::Corrupt)
                        if !self.alarms.contains(&Alarm::Corrupt(a.member_id())) =>
                    {
                        self.alarms.push(Alarm::Corrupt(a.member_id()));
                    }
                    (rpc::AlarmAction::Deactivate, rpc::AlarmType::NoSpace) => {
                        self.alarms.retain(|a| *a != Alarm::NoSpace);
                    }
                    (rpc::AlarmAction::Deactivate, rpc::AlarmType::Corrupt) => {
                        let id = a.member_id();
                        self.alarms
                            .retain(|x| !matches!(x, Alarm::Corrupt(m) if id == 0 || *m == id));
                    }
                    (rpc::AlarmAction::Deactivate, rpc::AlarmType::None) => self.alarms.clear(),
                    _ => {}
                }
                Ok((Applied::Alarm, Vec::new()))
            }
            other => Err((
                rpc::ErrorCode::Unimplemented,
                format!("etcdserver: {} cannot be applied", other.type_name()),
            )),
        }
    }

    /// Past the quota, raise NOSPACE, as etcd does, through the log so that
    /// the alarm survives a restart and every member agrees on it.
    fn check_quota(&mut self) {
        let size_bytes = self.mvcc.borrow().size_bytes();
        if size_bytes > self.quota_bytes && !self.alarms.contains(&Alarm::NoSpace) {
            tracing::warn!(
                size_bytes,
                quota_bytes = self.quota_bytes,
                "database space exceeded; raising the NOSPACE alarm"
            );
            // Applied locally at once so that no further growth is admitted;
            // the log entry makes it durable.
            self.alarms.push(Alarm::NoSpace);
            let frame = self
                .enc
                .alarm_request(
                    0,
                    rpc::AlarmAction::Activate,
                    self.identity.member_id,
                    rpc::AlarmType::NoSpace,
                )
                .to_vec();
            let mut payload = BytesMut::with_capacity(ENVELOPE_BYTES + frame.len());
            payload.put_u64_le(0);
            payload.put_u64_le(0);
            payload.put_slice(&frame);
            if let Err(e) = self.node.propose(vec![payload.freeze()]) {
                tracing::warn!("could not log the NOSPACE alarm yet: {e}");
            }
        }
    }

    fn alarm_frame(&mut self, id: u64, header: &Header) -> Vec<u8> {
        let alarms: Vec<(u64, rpc::AlarmType)> = self
            .alarms
            .iter()
            .map(|a| match a {
                Alarm::NoSpace => (self.identity.member_id, rpc::AlarmType::NoSpace),
                Alarm::Corrupt(id) => (*id, rpc::AlarmType::Corrupt),
            })
            .collect();
        self.enc.alarm_response(id, header, &alarms).to_vec()
    }

    fn serve_ready_reads(&mut self) {
        while let Some(entry) = self.reads_waiting_apply.first_entry() {
            if *entry.key() > self.applied {
                break;
            }
            for batch in entry.remove() {
                for (origin, frame) in batch.reads {
                    self.serve_read(origin, &frame);
                }
            }
        }
    }

    /// Answer a read from the local state.
    fn serve_read(&mut self, origin: Origin, frame: &[u8]) {
        let Ok(req) = decode_request(frame) else {
            unreachable_frame(frame);
            return;
        };
        let header = self.header();
        let id = req.id;
        if let Some(out) = self.auth_read(origin, &req, &header) {
            self.router.reply(origin.executor, origin.conn, out);
            return;
        }
        let out = match req.body {
            RequestBodyView::Range(r) => {
                let result = self.mvcc.borrow().range(&apply::range_request(r));
                match result {
                    Ok(resp) => apply::encode_range(&mut self.enc, id, &header, &resp).to_vec(),
                    Err(e) => self.error_frame(id, &header, &e),
                }
            }
            RequestBodyView::Txn(t) => {
                // A read-only txn: run it on the index; it writes nothing.
                let result = self.mvcc.borrow_mut().txn(&apply::txn_request(t));
                match result {
                    Ok(r) => apply::encode_txn(&mut self.enc, id, &header, &r.response).to_vec(),
                    Err(e) => self.error_frame(id, &header, &e),
                }
            }
            RequestBodyView::Status(_) => {
                let version = env!("CARGO_PKG_VERSION");
                let errors: Vec<String> = self
                    .alarms
                    .iter()
                    .map(|a| match a {
                        Alarm::NoSpace => {
                            "memberID:".to_string()
                                + &self.identity.member_id.to_string()
                                + " alarm:NOSPACE "
                        }
                        Alarm::Corrupt(id) => format!("memberID:{id} alarm:CORRUPT "),
                    })
                    .collect();
                let errors: Vec<&str> = errors.iter().map(String::as_str).collect();
                let size = i64::try_from(self.mvcc.borrow().size_bytes()).unwrap_or(i64::MAX);
                let status = self.node.status();
                let is_learner = self.is_learner();
                self.enc
                    .status_response(
                        id,
                        &header,
                        &StatusResult {
                            version,
                            db_size: size,
                            leader: self.leader,
                            raft_index: status.last_index,
                            raft_term: self.term,
                            raft_applied_index: self.applied,
                            errors: &errors,
                            db_size_in_use: size,
                            is_learner,
                        },
                    )
                    .to_vec()
            }
            RequestBodyView::Alarm(_) => self.alarm_frame(id, &header),
            RequestBodyView::LeaseTimeToLive(t) => {
                self.time_to_live_frame(id, &header, t.id(), t.keys())
            }
            RequestBodyView::LeaseLeases(_) => {
                let ids: Vec<i64> = self.leases.table.ids().collect();
                self.enc.lease_leases_response(id, &header, &ids).to_vec()
            }
            RequestBodyView::HashKv(h) => {
                let result = self.mvcc.borrow().hash_kv(h.revision());
                match result {
                    Ok(hk) => self
                        .enc
                        .hash_kv_response(
                            id,
                            &header,
                            hk.hash,
                            hk.compact_revision,
                            hk.hash_revision,
                        )
                        .to_vec(),
                    Err(e) => self.error_frame(id, &header, &e),
                }
            }
            RequestBodyView::MemberList(_) => self.member_list_frame(id, &header),
            other => {
                let msg = format!("etcdserver: {} is not a read", other.type_name());
                self.enc
                    .error_response(id, Some(&header), rpc::ErrorCode::Internal, &msg)
                    .to_vec()
            }
        };
        self.router.reply(origin.executor, origin.conn, out);
    }

    fn is_leader(&self) -> bool {
        self.leader == self.identity.member_id
    }

    /// A put (or txn put) naming a lease that does not exist is refused.
    fn check_put_leases(&self, body: &RequestBodyView<'_>) -> Result<(), (rpc::ErrorCode, String)> {
        for id in apply::put_leases(body) {
            if !self.leases.table.contains(id) {
                return Err(lease::error(crate::lease::LeaseError::NotFound));
            }
        }
        Ok(())
    }

    /// The leader renews a lease without a log entry: deadlines are its own.
    fn keep_alive(&mut self, origin: Origin, id: u64, body: &RequestBodyView<'_>) {
        let RequestBodyView::LeaseKeepAlive(k) = body else {
            return;
        };
        let ttl = self
            .leases
            .table
            .keep_alive(k.id(), Instant::now())
            .unwrap_or(0);
        let header = self.header();
        let frame = self
            .enc
            .lease_keep_alive_response(id, &header, k.id(), ttl)
            .to_vec();
        self.router.reply(origin.executor, origin.conn, frame);
    }

    /// The leader proposes the revocation of expired leases.
    fn expire_leases(&mut self) {
        if !self.is_leader() {
            return;
        }
        let due = self.leases.due(Instant::now());
        if due.is_empty() {
            return;
        }
        let payloads: Vec<Bytes> = due
            .iter()
            .map(|lease_id| {
                let frame = self.enc.lease_revoke_request(0, *lease_id);
                let mut payload = BytesMut::with_capacity(ENVELOPE_BYTES + frame.len());
                // No member waits for the answer.
                payload.put_u64_le(0);
                payload.put_u64_le(0);
                payload.put_slice(frame);
                payload.freeze()
            })
            .collect();
        tracing::debug!(
            leases = due.len(),
            "proposing the revocation of expired leases"
        );
        if let Err(e) = self.node.propose(payloads) {
            tracing::debug!("could not propose lease revocations yet: {e}");
        }
    }

    fn time_to_live_frame(
        &mut self,
        id: u64,
        header: &Header,
        lease_id: i64,
        with_keys: bool,
    ) -> Vec<u8> {
        let Some(granted) = self.leases.table.get(lease_id).map(|l| l.granted_ttl_s) else {
            let r = cairn_wire::LeaseTimeToLiveResult {
                id: lease_id,
                ttl: -1,
                granted_ttl: 0,
                keys: &[],
            };
            return self
                .enc
                .lease_time_to_live_response(id, header, &r)
                .to_vec();
        };
        let mut ttl = self
            .leases
            .table
            .remaining_s(lease_id, Instant::now())
            .unwrap_or(-1);
        if !self.is_leader() {
            // Only the leader sees keep-alives sent to it; a follower knows
            // the lease exists (revocations are logged) but not its deadline.
            ttl = ttl.max(1);
        }
        let mvcc = self.mvcc.borrow();
        let keys: Vec<&[u8]> = if with_keys {
            mvcc.keys_with_lease(lease_id).collect()
        } else {
            Vec::new()
        };
        let r = cairn_wire::LeaseTimeToLiveResult {
            id: lease_id,
            ttl,
            granted_ttl: granted,
            keys: &keys,
        };
        self.enc
            .lease_time_to_live_response(id, header, &r)
            .to_vec()
    }

    fn error_frame(&mut self, id: u64, header: &Header, e: &crate::mvcc::Error) -> Vec<u8> {
        let (code, msg) = apply::mvcc_error(e);
        self.enc
            .error_response(id, Some(header), code, &msg)
            .to_vec()
    }

    fn reply_error(&mut self, origin: Origin, id: u64, code: rpc::ErrorCode, message: &str) {
        let header = self.header();
        let frame = self
            .enc
            .error_response(id, Some(&header), code, message)
            .to_vec();
        self.router.reply(origin.executor, origin.conn, frame);
    }
}

/// The result of applying a write.
enum Applied {
    Put(crate::mvcc::PutResponse),
    Delete(crate::mvcc::DeleteRangeResponse),
    Txn(crate::mvcc::TxnResponse),
    Compact,
    Alarm,
    LeaseGrant {
        id: i64,
        ttl: i64,
    },
    LeaseRevoke,
    KeepAlive {
        id: i64,
        ttl: i64,
    },
    /// A member staged; its conf change is proposed next.
    MemberAdd {
        member: u64,
    },
    MemberUpdate,
}

fn nospace() -> (rpc::ErrorCode, String) {
    (
        rpc::ErrorCode::ResourceExhausted,
        "etcdserver: mvcc: database space exceeded".into(),
    )
}

fn envelope(payload: &[u8]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&payload[0..8]);
    b.copy_from_slice(&payload[8..16]);
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

fn unreachable_frame(frame: &[u8]) {
    tracing::error!(
        len = frame.len(),
        "a frame that passed verification no longer decodes"
    );
}

/// Returns once the executor has been through its reactor: every task that
/// could run has run, I/O queued meanwhile is submitted and completions are
/// reaped. (A plain yield would run the other tasks but not the reactor.)
async fn yield_to_reactor() {
    glommio::timer::sleep(Duration::from_micros(1)).await;
}

/// Waits for each WAL batch to become durable, in order, and tells the
/// shard. A failed sync stops the server: nothing after it may be
/// acknowledged (fail-stop).
fn spawn_persister(
    shared: Arc<Shared>,
    wal: Wal<DmaFs>,
    jobs: LocalReceiver<PersistJob>,
    events: Rc<LocalSender<Event>>,
) {
    glommio::spawn_local(async move {
        while let Some(job) = jobs.recv().await {
            if let Err(e) = wal.wait_durable(job.lsn).await {
                tracing::error!("WAL sync failed, stopping (fail-stop): {e}");
                shared.fail(format!("WAL sync failed: {e}"));
                return;
            }
            crate::failpoint::hit("wal-after-save");
            if events.send(Event::Persisted(job)).await.is_err() {
                return;
            }
        }
    })
    .detach();
}

fn spawn_inbox_forwarder(inbox: LocalReceiver<ToShard>, events: Rc<LocalSender<Event>>) {
    glommio::spawn_local(async move {
        while let Some(msg) = inbox.recv().await {
            if events.send(Event::Requests(msg)).await.is_err() {
                return;
            }
        }
    })
    .detach();
}

fn spawn_ticker(shared: Arc<Shared>, events: Rc<LocalSender<Event>>) {
    let tick = Duration::from_millis(shared.config.heartbeat_interval_ms);
    glommio::spawn_local(async move {
        while !shared.stopping() {
            glommio::timer::sleep(tick).await;
            // A full queue means the shard is busy; a late tick is harmless.
            let _ = events.try_send(Event::Tick);
        }
    })
    .detach();
}
