//! The statements of `assert` and `json_assert`: merobox's predicates
//! (`is_set(A)`, `contains(A, B)`, `equal(A, B)`, `json_subset(A, B)`, ...)
//! and comparisons (`A == B`, `A >= B`, ...) over operands that are
//! placeholders, quoted strings, JSON literals or bare words.
//!
//! One evaluator serves both steps: `json_assert`'s `equal` parses strings
//! holding JSON before comparing, which `assert`'s equality does too, so a
//! statement means the same in either.

use regex::Regex;
use serde_json::Value;

use super::vars::{Vars, text_of};

/// The outcome of one statement.
#[derive(Debug, PartialEq)]
pub(crate) struct Verdict {
    pub(crate) passed: bool,
    /// The operands as they were compared.
    pub(crate) detail: String,
}

/// Evaluates one statement; an error is a statement that cannot be
/// evaluated (malformed, or a placeholder naming nothing), which fails the
/// assertion as a miss would.
pub(crate) fn evaluate(statement: &str, vars: &Vars) -> Result<Verdict, String> {
    let expr = statement.trim();
    if let Some((name, args)) = call(expr) {
        let args = split_args(args);
        return predicate(&name.to_ascii_lowercase(), &args, vars);
    }
    if let Some((left, op, right)) = infix(expr) {
        let a = operand(left, vars)?;
        let b = operand(right, vars)?;
        let passed = match op {
            "==" => loose_eq(&a, &b),
            "!=" => !loose_eq(&a, &b),
            _ => compare(&a, &b, op),
        };
        return Ok(verdict(passed, &a, &b));
    }
    Err(format!(
        "cannot read `{expr}`: write a predicate such as `equal(A, B)` or a comparison `A == B`"
    ))
}

/// `name(args)` when `expr` is one call spanning all of it.
fn call(expr: &str) -> Option<(&str, &str)> {
    let open = expr.find('(')?;
    let name = &expr[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let body = expr[open + 1..].strip_suffix(')')?;
    // The closing parenthesis must be the call's own.
    let mut depth = 0i32;
    for (c, _) in scan(body) {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    Some((name, body))
}

/// The characters of `s` outside quotes and placeholders, each with its
/// byte offset; quoted text and `{{...}}` are skipped whole.
fn scan(s: &str) -> Vec<(char, usize)> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '{'
            && s[i..].starts_with("{{")
            && let Some(end) = s[i + 2..].find("}}")
        {
            // Skip to the placeholder's end.
            let stop = i + 2 + end + 2;
            while chars.peek().is_some_and(|(j, _)| *j < stop) {
                chars.next();
            }
            out.push(('P', i));
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            continue;
        }
        out.push((c, i));
    }
    out
}

