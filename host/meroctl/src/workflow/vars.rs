//! The workflow's variables and `{{...}}` substitution: values captured by
//! steps' `outputs`, `--var k=v`, `{{env.X}}`, the iteration variables of
//! `repeat`, and the random generators of `fuzzy_test`
//! (`{{random_int(1, 10)}}`, `{{uuid}}`, ...). Also the capture of
//! `outputs` from a step's answer.
//!
//! A string that is one placeholder and nothing else becomes the value
//! itself (an object stays an object, a number a number); placeholders
//! inside other text are replaced by their text. A placeholder that names
//! nothing is an error: sent to a node as text, `{{typo}}` would satisfy
//! most assertions.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng as _;
use serde_json::{Map, Value};

/// A placeholder that names nothing, or a generator called wrongly.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum SubstError {
    #[error(
        "`{{{{{0}}}}}` names no variable (set by an earlier step's `outputs`, `--var`, or `{{{{env.NAME}}}}`)"
    )]
    Unbound(String),
    #[error("`{{{{{0}}}}}`: {1}")]
    Generator(String, String),
}

/// Variables, by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Vars {
    values: BTreeMap<String, Value>,
}

impl Vars {
    pub(crate) fn set(&mut self, name: impl Into<String>, value: Value) {
        self.values.insert(name.into(), value);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Everything set in `other` is set here too (later wins).
    pub(crate) fn absorb(&mut self, other: Vars) {
        self.values.extend(other.values);
    }

    /// Names and values, for scripts' environments.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter()
    }

