//! JSON given on the command line, checked before anything is sent.

use serde_json::Value;

use crate::client::ClientError;

/// Parses `s` as JSON; `what` names the argument in the error.
pub(super) fn parse_json(what: &str, s: &str) -> Result<Value, ClientError> {
    serde_json::from_str(s).map_err(|e| ClientError::Usage(format!("{what} must be JSON: {e}")))
}

/// `--params` as the bytes `init` receives: checked to be JSON, sent as
/// given; none is no bytes.
pub(super) fn init_params(params: Option<String>) -> Result<Vec<u8>, ClientError> {
    match params {
        None => Ok(Vec::new()),
        Some(p) => {
            parse_json("--params", &p)?;
            Ok(p.into_bytes())
        }
    }
}
