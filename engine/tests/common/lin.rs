//! A linearizability checker for histories of single-key register
//! operations (read, write, compare-and-swap), in the style of Wing & Gong
//! with Lowe's memoization: a depth-first search for an order of the
//! operations that respects real time (an operation that returned before
//! another was invoked comes first) and the register's sequential
//! behaviour, remembering every (set of linearized operations, register
//! value) pair already found to be a dead end.
//!
//! Keys are independent registers, so each key's sub-history is checked on
//! its own (linearizability is compositional).
//!
//! Outcomes:
//! - `Ok`: the operation took effect exactly once, between invoke and
//!   return, with the recorded result.
//! - `Failed`: it certainly did not take effect (it is dropped).
//! - `Unknown`: a timeout or a lost connection: it may have taken effect at
//!   any point after its invoke, or never. Its return time is infinity, and
//!   the search may linearize it as "happened" or as "never happened".
//!
//! The search is bounded by a step budget; running out gives
//! `KeyVerdict::GaveUp`, which is not a verdict of either kind.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// What a client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A read that returned `value` (`None`: the key was absent).
    Read { value: Option<Vec<u8>> },
    /// An unconditional write.
    Write { value: Vec<u8> },
    /// If the value equals `expected` (`None`: the key is absent), write
    /// `new`. `succeeded` is the result the client saw (meaningful for `Ok`).
    Cas {
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        succeeded: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Unknown,
}

/// One completed (or abandoned) client operation.
#[derive(Debug, Clone)]
pub struct Entry {
    pub client: usize,
    pub key: Vec<u8>,
    pub op: Op,
    pub outcome: Outcome,
    pub invoke: Instant,
    /// When the client saw the answer; ignored for `Unknown`.
    pub ret: Instant,
}

/// The verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    Linearizable,
    /// Not linearizable; the text shows the failing window.
    Violation(String),
    /// The step budget ran out first.
    GaveUp,
}

/// Steps (operation applications tried) allowed per key before giving up.
/// A few thousand operations per key with a few dozen unknown outcomes
/// finish in well under a million steps; the budget only stops a
/// pathological history from hanging a test.
pub const STEPS_MAX: u64 = 20_000_000;

/// Check every key's sub-history; returns (key, verdict, ops checked).
pub fn check(history: &[Entry], steps_max: u64) -> Vec<(Vec<u8>, KeyVerdict, usize)> {
    let mut by_key: HashMap<&[u8], Vec<&Entry>> = HashMap::new();
    for e in history {
        by_key.entry(&e.key).or_default().push(e);
    }
    let mut keys: Vec<&[u8]> = by_key.keys().copied().collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|k| {
            let (v, n) = check_key(&by_key[k], steps_max);
            (k.to_vec(), v, n)
        })
        .collect()
}

/// Values interned to small numbers; 0 is "absent".
type Val = u32;
const ABSENT: Val = 0;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Read(Val),
    Write(Val),
    Cas {
        expected: Val,
        new: Val,
        succeeded: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Node {
    kind: Kind,
    unknown: bool,
    invoke: Instant,
    /// `None`: returns at infinity (unknown outcome).
    ret: Option<Instant>,
    source: usize,
}

/// The register values `node` may leave when applied to `state`; empty when
/// it cannot be applied there.
fn outcomes(n: &Node, state: Val, out: &mut Vec<Val>) {
    out.clear();
    match n.kind {
        Kind::Read(v) => {
            if v == state {
                out.push(state);
            }
        }
        Kind::Write(v) => {
            out.push(v);
            if n.unknown {
                out.push(state);
            }
        }
        Kind::Cas {
            expected,
            new,
            succeeded,
        } => {
            if n.unknown {
                if state == expected {
                    out.push(new);
                }
                out.push(state);
            } else if succeeded == (state == expected) {
                out.push(if succeeded { new } else { state });
            }
        }
    }
}

fn check_key(entries: &[&Entry], steps_max: u64) -> (KeyVerdict, usize) {
    let mut intern: HashMap<Vec<u8>, Val> = HashMap::new();
    let mut id = |v: &Option<Vec<u8>>| -> Val {
        match v {
            None => ABSENT,
            Some(b) => {
                let next = intern.len() as Val + 1;
                *intern.entry(b.clone()).or_insert(next)
            }
        }
    };
    let mut nodes: Vec<Node> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let unknown = match e.outcome {
            Outcome::Failed => continue,
            Outcome::Unknown => true,
            Outcome::Ok => false,
        };
        let kind = match &e.op {
            // A read with no answer has no effect and shows nothing.
            Op::Read { .. } if unknown => continue,
            Op::Read { value } => Kind::Read(id(value)),
            Op::Write { value } => Kind::Write(id(&Some(value.clone()))),
            Op::Cas {
                expected,
                new,
                succeeded,
            } => {
                // A CAS that certainly failed had no effect; it still
                // observed "value != expected", so it stays.
                Kind::Cas {
                    expected: id(expected),
                    new: id(&Some(new.clone())),
                    succeeded: *succeeded,
                }
            }
        };
        nodes.push(Node {
            kind,
            unknown,
            invoke: e.invoke,
            ret: if unknown { None } else { Some(e.ret) },
            source: i,
        });
    }
    prune_unobserved_unknowns(&mut nodes);
    let checked = nodes.len();
    let verdict = search(&nodes, steps_max);
    let verdict = match verdict {
        Search::Ok => KeyVerdict::Linearizable,
        Search::GaveUp => KeyVerdict::GaveUp,
        Search::Stuck { linearized, state } => {
            KeyVerdict::Violation(window(entries, &nodes, &linearized, state, &intern))
        }
    };
    (verdict, checked)
}

