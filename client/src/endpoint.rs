//! Endpoint strings, as etcd tools accept them: `host:port`,
//! `http://host:port`, `https://host:port`.

use crate::error::{Error, Result};
use crate::limits::ENDPOINTS_MAX;

/// A member's client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The string the user gave, used in messages and cairnctl's output.
    pub original: String,
    /// `host:port`, for connecting.
    pub address: String,
}

impl Endpoint {
    /// Parses one endpoint.
    pub fn parse(text: &str) -> Result<Endpoint> {
        let trimmed = text.trim();
        let rest = if let Some(rest) = trimmed
            .strip_prefix("http://")
            .or(trimmed.strip_prefix("https://"))
        {
            rest
        } else if trimmed.starts_with("unixs://") {
            return Err(Error::InvalidArgument(format!(
                "endpoint {trimmed}: unix sockets are not supported"
            )));
        } else if trimmed.contains("://") {
            return Err(Error::InvalidArgument(format!(
                "endpoint {trimmed}: unsupported scheme (want host:port or http://host:port)"
            )));
        } else {
            trimmed
        };
        let address = rest.trim_end_matches('/');
        let port_ok = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || address.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "endpoint {trimmed}: want host:port or http://host:port"
            )));
        }
        Ok(Endpoint {
            original: trimmed.to_string(),
            address: address.to_string(),
        })
    }

    /// Whether the endpoint asks for TLS (`https://`).
    pub fn is_https(&self) -> bool {
        self.original.starts_with("https://")
    }

    /// Parses a list of endpoints; it must be non-empty and at most
    /// [`ENDPOINTS_MAX`] long.
    pub fn parse_list<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Endpoint>> {
        if texts.is_empty() {
            return Err(Error::InvalidArgument("no endpoints given".to_string()));
        }
        if texts.len() > ENDPOINTS_MAX {
            return Err(Error::InvalidArgument(format!(
                "{} endpoints given, at most {ENDPOINTS_MAX} are accepted",
                texts.len()
            )));
        }
        texts.iter().map(|t| Endpoint::parse(t.as_ref())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_etcd_forms_and_refuses_the_rest() {
        let e = Endpoint::parse("http://127.0.0.1:2379/").unwrap();
        assert_eq!(e.address, "127.0.0.1:2379");
        assert_eq!(
            Endpoint::parse("localhost:23790").unwrap().address,
            "localhost:23790"
        );
        assert_eq!(Endpoint::parse("[::1]:2379").unwrap().address, "[::1]:2379");
        let secure = Endpoint::parse("https://h:1").unwrap();
        assert!(secure.is_https() && secure.address == "h:1");
        assert!(!e.is_https());
        assert!(Endpoint::parse("127.0.0.1").is_err());
        assert!(Endpoint::parse("h:99999").is_err());
        assert!(Endpoint::parse_list::<&str>(&[]).is_err());
    }
}
