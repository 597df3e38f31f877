//! What a run shows and leaves behind: a live progress line per step
//! (indicatif, on stderr; plain lines when stderr is not a terminal), the
//! summary table at the end (comfy-table, as the rest of meroctl), and the
//! JUnit XML report for CI dashboards.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use comfy_table::Table;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::table;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    /// It failed as `expected_failure` asked.
    ExpectedFailure,
    Failed,
    /// Not run: an earlier step failed.
    Skipped,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::ExpectedFailure => "ok (failed as expected)",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }
}

/// One top-level step's result.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) index: usize,
    pub(crate) label: String,
    pub(crate) ty: &'static str,
    pub(crate) node: Option<String>,
    pub(crate) duration: Duration,
    pub(crate) status: Status,
    /// Why it failed (or what it found), for the report.
    pub(crate) detail: Option<String>,
}

/// The live progress line.
pub(crate) struct Progress {
    bar: ProgressBar,
    live: bool,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        let live = std::io::stderr().is_terminal();
        let bar = if live {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, live }
    }

    /// What is running now.
    pub(crate) fn set(&self, message: String) {
        if self.live {
            self.bar.set_message(message);
        }
    }

    /// A line that stays (above the live line on a terminal).
    pub(crate) fn line(&self, text: &str) {
        if self.live {
            self.bar.println(text);
        } else {
            // Nothing is left to tell if stderr itself is gone.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `1.2s` / `340ms`.
pub(crate) fn secs(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The summary table: step, node, duration, outcome.
pub(crate) fn summary(records: &[Record]) -> Table {
    let mut t = table(&["#", "Step", "Type", "Node", "Duration", "Result"]);
    for r in records {
        t.add_row(vec![
            (r.index + 1).to_string(),
            r.label.clone(),
            r.ty.to_string(),
            r.node.clone().unwrap_or_else(|| "-".into()),
            secs(r.duration),
            r.status.word().to_string(),
        ]);
    }
    t
}

/// A JUnit XML report: one test suite (the workflow), one test case per
/// top-level step.
pub(crate) fn junit(workflow: &str, records: &[Record], total: Duration) -> String {
    let failures = records
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    let skipped = records
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{w}\" tests=\"{n}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{t:.3}\">\n\
         <testsuite name=\"{w}\" tests=\"{n}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{t:.3}\">\n",
        w = xml(workflow),
        n = records.len(),
        t = total.as_secs_f64(),
    ));
    for r in records {
        out.push_str(&format!(
            "  <testcase name=\"{:03} {}\" classname=\"{}\" time=\"{:.3}\"",
            r.index + 1,
            xml(&r.label),
            xml(r.ty),
            r.duration.as_secs_f64()
        ));
        match r.status {
            Status::Failed => {
                let detail = r.detail.clone().unwrap_or_default();
                let first = detail.lines().next().unwrap_or("failed");
                out.push_str(&format!(
                    ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                    xml(first),
                    xml(&detail)
                ));
            }
            Status::Skipped => out.push_str(">\n    <skipped/>\n  </testcase>\n"),
            Status::Ok | Status::ExpectedFailure => out.push_str("/>\n"),
        }
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}

/// Text escaped for XML attributes and content; characters XML 1.0 cannot
/// carry are dropped.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize, status: Status, detail: Option<&str>) -> Record {
        Record {
            index: i,
            label: format!("step <{i}>"),
            ty: "call",
            node: Some("n1".into()),
            duration: Duration::from_millis(1500),
            status,
            detail: detail.map(str::to_string),
        }
    }

    #[test]
    fn junit_has_a_case_per_step_and_escapes_text() {
        let xml = junit(
            "wf & co",
            &[
                record(0, Status::Ok, None),
                record(1, Status::Failed, Some("boom \"x\"\nmore")),
                record(2, Status::Skipped, None),
            ],
            Duration::from_secs(3),
        );
        assert!(
            xml.contains(
                "<testsuite name=\"wf &amp; co\" tests=\"3\" failures=\"1\" skipped=\"1\""
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<testcase name=\"001 step &lt;0&gt;\" classname=\"call\" time=\"1.500\"/>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<failure message=\"boom &quot;x&quot;\">boom &quot;x&quot;\nmore</failure>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<skipped/>"), "{xml}");
    }

    #[test]
    fn the_summary_has_a_row_per_step() {
        let t = summary(&[
            record(0, Status::Ok, None),
            record(1, Status::ExpectedFailure, None),
        ])
        .to_string();
        assert!(
            t.contains("│ 1 ┆ step <0> ┆ call ┆ n1   ┆ 1.5s     ┆ ok"),
            "{t}"
        );
        assert!(t.contains("ok (failed as expected)"), "{t}");
    }
}