/// Splits a call's arguments at top-level commas.
fn split_args(body: &str) -> Vec<&str> {
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (c, i) in scan(body) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(body[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = body[start..].trim();
    if !last.is_empty() || !args.is_empty() {
        args.push(last);
    }
    args
}

/// `A op B` with a comparison operator surrounded by spaces, at top level.
fn infix(expr: &str) -> Option<(&str, &'static str, &str)> {
    let mut depth = 0i32;
    for (c, i) in scan(expr) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ' ' | '\t' if depth == 0 => {
                for op in ["==", "!=", ">=", "<=", ">", "<"] {
                    let after = &expr[i + 1..];
                    if after.starts_with(op) && after[op.len()..].starts_with([' ', '\t']) {
                        return Some((&expr[..i], op, &expr[i + 1 + op.len()..]));
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The value an operand stands for.
pub(crate) fn operand(text: &str, vars: &Vars) -> Result<Value, String> {
    let t = text.trim();
    let quoted = t.len() >= 2
        && ((t.starts_with('\'') && t.ends_with('\'')) || (t.starts_with('"') && t.ends_with('"')));
    if quoted {
        let inner = &t[1..t.len() - 1];
        let resolved = vars.resolve_str(inner).map_err(|e| e.to_string())?;
        return Ok(Value::String(text_of(&resolved)));
    }
    let resolved = vars.resolve_str(t).map_err(|e| e.to_string())?;
    match resolved {
        Value::String(s) => Ok(serde_json::from_str(&s).unwrap_or(Value::String(s))),
        other => Ok(other),
    }
}

fn predicate(name: &str, args: &[&str], vars: &Vars) -> Result<Verdict, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "`{name}` takes {n} argument{}, got {}",
                if n == 1 { "" } else { "s" },
                args.len()
            ))
        }
    };
    let one = || -> Result<Value, String> {
        want(1)?;
        operand(args[0], vars)
    };
    let two = || -> Result<(Value, Value), String> {
        want(2)?;
        Ok((operand(args[0], vars)?, operand(args[1], vars)?))
    };
    let single = |passed: bool, v: &Value| Verdict {
        passed,
        detail: format!("(value={})", shown(v)),
    };
    Ok(match name {
        "is_set" | "exists" => {
            let v = one()?;
            single(!is_empty(&v), &v)
        }
        "is_empty" | "empty" => {
            let v = one()?;
            single(is_empty(&v), &v)
        }
        "contains" | "not_contains" => {
            let (a, b) = two()?;
            verdict(contains(&a, &b) == (name == "contains"), &a, &b)
        }
        "regex" | "matches" => {
            let (a, b) = two()?;
            let re = Regex::new(&text_of(&b)).map_err(|e| format!("bad pattern: {e}"))?;
            verdict(re.is_match(&text_of(&a)), &a, &b)
        }
        "equal" | "equals" | "eq" | "json_equal" => {
            let (a, b) = two()?;
            verdict(loose_eq(&a, &b), &a, &b)
        }
        "not_equal" | "not_equals" | "ne" | "json_not_equal" => {
            let (a, b) = two()?;
            verdict(!loose_eq(&a, &b), &a, &b)
        }
        "json_subset" | "subset" => {
            let (a, b) = two()?;
            verdict(is_subset(&normalize(&a), &normalize(&b)), &a, &b)
        }
        "greater_than" | "gt" => cmp2(two()?, ">"),
        "greater_or_equal" | "greater_than_or_equal" | "gte" | "ge" => cmp2(two()?, ">="),
        "less_than" | "lt" => cmp2(two()?, "<"),
        "less_or_equal" | "less_than_or_equal" | "lte" | "le" => cmp2(two()?, "<="),
        other => return Err(format!("unknown predicate `{other}`")),
    })
}

fn cmp2((a, b): (Value, Value), op: &str) -> Verdict {
    verdict(compare(&a, &b, op), &a, &b)
}

fn verdict(passed: bool, a: &Value, b: &Value) -> Verdict {
    Verdict {
        passed,
        detail: format!("(left={}, right={})", shown(a), shown(b)),
    }
}

/// A value for a message, cut short when long.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty() || s == "''" || s == "\"\"",
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// `b` in `a`: a substring of a string (or of an object's JSON), an
/// element of a list, a key of an object.
fn contains(a: &Value, b: &Value) -> bool {
    match a {
        Value::Array(items) => {
            items.iter().any(|i| loose_eq(i, b)) || a.to_string().contains(&text_of(b))
        }
        Value::Object(m) => {
            (b.as_str().is_some_and(|k| m.contains_key(k))) || a.to_string().contains(&text_of(b))
        }
        other => text_of(other).contains(&text_of(b)),
    }
}

/// A string holding JSON (object, array), parsed.
fn normalize(v: &Value) -> Value {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(parsed @ (Value::Object(_) | Value::Array(_))) => parsed,
            _ => v.clone(),
        },
        other => other.clone(),
    }
}

/// Equality that forgives what YAML and text lose: a string holding JSON
/// equals that JSON, and `"3"` equals `3`.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (na, nb) = (normalize(a), normalize(b));
    if na == nb {
        return true;
    }
    match (&na, &nb) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        (Value::String(s), Value::Bool(b)) | (Value::Bool(b), Value::String(s)) => {
            s.as_str() == if *b { "true" } else { "false" }
        }
        _ => false,
    }
}