/// An unknown write whose value nobody ever observed, with no failed CAS
/// that could have observed it, changes nothing any other operation saw:
/// any linearization that applies it stays valid without it. Dropping such
/// writes keeps the search from trying each of them at every position.
fn prune_unobserved_unknowns(nodes: &mut Vec<Node>) {
    let mut observed: HashSet<Val> = HashSet::new();
    let mut last_failed_cas_ret: Option<Instant> = None;
    for n in nodes.iter() {
        match n.kind {
            Kind::Read(v) => {
                observed.insert(v);
            }
            Kind::Cas {
                expected,
                succeeded,
                ..
            } => {
                if n.unknown || succeeded {
                    observed.insert(expected);
                }
                if !n.unknown && !succeeded {
                    last_failed_cas_ret = last_failed_cas_ret.max(n.ret);
                }
            }
            Kind::Write(_) => {}
        }
    }
    nodes.retain(|n| {
        let written = match n.kind {
            Kind::Write(v) => v,
            Kind::Cas { new, .. } => new,
            Kind::Read(_) => return true,
        };
        let seen_by_failed_cas = last_failed_cas_ret.is_some_and(|r| r > n.invoke);
        !n.unknown || observed.contains(&written) || seen_by_failed_cas
    });
}

enum Search {
    Ok,
    GaveUp,
    /// The deepest partial linearization found.
    Stuck {
        linearized: Vec<bool>,
        state: Val,
    },
}

/// The depth-first search. The candidates at each point are the operations
/// not yet linearized that were invoked before the earliest return among
/// the pending definite operations.
fn search(nodes: &[Node], steps_max: u64) -> Search {
    let n = nodes.len();
    // Order by invoke so candidates are a prefix of the pending list.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| nodes[i].invoke);
    // Two independent Zobrist keys per node: a 128-bit fingerprint of the
    // linearized set, so a false cache hit is out of the question in practice.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let zob: Vec<(u64, u64)> = (0..n).map(|_| (next(), next())).collect();

    let mut done = vec![false; n];
    let mut fp = (0u64, 0u64);
    let mut state: Val = ABSENT;
    let mut seen: HashSet<(u64, u64, Val)> = HashSet::new();
    // Frames: (node, state before it, outcome index tried).
    let mut stack: Vec<(usize, Val, usize)> = Vec::new();
    let mut best: (usize, Vec<bool>, Val) = (0, done.clone(), state);
    let mut steps = 0u64;
    let mut outs = Vec::new();
    let definite = order.iter().filter(|&&i| nodes[i].ret.is_some()).count();
    let mut definite_done = 0usize;
    // The position in `order` to resume scanning from, and the first outcome to try.
    let mut resume: (usize, usize) = (0, 0);

    loop {
        if definite_done == definite {
            return Search::Ok;
        }
        // Earliest return among pending definite ops bounds the candidates.
        let horizon = order
            .iter()
            .filter(|&&i| !done[i])
            .filter_map(|&i| nodes[i].ret)
            .min();
        let mut advanced = false;
        let (mut pos, mut first_out) = resume;
        while pos < n {
            let i = order[pos];
            if horizon.is_some_and(|h| nodes[i].invoke > h) {
                break;
            }
            if !done[i] {
                outcomes(&nodes[i], state, &mut outs);
                for (k, &s) in outs.iter().enumerate().skip(first_out) {
                    steps += 1;
                    if steps > steps_max {
                        return Search::GaveUp;
                    }
                    let nfp = (fp.0 ^ zob[i].0, fp.1 ^ zob[i].1);
                    if seen.insert((nfp.0, nfp.1, s)) {
                        stack.push((pos, state, k));
                        done[i] = true;
                        fp = nfp;
                        state = s;
                        if nodes[i].ret.is_some() {
                            definite_done += 1;
                        }
                        advanced = true;
                        break;
                    }
                }
            }
            if advanced {
                break;
            }
            pos += 1;
            first_out = 0;
        }
        if advanced {
            if stack.len() > best.0 {
                best = (stack.len(), done.clone(), state);
            }
            resume = (0, 0);
            continue;
        }
        // Dead end: undo the last choice and try its next alternative.
        let Some((pos, prev, k)) = stack.pop() else {
            return Search::Stuck {
                linearized: best.1,
                state: best.2,
            };
        };
        let i = order[pos];
        done[i] = false;
        fp = (fp.0 ^ zob[i].0, fp.1 ^ zob[i].1);
        state = prev;
        if nodes[i].ret.is_some() {
            definite_done -= 1;
        }
        resume = (pos, k + 1);
    }
}

