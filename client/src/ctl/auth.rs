//! `user`, `role` and `auth`, and the global `--user`/`--password` login.

use std::io::{BufRead, IsTerminal, Read};

use crate::ctl::args::{GlobalArgs, PositionalArgs};
use crate::ctl::auth_args::{AuthCommand, PermissionArgs, RoleCommand, UserCommand};
use crate::ctl::exit::{CtlError, ExitCode};
use crate::ctl::print::{AuthChange, Printer, Shape};
use crate::ctl::run::{connect, Io};
use crate::limits::PASSWORD_BYTES_MAX;
use crate::{prefix_range_end, Credentials, Error, PermissionType};

/// The login `--user` and `--password` ask for: `--user name:password`,
/// or `--user name --password password`. With neither a `:` nor
/// `--password`, [`ask_login_password`] has put the password in
/// `--password` already.
pub(crate) fn credentials(g: &GlobalArgs) -> Option<Credentials> {
    let user = g.user.as_deref().filter(|u| !u.is_empty())?;
    match g.password.as_deref().filter(|p| !p.is_empty()) {
        Some(password) => Some(Credentials::new(user, password)),
        None => match user.split_once(':') {
            Some((name, password)) => Some(Credentials::new(name, password)),
            None => Some(Credentials::new(user, "")),
        },
    }
}

/// Prompts for the password of `--user name` given without one, as
/// etcdctl does before it connects.
pub(crate) fn ask_login_password(g: &mut GlobalArgs, io: &mut Io<'_>) -> Result<(), CtlError> {
    let Some(user) = g.user.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    if g.password.as_deref().is_some_and(|p| !p.is_empty()) || user.contains(':') {
        return Ok(());
    }
    let password = ask(io, "Password: ").map_err(|e| CtlError::new(ExitCode::Error, e))?;
    g.password = Some(password);
    Ok(())
}

/// Turns terminal echo off or on; false if that failed (not a terminal).
fn set_echo(on: bool) -> bool {
    let setting = if on { "echo" } else { "-echo" };
    std::process::Command::new("stty")
        .arg(setting)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One line from stdin after `prompt`, without echo on a terminal. Like
/// etcdctl, prints the prompt and then a newline on stdout.
fn ask(io: &mut Io<'_>, prompt: &str) -> Result<String, String> {
    let write = |io: &mut Io<'_>, text: &str| -> Result<(), String> {
        io.stdout
            .write_all(text.as_bytes())
            .and_then(|()| io.stdout.flush())
            .map_err(|e| e.to_string())
    };
    write(io, prompt)?;
    let silenced = std::io::stdin().is_terminal() && set_echo(false);
    let line = read_line(io);
    if silenced {
        set_echo(true);
    }
    write(io, "\n")?;
    let line = line?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn read_line(io: &mut Io<'_>) -> Result<String, String> {
    let mut bytes = Vec::new();
    Read::take(&mut *io.stdin, PASSWORD_BYTES_MAX as u64)
        .read_until(b'\n', &mut bytes)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "password is not valid UTF-8".to_string())
}

/// A new password, typed twice (etcdctl's `readPasswordInteractive`).
fn ask_new_password(io: &mut Io<'_>, name: &str) -> Result<String, CtlError> {
    let failed = |e| CtlError::bad_args(format!("failed to ask password: {e}"));
    let first = ask(io, &format!("Password of {name}: ")).map_err(failed)?;
    if first.is_empty() {
        return Err(CtlError::bad_args("empty password"));
    }
    let second = ask(
        io,
        &format!("Type password of {name} again for confirmation: "),
    )
    .map_err(failed)?;
    if first != second {
        return Err(CtlError::bad_args("given passwords are different"));
    }
    Ok(first)
}

/// A password from stdin with `--interactive=false`: the first word of the
/// first line, as Go's `fmt.Scanf("%s")` reads it.
fn read_password_word(io: &mut Io<'_>) -> Result<String, CtlError> {
    let line = read_line(io).map_err(CtlError::bad_args)?;
    Ok(line.split_whitespace().next().unwrap_or("").to_string())
}

fn one_arg(a: &PositionalArgs, message: &str) -> Result<String, CtlError> {
    match a.args.as_slice() {
        [name] => Ok(name.clone()),
        _ => Err(CtlError::bad_args(message)),
    }
}

