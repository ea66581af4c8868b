//! Text renderings of Raft values for the scenario scripts.

use std::fmt::Write;

use cairn_raft::{
    ConfChange, ConfState, Entry, EntryKind, Message, MessageKind, ProgressState, Ready, Role,
    Status,
};

pub fn role(r: Role) -> &'static str {
    match r {
        Role::Follower => "Follower",
        Role::PreCandidate => "PreCandidate",
        Role::Candidate => "Candidate",
        Role::Leader => "Leader",
    }
}

pub fn ids(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

pub fn conf_state(cs: &ConfState) -> String {
    let mut s = format!("voters=({})", ids(&cs.voters));
    if !cs.voters_outgoing.is_empty() {
        let _ = write!(s, "&&({})", ids(&cs.voters_outgoing));
    }
    if !cs.learners.is_empty() {
        let _ = write!(s, " learners=({})", ids(&cs.learners));
    }
    if !cs.learners_next.is_empty() {
        let _ = write!(s, " learners_next=({})", ids(&cs.learners_next));
    }
    if cs.auto_leave {
        s.push_str(" autoleave");
    }
    s
}

pub fn entry(e: &Entry) -> String {
    match e.kind {
        EntryKind::Normal if e.data.is_empty() => format!("{}/{}", e.term, e.index),
        EntryKind::Normal => format!(
            "{}/{} {}",
            e.term,
            e.index,
            String::from_utf8_lossy(&e.data)
        ),
        EntryKind::ConfChange => match ConfChange::decode(&e.data) {
            Ok(cc) => format!("{}/{} conf:{}", e.term, e.index, conf_change(&cc)),
            Err(_) => format!("{}/{} conf:?", e.term, e.index),
        },
    }
}

pub fn conf_change(cc: &ConfChange) -> String {
    use cairn_raft::{ConfChangeKind, ConfChangeTransition};
    if cc.changes.is_empty() {
        return "leave".to_string();
    }
    let mut parts: Vec<String> = cc
        .changes
        .iter()
        .map(|c| {
            let k = match c.kind {
                ConfChangeKind::AddNode => "v",
                ConfChangeKind::AddLearner => "l",
                ConfChangeKind::RemoveNode => "r",
            };
            format!("{k}{}", c.node_id)
        })
        .collect();
    match cc.transition {
        ConfChangeTransition::Auto => {}
        ConfChangeTransition::JointImplicit => parts.push("implicit".into()),
        ConfChangeTransition::JointExplicit => parts.push("explicit".into()),
    }
    parts.join(",")
}

fn kind(k: MessageKind) -> &'static str {
    match k {
        MessageKind::Append => "App",
        MessageKind::AppendResponse => "AppResp",
        MessageKind::Vote => "Vote",
        MessageKind::VoteResponse => "VoteResp",
        MessageKind::PreVote => "PreVote",
        MessageKind::PreVoteResponse => "PreVoteResp",
        MessageKind::Heartbeat => "Heartbeat",
        MessageKind::HeartbeatResponse => "HeartbeatResp",
        MessageKind::Snapshot => "Snap",
        MessageKind::TimeoutNow => "TimeoutNow",
        MessageKind::Propose => "Prop",
        MessageKind::ReadIndex => "ReadIndex",
        MessageKind::ReadIndexResponse => "ReadIndexResp",
        MessageKind::TransferLeader => "TransferLeader",
    }
}

