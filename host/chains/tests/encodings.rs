//! Property tests of the account encodings: round trips, and every
//! single-character change refused by the checksum (or giving another
//! valid account, never the same one).

use mero_chains::ethereum::Address;
use mero_chains::{Chain, canonical_account, icp, stellar};
use proptest::prelude::*;

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

proptest! {
    #[test]
    fn eip55_round_trips(bytes in any::<[u8; 20]>()) {
        let text = Address(bytes).to_checksum();
        prop_assert_eq!(Address::parse(&text), Ok(Address(bytes)));
        prop_assert_eq!(Address::parse(&text.to_lowercase()), Ok(Address(bytes)));
        prop_assert_eq!(canonical_account(Chain::Ethereum, &text.to_lowercase()), Ok(text));
    }

    #[test]
    fn eip55_catches_a_flipped_case(bytes in any::<[u8; 20]>(), at in 2usize..42) {
        let text = Address(bytes).to_checksum();
        let c = text.as_bytes()[at];
        prop_assume!(c.is_ascii_alphabetic());
        let flipped: String = text
            .char_indices()
            .map(|(i, ch)| if i == at {
                if ch.is_ascii_uppercase() { ch.to_ascii_lowercase() } else { ch.to_ascii_uppercase() }
            } else { ch })
            .collect();
        // All-lower or all-upper carries no checksum; anything else must match.
        let digits = &flipped[2..];
        let uniform = digits == digits.to_lowercase() || digits == digits.to_uppercase();
        prop_assert_eq!(Address::parse(&flipped).is_ok(), uniform);
    }

    #[test]
    fn strkey_round_trips(key in any::<[u8; 32]>()) {
        let text = stellar::encode_account(&key);
        prop_assert!(text.starts_with('G'));
        prop_assert_eq!(text.len(), 56);
        prop_assert_eq!(stellar::parse_account(&text), Ok(key));
    }

    #[test]
    fn strkey_refuses_a_changed_character(key in any::<[u8; 32]>(), at in 0usize..56, to in 0usize..32) {
        let text = stellar::encode_account(&key);
        let mut bytes = text.clone().into_bytes();
        prop_assume!(bytes[at] != BASE32[to]);
        bytes[at] = BASE32[to];
        let changed = String::from_utf8(bytes).unwrap_or_default();
        // CRC16 catches every single-symbol error in a 35-byte payload.
        prop_assert!(stellar::parse_account(&changed).is_err());
    }

    #[test]
    fn principal_text_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..=29)) {
        let text = icp::principal_to_text(&bytes);
        prop_assert_eq!(icp::parse_principal(&text), Ok(bytes));
        prop_assert!(text.split('-').all(|g| !g.is_empty() && g.len() <= 5));
    }

    #[test]
    fn principal_text_refuses_a_changed_character(key in any::<[u8; 32]>(), at in 0usize..63, to in 0usize..32) {
        let text = icp::principal_to_text(&icp::principal_of_key(&key));
        let mut bytes = text.clone().into_bytes();
        prop_assume!(bytes[at] != b'-');
        let symbol = BASE32[to].to_ascii_lowercase();
        prop_assume!(bytes[at] != symbol);
        bytes[at] = symbol;
        let changed = String::from_utf8(bytes).unwrap_or_default();
        // CRC32 catches every single-symbol error.
        prop_assert!(icp::parse_principal(&changed).is_err());
    }

    #[test]
    fn self_authenticating_principals_end_in_two(key in any::<[u8; 32]>()) {
        let p = icp::principal_of_key(&key);
        prop_assert_eq!(p.len(), 29);
        prop_assert_eq!(p[28], icp::SELF_AUTHENTICATING);
        // 29 bytes + CRC give 63 characters: 53 symbols in groups of five.
        prop_assert_eq!(icp::principal_to_text(&p).len(), 63);
    }
}