/// Numbers (or numeric strings) compare as numbers, anything else as text.
fn compare(a: &Value, b: &Value, op: &str) -> bool {
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let ord = match (num(a), num(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(text_of(a).cmp(&text_of(b))),
    };
    let Some(ord) = ord else {
        return false;
    };
    match op {
        ">" => ord.is_gt(),
        ">=" => ord.is_ge(),
        "<" => ord.is_lt(),
        "<=" => ord.is_le(),
        _ => false,
    }
}

/// `sub` is in `sup`: every key of an object with a value that is a subset
/// of the other's, every element of a list somewhere in the other list,
/// scalars equal.
fn is_subset(sup: &Value, sub: &Value) -> bool {
    match (sup, sub) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| is_subset(av, v))),
        (Value::Array(a), Value::Array(b)) => {
            b.iter().all(|bv| a.iter().any(|av| is_subset(av, bv)))
        }
        _ => loose_eq(sup, sub),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set("get", json!({"output": "assert_value"}));
        v.set("key", json!("1NfA9x"));
        v.set("count", json!(3));
        v.set("text", json!("3"));
        v.set("list", json!(["a", "b"]));
        v.set("json_text", json!("{\"a\": 1, \"b\": [1, 2]}"));
        v
    }

    fn passes(s: &str) -> bool {
        evaluate(s, &vars())
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .passed
    }

    #[test]
    fn merobox_predicates_hold_as_in_its_examples() {
        for s in [
            "is_set({{key}})",
            "is_empty('')",
            "is_empty([])",
            "{{key}} != ''",
            "contains({{get}}, 'assert_value')",
            "contains({{get}}, assert_value)",
            "not_contains({{key}}, 'invalid')",
            "regex({{key}}, ^[1-9A-HJ-NP-Za-km-z]+$)",
            "1 == 1",
            "1 >= 0",
            "0 < 1",
            "2 > 1",
            "equal('x', 'x')",
            "equals('x', 'x')",
            "not_equal('x', 'y')",
            "not_equals('x', 'y')",
            "json_equal({{get}}, {\"output\": \"assert_value\"})",
            "equal({{get}}, {\"output\": \"assert_value\"})",
            "json_subset({{get}}, {\"output\": \"assert_value\"})",
            "subset({{json_text}}, {\"b\": [2]})",
            "json_subset({\"a\": 1, \"b\": 2}, {\"a\": 1})",
            "json_not_equal({{get}}, {\"output\": \"other\"})",
            "equal({{count}}, 3)",
            "equal({{text}}, {{count}})",
            "greater_than({{count}}, 2)",
            "less_or_equal({{count}}, 3)",
            "contains({{list}}, 'b')",
            "{{get.output}} == assert_value",
        ] {
            assert!(passes(s), "{s}");
        }
        for s in [
            "is_set('')",
            "contains({{get}}, 'nope')",
            "equal({{count}}, 4)",
            "{{count}} > 10",
            "json_subset({{get}}, {\"output\": \"x\"})",
        ] {
            assert!(!passes(s), "{s}");
        }
    }

    #[test]
    fn failures_say_what_was_compared() {
        let v = evaluate("equal({{count}}, 4)", &vars()).unwrap();
        assert_eq!(v.detail, "(left=3, right=4)");
    }

    #[test]
    fn malformed_or_unbound_statements_are_errors() {
        assert!(
            evaluate("is_set({{nope}})", &vars())
                .unwrap_err()
                .contains("`{{nope}}` names no variable")
        );
        assert!(
            evaluate("frobnicate(1)", &vars())
                .unwrap_err()
                .contains("unknown predicate")
        );
        assert!(
            evaluate("equal(1)", &vars())
                .unwrap_err()
                .contains("takes 2 arguments")
        );
        assert!(
            evaluate("just words", &vars())
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn commas_inside_json_and_quotes_do_not_split_arguments() {
        assert_eq!(
            split_args(r#"{"a": 1, "b": [1, 2]}, 'x, y'"#),
            vec![r#"{"a": 1, "b": [1, 2]}"#, "'x, y'"]
        );
        assert!(passes("equal('a, b', 'a, b')"));
    }
}
