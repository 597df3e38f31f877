//! Reading a workflow file: YAML into a tree that remembers the line of
//! every value, so that a mistake is reported where it was written; then
//! `${VAR}` / `${VAR:-default}` expansion (at load time, as merobox does) and
//! conversion to JSON for the steps.
//!
//! The tree is built from `yaml-rust2`'s marked events rather than through
//! serde: serde's data model has no positions, and an unknown key must be
//! named with its line.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value and the line (1-based) it starts on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) line: usize,
    pub(crate) kind: Kind,
}

/// What a [`Node`] holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; keys are scalars, kept as text.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and its line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    pub(crate) line: usize,
    pub(crate) name: String,
}

impl Node {
    /// The mapping's entries, if this is a mapping.
    pub(crate) fn entries(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// The text of a string scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub(crate) fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The value as JSON. Non-finite floats, which JSON lacks, become
    /// their YAML spelling.
    pub(crate) fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => Number::from_f64(*f).map_or_else(
                || Value::String(if f.is_nan() { ".nan" } else { ".inf" }.into()),
                Value::Number,
            ),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// A file that is not the YAML a workflow must be.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub(crate) struct YamlError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Parses one YAML document.
pub(crate) fn parse(text: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| YamlError {
        line: e.marker().line(),
        message: format!(
            "invalid YAML: {} (column {})",
            e.info(),
            e.marker().col() + 1
        ),
    })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    match builder.docs.pop() {
        Some(doc) => Ok(doc),
        None => Err(YamlError {
            line: 1,
            message: "the file is empty".into(),
        }),
    }
}

/// A collection being built.
enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<(Key, Node)>,
        key: Option<Node>,
        /// Keys that came from a `<<` merge: a key written out overrides them.
        merged: Vec<String>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError { line, message });
        }
    }

    /// Places a finished value in its parent (or as a document).
    fn place(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let problem = match self.stack.last_mut() {
            None => {
                self.docs.push(node);
                None
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                None
            }
            Some(Frame::Map {
                entries,
                key,
                merged,
                ..
            }) => match key.take() {
                None => {
                    *key = Some(node);
                    None
                }
                Some(k) => insert(entries, merged, k, node),
            },
        };
        if let Some((line, message)) = problem {
            self.fail(line, message);
        }
    }
}

/// Adds `key: value` to a mapping being built; the problem, if any.
fn insert(
    entries: &mut Vec<(Key, Node)>,
    merged: &mut Vec<String>,
    key: Node,
    value: Node,
) -> Option<(usize, String)> {
    let name = match &key.kind {
        Kind::Str(s) => s.clone(),
        Kind::Int(i) => i.to_string(),
        Kind::Bool(b) => b.to_string(),
        Kind::Float(f) => f.to_string(),
        Kind::Null => "null".into(),
        Kind::Seq(_) | Kind::Map(_) => {
            return Some((key.line, "a mapping key must be a scalar".into()));
        }
    };
    if name == "<<" {
        // A merge key: the merged mapping's keys, unless already given
        // (YAML 1.1's merge, which merobox's PyYAML supports).
        let sources = match value.kind {
            Kind::Map(m) => vec![m],
            Kind::Seq(items) => items
                .into_iter()
                .filter_map(|i| match i.kind {
                    Kind::Map(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => return Some((key.line, "`<<` must merge a mapping".into())),
        };
        for (mk, mv) in sources.into_iter().flatten() {
            if !entries.iter().any(|(e, _)| e.name == mk.name) {
                merged.push(mk.name.clone());
                entries.push((mk, mv));
            }
        }
        return None;
    }
    if let Some(at) = merged.iter().position(|m| *m == name) {
        merged.swap_remove(at);
        entries.retain(|(e, _)| e.name != name);
    } else if entries.iter().any(|(e, _)| e.name == name) {
        return Some((key.line, format!("duplicate key `{name}`")));
    }
    entries.push((
        Key {
            line: key.line,
            name,
        },
        value,
    ));
    None
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let kind = scalar(text, style, tag.as_ref());
                self.place(Node { line, kind }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                line,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                line,
                anchor,
                entries: Vec::new(),
                key: None,
                merged: Vec::new(),
            }),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    line,
                    anchor,
                    items,
                }) => self.place(
                    Node {
                        line,
                        kind: Kind::Seq(items),
                    },
                    anchor,
                ),
                Some(Frame::Map {
                    line,
                    anchor,
                    entries,
                    ..
                }) => self.place(
                    Node {
                        line,
                        kind: Kind::Map(entries),
                    },
                    anchor,
                ),
                None => self.fail(line, "unbalanced YAML".into()),
            },
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.place(Node { line, ..node }, 0),
                None => self.fail(line, "an alias names no anchor".into()),
            },
            _ => {}
        }
    }
}

