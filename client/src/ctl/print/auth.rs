//! Output of `user`, `role` and `auth`, as etcdctl prints it: sentences in
//! the simple format, the response struct in json, the header (and role
//! permissions or names) in fields. etcdctl has no fields form of
//! `user get`, `user list` and `auth status`, and no table form of any.

use std::io::{self, Write};

use super::{fields, json, OutputFormat, Printer, Shape};
use crate::ctl::exit::CtlError;
use crate::ctl::gofmt::quote;
use crate::{prefix_range_end, AuthResponse, AuthStatusResponse, Permission, PermissionType};
use crate::{ResponseHeader, RoleGetResponse, RoleListResponse, UserGetResponse, UserListResponse};

/// Which auth change an [`AuthResponse`] answers, with what the simple
/// format names in its sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthChange<'a> {
    UserAdded {
        user: &'a str,
    },
    UserDeleted {
        user: &'a str,
    },
    PasswordChanged,
    RoleGranted {
        user: &'a str,
        role: &'a str,
    },
    RoleRevoked {
        user: &'a str,
        role: &'a str,
    },
    RoleAdded {
        role: &'a str,
    },
    RoleDeleted {
        role: &'a str,
    },
    PermissionGranted {
        role: &'a str,
    },
    /// `key` is the argument as given, `range_end` the one sent.
    PermissionRevoked {
        role: &'a str,
        key: &'a [u8],
        range_end: &'a [u8],
    },
}

impl Printer {
    /// The answer to a user, role or permission change.
    pub fn auth_change(
        &self,
        out: &mut dyn Write,
        change: AuthChange<'_>,
        r: &AuthResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::Auth)?;
        match self.format {
            OutputFormat::Json => json::line(out, header_json(&r.header))?,
            OutputFormat::Fields => fields::header(out, &r.header)?,
            _ => change_sentence(out, change)?,
        }
        Ok(())
    }

    pub fn user_get(
        &self,
        out: &mut dyn Write,
        name: &str,
        r: &UserGetResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::AuthNoFields)?;
        match self.format {
            OutputFormat::Json => {
                let o = json::Object::default()
                    .raw("header", json::header(&r.header))
                    .strings("roles", &r.roles);
                json::line(out, o.finish())?
            }
            _ => {
                writeln!(out, "User: {name}")?;
                write!(out, "Roles:")?;
                for role in &r.roles {
                    write!(out, " {role}")?;
                }
                writeln!(out)?
            }
        }
        Ok(())
    }

    pub fn user_list(&self, out: &mut dyn Write, r: &UserListResponse) -> Result<(), CtlError> {
        self.require(Shape::AuthNoFields)?;
        match self.format {
            OutputFormat::Json => {
                let o = json::Object::default()
                    .raw("header", json::header(&r.header))
                    .strings("users", &r.users);
                json::line(out, o.finish())?
            }
            _ => {
                for user in &r.users {
                    writeln!(out, "{user}")?;
                }
            }
        }
        Ok(())
    }

    pub fn role_get(
        &self,
        out: &mut dyn Write,
        name: &str,
        r: &RoleGetResponse,
    ) -> Result<(), CtlError> {
        self.require(Shape::Auth)?;
        match self.format {
            OutputFormat::Json => {
                let perms = r.perm.iter().map(permission_json).collect();
                let o = json::Object::default()
                    .raw("header", json::header(&r.header))
                    .array("perm", perms);
                json::line(out, o.finish())?
            }
            OutputFormat::Fields => {
                fields::header(out, &r.header)?;
                for p in &r.perm {
                    // etcdctl prints this label with two spaces.
                    writeln!(out, "\"PermType\" :  {}", p.perm_type.name())?;
                    writeln!(out, "\"Key\" : {}", quote(&p.key))?;
                    writeln!(out, "\"RangeEnd\" : {}", quote(&p.range_end))?;
                }
            }
            _ => role_simple(out, name, &r.perm)?,
        }
        Ok(())
    }

    pub fn role_list(&self, out: &mut dyn Write, r: &RoleListResponse) -> Result<(), CtlError> {
        self.require(Shape::Auth)?;
        match self.format {
            OutputFormat::Json => {
                let o = json::Object::default()
                    .raw("header", json::header(&r.header))
                    .strings("roles", &r.roles);
                json::line(out, o.finish())?
            }
            OutputFormat::Fields => {
                fields::header(out, &r.header)?;
                write!(out, "\"Roles\" :")?;
                for role in &r.roles {
                    write!(out, " {}", quote(role.as_bytes()))?;
                }
                writeln!(out)?
            }
            _ => {
                for role in &r.roles {
                    writeln!(out, "{role}")?;
                }
            }
        }
        Ok(())
    }

    pub fn auth_status(&self, out: &mut dyn Write, r: &AuthStatusResponse) -> Result<(), CtlError> {
        self.require(Shape::AuthNoFields)?;
        match self.format {
            OutputFormat::Json => {
                let o = json::Object::default()
                    .raw("header", json::header(&r.header))
                    .flag("enabled", r.enabled)
                    .uint("authRevision", r.auth_revision);
                json::line(out, o.finish())?
            }
            _ => {
                writeln!(out, "Authentication Status: {}", r.enabled)?;
                writeln!(out, "AuthRevision: {}", r.auth_revision)?
            }
        }
        Ok(())
    }
}

