//! AARC-G002 group entitlements (`eduperson_entitlement`), as EGI Check-In releases them:
//! `urn:mace:egi.eu:group:<vo>[:<subgroup>...][:role=<role>]#<authority>`.
//! Parsed strictly: no prefix matching, and a group without `role=member` is not membership.

/// One parsed entitlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement<'a> {
    /// `urn:mace:egi.eu` for EGI.
    pub namespace: &'a str,
    /// The VO first, then its subgroups.
    pub groups: Vec<&'a str>,
    pub role: Option<&'a str>,
    pub authority: &'a str,
}

impl<'a> Entitlement<'a> {
    pub fn parse(urn: &'a str) -> Option<Self> {
        let (body, authority) = urn.split_once('#')?;
        let (namespace, path) = body.split_once(":group:")?;
        if !namespace.starts_with("urn:")
            || namespace.split(':').any(str::is_empty)
            || authority.is_empty()
            || authority.contains(['#', ':'])
        {
            return None;
        }
        let mut groups: Vec<&str> = path.split(':').collect();
        let role = match groups.last()?.strip_prefix("role=") {
            Some(role) if !role.is_empty() => {
                groups.pop();
                Some(role)
            }
            Some(_) => return None,
            None => None,
        };
        if groups.is_empty()
            || groups
                .iter()
                .any(|g| g.is_empty() || g.contains('=') || g.chars().any(char::is_whitespace))
        {
            return None;
        }
        Some(Self {
            namespace,
            groups,
            role,
            authority,
        })
    }

    /// The VO this entitlement makes its holder a member of, if it states membership.
    pub fn member_of(&self) -> Option<&'a str> {
        (self.role == Some("member")).then(|| self.groups[0])
    }
}

/// The VOs (top-level groups) a user is a member of, sorted and without repeats; entitlements
/// that do not parse are ignored.
pub fn vos<S: AsRef<str>>(entitlements: &[S]) -> Vec<String> {
    let mut vos: Vec<String> = entitlements
        .iter()
        .filter_map(|e| {
            Entitlement::parse(e.as_ref())?
                .member_of()
                .map(String::from)
        })
        .collect();
    vos.sort();
    vos.dedup();
    vos
}

/// Whether someone in `vos` may use a platform that requires one of `required` (no
/// requirement when empty).
pub fn admitted(vos: &[String], required: &[String]) -> bool {
    required.is_empty() || required.iter().any(|r| vos.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_egi_entitlements() {
        let e = Entitlement::parse("urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu")
            .unwrap();
        assert_eq!(e.namespace, "urn:mace:egi.eu");
        assert_eq!(e.groups, ["vo.example.eu"]);
        assert_eq!(e.role, Some("member"));
        assert_eq!(e.authority, "aai.egi.eu");
        assert_eq!(e.member_of(), Some("vo.example.eu"));

        let sub = Entitlement::parse(
            "urn:mace:egi.eu:group:vo.example.eu:sub:deeper:role=vm_operator#aai.egi.eu",
        )
        .unwrap();
        assert_eq!(sub.groups, ["vo.example.eu", "sub", "deeper"]);
        assert_eq!(sub.role, Some("vm_operator"));
        assert_eq!(
            sub.member_of(),
            None,
            "a role other than member is not membership"
        );
    }

    #[test]
    fn rejects_what_is_not_aarc_g002() {
        for bad in [
            "",
            "vo.example.eu",
            "urn:mace:egi.eu:group:vo.example.eu:role=member",
            "urn:mace:egi.eu:group:vo.example.eu:role=member#",
            "urn:mace:egi.eu:group::role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:vo.example.eu:role=#aai.egi.eu",
            "urn:mace:egi.eu:vo.example.eu:role=member#aai.egi.eu",
            "mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu",
            "urn::group:vo.example.eu:role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:vo example:role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:vo.example.eu:role=member#aai#egi.eu",
        ] {
            assert_eq!(Entitlement::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn membership_needs_the_member_role_and_no_prefix_matching() {
        let claims = [
            "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu",
            "urn:mace:egi.eu:group:vo.other.eu#aai.egi.eu",
            "urn:mace:egi.eu:group:vo.third.eu:role=vm_operator#aai.egi.eu",
            "garbage",
        ];
        assert_eq!(vos(&claims), ["vo.example.eu"]);
        let mine = vos(&claims);
        assert!(admitted(&mine, &[]));
        assert!(admitted(&mine, &["vo.x".into(), "vo.example.eu".into()]));
        assert!(!admitted(&mine, &["vo.example".into()]));
        assert!(!admitted(&mine, &["vo.other.eu".into()]));
    }
}
