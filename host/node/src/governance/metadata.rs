//! Metadata records: a name and a small string map that apps and operators
//! attach to a group, to a member of a group, or to a context registered in
//! a group (upstream's `GroupMetadataSet`, `MemberMetadataSet` and
//! `ContextMetadataSet`). They are governance: signed, replicated and folded
//! like every op, so every member reads the same record. The node never
//! interprets `data`.
//!
//! The limits are upstream's, checked when an op is made and again when one
//! is folded, so a peer cannot bloat the replicated state.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};

/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Most entries in `data`.
pub const MAX_DATA_ENTRIES: usize = 64;
/// Longest `data` key, in bytes.
pub const MAX_DATA_KEY_LEN: usize = 64;
/// Longest `data` value, in bytes.
pub const MAX_DATA_VALUE_LEN: usize = 4096;

/// What a record is attached to, within a group.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub enum Target {
    /// The group itself (a namespace is its root group).
    Group,
    /// A member of the group, by key.
    Member([u8; 32]),
    /// A context registered in the group.
    Context([u8; 32]),
}

/// A record as folded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// A display name; `None` when unset.
    pub name: Option<String>,
    /// Application-defined properties, stored verbatim.
    pub data: BTreeMap<String, String>,
    /// When the op that set it was made (its author's clock, Unix ms): the
    /// same on every node, unlike a time of folding.
    pub updated_at: u64,
    /// Who set it.
    pub updated_by: [u8; 32],
}

/// Checks a payload against the limits; says what is wrong.
pub fn validate(name: Option<&str>, data: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(name) = name {
        if name.is_empty() {
            return Err("the name must not be empty; leave it out to unset it".into());
        }
        if name.len() > MAX_NAME_LEN {
            return Err(format!(
                "the name is {} bytes, more than {MAX_NAME_LEN}",
                name.len()
            ));
        }
    }
    if data.len() > MAX_DATA_ENTRIES {
        return Err(format!(
            "data has {} entries, more than {MAX_DATA_ENTRIES}",
            data.len()
        ));
    }
    for (k, v) in data {
        if k.is_empty() {
            return Err("a data key must not be empty".into());
        }
        if k.len() > MAX_DATA_KEY_LEN {
            return Err(format!(
                "the data key {:?}… is {} bytes, more than {MAX_DATA_KEY_LEN}",
                k.chars().take(16).collect::<String>(),
                k.len()
            ));
        }
        if v.len() > MAX_DATA_VALUE_LEN {
            return Err(format!(
                "the value of data key {k:?} is {} bytes, more than {MAX_DATA_VALUE_LEN}",
                v.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_hold_and_say_which() {
        let ok = BTreeMap::from([("colour".to_string(), "blue".to_string())]);
        assert_eq!(validate(Some("team"), &ok), Ok(()));
        assert_eq!(validate(None, &BTreeMap::new()), Ok(()));
        assert!(validate(Some(""), &ok).is_err());
        assert!(validate(Some(&"n".repeat(MAX_NAME_LEN + 1)), &ok).is_err());
        let big = BTreeMap::from([("k".to_string(), "v".repeat(MAX_DATA_VALUE_LEN + 1))]);
        assert!(validate(None, &big).unwrap_err().contains("\"k\""));
        let empty_key = BTreeMap::from([(String::new(), "v".to_string())]);
        assert!(validate(None, &empty_key).is_err());
        let many: BTreeMap<String, String> = (0..=MAX_DATA_ENTRIES)
            .map(|i| (i.to_string(), String::new()))
            .collect();
        assert!(validate(None, &many).is_err());
    }
}
