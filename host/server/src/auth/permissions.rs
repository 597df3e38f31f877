//! Permission strings, as upstream writes them: `category:action[args]`,
//! e.g. `admin`, `application:install`, `context:execute[<ctx>,<user>,<method>]`.
//! A granted permission covers a required one when its segments are a prefix
//! of the required one's and each argument it names matches (an empty or
//! absent argument is "any"); `admin` covers everything.

use std::fmt;

/// One permission: its `:`-separated segments and its bracketed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    segments: Vec<String>,
    args: Vec<String>,
}

/// A string that is not a permission.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a permission (category:action[args], e.g. context:execute[<ctx>])")]
pub struct BadPermission(pub String);

impl Permission {
    /// Everything.
    pub fn admin() -> Permission {
        Permission {
            segments: vec!["admin".into()],
            args: Vec::new(),
        }
    }

    /// `segments` (already split) with `args`.
    pub fn new(segments: &[&str], args: &[&str]) -> Permission {
        Permission {
            segments: segments.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Parses `category:action[a,b,c]`.
    pub fn parse(s: &str) -> Result<Permission, BadPermission> {
        let bad = || BadPermission(s.to_string());
        let s = s.trim();
        let (path, args) = match s.split_once('[') {
            Some((path, rest)) => {
                let inner = rest.strip_suffix(']').ok_or_else(bad)?;
                if inner.contains(['[', ']']) {
                    return Err(bad());
                }
                let args = inner.split(',').map(|a| a.trim().to_string()).collect();
                (path, args)
            }
            None => (s, Vec::new()),
        };
        let segments: Vec<String> = path.split(':').map(str::to_string).collect();
        let valid = |seg: &String| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !segments.iter().all(valid) {
            return Err(bad());
        }
        Ok(Permission { segments, args })
    }

    /// Whether this grant allows what `required` names.
    pub fn covers(&self, required: &Permission) -> bool {
        if self.segments == ["admin"] {
            return true;
        }
        if self.segments.len() > required.segments.len()
            || self.segments[..] != required.segments[..self.segments.len()]
        {
            return false;
        }
        self.args
            .iter()
            .enumerate()
            .all(|(i, a)| a.is_empty() || a == "*" || required.args.get(i).is_some_and(|r| r == a))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join(":"))?;
        if !self.args.is_empty() {
            write!(f, "[{}]", self.args.join(","))?;
        }
        Ok(())
    }
}

/// What a request carries: who it is and what it may do.
#[derive(Clone, Debug)]
pub struct Grants {
    /// The token's subject (`root`, a user name, a token label).
    pub subject: String,
    /// Its permissions.
    pub permissions: Vec<Permission>,
    /// The token these came from (none in proxy mode): a stream keeps it
    /// to end when the token is revoked or expires.
    pub(crate) bearer: Option<Bearer>,
}

/// The bearer token a request authenticated with.
#[derive(Clone)]
pub(crate) struct Bearer {
    /// The token as sent.
    pub(crate) token: std::sync::Arc<str>,
    /// Its expiry, seconds since the epoch.
    pub(crate) exp: u64,
}

impl fmt::Debug for Bearer {
    // The token is a credential: never in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer").field("exp", &self.exp).finish()
    }
}

impl Grants {
    /// Everything (the proxy mode, where a proxy has checked).
    pub fn admin(subject: &str) -> Grants {
        Grants {
            subject: subject.into(),
            permissions: vec![Permission::admin()],
            bearer: None,
        }
    }

    /// Whether any grant covers `required`.
    pub fn allows(&self, required: &Permission) -> bool {
        self.permissions.iter().any(|p| p.covers(required))
    }

    /// Whether these grants cover every one of `wanted` (a token may only
    /// hand on what it has).
    pub fn allows_all(&self, wanted: &[Permission]) -> bool {
        wanted.iter().all(|w| self.allows(w))
    }
}

/// Parses a token's permission strings, skipping none: one bad string fails
/// the lot, so that a typo never widens nor silently narrows a token.
pub fn parse_all(list: &[String]) -> Result<Vec<Permission>, BadPermission> {
    list.iter().map(|s| Permission::parse(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }

    #[test]
    fn grants_cover_by_prefix_and_named_arguments() {
        let exec = p("context:execute[C1,,set]");
        assert!(p("admin").covers(&exec));
        assert!(p("context").covers(&exec));
        assert!(p("context:execute").covers(&exec));
        assert!(p("context:execute[C1]").covers(&exec));
        assert!(p("context:execute[C1,,set]").covers(&exec));
        assert!(p("context:execute[*]").covers(&exec));
        assert!(!p("context:execute[C2]").covers(&exec));
        assert!(!p("context:execute[C1,,get]").covers(&exec));
        assert!(!p("context:list").covers(&exec));
        assert!(!p("application").covers(&exec));
        // A scoped grant does not cover the unscoped route.
        assert!(!p("context:list[C1]").covers(&p("context:list")));
        assert!(p("context:list").covers(&p("context:list[C1]")));
        assert_eq!(exec.to_string(), "context:execute[C1,,set]");
    }

    #[test]
    fn malformed_permissions_are_refused() {
        for bad in [
            "",
            "a::b",
            "a[b",
            "a[b]c",
            "a[[b]]",
            "a b",
            "context:execute]",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_all(&["admin".into(), "x[".into()]).is_err());
    }
}
