//! Id encodings of the wire format.

/// Base58 of 32 bytes.
pub fn b58(bytes: &[u8; 32]) -> String {
    bs58::encode(bytes).into_string()
}

/// Hex of 32 bytes.
pub fn hex32(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// Parses a base58 32-byte id; `what` names it in the error.
pub fn parse_b58(s: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = bs58::decode(s.trim())
        .into_vec()
        .map_err(|_| format!("invalid {what}: `{s}` is not base58"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("invalid {what}: `{s}` is not 32 bytes"))
}

/// Parses a group or namespace id: 64 hex characters as upstream prints
/// them, or base58 as the seed page shows them.
pub fn parse_group(s: &str) -> Result<[u8; 32], String> {
    let t = s.trim();
    if t.len() == 64
        && let Ok(bytes) = hex::decode(t)
        && let Ok(id) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(id);
    }
    parse_b58(t, "group id").map_err(|_| {
        format!("invalid group id: `{s}` is neither 64 hex characters nor base58 of 32 bytes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_bad_ones_say_why() {
        let id = [7u8; 32];
        assert_eq!(parse_b58(&b58(&id), "context id").unwrap(), id);
        assert_eq!(parse_group(&hex32(&id)).unwrap(), id);
        assert_eq!(parse_group(&b58(&id)).unwrap(), id);
        assert!(
            parse_b58("0OIl", "context id")
                .unwrap_err()
                .contains("not base58")
        );
        assert!(
            parse_b58("abc", "context id")
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(parse_group("zz").unwrap_err().contains("group id"));
    }
}
