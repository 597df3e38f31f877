//! Printing answers. Every verb ends with one typed value (a `mero-api`
//! type) that is `Serialize` and [`Report`]: `--output-format json` prints
//! the value itself as one line of JSON, `human` its table (rounded UTF-8
//! boxes, as upstream's meroctl draws them).

use std::io::Write as _;

use clap::ValueEnum;
use comfy_table::modifiers::UTF8_ROUND_CORNERS;
use comfy_table::presets::UTF8_FULL;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::client::ClientError;

/// How answers are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tables for people.
    Human,
    /// JSON for scripts.
    Json,
}

/// An answer as people see it.
pub(crate) trait Report {
    /// The answer as a table.
    fn table(&self) -> Table;

    /// What human mode prints: the table, unless the answer is better
    /// printed otherwise (an invitation is JSON meant to be pasted).
    fn human(&self) -> String {
        self.table().to_string()
    }
}

/// Where answers go: stdout, in the chosen format.
pub(crate) struct Output {
    format: Format,
}

impl Output {
    pub(crate) fn new(format: Format) -> Output {
        Output { format }
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Prints `value` as JSON or as its report.
    pub(crate) fn write<T: Serialize + Report>(&self, value: &T) -> Result<(), ClientError> {
        let text = match self.format {
            Format::Json => serde_json::to_string(value).map_err(ClientError::Render)?,
            Format::Human => value.human(),
        };
        // Not `println!`: a closed pipe (`meroctl ... | head`) is an error
        // to report, not a panic.
        writeln!(std::io::stdout().lock(), "{text}").map_err(ClientError::Print)
    }
}

/// An empty table in the house style, with `header` if it is not empty.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL)
        .apply_modifier(UTF8_ROUND_CORNERS)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !header.is_empty() {
        t.set_header(header.to_vec());
    }
    t
}

/// A table of `(name, value)` rows without a header.
pub(crate) fn kv(rows: &[(&str, String)]) -> Table {
    let mut t = table(&[]);
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v.clone()]);
    }
    t
}

/// A table with `header` and one row per item.
pub(crate) fn list<T>(header: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) -> Table {
    let mut t = table(header);
    for item in items {
        t.add_row(row(item));
    }
    t
}

/// The value, or `-` for none.
pub(crate) fn or_dash(s: Option<&str>) -> String {
    s.unwrap_or("-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_rounded_utf8_boxes() {
        let shown = kv(&[("Peers", "3".into())]).to_string();
        assert_eq!(shown, "╭───────┬───╮\n│ Peers ┆ 3 │\n╰───────┴───╯");
        let shown = list(&["Name"], &["a"], |s| vec![s.to_string()]).to_string();
        assert_eq!(shown, "╭──────╮\n│ Name │\n╞══════╡\n│ a    │\n╰──────╯");
    }
}