/// Resolves a scalar as YAML 1.2's core schema does: plain `null`, `~` and
/// the empty scalar are null, `true`/`false` booleans, numbers numbers;
/// anything quoted, or tagged `!!str`, is a string.
fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Kind {
    if tag.is_some_and(|t| t.suffix == "str") || style != TScalarStyle::Plain {
        return Kind::Str(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Kind::Int(i);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Kind::Int(i);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Kind::Int(i);
    }
    let numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if numeric
        && text.chars().any(|c| c.is_ascii_digit())
        && let Ok(f) = text.parse::<f64>()
    {
        return Kind::Float(f);
    }
    Kind::Str(text)
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string of `node` with
/// the environment's value (`env` looks a name up). A variable that is
/// unset and has no default is an error naming it and its line.
pub(crate) fn expand_env(
    node: &mut Node,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), YamlError> {
    match &mut node.kind {
        Kind::Str(s) => {
            if s.contains("${") {
                *s = expand_str(s, env).map_err(|message| YamlError {
                    line: node.line,
                    message,
                })?;
            }
            Ok(())
        }
        Kind::Seq(items) => items.iter_mut().try_for_each(|i| expand_env(i, env)),
        Kind::Map(entries) => entries.iter_mut().try_for_each(|(_, v)| expand_env(v, env)),
        _ => Ok(()),
    }
}

fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            // Not a variable reference: keep the text as written.
            out.push_str(&rest[start..start + 2 + end + 1]);
        } else {
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)"
                    ));
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_remembered_for_keys_and_values() {
        let doc = parse("name: x\nsteps:\n  - type: call\n    node: n1\n").unwrap();
        let steps = doc.get("steps").unwrap();
        let step = &steps.items().unwrap()[0];
        assert_eq!(step.line, 3);
        let (key, value) = &step.entries().unwrap()[1];
        assert_eq!((key.name.as_str(), key.line), ("node", 4));
        assert_eq!(value.as_str(), Some("n1"));
    }

    #[test]
    fn scalars_resolve_like_yaml_1_2() {
        let doc = parse(
            "a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: hello\ng: \"true\"\nh: 0x10\ni: 1e3\nj: 1.2.3\n",
        )
        .unwrap();
        let v = doc.to_json();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1", "f": "hello",
                "g": "true", "h": 16, "i": 1000.0, "j": "1.2.3"})
        );
    }

    #[test]
    fn bad_yaml_names_its_line() {
        let e = parse("name: x\nsteps:\n  - type: call\n   node: [\n").unwrap_err();
        assert!(e.line >= 3, "{e}");
        assert!(e.message.starts_with("invalid YAML"), "{e}");
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            e,
            YamlError {
                line: 3,
                message: "duplicate key `a`".into()
            }
        );
    }

    #[test]
    fn anchors_and_merge_keys_work() {
        let doc = parse("base: &b\n  node: n1\n  x: 1\nstep:\n  <<: *b\n  x: 2\n").unwrap();
        assert_eq!(
            doc.get("step").unwrap().to_json(),
            serde_json::json!({"x": 2, "node": "n1"})
        );
    }

    #[test]
    fn environment_variables_expand_with_defaults() {
        let env = |n: &str| (n == "HOME_DIR").then(|| "/h".to_string());
        let mut doc = parse("a: ${HOME_DIR}/x\nb: ${NOPE:-d}\nc: \"{{y}} $5\"\n").unwrap();
        expand_env(&mut doc, &env).unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"a": "/h/x", "b": "d", "c": "{{y}} $5"})
        );
        let mut doc = parse("a: 1\nb: ${NOPE}\n").unwrap();
        let e = expand_env(&mut doc, &env).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`NOPE` is not set"), "{e}");
    }
}
