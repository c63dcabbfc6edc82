//! Who is acting, and OSCAR's tenancy rules in one place: the owner (or the admin) manages a
//! service or bucket; its visibility says who else may use it (read, list, invoke, upload).

pub use model::auth::ADMIN_OWNER;
use model::service::Visibility;

/// Ids no OIDC user may have: owner ids are subjects, and these already name someone.
pub fn reserved_owner(id: &str) -> bool {
    id.is_empty() || id.eq_ignore_ascii_case(ADMIN_OWNER)
}

/// The actor of a domain function: the owner id recorded on what they create (the OIDC `sub`,
/// or `cluster_admin`), whether they are the admin, and their VOs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: String,
    pub admin: bool,
    pub vos: Vec<String>,
}

impl Caller {
    pub fn admin() -> Self {
        Self {
            id: ADMIN_OWNER.into(),
            admin: true,
            vos: Vec::new(),
        }
    }

    pub fn user(id: impl Into<String>, vos: Vec<String>) -> Self {
        Self {
            id: id.into(),
            admin: false,
            vos,
        }
    }

    /// Whether the caller may change or delete what `owner` owns.
    pub fn manages(&self, owner: &str) -> bool {
        self.admin || self.id == owner
    }

    /// Whether the caller may use something of `owner` shared with `visibility`.
    pub fn may_use(&self, owner: &str, visibility: Visibility, allowed_users: &[String]) -> bool {
        self.manages(owner)
            || match visibility {
                Visibility::Private => false,
                Visibility::Restricted => allowed_users.contains(&self.id),
                Visibility::Public => true,
            }
    }
}

impl From<&model::auth::SessionUser> for Caller {
    fn from(user: &model::auth::SessionUser) -> Self {
        if user.admin {
            Self::admin()
        } else {
            Self::user(&user.subject, user.vos.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_admin_and_visibility() {
        let alice = Caller::user("alice", vec![]);
        let bob = Caller::user("bob", vec![]);
        let admin = Caller::admin();
        let allowed = ["bob".to_string()];
        for v in [
            Visibility::Private,
            Visibility::Restricted,
            Visibility::Public,
        ] {
            assert!(alice.may_use("alice", v, &[]));
            assert!(admin.may_use("alice", v, &[]));
        }
        assert!(!bob.may_use("alice", Visibility::Private, &allowed));
        assert!(bob.may_use("alice", Visibility::Restricted, &allowed));
        assert!(!bob.may_use("alice", Visibility::Restricted, &[]));
        assert!(bob.may_use("alice", Visibility::Public, &[]));
        assert!(alice.manages("alice") && admin.manages("alice") && !bob.manages("alice"));
    }
}
