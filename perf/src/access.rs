//! How the harness reaches a server that asks for more than a plain TCP
//! connection: TLS to the client port (`--cacert`, `--cert`, `--key`) and a
//! user to log in as (`--user name:password`).
//!
//! Both targets authenticate once per connection when it opens and then
//! send the token with every request: cairn through `cairn-client`'s
//! credentials, etcd in the `token` gRPC metadata, as etcd's Go client
//! does. For `compare`, the servers it starts also get TLS
//! (`--server-cert`, `--server-key`) and, with `--user`, a user who may
//! read and write only the keys the harness uses (see [`GRANT_KEY`]).
//!
//! ```
//! use cairn_perf::access::UserPassword;
//! let user: UserPassword = "bench:secret".parse().unwrap();
//! assert_eq!(user.name, "bench");
//! assert!(!format!("{user:?}").contains("secret"));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::PerfError;

/// Files for TLS to the server, as etcdctl's `--cacert`, `--cert`, `--key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// A client certificate and its key, for servers started with
    /// `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A user name and password (`--user name:password`). Neither `Debug` nor
/// the run's recorded command line shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct UserPassword {
    pub name: String,
    pub password: String,
}

impl fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPassword")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl FromStr for UserPassword {
    type Err = String;

    /// `name:password`, split at the first colon as etcdctl's `--user`.
    fn from_str(text: &str) -> Result<UserPassword, String> {
        match text.split_once(':') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => {
                Ok(UserPassword {
                    name: name.to_string(),
                    password: password.to_string(),
                })
            }
            _ => Err("expected name:password, both not empty".to_string()),
        }
    }
}

/// How every connection of a run reaches the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// TLS to the client port; `None` for plaintext.
    pub tls: Option<TlsFiles>,
    /// The user each connection authenticates as; `None` for no auth.
    pub user: Option<UserPassword>,
}

impl Access {
    /// The flags' view of TLS: on once a CA is given. A client certificate
    /// without a CA is refused, as nothing could verify the server.
    pub fn from_flags(
        cacert: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        user: Option<UserPassword>,
    ) -> Result<Access, PerfError> {
        if cert.is_some() != key.is_some() {
            return Err(PerfError::config(
                "a client certificate needs both --cert and --key",
            ));
        }
        let tls = match cacert {
            Some(ca) => Some(TlsFiles { ca, cert, key }),
            None if cert.is_some() => {
                return Err(PerfError::config(
                    "--cert needs --cacert (the CA to verify the server with)",
                ))
            }
            None => None,
        };
        Ok(Access { tls, user })
    }

    /// The same TLS without a user: how `compare` probes and prepares a
    /// server before auth is switched on.
    pub fn without_user(&self) -> Access {
        Access {
            tls: self.tls.clone(),
            user: None,
        }
    }

    /// A short label for summaries: `plaintext`, `TLS`, `auth`, `TLS + auth`.
    pub fn label(&self) -> &'static str {
        match (self.tls.is_some(), self.user.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "TLS",
            (false, true) => "auth",
            (true, true) => "TLS + auth",
        }
    }

    /// `endpoint` with the scheme this access needs: `https://` with TLS
    /// (the endpoint's own scheme, if any, is replaced), else unchanged.
    pub fn endpoint_url(&self, endpoint: &str) -> String {
        let bare = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .unwrap_or(endpoint);
        if self.tls.is_some() {
            format!("https://{bare}")
        } else if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("http://{bare}")
        }
    }
}

/// The server certificate and key `compare` starts its servers with
/// (`--cert-file`, `--key-file`, both servers' flag names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The role `compare` creates for the `--user` it is given.
pub const PERF_ROLE: &str = "cairn-perf";

/// The start of the key range the role may read and write. Every key the
/// workloads write is a zero-padded decimal number (see [`crate::keys`]),
/// so `["0", ":")` (`:` follows `9`) holds all of them and nothing else
/// the harness touches: a range check is made on every request, as it
/// would be for an application confined to its prefix.
pub const GRANT_KEY: &[u8] = b"0";
/// The end of the granted range (exclusive).
pub const GRANT_RANGE_END: &[u8] = b":";
/// The key readiness probes and revision reads use; the role may read it.
pub const PROBE_KEY: &[u8] = b"cairn-perf-probe";

/// The `root` user `compare` must create before auth can be enabled. Its
/// password is the `--user`'s: the servers are started for one run and
/// removed after it.
pub const ROOT_USER: &str = "root";

/// Replaces the password in `--user name:password` (or
/// `--user=name:password`) of a recorded command line.
pub fn redact_command_line(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut next_is_user = false;
    for arg in args {
        if next_is_user {
            out.push(redact_user(&arg));
            next_is_user = false;
        } else if let Some(value) = arg.strip_prefix("--user=") {
            out.push(format!("--user={}", redact_user(value)));
        } else {
            next_is_user = arg == "--user";
            out.push(arg);
        }
    }
    out
}

fn redact_user(value: &str) -> String {
    match value.split_once(':') {
        Some((name, _)) => format!("{name}:<redacted>"),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parses_at_the_first_colon() {
        let user: UserPassword = "alice:pa:ss".parse().unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.password, "pa:ss");
        assert!("alice".parse::<UserPassword>().is_err());
        assert!(":pw".parse::<UserPassword>().is_err());
        assert!("alice:".parse::<UserPassword>().is_err());
    }

    #[test]
    fn passwords_are_redacted_from_the_command_line() {
        let line = ["cairn-perf", "--user", "a:pw", "--user=b:pw2", "put"]
            .map(String::from)
            .to_vec();
        let redacted = redact_command_line(line);
        assert_eq!(
            redacted,
            [
                "cairn-perf",
                "--user",
                "a:<redacted>",
                "--user=b:<redacted>",
                "put"
            ]
        );
    }

    #[test]
    fn tls_switches_the_scheme() {
        let tls = Access {
            tls: Some(TlsFiles::default()),
            user: None,
        };
        assert_eq!(tls.endpoint_url("127.0.0.1:1"), "https://127.0.0.1:1");
        assert_eq!(
            tls.endpoint_url("http://127.0.0.1:1"),
            "https://127.0.0.1:1"
        );
        let plain = Access::default();
        assert_eq!(plain.endpoint_url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(plain.endpoint_url("https://h:1"), "https://h:1");
    }

    #[test]
    fn a_client_certificate_needs_a_ca_and_a_key() {
        let p = || Some(PathBuf::from("x.pem"));
        assert!(Access::from_flags(None, p(), p(), None).is_err());
        assert!(Access::from_flags(p(), p(), None, None).is_err());
        let access = Access::from_flags(p(), p(), p(), None).unwrap();
        assert_eq!(access.label(), "TLS");
    }

    #[test]
    fn the_grant_holds_every_harness_key_and_not_the_probe() {
        let keys = crate::keys::KeySpace::new(8, 100_000, false).unwrap();
        for index in [0, 99_999] {
            let key = keys.key(index);
            assert!(key.as_ref() >= GRANT_KEY && key.as_ref() < GRANT_RANGE_END);
        }
        assert!(PROBE_KEY >= GRANT_RANGE_END);
    }
}
