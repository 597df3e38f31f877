//! `meroctl workflow`: runs a workflow file in merobox's YAML format on
//! nodes this command starts itself, so that a merobox workflow written for
//! its no-Docker mode runs here unchanged apart from application paths.
//!
//! This module owns the command and a run's course: load and check the
//! file (every mistake, with its line, before any node starts), start the
//! nodes, run the steps in order until the first unexpected failure, print
//! the summary (and `--junit` XML), and stop the nodes (at the end, on a
//! failed step and on Ctrl-C, unless `--keep`).
//!
//! - [`yaml`]: the file as a tree with lines; `${VAR}` expansion;
//! - [`spec`]: the format (top-level keys, `nodes`, every step type's keys)
//!   and its checks;
//! - [`vars`]: variables, `{{...}}` substitution, `outputs` capture;
//! - [`expr`]: `assert` / `json_assert` statements;
//! - [`nodes`]: the merod processes;
//! - [`steps`]: what each step type does;
//! - [`fuzzy`]: `fuzzy_test`, with fault operations;
//! - [`report`]: progress line, summary table, JUnit XML.

mod expr;
mod fuzzy;
mod migration;
mod nodes;
mod report;
mod spec;
mod steps;
mod vars;
mod yaml;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::Value;

use self::nodes::{Cluster, NodeError};
use self::report::{Progress, Record, Status};
use self::spec::{SpecError, Workflow};
use self::steps::{Failure, Passed, Runner};
use self::vars::Vars;

#[derive(Subcommand)]
pub(crate) enum WorkflowCmd {
    /// Runs a workflow: starts its nodes on 127.0.0.1, runs its steps,
    /// stops the nodes.
    #[command(after_help = "Examples:
  meroctl workflow run workflows/two-nodes.yml
  meroctl workflow run wf.yml --var kv_store=target/wasm32-wasip2/wasm/kv_store.wasm --junit report.xml
  meroctl workflow run wf.yml --keep          # leave the nodes running afterwards")]
    Run(RunArgs),
    /// Checks a workflow file without starting anything.
    Check {
        /// The workflow file.
        file: PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The workflow file (merobox's YAML format).
    file: PathBuf,
    /// The merod binary; default: `binary_path` of the workflow, else the
    /// merod beside this meroctl, else `merod` on PATH.
    #[arg(long)]
    merod: Option<PathBuf>,
    /// Leave the nodes running (and their homes in place) when the run ends.
    #[arg(long)]
    keep: bool,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "OUT.xml")]
    junit: Option<PathBuf>,
    /// A variable for `{{name}}` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Where node homes go (default: a new directory under the system's
    /// temporary directory, removed after a successful run).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Why a workflow did not pass.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkflowError {
    #[error("cannot read {}: {error}", file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Usage(String),
    #[error("the nodes could not be started: {error}\n  node homes: {}", dir.display())]
    Nodes { error: NodeError, dir: PathBuf },
    #[error("{0}")]
    Failed(String),
    #[error("interrupted (Ctrl-C or SIGTERM){}", if *.kept { "; the nodes are left running" } else { "; the nodes were stopped" })]
    Interrupted { kept: bool },
    #[error("cannot write {}: {error}", file.display())]
    Write {
        file: PathBuf,
        error: std::io::Error,
    },
}

pub(crate) async fn run(cmd: WorkflowCmd) -> Result<(), WorkflowError> {
    match cmd {
        WorkflowCmd::Check { file } => {
            let wf = load(&file)?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}: `{}` is valid: {} nodes, {} steps",
                file.display(),
                wf.name,
                wf.nodes.len(),
                wf.steps.len()
            );
            Ok(())
        }
        WorkflowCmd::Run(args) => run_file(args).await,
    }
}

fn load(file: &Path) -> Result<Workflow, WorkflowError> {
    let text = std::fs::read_to_string(file).map_err(|error| WorkflowError::Read {
        file: file.to_path_buf(),
        error,
    })?;
    Ok(spec::load(file, &text, &|name| std::env::var(name).ok())?)
}