/// Describe where the deepest partial linearization got stuck: its
/// register value and the pending operations invoked before the earliest
/// pending return (one of them had to go next, and none could).
fn window(
    entries: &[&Entry],
    nodes: &[Node],
    linearized: &[bool],
    state: Val,
    intern: &HashMap<Vec<u8>, Val>,
) -> String {
    let names: HashMap<Val, String> = intern
        .iter()
        .map(|(k, v)| (*v, String::from_utf8_lossy(k).into_owned()))
        .collect();
    let name = |v: Val| names.get(&v).cloned().unwrap_or_else(|| "<absent>".into());
    let t0 = entries.iter().map(|e| e.invoke).min();
    let at = |t: Instant| {
        t0.map(|t0| t.duration_since(t0).as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    let pending: Vec<&Node> = nodes
        .iter()
        .zip(linearized)
        .filter(|(_, d)| !**d)
        .map(|(n, _)| n)
        .collect();
    let horizon = pending.iter().filter_map(|n| n.ret).min();
    let mut out = format!(
        "linearized {} of {} operations; the register held {:?} and none of these could go next:\n",
        linearized.iter().filter(|d| **d).count(),
        nodes.len(),
        name(state)
    );
    let mut shown: Vec<&Node> = pending
        .into_iter()
        .filter(|n| horizon.is_none_or(|h| n.invoke <= h))
        .collect();
    shown.sort_by_key(|n| n.invoke);
    // Also show where the values involved came from.
    let mut involved: HashSet<Val> = HashSet::from([state]);
    for n in &shown {
        if let Kind::Read(v) | Kind::Cas { expected: v, .. } = n.kind {
            involved.insert(v);
        }
    }
    let writers: Vec<&Node> = nodes
        .iter()
        .filter(|n| match n.kind {
            Kind::Write(v) | Kind::Cas { new: v, .. } => involved.contains(&v),
            Kind::Read(_) => false,
        })
        .collect();
    let mut lines: Vec<(&Node, &str)> = shown.iter().map(|n| (*n, "")).collect();
    lines.extend(
        writers
            .into_iter()
            .map(|n| (n, "  (wrote a value involved)")),
    );
    for (n, note) in lines {
        let e = entries[n.source];
        let ret = match n.ret {
            Some(r) => format!("{:.1}", at(r)),
            None => "?".into(),
        };
        let what = match n.kind {
            Kind::Read(v) => format!("read -> {:?}", name(v)),
            Kind::Write(v) => format!("write {:?}", name(v)),
            Kind::Cas {
                expected,
                new,
                succeeded,
            } => {
                format!("cas {:?} -> {:?} = {succeeded}", name(expected), name(new))
            }
        };
        out.push_str(&format!(
            "  client {} [{:.1} ms .. {ret} ms] {what} ({:?}){note}\n",
            e.client,
            at(n.invoke),
            e.outcome
        ));
    }
    out
}