fn no_args(a: &PositionalArgs, message: &str) -> Result<(), CtlError> {
    if a.args.is_empty() {
        Ok(())
    } else {
        Err(CtlError::bad_args(message))
    }
}

pub(crate) async fn user(
    g: &GlobalArgs,
    printer: Printer,
    command: UserCommand,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    match command {
        UserCommand::Add(a) => {
            printer.require(Shape::Auth)?;
            let [arg] = a.args.as_slice() else {
                return Err(CtlError::bad_args(
                    "user add command requires user name as its argument",
                ));
            };
            let (name, password) = if a.no_password {
                (arg.clone(), String::new())
            } else if !a.new_user_password.is_empty() {
                (arg.clone(), a.new_user_password.clone())
            } else if let Some((name, password)) = arg.split_once(':') {
                if name.is_empty() {
                    return Err(CtlError::bad_args("empty user name is not allowed"));
                }
                (name.to_string(), password.to_string())
            } else if a.interactive {
                (arg.clone(), ask_new_password(io, arg)?)
            } else {
                (arg.clone(), read_password_word(io)?)
            };
            let client = connect(g, &g.endpoints).await?;
            let r = if a.no_password {
                client.user_add_no_password(&name).await?
            } else {
                client.user_add(&name, &password).await?
            };
            printer.auth_change(io.stdout, AuthChange::UserAdded { user: &name }, &r)
        }
        UserCommand::Delete(a) => {
            printer.require(Shape::Auth)?;
            let name = one_arg(&a, "user delete command requires user name as its argument")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.user_delete(&name).await?;
            printer.auth_change(io.stdout, AuthChange::UserDeleted { user: &name }, &r)
        }
        UserCommand::Get(a) => {
            let shape = if a.detail {
                Shape::Auth
            } else {
                Shape::AuthNoFields
            };
            printer.require(shape)?;
            let [name] = a.args.as_slice() else {
                return Err(CtlError::bad_args(
                    "user get command requires user name as its argument",
                ));
            };
            let client = connect(g, &g.endpoints).await?;
            let r = client.user_get(name).await?;
            if !a.detail {
                return printer.user_get(io.stdout, name, &r);
            }
            writeln!(io.stdout, "User: {name}")?;
            for role in &r.roles {
                writeln!(io.stdout)?;
                let perms = client.role_get(role).await?;
                printer.role_get(io.stdout, role, &perms)?;
            }
            Ok(())
        }
        UserCommand::List(a) => {
            printer.require(Shape::AuthNoFields)?;
            no_args(&a, "user list command requires no arguments")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.user_list().await?;
            printer.user_list(io.stdout, &r)
        }
        UserCommand::Passwd(a) => {
            printer.require(Shape::Auth)?;
            let [name] = a.args.as_slice() else {
                return Err(CtlError::bad_args(
                    "user passwd command requires user name as its argument",
                ));
            };
            let password = if a.interactive {
                ask_new_password(io, name)?
            } else {
                read_password_word(io)?
            };
            let client = connect(g, &g.endpoints).await?;
            let r = client.user_change_password(name, &password).await?;
            printer.auth_change(io.stdout, AuthChange::PasswordChanged, &r)
        }
        UserCommand::GrantRole(a) => {
            printer.require(Shape::Auth)?;
            let [user, role] = a.args.as_slice() else {
                return Err(CtlError::bad_args(
                    "user grant command requires user name and role name as its argument",
                ));
            };
            let client = connect(g, &g.endpoints).await?;
            let r = client.user_grant_role(user, role).await?;
            printer.auth_change(io.stdout, AuthChange::RoleGranted { user, role }, &r)
        }
        UserCommand::RevokeRole(a) => {
            printer.require(Shape::Auth)?;
            let [user, role] = a.args.as_slice() else {
                return Err(CtlError::bad_args(
                    "user revoke-role requires user name and role name as its argument",
                ));
            };
            let client = connect(g, &g.endpoints).await?;
            let r = client.user_revoke_role(user, role).await?;
            printer.auth_change(io.stdout, AuthChange::RoleRevoked { user, role }, &r)
        }
    }
}