/// The merod to run: `--merod`, `binary_path`, the one beside meroctl, or
/// `merod` on PATH.
fn find_merod(given: Option<PathBuf>, wf: &Workflow) -> PathBuf {
    if let Some(p) = given {
        return p;
    }
    if let Some(p) = &wf.binary_path {
        return PathBuf::from(p);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("merod")))
        .filter(|p| p.is_file());
    beside.unwrap_or_else(|| PathBuf::from("merod"))
}

async fn run_file(args: RunArgs) -> Result<(), WorkflowError> {
    let wf = load(&args.file)?;
    let mut vars = Vars::default();
    for v in &args.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| WorkflowError::Usage(format!("--var `{v}`: write NAME=VALUE")))?;
        vars.set(k.trim(), Value::String(val.to_string()));
    }
    let merod = find_merod(args.merod.clone(), &wf);
    let own_dir = args.dir.is_none();
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "meroctl-workflow-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        )),
    };
    std::fs::create_dir_all(&dir).map_err(|error| WorkflowError::Write {
        file: dir.clone(),
        error,
    })?;
    let progress = Progress::new();
    progress.line(&format!(
        "workflow `{}`: {} node{} under {}",
        wf.name,
        wf.nodes.len(),
        if wf.nodes.len() == 1 { "" } else { "s" },
        dir.display()
    ));
    if !wf.ignored.is_empty() {
        progress.line(&format!(
            "  ignored (merobox Docker/lifecycle settings): {}",
            wf.ignored.join(", ")
        ));
    }
    let log_level = wf.log_level.clone().unwrap_or_else(|| "info".into());
    let started = Instant::now();
    // From here on Ctrl-C and SIGTERM no longer kill meroctl: they end the
    // run, which stops the nodes (in their own process group, they would
    // outlive it) unless `--keep`.
    let mut interrupt = Interrupt::new()?;
    progress.set("starting the nodes".into());
    let cluster = tokio::select! {
        c = Cluster::init(&dir, &merod, &wf.nodes, &log_level) => match c {
            Ok(c) => c,
            Err(error) => {
                progress.finish();
                return Err(WorkflowError::Nodes { error, dir });
            }
        },
        // No node runs yet (`merod init` only writes their homes).
        () = interrupt.recv() => {
            progress.finish();
            return Err(WorkflowError::Interrupted { kept: false });
        }
    };
    let up = tokio::select! {
        r = cluster.start_all(wf.wait_timeout) => Some(r),
        () = interrupt.recv() => None,
    };
    if !matches!(up, Some(Ok(()))) {
        progress.finish();
        if args.keep {
            keep(&cluster);
        } else {
            cluster.stop_all().await;
        }
        return Err(match up {
            Some(Err(error)) => WorkflowError::Nodes { error, dir },
            _ => WorkflowError::Interrupted { kept: args.keep },
        });
    }
    let base_dir = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let runner = Runner {
        cluster: &cluster,
        base_dir,
        wait_timeout: wf.wait_timeout,
        progress: &progress,
    };
    let mut records = Vec::new();
    let outcome = tokio::select! {
        f = run_steps(&runner, &wf, &mut vars, &mut records) => Some(f),
        () = interrupt.recv() => None,
    };
    progress.finish();
    let total = started.elapsed();
    // Steps that never ran.
    for (i, s) in wf.steps.iter().enumerate().skip(records.len()) {
        records.push(Record {
            index: i,
            label: s.label(),
            ty: s.ty,
            node: steps::node_of(s),
            duration: Default::default(),
            status: Status::Skipped,
            detail: None,
        });
    }
    let table = report::summary(&records);
    let _ = writeln!(std::io::stdout().lock(), "{table}");
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&wf.name, &records, total)).map_err(|error| {
            WorkflowError::Write {
                file: path.clone(),
                error,
            }
        })?;
    }
    let failure = match outcome {
        None => {
            if args.keep {
                keep(&cluster);
            } else {
                cluster.stop_all().await;
            }
            return Err(WorkflowError::Interrupted { kept: args.keep });
        }
        Some(Err(f)) => Some(f),
        Some(Ok(())) => None,
    };
    let message = failure.as_ref().map(|f| failure_message(&wf, f, &cluster));
    if args.keep {
        keep(&cluster);
    } else {
        cluster.stop_all().await;
        if failure.is_none() && own_dir {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    match message {
        Some(m) => Err(WorkflowError::Failed(m)),
        None => {
            let _ = writeln!(
                std::io::stdout().lock(),
                "workflow `{}` passed: {} steps in {}",
                wf.name,
                records.len(),
                report::secs(total)
            );
            Ok(())
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from the moment this is made (a
/// signal that arrives between two `recv` is kept for the next).
struct Interrupt {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> Result<Interrupt, WorkflowError> {
        use tokio::signal::unix::{SignalKind, signal};
        let catch = |kind| {
            signal(kind).map_err(|e| WorkflowError::Usage(format!("cannot catch signals: {e}")))
        };
        Ok(Interrupt {
            int: catch(SignalKind::interrupt())?,
            term: catch(SignalKind::terminate())?,
        })
    }

    /// Waits for either signal.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Runs the top-level steps, a record each, until the first failure.
async fn run_steps(
    runner: &Runner<'_>,
    wf: &Workflow,
    vars: &mut Vars,
    records: &mut Vec<Record>,
) -> Result<(), Failure> {
    for (i, step) in wf.steps.iter().enumerate() {
        let started = Instant::now();
        let result = runner.run_step(step, vars, None).await;
        let duration = started.elapsed();
        let (status, detail) = match &result {
            Ok(Passed::Ok) => (Status::Ok, None),
            Ok(Passed::AsExpected) => (Status::ExpectedFailure, None),
            Err(f) => (Status::Failed, Some(f.error.text())),
        };
        let label = result
            .as_ref()
            .err()
            .map_or_else(|| step.label(), |f| f.label.clone());
        runner.progress.line(&format!(
            "{} [{}/{}] {label} ({}){} {}",
            if status == Status::Failed {
                "✗"
            } else {
                "✓"
            },
            i + 1,
            wf.steps.len(),
            step.ty,
            steps::node_of(step)
                .map(|n| format!(" on {n}"))
                .unwrap_or_default(),
            report::secs(duration)
        ));
        records.push(Record {
            index: i,
            label,
            ty: step.ty,
            node: steps::node_of(step),
            duration,
            status,
            detail,
        });
        result?;
    }
    Ok(())
}

/// What a failed run prints: the step, its resolved inputs, the node's
/// answer, the end of that node's log and where every log is.
fn failure_message(wf: &Workflow, f: &Failure, cluster: &Cluster) -> String {
    let mut out = format!(
        "workflow `{}` failed at step `{}` ({}, {}:{}){}: {}",
        wf.name,
        f.label,
        f.ty,
        wf.file.display(),
        f.line,
        f.node
            .as_ref()
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default(),
        f.error.message
    );
    if let Some(inputs) = &f.inputs {
        out.push_str(&format!("\n  inputs: {}", cut(&inputs.to_string(), 2000)));
    }
    if let Some(answer) = &f.error.answer {
        out.push_str(&format!(
            "\n  answer: {}",
            cut(answer, 4000).replace('\n', "\n          ")
        ));
    }
    if let Some(node) = f.node.as_deref().and_then(|n| cluster.get(n)) {
        let tail = node.log_tail(15);
        if !tail.is_empty() {
            out.push_str(&format!(
                "\n  last lines of {}'s log:\n    {}",
                node.name,
                tail.replace('\n', "\n    ")
            ));
        }
    }
    out.push_str("\n  node logs:");
    for (name, path) in cluster.log_paths() {
        out.push_str(&format!("\n    {name}: {}", path.display()));
    }
    out
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!(
            "{}… ({} characters)",
            s.chars().take(max).collect::<String>(),
            s.chars().count()
        )
    }
}

/// `--keep`: the nodes outlive this command; says how to reach them.
fn keep(cluster: &Cluster) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "nodes left running (stop them with kill; logs beside their data):"
    );
    for n in cluster.all() {
        let home = n.dir().parent().map(Path::to_path_buf).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}: http://127.0.0.1:{}  meroctl --home {} --node {} ...",
            n.name,
            n.server_port,
            home.display(),
            n.name
        );
    }
    cluster.detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sigterm_is_caught_once_the_handler_is_installed() {
        let mut interrupt = Interrupt::new().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(std::time::Duration::from_secs(10), interrupt.recv())
            .await
            .expect("SIGTERM reaches the runner, not the default handler");
    }
}
