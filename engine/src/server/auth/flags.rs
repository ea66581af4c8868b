//! The auth flags, with etcd's names and defaults.

use crate::config::ConfigError;
use crate::limits::{
    AUTH_TOKEN_TTL_S_DEFAULT, BCRYPT_COST_DEFAULT, BCRYPT_COST_MAX, BCRYPT_COST_MIN,
};

#[derive(Debug, Clone, clap::Args)]
pub struct AuthFlags {
    /// Token type: `simple` (random tokens that every member learns
    /// through the log), or signed JWTs as etcd takes them:
    /// `jwt,pub-key=<path>,priv-key=<path>,sign-method=<RS256|...>,ttl=5m`.
    #[arg(
        long = "auth-token",
        default_value = "simple",
        env = "CAIRN_AUTH_TOKEN"
    )]
    pub auth_token: String,

    /// Seconds a simple token stays valid after its last use.
    #[arg(long = "auth-token-ttl", default_value_t = AUTH_TOKEN_TTL_S_DEFAULT, env = "CAIRN_AUTH_TOKEN_TTL")]
    pub auth_token_ttl_s: u64,

    /// bcrypt cost of password hashes (4 to 31).
    #[arg(long = "bcrypt-cost", default_value_t = BCRYPT_COST_DEFAULT, env = "CAIRN_BCRYPT_COST")]
    pub bcrypt_cost: u32,
}

impl AuthFlags {
    /// The JWT keys `--auth-token jwt,...` names (loaded and checked), or
    /// `None` for simple tokens.
    pub fn jwt_keys(&self) -> Result<Option<super::jwt::JwtKeys>, ConfigError> {
        let kind = self.auth_token.split(',').next().unwrap_or("");
        match kind {
            "simple" => Ok(None),
            "jwt" => super::jwt::JwtKeys::from_flag(&self.auth_token)
                .map(Some)
                .map_err(|reason| ConfigError {
                    flag: "auth-token",
                    reason,
                }),
            _ => Err(ConfigError {
                flag: "auth-token",
                reason: format!("{kind:?} is not a token type (simple or jwt)"),
            }),
        }
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        self.jwt_keys()?;
        if self.auth_token_ttl_s == 0 {
            return Err(ConfigError {
                flag: "auth-token-ttl",
                reason: "must be positive".into(),
            });
        }
        if !(BCRYPT_COST_MIN..=BCRYPT_COST_MAX).contains(&self.bcrypt_cost) {
            return Err(ConfigError {
                flag: "bcrypt-cost",
                reason: format!("must be between {BCRYPT_COST_MIN} and {BCRYPT_COST_MAX}"),
            });
        }
        Ok(())
    }
}
