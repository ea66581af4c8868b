//! `lease grant|revoke|timetolive|list|keep-alive`.

use crate::ctl::args::{GlobalArgs, LeaseCommand};
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::gofmt::quote;
use crate::ctl::print::lease_hex;
use crate::ctl::print::{OutputFormat, Printer};
use crate::ctl::run::{connect, Io};
use crate::limits::KEEPALIVE_INTERVAL_MIN;
use crate::Error;

/// A lease ID argument, in hex as etcdctl takes it.
fn lease_id(args: &[String], missing: &str) -> Result<i64, CtlError> {
    let [arg] = args else {
        return Err(CtlError::bad_args(missing));
    };
    i64::from_str_radix(arg, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "bad lease ID arg (strconv.ParseInt: parsing {}: invalid syntax), expecting ID in Hex",
            quote(arg.as_bytes())
        ))
    })
}

/// etcdctl reports failures of these lease reads as connection errors.
fn bad_connection(e: Error) -> CtlError {
    CtlError::new(ExitCode::BadConnection, CtlError::from(e).message)
}

pub(crate) async fn run(
    g: &GlobalArgs,
    printer: Printer,
    command: LeaseCommand,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    match command {
        LeaseCommand::Grant(a) => {
            let [ttl] = a.args.as_slice() else {
                return Err(CtlError::bad_args("lease grant command needs TTL argument"));
            };
            let ttl: i64 = ttl.parse().map_err(|_| {
                CtlError::bad_args(format!(
                    "bad TTL (strconv.ParseInt: parsing {}: invalid syntax)",
                    quote(ttl.as_bytes())
                ))
            })?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.lease_grant(ttl, 0).await.map_err(|e| {
                CtlError::new(
                    ExitCode::Error,
                    format!("failed to grant lease ({})", CtlError::from(e).message),
                )
            })?;
            printer.lease_grant(io.stdout, &r)
        }
        LeaseCommand::Revoke(a) => {
            let id = lease_id(&a.args, "lease revoke command needs 1 argument")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.lease_revoke(id).await.map_err(|e| {
                CtlError::new(
                    ExitCode::Error,
                    format!("failed to revoke lease ({})", CtlError::from(e).message),
                )
            })?;
            printer.lease_revoke(io.stdout, id, &r)
        }
        LeaseCommand::Timetolive(a) => {
            let id = lease_id(
                &a.args,
                "lease timetolive command needs lease ID as argument",
            )?;
            let client = connect(g, &g.endpoints).await?;
            let r = client
                .lease_time_to_live(id, a.keys)
                .await
                .map_err(bad_connection)?;
            printer.lease_time_to_live(io.stdout, &r, a.keys)
        }
        LeaseCommand::List => {
            let client = connect(g, &g.endpoints).await?;
            let r = client.lease_leases().await.map_err(bad_connection)?;
            printer.lease_leases(io.stdout, &r)
        }
        LeaseCommand::KeepAlive(a) => {
            let id = lease_id(
                &a.args,
                "lease keep-alive command needs lease ID as argument",
            )?;
            let client = connect(g, &g.endpoints).await?;
            if a.once {
                let r = client
                    .lease_keep_alive_once(id)
                    .await
                    .map_err(bad_connection)?;
                if r.ttl <= 0 {
                    return Err(CtlError::new(
                        ExitCode::BadConnection,
                        Error::LeaseNotFound.to_string(),
                    ));
                }
                return printer.lease_keep_alive(io.stdout, &r);
            }
            // Renew at a third of the TTL, as etcd's clients do, until the
            // lease is gone (or the process is interrupted).
            loop {
                let r = match client.lease_keep_alive_once(id).await {
                    Ok(r) if r.ttl > 0 => r,
                    Ok(_) | Err(Error::LeaseNotFound) => break,
                    Err(e) if e.is_retriable() || e == Error::Timeout => {
                        tokio::time::sleep(KEEPALIVE_INTERVAL_MIN).await;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                printer.lease_keep_alive(io.stdout, &r)?;
                io.stdout.flush()?;
                let third = std::time::Duration::from_secs(u64::try_from(r.ttl / 3).unwrap_or(0));
                tokio::time::sleep(third.max(KEEPALIVE_INTERVAL_MIN)).await;
            }
            if printer.format == OutputFormat::Simple {
                writeln!(io.stdout, "lease {} expired or revoked.", lease_hex(id))?;
            }
            Ok(())
        }
    }
}
