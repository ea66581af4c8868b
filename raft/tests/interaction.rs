//! Scenario scripts: `testdata/*.txt` hold commands and the text they are
//! expected to print. `REWRITE=1 cargo test -p cairn-raft --test interaction`
//! regenerates the expected text (review the diff before keeping it).
//!
//! File format: a block is one command line, a `----` line, and the
//! expected output up to the next blank line. `#` lines are comments.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use bytes::Bytes;
use cairn_raft::{
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition, ConfState, Config,
    EntryKind, MemStorage, Message, RawNode, ReadOnlyOption, Storage,
};

struct Node {
    raw: RawNode<MemStorage>,
    cfg: Config,
    conf_state: ConfState,
    applied: u64,
}

#[derive(Default)]
struct Env {
    nodes: BTreeMap<u64, Node>,
    /// Messages waiting for delivery, per recipient.
    inbox: BTreeMap<u64, Vec<Message>>,
    /// Nodes whose links are cut.
    isolated: BTreeSet<u64>,
}

type Args = BTreeMap<String, String>;

fn parse_ids(s: &str) -> Vec<u64> {
    s.trim_matches(|c| c == '(' || c == ')')
        .split([',', ' '])
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().expect("id"))
        .collect()
}

impl Env {
    fn node(&mut self, id: u64) -> &mut Node {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn add_nodes(&mut self, n: u64, args: &Args) -> String {
        let first = self.nodes.keys().last().copied().unwrap_or(0) + 1;
        let all: Vec<u64> = (first..first + n).collect();
        let voters = args.get("voters").map_or(all.clone(), |v| parse_ids(v));
        let learners = args.get("learners").map_or(Vec::new(), |v| parse_ids(v));
        let cs = ConfState {
            voters,
            learners,
            ..ConfState::default()
        };
        let mut out = String::new();
        for id in all {
            let mut cfg = Config::new(id, 10, 1);
            cfg.pre_vote = args.get("pre-vote").is_none_or(|v| v == "true");
            cfg.check_quorum = args.get("check-quorum").is_none_or(|v| v == "true");
            if args.get("read-only").is_some_and(|v| v == "lease") {
                cfg.read_only_option = ReadOnlyOption::LeaseBased;
            }
            if let Some(v) = args.get("max-msg-bytes") {
                cfg.max_size_per_msg_bytes = v.parse().expect("bytes");
            }
            if let Some(v) = args.get("inflight") {
                cfg.max_inflight_msgs = v.parse().expect("count");
            }
            let storage = MemStorage::new_with_conf_state(cs.clone());
            let raw = RawNode::new(&cfg, storage).expect("node");
            let _ = writeln!(out, "{id}: {}", support::conf_state(&cs));
            self.nodes.insert(
                id,
                Node {
                    raw,
                    cfg,
                    conf_state: cs.clone(),
                    applied: 0,
                },
            );
        }
        out
    }

    /// Handles one Ready synchronously: persist, queue messages, apply.
    fn process_ready(&mut self, id: u64) -> String {
        let n = self.node(id);
        if !n.raw.has_ready() {
            return String::new();
        }
        let rd = n.raw.ready();
        let out = support::ready(id, &rd);
        if let Some(snap) = &rd.snapshot {
            n.raw.storage_mut().apply_snapshot(snap.clone());
            n.conf_state = snap.metadata.conf_state.clone();
            n.applied = snap.metadata.index;
        }
        n.raw.storage_mut().append(&rd.entries);
        if let Some(hs) = rd.hard_state {
            n.raw.storage_mut().set_hard_state(hs);
        }
        let mut extra = String::new();
        for e in &rd.committed_entries {
            if e.kind == EntryKind::ConfChange {
                let cc = ConfChange::decode(&e.data).expect("conf change");
                match n.raw.apply_conf_change(&cc) {
                    Ok(cs) => {
                        let _ = writeln!(
                            extra,
                            "  INFO {id} applied conf change: {}",
                            support::conf_state(&cs)
                        );
                        n.raw.storage_mut().set_conf_state(cs.clone());
                        n.conf_state = cs;
                    }
                    Err(e) => {
                        let _ = writeln!(extra, "  INFO {id} conf change rejected: {e}");
                    }
                }
            }
            n.applied = e.index;
        }
        n.raw.advance(&rd);
        let msgs: Vec<Message> = rd
            .messages
            .into_iter()
            .chain(rd.persisted_messages)
            .collect();
        for m in msgs {
            self.inbox.entry(m.to).or_default().push(m);
        }
        out + &extra
    }

    fn deliver(&mut self, id: u64) -> String {
        let msgs = self.inbox.remove(&id).unwrap_or_default();
        let mut out = String::new();
        for m in msgs {
            let line = support::message(&m);
            if self.isolated.contains(&m.from) || self.isolated.contains(&m.to) {
                let _ = writeln!(out, "  dropped: {line}");
                continue;
            }
            let Some(n) = self.nodes.get_mut(&id) else {
                continue;
            };
            let _ = writeln!(out, "  {line}");
            if let Err(e) = n.raw.step(m) {
                let _ = writeln!(out, "  error: {e}");
            }
        }
        if out.is_empty() {
            return out;
        }
        format!("> {id} receiving messages\n{out}")
    }

    fn stabilize(&mut self, only: &[u64]) -> String {
        let ids: Vec<u64> = if only.is_empty() {
            self.nodes.keys().copied().collect()
        } else {
            only.to_vec()
        };
        let mut out = String::new();
        for _ in 0..1000 {
            let mut progressed = false;
            for &id in &ids {
                let s = self.process_ready(id);
                progressed |= !s.is_empty();
                out += &s;
            }
            for &id in &ids {
                let s = self.deliver(id);
                progressed |= !s.is_empty();
                out += &s;
            }
            if !progressed {
                return out;
            }
        }
        panic!("stabilize did not converge:\n{out}");
    }

    fn tick(&mut self, id: u64, n: usize) {
        for _ in 0..n {
            self.node(id).raw.tick();
        }
    }

    fn run(&mut self, cmd: &str, pos: &[&str], args: &Args) -> String {
        let id = |i: usize| -> u64 { pos.get(i).expect("missing id").parse().expect("id") };
        match cmd {
            "add-nodes" => self.add_nodes(id(0), args),
            "campaign" => {
                self.node(id(0)).raw.campaign();
                String::new()
            }
            "propose" => {
                let batch: Vec<Bytes> = pos[1..]
                    .iter()
                    .map(|s| Bytes::from(s.to_string()))
                    .collect();
                match self.node(id(0)).raw.propose(batch) {
                    Ok(()) => String::new(),
                    Err(e) => format!("error: {e}\n"),
                }
            }
            "propose-conf-change" => {
                let mut cc = ConfChange::leave_joint();
                for t in &pos[1..] {
                    let (k, n) = t.split_at(1);
                    let kind = match k {
                        "v" => ConfChangeKind::AddNode,
                        "l" => ConfChangeKind::AddLearner,
                        "r" => ConfChangeKind::RemoveNode,
                        _ => panic!("bad change {t}"),
                    };
                    let node_id = n.parse().expect("id");
                    cc.changes.push(ConfChangeSingle { kind, node_id });
                }
                cc.transition = match args.get("transition").map(String::as_str) {
                    Some("implicit") => ConfChangeTransition::JointImplicit,
                    Some("explicit") => ConfChangeTransition::JointExplicit,
                    _ => ConfChangeTransition::Auto,
                };
                match self.node(id(0)).raw.propose_conf_change(&cc) {
                    Ok(()) => String::new(),
                    Err(e) => format!("error: {e}\n"),
                }
            }
            "read-index" => {
                let ctx = pos[1].parse().expect("context");
                self.node(id(0)).raw.read_index(ctx);
                String::new()
            }
            "transfer-leader" => {
                let to = id(1);
                self.node(id(0)).raw.transfer_leader(to);
                String::new()
            }
            "stabilize" => {
                let only: Vec<u64> = pos.iter().map(|p| p.parse().expect("id")).collect();
                self.stabilize(&only)
            }
            "process-ready" => self.process_ready(id(0)),
            "deliver-msgs" => self.deliver(id(0)),
            "tick" => {
                let n = pos[1].parse().expect("count");
                self.tick(id(0), n);
                String::new()
            }
            "tick-heartbeat" => {
                let n = self.node(id(0)).cfg.heartbeat_tick;
                self.tick(id(0), n);
                String::new()
            }
            "tick-election" => {
                // Twice the base timeout always exceeds the randomized one.
                let n = self.node(id(0)).cfg.election_tick * 2;
                self.tick(id(0), n);
                String::new()
            }
            "isolate" => {
                self.isolated.insert(id(0));
                String::new()
            }
            "heal" => {
                self.isolated.clear();
                String::new()
            }
            "status" => support::status(&self.node(id(0)).raw.status()),
            "raft-log" => {
                let n = self.node(id(0));
                let s = n.raw.storage();
                let first = s.first_index().expect("first");
                let mut out = format!("first index {first}\n");
                for e in s.all_entries() {
                    let _ = writeln!(out, "{}", support::entry(e));
                }
                out
            }
            "compact" => {
                let index = pos[1].parse().expect("index");
                let n = self.node(id(0));
                assert!(index <= n.applied, "compact beyond applied");
                let cs = n.conf_state.clone();
                let st = n.raw.storage_mut();
                let r = st
                    .create_snapshot(index, cs, Bytes::from_static(b"snap"))
                    .and_then(|()| st.compact(index));
                match r {
                    Ok(()) => String::new(),
                    Err(e) => format!("error: {e}\n"),
                }
            }
            "report-snapshot" => {
                let ok = pos.get(2).is_none_or(|v| *v == "ok");
                self.node(id(0)).raw.report_snapshot(id(1), ok);
                String::new()
            }
            "report-unreachable" => {
                self.node(id(0)).raw.report_unreachable(id(1));
                String::new()
            }
            "restart" => {
                // Everything handed out was persisted synchronously, so a
                // restart loses only volatile state.
                let n = self.node(id(0));
                let mut cfg = n.cfg.clone();
                cfg.applied = n.applied;
                let storage = n.raw.storage().clone();
                n.raw = RawNode::new(&cfg, storage).expect("restart");
                self.inbox.remove(&id(0));
                String::new()
            }
            _ => panic!("unknown command {cmd}"),
        }
    }
}

/// Runs one script; returns the rewritten text.
fn run_file(text: &str) -> String {
    let mut env = Env::default();
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
        let sep = lines.next().unwrap_or("");
        assert_eq!(sep, "----", "expected ---- after {line:?}");
        // Skip the recorded output.
        while lines.peek().is_some_and(|l| !l.trim().is_empty()) {
            lines.next();
        }
        let mut pos = Vec::new();
        let mut args = Args::new();
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or_default();
        for w in words {
            match w.split_once('=') {
                Some((k, v)) => {
                    args.insert(k.to_string(), v.to_string());
                }
                None => pos.push(w),
            }
        }
        let result = env.run(cmd, &pos, &args);
        out.push_str("----\n");
        let result = if result.is_empty() {
            "ok\n".to_string()
        } else {
            result
        };
        out.push_str(&result);
    }
    out
}

#[test]
fn scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let rewrite = std::env::var("REWRITE").is_ok_and(|v| v == "1");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios");
    let mut failed = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let got = run_file(&text);
        if got == text {
            continue;
        }
        if rewrite {
            std::fs::write(&f, &got).expect("write");
            continue;
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let diff = first_difference(&text, &got);
        failed.push(format!("{name}: {diff}"));
    }
    assert!(
        failed.is_empty(),
        "scenario output differs (REWRITE=1 to regenerate):\n{}",
        failed.join("\n")
    );
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (a, b)) in want.lines().zip(got.lines()).enumerate() {
        if a != b {
            return format!("line {}:\n  want: {a}\n  got:  {b}", i + 1);
        }
    }
    format!(
        "length differs ({} vs {} lines)",
        want.lines().count(),
        got.lines().count()
    )
}