    /// Resolves every placeholder in `value` (recursively).
    pub(crate) fn resolve(&self, value: &Value) -> Result<Value, SubstError> {
        match value {
            Value::String(s) => self.resolve_str(s),
            Value::Array(items) => items
                .iter()
                .map(|i| self.resolve(i))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    /// Resolves the placeholders of one string; see the module doc for
    /// when the result is not a string.
    pub(crate) fn resolve_str(&self, s: &str) -> Result<Value, SubstError> {
        let trimmed = s.trim();
        if let Some(inner) = whole_placeholder(trimmed) {
            return self.lookup(inner.trim());
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else {
                break;
            };
            out.push_str(&rest[..start]);
            let inner = rest[start + 2..start + 2 + len].trim();
            out.push_str(&text_of(&self.lookup(inner)?));
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }

    /// Resolves the placeholders of a shell command line, each value
    /// shell-quoted as one word, so that a value (which may come from a
    /// node's answer) can never be read as shell syntax.
    pub(crate) fn resolve_shell(&self, s: &str) -> Result<String, SubstError> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else {
                break;
            };
            out.push_str(&rest[..start]);
            let inner = rest[start + 2..start + 2 + len].trim();
            out.push_str(&shell_quote(&text_of(&self.lookup(inner)?)));
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value a placeholder's inside names.
    fn lookup(&self, expr: &str) -> Result<Value, SubstError> {
        if let Some(v) = self.values.get(expr) {
            return Ok(v.clone());
        }
        if let Some(name) = expr.strip_prefix("env.") {
            return std::env::var(name)
                .map(Value::String)
                .map_err(|_| SubstError::Unbound(expr.into()));
        }
        if let Some(v) = generate(expr)? {
            return Ok(v);
        }
        // merobox's per-node shorthands.
        for (prefix, var) in [
            ("install.", "app_id_"),
            ("context.", "context_id_"),
            ("identity.", "public_key_"),
        ] {
            if let Some(node) = expr.strip_prefix(prefix)
                && let Some(v) = self.values.get(&format!("{var}{node}"))
            {
                return Ok(v.clone());
            }
        }
        // `{{var.path}}`: a field of a captured value.
        let mut split = expr.len();
        while let Some(dot) = expr[..split].rfind('.') {
            if let Some(base) = self.values.get(&expr[..dot])
                && let Some(v) = lookup_path(base, &expr[dot + 1..])
            {
                return Ok(v);
            }
            split = dot;
        }
        Err(SubstError::Unbound(expr.into()))
    }
}

/// `s` as one POSIX shell word: in single quotes, each `'` written `'\''`.
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The inside of `{{...}}` when `s` is exactly one placeholder.
fn whole_placeholder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

/// A value as text inside a string: strings bare, the rest as JSON.
pub(crate) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// merobox's random generators; `None` if `expr` is not one.
fn generate(expr: &str) -> Result<Option<Value>, SubstError> {
    let (name, args) = match expr.split_once('(') {
        Some((n, rest)) => match rest.strip_suffix(')') {
            Some(a) => (n.trim(), Some(a)),
            None => return Ok(None),
        },
        None => (expr, None),
    };
    let bad = |why: &str| SubstError::Generator(expr.into(), why.into());
    let mut rng = rand::rng();
    let value = match (name, args) {
        ("uuid", None) => {
            let b: [u8; 16] = rng.random();
            let h = hex::encode(b);
            Value::String(format!(
                "{}-{}-4{}-a{}-{}",
                &h[..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            ))
        }
        ("timestamp", None) => Value::String(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .to_string(),
        ),
        ("random_int", Some(a)) => {
            let (lo, hi) = two(a).ok_or_else(|| bad("takes two integers"))?;
            let (lo, hi): (i64, i64) = (
                lo.parse().map_err(|_| bad("takes two integers"))?,
                hi.parse().map_err(|_| bad("takes two integers"))?,
            );
            if lo > hi {
                return Err(bad("the minimum is above the maximum"));
            }
            Value::String(rng.random_range(lo..=hi).to_string())
        }
        ("random_float", Some(a)) => {
            let (lo, hi) = two(a).ok_or_else(|| bad("takes two numbers"))?;
            let (lo, hi): (f64, f64) = (
                lo.parse().map_err(|_| bad("takes two numbers"))?,
                hi.parse().map_err(|_| bad("takes two numbers"))?,
            );
            if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                return Err(bad("the minimum must be below the maximum"));
            }
            // rand panics on an infinite range (or one whose width overflows).
            if !lo.is_finite() || !hi.is_finite() || !(hi - lo).is_finite() {
                return Err(bad("takes two finite numbers less than 1.7e308 apart"));
            }
            Value::String(rng.random_range(lo..hi).to_string())
        }
        ("random_string", Some(a)) => {
            let n: usize = a.trim().parse().map_err(|_| bad("takes a length"))?;
            const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            Value::String(
                (0..n)
                    .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
                    .collect(),
            )
        }
        ("random_choice", Some(a)) => {
            let choices: Vec<&str> = a
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|c| c.trim().trim_matches(|c| c == '\'' || c == '"'))
                .filter(|c| !c.is_empty())
                .collect();
            if choices.is_empty() {
                return Err(bad("takes a list of choices"));
            }
            Value::String(choices[rng.random_range(0..choices.len())].to_string())
        }
        _ => return Ok(None),
    };
    Ok(Some(value))
}

fn two(args: &str) -> Option<(&str, &str)> {
    let (a, b) = args.split_once(',')?;
    Some((a.trim(), b.trim()))
}

/// The value at a dotted path (`a.b.0.c`), parsing a string that holds
/// JSON on the way down, as merobox's capture does (a call's `output` is
/// often a JSON string).
pub(crate) fn lookup_path(root: &Value, path: &str) -> Option<Value> {
    let mut current = root.clone();
    // The whole answer (this runner's addition: merobox captures fields).
    if path.is_empty() {
        return Some(current);
    }
    for segment in path.split('.') {
        current = parse_embedded(current);
        current = match current {
            Value::Object(mut m) => m.remove(segment)?,
            Value::Array(mut items) => {
                let i: usize = segment.parse().ok()?;
                (i < items.len()).then(|| items.swap_remove(i))?
            }
            _ => return None,
        };
    }
    Some(current)
}

/// A string holding a JSON object or array, parsed; anything else as is.
fn parse_embedded(v: Value) -> Value {
    match &v {
        Value::String(s) if s.trim_start().starts_with(['{', '[']) => {
            serde_json::from_str(s).unwrap_or(v)
        }
        _ => v,
    }
}

/// Why an `outputs` entry could not be captured.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum CaptureError {
    #[error(
        "output `{var}` captures `{field}`, which the answer does not have; it has: {available}"
    )]
    Missing {
        var: String,
        field: String,
        available: String,
    },
    #[error("output `{0}` must be a field name or a mapping with `field`")]
    Form(String),
}

/// Captures `outputs` (`var: path` or `var: {field, path?, json?, target?}`)
/// from `answer` into `vars`; `{node_name}` in a target is `node`.
pub(crate) fn capture(
    outputs: &Map<String, Value>,
    answer: &Value,
    node: Option<&str>,
    vars: &mut Vars,
) -> Result<(), CaptureError> {
    for (var, spec) in outputs {
        let (source, target, value) = match spec {
            Value::String(path) => (path.clone(), var.clone(), lookup_path(answer, path)),
            Value::Object(m) => {
                let Some(field) = m.get("field").and_then(Value::as_str) else {
                    return Err(CaptureError::Form(var.clone()));
                };
                let target = m
                    .get("target")
                    .and_then(Value::as_str)
                    .unwrap_or(var)
                    .replace("{node_name}", node.unwrap_or(""));
                let mut value = answer.get(field).cloned();
                if m.get("json").and_then(Value::as_bool) == Some(true) {
                    value = value.map(parse_embedded);
                }
                let mut source = field.to_string();
                if let Some(path) = m.get("path").and_then(Value::as_str) {
                    source = format!("{field}.{path}");
                    value = value.and_then(|v| lookup_path(&v, path));
                }
                (source, target, value)
            }
            _ => return Err(CaptureError::Form(var.clone())),
        };
        match value {
            Some(v) => vars.set(target, v),
            None => {
                return Err(CaptureError::Missing {
                    var: var.clone(),
                    field: source,
                    available: describe_keys(answer),
                });
            }
        }
    }
    Ok(())
}

