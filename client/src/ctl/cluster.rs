//! Membership and per-member maintenance: `member add|remove|update|promote`,
//! `endpoint hashkv`, `defrag`, `move-leader`.

use crate::ctl::args::{EndpointArgs, GlobalArgs, HashKvArgs, MemberCommand, PositionalArgs};
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::gofmt::quote;
use crate::ctl::print::{EndpointHashKv, MemberChange, OutputFormat, Printer, Shape};
use crate::ctl::run::{connect, target_endpoints, Io};

/// A member ID argument, in hex as etcdctl takes it.
fn member_id(args: &[String]) -> Result<u64, CtlError> {
    let [arg] = args else {
        return Err(CtlError::bad_args("member ID is not provided"));
    };
    u64::from_str_radix(arg, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "bad member ID arg (strconv.ParseUint: parsing {}: invalid syntax), expecting ID in Hex",
            quote(arg.as_bytes())
        ))
    })
}

fn peer_urls(flag: &str) -> Result<Vec<String>, CtlError> {
    if flag.is_empty() {
        return Err(CtlError::bad_args("member peer urls not provided"));
    }
    Ok(flag.split(',').map(str::to_string).collect())
}

pub(crate) async fn member(
    g: &GlobalArgs,
    printer: Printer,
    command: MemberCommand,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    let shape = match command {
        MemberCommand::List => Shape::MemberList,
        _ => Shape::MemberChange,
    };
    printer.require(shape)?;
    match command {
        MemberCommand::List => {
            let client = connect(g, &g.endpoints).await?;
            let r = client.member_list().await?;
            printer.member_list(io.stdout, &r)
        }
        MemberCommand::Add(a) => {
            let name = match a.args.as_slice() {
                [] => return Err(CtlError::bad_args("member name not provided")),
                [name] => name.clone(),
                all => {
                    let mut message = String::from("too many arguments");
                    for s in all.iter().filter(|s| s.to_lowercase().starts_with("http")) {
                        message.push_str(&format!(", did you mean --peer-urls={s}"));
                    }
                    return Err(CtlError::bad_args(message));
                }
            };
            let urls = peer_urls(&a.peer_urls)?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.member_add(urls, a.learner).await?;
            printer.member_add(io.stdout, &r)?;
            if printer.format == OutputFormat::Simple {
                // What the new member needs to join, as etcdctl prints it.
                let mut cluster = Vec::new();
                for m in &r.members {
                    let member_name = if m.id == r.member.id { &name } else { &m.name };
                    for url in &m.peer_urls {
                        cluster.push(format!("{member_name}={url}"));
                    }
                }
                writeln!(io.stdout)?;
                writeln!(io.stdout, "ETCD_NAME={}", quote(name.as_bytes()))?;
                writeln!(
                    io.stdout,
                    "ETCD_INITIAL_CLUSTER={}",
                    quote(cluster.join(",").as_bytes())
                )?;
                writeln!(
                    io.stdout,
                    "ETCD_INITIAL_ADVERTISE_PEER_URLS={}",
                    quote(a.peer_urls.as_bytes())
                )?;
                writeln!(io.stdout, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"")?;
            }
            Ok(())
        }
        MemberCommand::Remove(a) => {
            let id = member_id(&a.args)?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.member_remove(id).await?;
            printer.member_change(io.stdout, MemberChange::Removed, id, &r)
        }
        MemberCommand::Update(a) => {
            let id = member_id(&a.args)?;
            let urls = peer_urls(&a.peer_urls)?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.member_update(id, urls).await?;
            printer.member_change(io.stdout, MemberChange::Updated, id, &r)
        }
        MemberCommand::Promote(a) => {
            let id = member_id(&a.args)?;
            let client = connect(g, &g.endpoints).await?;
            let r = match client.member_promote(id).await {
                // Only the leader knows whether the learner has caught up;
                // where etcd's follower forwards the request to it, ask the
                // leader among the endpoints ourselves.
                Err(crate::Error::Server { message, .. }) if message == NOT_LEADER => {
                    leader_client(g).await?.member_promote(id).await?
                }
                other => other?,
            };
            printer.member_change(io.stdout, MemberChange::Promoted, id, &r)
        }
    }
}

pub(crate) async fn endpoint_hashkv(
    g: &GlobalArgs,
    printer: Printer,
    a: &HashKvArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    printer.require(Shape::EndpointHashKv)?;
    let endpoints = target_endpoints(g, &EndpointArgs { cluster: a.cluster }).await?;
    let mut list = Vec::new();
    let mut last_error = None;
    for endpoint in endpoints {
        let hash = match connect(g, std::slice::from_ref(&endpoint)).await {
            Ok(client) => client.hash_kv(a.rev).await.map_err(CtlError::from),
            Err(e) => Err(e),
        };
        match hash {
            Ok(hash) => list.push(EndpointHashKv { endpoint, hash }),
            Err(e) => {
                writeln!(
                    io.stderr,
                    "Failed to get the hash of endpoint {endpoint} ({})",
                    e.message
                )?;
                last_error = Some(e);
            }
        }
    }
    printer.endpoint_hashkv(io.stdout, &list)?;
    match last_error {
        Some(e) => Err(CtlError::new(ExitCode::Error, e.message)),
        None => Ok(()),
    }
}

pub(crate) async fn defrag(
    g: &GlobalArgs,
    a: &EndpointArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    let endpoints = target_endpoints(g, a).await?;
    let mut failed = false;
    for endpoint in endpoints {
        let done = match connect(g, std::slice::from_ref(&endpoint)).await {
            Ok(client) => client.defragment().await.map_err(CtlError::from),
            Err(e) => Err(e),
        };
        match done {
            Ok(_) => writeln!(io.stdout, "Finished defragmenting etcd member[{endpoint}]")?,
            Err(e) => {
                failed = true;
                writeln!(
                    io.stderr,
                    "Failed to defragment etcd member[{endpoint}] ({})",
                    e.message
                )?;
            }
        }
    }
    if failed {
        return Err(CtlError::new(ExitCode::Error, ""));
    }
    Ok(())
}

/// Finds the leader among the endpoints and asks it to hand over.
pub(crate) async fn move_leader(
    g: &GlobalArgs,
    printer: Printer,
    a: &PositionalArgs,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    printer.require(Shape::MoveLeader)?;
    let [arg] = a.args.as_slice() else {
        return Err(CtlError::bad_args("move-leader command needs 1 argument"));
    };
    let target = u64::from_str_radix(arg, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            quote(arg.as_bytes())
        ))
    })?;
    let client = leader_client(g).await?;
    let leader = client.status().await?.leader;
    let r = client.move_leader(target).await?;
    printer.move_leader(io.stdout, leader, target, &r)
}

/// What a follower answers to a request only the leader can serve.
const NOT_LEADER: &str = "etcdserver: not leader";

/// A client of the endpoint that is the leader, as etcdctl finds it for
/// `move-leader`: by asking each endpoint's status in turn.
async fn leader_client(g: &GlobalArgs) -> Result<crate::Client, CtlError> {
    for endpoint in &g.endpoints {
        let client = connect(g, std::slice::from_ref(endpoint)).await?;
        let status = client.status().await?;
        if status.header.member_id == status.leader {
            return Ok(client);
        }
    }
    Err(CtlError::bad_args(format!(
        "no leader endpoint given at [{}]",
        g.endpoints.join(" ")
    )))
}
