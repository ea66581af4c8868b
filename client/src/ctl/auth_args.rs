//! The command line of `user`, `role` and `auth`, as etcdctl's.

use clap::{ArgAction, Args, Subcommand};

use crate::ctl::args::PositionalArgs;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a new user
    Add(UserAddArgs),
    /// Deletes a user
    Delete(PositionalArgs),
    /// Gets detailed information of a user
    Get(UserGetArgs),
    /// Lists all users
    List(PositionalArgs),
    /// Changes password of user
    Passwd(UserPasswdArgs),
    /// Grants a role to a user
    GrantRole(PositionalArgs),
    /// Revokes a role from a user
    RevokeRole(PositionalArgs),
}

/// `user add <user name or user:password> [options]`.
#[derive(Debug, Clone, Args)]
pub struct UserAddArgs {
    /// Read password from stdin instead of interactive terminal.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    pub interactive: bool,
    /// Supply password from the command line flag.
    #[arg(long, default_value = "")]
    pub new_user_password: String,
    /// Create a user without password (CN based auth only).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub no_password: bool,
    pub args: Vec<String>,
}

/// `user get <user name> [options]`.
#[derive(Debug, Clone, Args)]
pub struct UserGetArgs {
    /// Show permissions of roles granted to the user.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub detail: bool,
    pub args: Vec<String>,
}

/// `user passwd <user name> [options]`.
#[derive(Debug, Clone, Args)]
pub struct UserPasswdArgs {
    /// If true, read password from stdin instead of interactive terminal.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    pub interactive: bool,
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Adds a new role
    Add(PositionalArgs),
    /// Deletes a role
    Delete(PositionalArgs),
    /// Gets detailed information of a role
    Get(PositionalArgs),
    /// Lists all roles
    List(PositionalArgs),
    /// Grants a key to a role
    GrantPermission(PermissionArgs),
    /// Revokes a key from a role
    RevokePermission(PermissionArgs),
}

/// `role grant-permission [options] <role name> <permission type> <key>
/// [endkey]` and `role revoke-permission <role name> <key> [endkey]`.
#[derive(Debug, Clone, Args)]
pub struct PermissionArgs {
    /// The permission covers every key with the given prefix.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub prefix: bool,
    /// The permission covers every key greater than or equal to the given
    /// key using byte compare.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub from_key: bool,
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enables authentication
    Enable(PositionalArgs),
    /// Disables authentication
    Disable(PositionalArgs),
    /// Returns authentication status
    Status(PositionalArgs),
}