fn describe_keys(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "nothing (an empty object)".into(),
        Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
        Value::Null => "nothing".into(),
        Value::Array(_) => "no fields (it is a list)".into(),
        _ => "no fields (it is a single value)".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set("ctx", json!("Ctx1"));
        v.set("n", json!(3));
        v.set("res", json!({"output": "{\"a\": [1, {\"b\": \"deep\"}]}"}));
        v
    }

    #[test]
    fn a_lone_placeholder_keeps_its_type_and_embedded_ones_become_text() {
        let v = vars();
        assert_eq!(v.resolve_str("{{n}}").unwrap(), json!(3));
        assert_eq!(v.resolve_str(" {{ n }} ").unwrap(), json!(3));
        assert_eq!(v.resolve_str("k_{{n}}_{{ctx}}").unwrap(), json!("k_3_Ctx1"));
        assert_eq!(
            v.resolve(&json!({"a": ["{{ctx}}", 1], "b": "{{n}}"}))
                .unwrap(),
            json!({"a": ["Ctx1", 1], "b": 3})
        );
        assert_eq!(v.resolve_str("no braces").unwrap(), json!("no braces"));
    }

    #[test]
    fn shell_lines_get_every_value_quoted() {
        let mut v = vars();
        v.set("evil", json!("x'; touch /tmp/pwned; echo '$(id)"));
        let line = v.resolve_shell("echo {{evil}} {{n}}").unwrap();
        assert_eq!(
            line,
            r#"echo 'x'\''; touch /tmp/pwned; echo '\''$(id)' '3'"#
        );
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "x'; touch /tmp/pwned; echo '$(id) 3\n"
        );
        assert!(v.resolve_shell("echo {{nope}}").is_err());
    }

    #[test]
    fn random_float_needs_a_finite_range() {
        let v = vars();
        for bad in [
            "{{random_float(0, inf)}}",
            "{{random_float(-inf, 0)}}",
            "{{random_float(-1e308, 1e308)}}",
            "{{random_float(0, NaN)}}",
        ] {
            assert!(v.resolve_str(bad).is_err(), "{bad}");
        }
        let x: f64 = v
            .resolve_str("{{random_float(1, 2)}}")
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1.0..2.0).contains(&x));
    }

    #[test]
    fn paths_env_and_generators_resolve() {
        let v = vars();
        assert_eq!(
            v.resolve_str("{{res.output.a.1.b}}").unwrap(),
            json!("deep")
        );
        assert_eq!(
            v.resolve_str("{{env.PATH}}").unwrap(),
            json!(std::env::var("PATH").unwrap())
        );
        let n: i64 = v
            .resolve_str("{{random_int(5, 7)}}")
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((5..=7).contains(&n));
        let id = v.resolve_str("{{uuid}}").unwrap();
        assert_eq!(id.as_str().unwrap().len(), 36);
        assert_eq!(
            v.resolve_str("{{random_string(12)}}")
                .unwrap()
                .as_str()
                .unwrap()
                .len(),
            12
        );
        let c = v.resolve_str("{{random_choice(['a', 'b'])}}").unwrap();
        assert!(c == json!("a") || c == json!("b"));
        assert!(matches!(
            v.resolve_str("{{random_int(9, 1)}}"),
            Err(SubstError::Generator(..))
        ));
    }

    #[test]
    fn an_unbound_placeholder_is_an_error_naming_it() {
        let e = vars().resolve_str("key_{{typo}}").unwrap_err();
        assert_eq!(e, SubstError::Unbound("typo".into()));
        assert!(
            e.to_string().starts_with("`{{typo}}` names no variable"),
            "{e}"
        );
        assert!(
            vars()
                .resolve_str("{{env.MEROCTL_SURELY_UNSET_42}}")
                .is_err()
        );
    }

    #[test]
    fn outputs_capture_paths_and_field_forms_and_name_what_is_missing() {
        let answer = json!({"contextId": "C", "result": {"output": "{\"k\": 1}"}});
        let mut v = Vars::default();
        let outputs = json!({
            "ctx": "contextId",
            "k": "result.output.k",
            "raw": {"field": "result", "path": "output"},
            "per_node": {"field": "contextId", "target": "ctx_{node_name}"},
        });
        capture(outputs.as_object().unwrap(), &answer, Some("n1"), &mut v).unwrap();
        assert_eq!(v.get("ctx"), Some(&json!("C")));
        assert_eq!(v.get("k"), Some(&json!(1)));
        assert_eq!(v.get("raw"), Some(&json!("{\"k\": 1}")));
        assert_eq!(v.get("ctx_n1"), Some(&json!("C")));
        let e = capture(
            json!({"x": "memberPublicKey"}).as_object().unwrap(),
            &answer,
            None,
            &mut v,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "output `x` captures `memberPublicKey`, which the answer does not have; it has: contextId, result"
        );
    }
}
