//! Which of the endpoints is the leader: for `--target-leader`, and for
//! telling how many of a run's connections reached the leader when they are
//! spread over a cluster.
//!
//! Each endpoint is asked for its status (its own member id and the leader's,
//! as `etcdctl endpoint status` shows them). An endpoint that does not answer
//! within [`STATUS_TIMEOUT_MS`] is skipped, so a cluster with a member down
//! can still be driven at its leader.

use std::time::Duration;

use crate::access::Access;
use crate::config::TargetKind;
use crate::error::PerfError;
use crate::limits::STATUS_TIMEOUT_MS;

/// What one endpoint said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It is the leader.
    Leader,
    /// It knows a leader, and is not it.
    Follower,
    /// It knows no leader.
    NoLeader,
    /// It did not answer; the reason.
    Unreachable(String),
}

/// The role of each of `endpoints`, in order.
pub async fn roles(target: TargetKind, endpoints: &[String], access: &Access) -> Vec<Role> {
    let mut out = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let asked = tokio::time::timeout(
            Duration::from_millis(STATUS_TIMEOUT_MS),
            status(target, endpoint, access),
        )
        .await;
        out.push(match asked {
            Err(_) => Role::Unreachable(format!("no status within {STATUS_TIMEOUT_MS} ms")),
            Ok(Err(e)) => Role::Unreachable(e.to_string()),
            Ok(Ok((0, _))) => Role::NoLeader,
            Ok(Ok((leader, member))) if leader == member => Role::Leader,
            Ok(Ok(_)) => Role::Follower,
        });
    }
    out
}

/// The leader's id as `endpoint` sees it, and its own id.
async fn status(
    target: TargetKind,
    endpoint: &str,
    access: &Access,
) -> Result<(u64, u64), PerfError> {
    match target {
        TargetKind::Cairn => crate::cairn::leader_of(endpoint, access).await,
        TargetKind::Etcd => crate::etcd::EtcdConn::connect_with(endpoint, access)
            .await?
            .leader()
            .await
            .map_err(|e| PerfError::Connect {
                endpoint: endpoint.to_string(),
                reason: format!("endpoint status: {}", e.kind),
            }),
    }
}

/// The endpoint of the leader among `endpoints`. Endpoints that do not
/// answer are skipped; the error names what each one said when none is the
/// leader.
pub async fn find_leader(
    target: TargetKind,
    endpoints: &[String],
    access: &Access,
) -> Result<String, PerfError> {
    let roles = roles(target, endpoints, access).await;
    if let Some(i) = roles.iter().position(|r| *r == Role::Leader) {
        return Ok(endpoints[i].clone());
    }
    let said: Vec<String> = endpoints
        .iter()
        .zip(&roles)
        .map(|(endpoint, role)| match role {
            Role::Leader => format!("{endpoint}: leader"),
            Role::Follower => format!("{endpoint}: follower"),
            Role::NoLeader => format!("{endpoint}: knows no leader"),
            Role::Unreachable(reason) => format!("{endpoint}: {reason}"),
        })
        .collect();
    Err(PerfError::TargetUnavailable(format!(
        "--target-leader: none of the endpoints is the leader ({})",
        said.join("; ")
    )))
}

/// How many of `conns` connections, opened round-robin over endpoints of
/// the given roles (connection *i* to endpoint *i mod n*), reach the
/// leader; `None` when no endpoint said it is the leader.
pub fn conns_at_leader(roles: &[Role], conns: usize) -> Option<usize> {
    if roles.is_empty() || !roles.contains(&Role::Leader) {
        return None;
    }
    Some(
        (0..conns)
            .filter(|i| roles[i % roles.len()] == Role::Leader)
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_round_robin() {
        let roles = [Role::Follower, Role::Leader, Role::Follower];
        assert_eq!(conns_at_leader(&roles, 1), Some(0));
        assert_eq!(conns_at_leader(&roles, 2), Some(1));
        assert_eq!(conns_at_leader(&roles, 100), Some(33));
        assert_eq!(conns_at_leader(&[Role::Leader], 7), Some(7));
        let leaderless = [Role::NoLeader, Role::Unreachable("refused".into())];
        assert_eq!(conns_at_leader(&leaderless, 4), None);
    }
}