fn header_json(h: &ResponseHeader) -> String {
    json::Object::default()
        .raw("header", json::header(h))
        .finish()
}

fn permission_json(p: &Permission) -> String {
    json::Object::default()
        .int("permType", i64::from(p.perm_type.number()))
        .bytes("key", &p.key)
        .bytes("range_end", &p.range_end)
        .finish()
}

fn change_sentence(out: &mut dyn Write, change: AuthChange<'_>) -> io::Result<()> {
    match change {
        AuthChange::UserAdded { user } => writeln!(out, "User {user} created"),
        AuthChange::UserDeleted { user } => writeln!(out, "User {user} deleted"),
        AuthChange::PasswordChanged => writeln!(out, "Password updated"),
        AuthChange::RoleGranted { user, role } => {
            writeln!(out, "Role {role} is granted to user {user}")
        }
        AuthChange::RoleRevoked { user, role } => {
            writeln!(out, "Role {role} is revoked from user {user}")
        }
        AuthChange::RoleAdded { role } => writeln!(out, "Role {role} created"),
        AuthChange::RoleDeleted { role } => writeln!(out, "Role {role} deleted"),
        AuthChange::PermissionGranted { role } => writeln!(out, "Role {role} updated"),
        AuthChange::PermissionRevoked {
            role,
            key,
            range_end,
        } => {
            if range_end.is_empty() {
                out.write_all(b"Permission of key ")?;
                out.write_all(key)?;
                writeln!(out, " is revoked from role {role}")
            } else {
                out.write_all(b"Permission of range [")?;
                out.write_all(key)?;
                if range_end == b"\0" {
                    out.write_all(b", <open ended>")?;
                } else {
                    out.write_all(b", ")?;
                    out.write_all(range_end)?;
                    out.write_all(b")")?;
                }
                writeln!(out, " is revoked from role {role}")
            }
        }
    }
}

/// `Role <name>`, then the keys it may read and those it may write, each
/// a key, a `[key, end)` range or an open-ended `[key, <open ended>`,
/// prefixes marked. Keys are printed as the raw bytes they are.
fn role_simple(out: &mut dyn Write, name: &str, perms: &[Permission]) -> io::Result<()> {
    writeln!(out, "Role {name}")?;
    writeln!(out, "KV Read:")?;
    for p in perms {
        if matches!(
            p.perm_type,
            PermissionType::Read | PermissionType::ReadWrite
        ) {
            permission_line(out, p)?;
        }
    }
    writeln!(out, "KV Write:")?;
    for p in perms {
        if matches!(
            p.perm_type,
            PermissionType::Write | PermissionType::ReadWrite
        ) {
            permission_line(out, p)?;
        }
    }
    Ok(())
}

