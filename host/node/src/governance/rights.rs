//! What a member may do: its role and its capability bits, as upstream
//! numbers them. The one role type of the node: governance ops, invitations
//! and the API all use [`Role`].

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A member's role. Encoded as upstream's number (0 admin, 1 member, 2
/// read-only) in Borsh and JSON alike.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize,
)]
pub enum Role {
    /// Full control: invites, removes, manages the app.
    Admin,
    /// Calls methods, reads state, receives events.
    Member,
    /// Queries state only.
    ReadOnly,
}

impl Role {
    /// Upstream's number for it.
    pub fn number(self) -> u8 {
        match self {
            Role::Admin => 0,
            Role::Member => 1,
            Role::ReadOnly => 2,
        }
    }

    /// The role upstream numbers `n`, if any.
    pub fn from_number(n: u8) -> Option<Role> {
        match n {
            0 => Some(Role::Admin),
            1 => Some(Role::Member),
            2 => Some(Role::ReadOnly),
            _ => None,
        }
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let n = <u8 as Deserialize>::deserialize(d)?;
        Role::from_number(n).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown role {n} (0 admin, 1 member, 2 read-only)"))
        })
    }
}

/// Capability bits of a group member, as upstream numbers them.
pub mod caps {
    /// May create contexts in the group.
    pub const CREATE_CONTEXT: u32 = 1;
    /// May invite members.
    pub const INVITE_MEMBERS: u32 = 1 << 1;
    /// Is a member of open subgroups by inheritance.
    pub const JOIN_OPEN_SUBGROUPS: u32 = 1 << 2;
    /// May change members' roles and capabilities and remove them.
    pub const MANAGE_MEMBERS: u32 = 1 << 3;
    /// May upgrade the group's application.
    pub const MANAGE_APPLICATION: u32 = 1 << 4;
    /// May create subgroups.
    pub const CREATE_SUBGROUP: u32 = 1 << 5;
    /// May delete subgroups.
    pub const DELETE_SUBGROUP: u32 = 1 << 6;
    /// May change a subgroup's visibility.
    pub const MANAGE_VISIBILITY: u32 = 1 << 7;
    /// May change metadata.
    pub const MANAGE_METADATA: u32 = 1 << 8;
    /// What members get by default.
    pub const DEFAULT: u32 = JOIN_OPEN_SUBGROUPS;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn a_role_encodes_as_upstreams_number_in_borsh_and_json() {
        for (role, n) in [(Role::Admin, 0u8), (Role::Member, 1), (Role::ReadOnly, 2)] {
            assert_eq!(borsh::to_vec(&role).unwrap(), vec![n]);
            assert_eq!(serde_json::to_string(&role).unwrap(), n.to_string());
            assert_eq!(serde_json::from_str::<Role>(&n.to_string()).unwrap(), role);
        }
        assert!(borsh::from_slice::<Role>(&[3]).is_err());
        let e = serde_json::from_str::<Role>("7").unwrap_err().to_string();
        assert!(e.contains("unknown role 7"), "{e}");
    }
}