/// The `(key, range_end)` a permission command covers, by etcdctl's rules:
/// an empty key is `"\0"` (with `--prefix` or `--from-key`: every key);
/// otherwise `--prefix`, `--from-key` or an end key give the range.
fn permission_range(a: &PermissionArgs, args: &[String]) -> Result<(Vec<u8>, Vec<u8>), CtlError> {
    let key = args[0].as_bytes();
    let exclusive = || CtlError::bad_args("--from-key and --prefix flags are mutually exclusive");
    if key.is_empty() {
        if a.prefix && a.from_key {
            return Err(exclusive());
        }
        let range_end = if a.prefix || a.from_key {
            vec![0]
        } else {
            Vec::new()
        };
        return Ok((vec![0], range_end));
    }
    let range_end = match (args.get(1), a.prefix, a.from_key) {
        (None, true, true) => return Err(exclusive()),
        (None, true, false) => prefix_range_end(key),
        (None, false, true) => vec![0],
        (None, false, false) => Vec::new(),
        (Some(_), true, _) => {
            return Err(CtlError::bad_args(
                "unexpected endkey argument with --prefix flag",
            ))
        }
        (Some(_), false, true) => {
            return Err(CtlError::bad_args(
                "unexpected endkey argument with --from-key flag",
            ))
        }
        (Some(end), false, false) => end.as_bytes().to_vec(),
    };
    Ok((key.to_vec(), range_end))
}

pub(crate) async fn role(
    g: &GlobalArgs,
    printer: Printer,
    command: RoleCommand,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    printer.require(Shape::Auth)?;
    match command {
        RoleCommand::Add(a) => {
            let name = one_arg(&a, "role add command requires role name as its argument")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.role_add(&name).await?;
            printer.auth_change(io.stdout, AuthChange::RoleAdded { role: &name }, &r)
        }
        RoleCommand::Delete(a) => {
            let name = one_arg(&a, "role delete command requires role name as its argument")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.role_delete(&name).await?;
            printer.auth_change(io.stdout, AuthChange::RoleDeleted { role: &name }, &r)
        }
        RoleCommand::Get(a) => {
            let name = one_arg(&a, "role get command requires role name as its argument")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.role_get(&name).await?;
            printer.role_get(io.stdout, &name, &r)
        }
        RoleCommand::List(a) => {
            no_args(&a, "role list command requires no arguments")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.role_list().await?;
            printer.role_list(io.stdout, &r)
        }
        RoleCommand::GrantPermission(a) => {
            if a.args.len() < 3 {
                return Err(CtlError::bad_args(
                    "role grant command requires role name, permission type, and key [endkey] as its argument",
                ));
            }
            let perm_type = PermissionType::parse(&a.args[1]).ok_or_else(|| {
                CtlError::bad_args(format!("invalid permission type: {}", a.args[1]))
            })?;
            let (key, range_end) = permission_range(&a, &a.args[2..])?;
            let role = &a.args[0];
            let client = connect(g, &g.endpoints).await?;
            let r = client
                .role_grant_permission(role, perm_type, key, range_end)
                .await?;
            printer.auth_change(io.stdout, AuthChange::PermissionGranted { role }, &r)
        }
        RoleCommand::RevokePermission(a) => {
            if a.args.len() < 2 {
                return Err(CtlError::bad_args(
                    "role revoke-permission command requires role name and key [endkey] as its argument",
                ));
            }
            let (key, range_end) = permission_range(&a, &a.args[1..])?;
            let role = &a.args[0];
            let client = connect(g, &g.endpoints).await?;
            let r = client
                .role_revoke_permission(role, key, range_end.clone())
                .await?;
            let change = AuthChange::PermissionRevoked {
                role,
                key: a.args[1].as_bytes(),
                range_end: &range_end,
            };
            printer.auth_change(io.stdout, change, &r)
        }
    }
}