pub fn message(m: &Message) -> String {
    let mut s = format!("{}->{} {} Term:{}", m.from, m.to, kind(m.kind), m.term);
    match m.kind {
        MessageKind::Append => {
            let _ = write!(s, " Log:{}/{} Commit:{}", m.log_term, m.index, m.commit);
            if !m.entries.is_empty() {
                let es: Vec<String> = m.entries.iter().map(entry).collect();
                let _ = write!(s, " Entries:[{}]", es.join(", "));
            }
        }
        MessageKind::AppendResponse => {
            let _ = write!(s, " Index:{}", m.index);
            if m.reject {
                let _ = write!(s, " Rejected (Hint: {}/{})", m.log_term, m.reject_hint);
            }
        }
        MessageKind::Vote | MessageKind::PreVote => {
            let _ = write!(s, " Log:{}/{}", m.log_term, m.index);
            if m.campaign_transfer {
                s.push_str(" Transfer");
            }
        }
        MessageKind::VoteResponse | MessageKind::PreVoteResponse => {
            if m.reject {
                s.push_str(" Rejected");
            }
        }
        MessageKind::Heartbeat => {
            let _ = write!(s, " Commit:{}", m.commit);
            if m.context != 0 {
                let _ = write!(s, " Round:{}", m.context);
            }
        }
        MessageKind::HeartbeatResponse => {
            if m.context != 0 {
                let _ = write!(s, " Round:{}", m.context);
            }
        }
        MessageKind::Snapshot => {
            if let Some(snap) = &m.snapshot {
                let md = &snap.metadata;
                let _ = write!(
                    s,
                    " Snapshot: Index:{} Term:{} {}",
                    md.index,
                    md.term,
                    conf_state(&md.conf_state)
                );
            }
        }
        MessageKind::Propose => {
            let es: Vec<String> = m.entries.iter().map(entry).collect();
            let _ = write!(s, " Entries:[{}]", es.join(", "));
        }
        MessageKind::ReadIndex | MessageKind::TransferLeader => {
            let _ = write!(s, " Context:{}", m.context);
        }
        MessageKind::ReadIndexResponse => {
            let _ = write!(s, " Index:{} Context:{}", m.index, m.context);
        }
        MessageKind::TimeoutNow => {}
    }
    s
}

pub fn ready(id: u64, rd: &Ready) -> String {
    let mut s = format!("> {id} handling Ready\n");
    if let Some(ss) = rd.soft_state {
        let _ = writeln!(s, "  Lead:{} State:{}", ss.leader, role(ss.role));
    }
    if let Some(hs) = rd.hard_state {
        let _ = writeln!(
            s,
            "  HardState Term:{} Vote:{} Commit:{}",
            hs.term, hs.vote, hs.commit
        );
    }
    if let Some(snap) = &rd.snapshot {
        let md = &snap.metadata;
        let _ = writeln!(
            s,
            "  Snapshot Index:{} Term:{} {}",
            md.index,
            md.term,
            conf_state(&md.conf_state)
        );
    }
    if !rd.entries.is_empty() {
        s.push_str("  Entries:\n");
        for e in &rd.entries {
            let _ = writeln!(s, "  {}", entry(e));
        }
    }
    if !rd.messages.is_empty() {
        s.push_str("  Messages:\n");
        for m in &rd.messages {
            let _ = writeln!(s, "  {}", message(m));
        }
    }
    if !rd.persisted_messages.is_empty() {
        s.push_str("  Messages after persist:\n");
        for m in &rd.persisted_messages {
            let _ = writeln!(s, "  {}", message(m));
        }
    }
    if !rd.committed_entries.is_empty() {
        s.push_str("  CommittedEntries:\n");
        for e in &rd.committed_entries {
            let _ = writeln!(s, "  {}", entry(e));
        }
    }
    for r in &rd.read_states {
        let _ = writeln!(s, "  ReadState Context:{} Index:{}", r.context, r.index);
    }
    s
}

pub fn status(st: &Status) -> String {
    let mut s = format!(
        "{} {} Term:{} Lead:{} Commit:{} Applied:{} Last:{} {}\n",
        st.id,
        role(st.role),
        st.term,
        st.leader,
        st.commit,
        st.applied,
        st.last_index,
        conf_state(&st.conf_state)
    );
    for (id, p) in &st.progress {
        let state = match p.state {
            ProgressState::Probe => "StateProbe",
            ProgressState::Replicate => "StateReplicate",
            ProgressState::Snapshot => "StateSnapshot",
        };
        let _ = write!(s, "  {id}: {state} match={} next={}", p.matched, p.next);
        if p.is_learner {
            s.push_str(" learner");
        }
        if p.inflight_msgs > 0 {
            let _ = write!(s, " inflight={}", p.inflight_msgs);
        }
        s.push('\n');
    }
    s
}
