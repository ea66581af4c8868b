//! Seeded simulation of 3- and 5-node clusters under faults (see
//! `simulation/`). `CAIRN_RAFT_SEEDS=N` runs N seeds per cluster size
//! (starting at `CAIRN_RAFT_SEED_FIRST`, default 1); `CAIRN_RAFT_SEED=S`
//! replays one seed.

mod simulation;

use simulation::{run, Outcome, Params};

/// Seeds per cluster size by default: sized so the default suite stays well
/// under a minute in the dev profile on two cores.
const DEFAULT_SEEDS: u64 = 1500;
/// Simulation steps per seed.
const STEPS_PER_SEED: u64 = 6000;

fn seeds() -> Vec<u64> {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(s) = var("CAIRN_RAFT_SEED") {
        return vec![s];
    }
    let n = var("CAIRN_RAFT_SEEDS").unwrap_or(DEFAULT_SEEDS);
    // Long runs can start elsewhere to explore seeds the default never uses.
    let first = var("CAIRN_RAFT_SEED_FIRST").unwrap_or(1);
    (first..first + n).collect()
}

fn run_seeds(voters: u64, spares: u64, crashes_max: usize) {
    let p = Params {
        voters,
        spares,
        steps: STEPS_PER_SEED,
        crashes_max,
    };
    let mut total = Outcome::default();
    for seed in seeds() {
        let seed = seed * 1000 + voters;
        let r = std::panic::catch_unwind(|| run(seed, &p));
        match r {
            Ok(o) => total.add(&o),
            Err(e) => {
                eprintln!(
                    "simulation failed: {voters} voters, seed {seed}\nreplay: CAIRN_RAFT_SEED={} cargo test -p cairn-raft --test sim sim_{voters}_nodes",
                    seed / 1000
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    let t = &total;
    eprintln!(
        "{voters} voters: {} entries committed, {} reads served, {} snapshots installed, {} conf changes applied, {} restarts, {} leader terms",
        t.committed, t.reads_served, t.snapshots_installed, t.conf_changes_applied, t.restarts, t.leader_terms
    );
    // The runs exercised what they claim to: commits, reads, snapshots,
    // membership changes, crashes and elections.
    assert!(
        t.committed > 0 && t.reads_served > 0 && t.snapshots_installed > 0,
        "simulation did too little"
    );
    assert!(
        t.conf_changes_applied > 0 && t.restarts > 0 && t.leader_terms > seeds().len(),
        "simulation did too little"
    );
}

#[test]
fn sim_3_nodes() {
    run_seeds(3, 2, 1);
}

#[test]
fn sim_5_nodes() {
    run_seeds(5, 2, 2);
}