pub(crate) async fn auth(
    g: &GlobalArgs,
    printer: Printer,
    command: AuthCommand,
    io: &mut Io<'_>,
) -> Result<(), CtlError> {
    match command {
        AuthCommand::Enable(a) => {
            no_args(&a, "auth enable command does not accept any arguments")?;
            let client = connect(g, &g.endpoints).await?;
            if let Err(e) = client.auth_enable().await {
                // etcdctl gives an existing root user the root role (creating
                // the role if need be) and tries again.
                if e != Error::RootRoleNotExist {
                    return Err(e.into());
                }
                match client.role_add("root").await {
                    Ok(_) | Err(Error::RoleAlreadyExists) => {}
                    Err(e) => return Err(e.into()),
                }
                client.user_grant_role("root", "root").await?;
                client.auth_enable().await?;
            }
            writeln!(io.stdout, "Authentication Enabled")?;
            Ok(())
        }
        AuthCommand::Disable(a) => {
            no_args(&a, "auth disable command does not accept any arguments")?;
            let client = connect(g, &g.endpoints).await?;
            client.auth_disable().await?;
            writeln!(io.stdout, "Authentication Disabled")?;
            Ok(())
        }
        AuthCommand::Status(a) => {
            printer.require(Shape::AuthNoFields)?;
            no_args(&a, "auth status command does not accept any arguments")?;
            let client = connect(g, &g.endpoints).await?;
            let r = client.auth_status().await?;
            printer.auth_status(io.stdout, &r)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::ctl::args::{Cli, Command};

    fn global(args: &[&str]) -> GlobalArgs {
        let mut all = vec!["cairnctl"];
        all.extend_from_slice(args);
        all.push("version");
        Cli::try_parse_from(all).unwrap().global
    }

    #[test]
    fn login_comes_from_user_and_password_flags() {
        assert_eq!(credentials(&global(&[])), None);
        assert_eq!(
            credentials(&global(&["--user", "root:pw:x"])),
            Some(Credentials::new("root", "pw:x"))
        );
        assert_eq!(
            credentials(&global(&["--user", "root", "--password", "pw"])),
            Some(Credentials::new("root", "pw"))
        );
    }

    fn run_ask(
        stdin: &str,
        f: impl FnOnce(&mut Io<'_>) -> Result<String, CtlError>,
    ) -> (Result<String, CtlError>, String) {
        let mut input = stdin.as_bytes();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io {
            stdin: &mut input,
            stdout: &mut out,
            stderr: &mut err,
        };
        let result = f(&mut io);
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn new_passwords_are_asked_twice() {
        let (r, out) = run_ask("pw\npw\n", |io| ask_new_password(io, "zed"));
        assert_eq!(r.unwrap(), "pw");
        assert_eq!(
            out,
            "Password of zed: \nType password of zed again for confirmation: \n"
        );
        let (r, _) = run_ask("pw\npx\n", |io| ask_new_password(io, "zed"));
        assert_eq!(r.unwrap_err().message, "given passwords are different");
        let (r, _) = run_ask("", |io| ask_new_password(io, "zed"));
        let e = r.unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ExitCode::BadArgs, "empty password")
        );
        let (r, out) = run_ask("a b\n", read_password_word);
        assert_eq!((r.unwrap().as_str(), out.as_str()), ("a", ""));
    }

    fn permission(args: &[&str]) -> Result<(Vec<u8>, Vec<u8>), CtlError> {
        let mut all = vec!["cairnctl", "role", "revoke-permission", "r"];
        all.extend_from_slice(args);
        let Command::Role(RoleCommand::RevokePermission(a)) =
            Cli::try_parse_from(all).unwrap().command
        else {
            panic!("not parsed as revoke-permission");
        };
        permission_range(&a, &a.args[1..])
    }

    #[test]
    fn permission_ranges_follow_etcdctl() {
        assert_eq!(permission(&["k"]).unwrap(), (b"k".to_vec(), vec![]));
        assert_eq!(
            permission(&["k", "--prefix"]).unwrap(),
            (b"k".to_vec(), b"l".to_vec())
        );
        assert_eq!(
            permission(&["k", "--from-key"]).unwrap(),
            (b"k".to_vec(), vec![0])
        );
        assert_eq!(
            permission(&["a", "b"]).unwrap(),
            (b"a".to_vec(), b"b".to_vec())
        );
        assert_eq!(permission(&[""]).unwrap(), (vec![0], vec![]));
        assert_eq!(permission(&["", "--prefix"]).unwrap(), (vec![0], vec![0]));
        assert_eq!(
            permission(&["a", "b", "--prefix"]).unwrap_err().message,
            "unexpected endkey argument with --prefix flag"
        );
        assert_eq!(
            permission(&["a", "--prefix", "--from-key"])
                .unwrap_err()
                .message,
            "--from-key and --prefix flags are mutually exclusive"
        );
    }
}