fn permission_line(out: &mut dyn Write, p: &Permission) -> io::Result<()> {
    out.write_all(b"\t")?;
    if p.range_end.is_empty() {
        out.write_all(&p.key)?;
        return out.write_all(b"\n");
    }
    out.write_all(b"[")?;
    out.write_all(&p.key)?;
    if p.range_end == b"\0" {
        out.write_all(b", <open ended>")?;
    } else {
        out.write_all(b", ")?;
        out.write_all(&p.range_end)?;
        out.write_all(b")")?;
    }
    if prefix_range_end(&p.key) == p.range_end {
        out.write_all(b" (prefix ")?;
        out.write_all(&p.key)?;
        out.write_all(b")")?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(perm_type: PermissionType, key: &[u8], range_end: &[u8]) -> Permission {
        Permission {
            perm_type,
            key: key.to_vec(),
            range_end: range_end.to_vec(),
        }
    }

    fn header() -> ResponseHeader {
        ResponseHeader {
            cluster_id: 6964728607212473779,
            member_id: 9685874076489904787,
            revision: 1,
            raft_term: 2,
        }
    }

    /// Permissions as etcd 3.4 lists them after
    /// `grant-permission r1 readwrite "" --prefix`, `read ""`,
    /// `write /a /b`, `readwrite fk --from-key`, `read foo`,
    /// `readwrite pre --prefix`.
    fn r1() -> RoleGetResponse {
        RoleGetResponse {
            header: header(),
            perm: vec![
                perm(PermissionType::ReadWrite, b"\0", b"\0"),
                perm(PermissionType::Read, b"\0", b""),
                perm(PermissionType::Write, b"/a", b"/b"),
                perm(PermissionType::ReadWrite, b"fk", b"\0"),
                perm(PermissionType::Read, b"foo", b""),
                perm(PermissionType::ReadWrite, b"pre", b"prf"),
            ],
        }
    }

    fn printed(format: OutputFormat, print: impl Fn(&Printer, &mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        print(&Printer::new(format, false), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn role_get_prints_what_etcdctl_prints() {
        let r = r1();
        let simple = printed(OutputFormat::Simple, |p, out| {
            p.role_get(out, "r1", &r).unwrap()
        });
        assert_eq!(
            simple,
            "Role r1\nKV Read:\n\t[\0, <open ended>\n\t\0\n\t[fk, <open ended>\n\tfoo\n\
             \t[pre, prf) (prefix pre)\nKV Write:\n\t[\0, <open ended>\n\
             \t[/a, /b) (prefix /a)\n\t[fk, <open ended>\n\t[pre, prf) (prefix pre)\n"
        );
        let json = printed(OutputFormat::Json, |p, out| {
            p.role_get(out, "r1", &r).unwrap()
        });
        assert_eq!(
            json,
            "{\"header\":{\"cluster_id\":6964728607212473779,\"member_id\":9685874076489904787,\
             \"revision\":1,\"raft_term\":2},\"perm\":[{\"permType\":2,\"key\":\"AA==\",\
             \"range_end\":\"AA==\"},{\"key\":\"AA==\"},{\"permType\":1,\"key\":\"L2E=\",\
             \"range_end\":\"L2I=\"},{\"permType\":2,\"key\":\"Zms=\",\"range_end\":\"AA==\"},\
             {\"key\":\"Zm9v\"},{\"permType\":2,\"key\":\"cHJl\",\"range_end\":\"cHJm\"}]}\n"
        );
        let fields = printed(OutputFormat::Fields, |p, out| {
            p.role_get(out, "r1", &r).unwrap()
        });
        assert!(fields.starts_with(
            "\"ClusterID\" : 6964728607212473779\n\"MemberID\" : 9685874076489904787\n\
             \"Revision\" : 1\n\"RaftTerm\" : 2\n\"PermType\" :  READWRITE\n\
             \"Key\" : \"\\x00\"\n\"RangeEnd\" : \"\\x00\"\n\"PermType\" :  READ\n"
        ));
    }

    #[test]
    fn revoked_permissions_name_key_or_range() {
        let r = AuthResponse::default();
        let revoked = |key: &'static [u8], range_end: &'static [u8]| {
            printed(OutputFormat::Simple, move |p, out| {
                let change = AuthChange::PermissionRevoked {
                    role: "r1",
                    key,
                    range_end,
                };
                p.auth_change(out, change, &r).unwrap()
            })
        };
        assert_eq!(
            revoked(b"foo", b""),
            "Permission of key foo is revoked from role r1\n"
        );
        assert_eq!(
            revoked(b"/a", b"/b"),
            "Permission of range [/a, /b) is revoked from role r1\n"
        );
        assert_eq!(
            revoked(b"fk", b"\0"),
            "Permission of range [fk, <open ended> is revoked from role r1\n"
        );
    }

    #[test]
    fn users_roles_and_status_in_each_format() {
        let user = UserGetResponse {
            header: header(),
            roles: vec!["r1".into(), "r2".into()],
        };
        let simple = printed(OutputFormat::Simple, |p, out| {
            p.user_get(out, "bob", &user).unwrap()
        });
        assert_eq!(simple, "User: bob\nRoles: r1 r2\n");
        let no_roles = UserGetResponse::default();
        let simple = printed(OutputFormat::Simple, |p, out| {
            p.user_get(out, "root", &no_roles).unwrap()
        });
        assert_eq!(simple, "User: root\nRoles:\n");
        let roles = RoleListResponse {
            header: header(),
            roles: vec!["r1".into(), "r2".into()],
        };
        let fields = printed(OutputFormat::Fields, |p, out| {
            p.role_list(out, &roles).unwrap()
        });
        assert!(fields.ends_with("\"RaftTerm\" : 2\n\"Roles\" : \"r1\" \"r2\"\n"));
        let status = AuthStatusResponse {
            header: header(),
            enabled: true,
            auth_revision: 7,
        };
        let simple = printed(OutputFormat::Simple, |p, out| {
            p.auth_status(out, &status).unwrap()
        });
        assert_eq!(simple, "Authentication Status: true\nAuthRevision: 7\n");
        let fields = Printer::new(OutputFormat::Fields, false);
        let err = fields.user_list(&mut Vec::new(), &UserListResponse::default());
        assert_eq!(
            err.unwrap_err().message,
            "fields not supported as output format"
        );
        let table = Printer::new(OutputFormat::Table, false);
        assert!(table.require(Shape::Auth).is_err());
    }
}
