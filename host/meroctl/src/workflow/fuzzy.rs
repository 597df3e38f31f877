//! `fuzzy_test`: merobox's randomized load. For a duration, operations
//! are drawn by weight and their steps run against random live nodes
//! (`{{random_node}}`, and here `{{random_other_node}}`); assertions inside
//! them are recorded, not fatal. Beyond merobox: operations may use the
//! fault steps (`kill_node`, `start_node`, `restart_node`, `pause_node`,
//! `resume_node`), a step of an operation that fails unexpectedly counts as
//! a failed check, and the run ends by bringing every node back and
//! checking that all agree on the context's root hash. The verdict is the
//! pass rate against `success_threshold`, 100 % unless set lower.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::{Map, Value, json};

use super::nodes::State;
use super::report::secs;
use super::spec::{Nested, Step};
use super::steps::{Cfg, Runner, StepError};
use super::vars::{Vars, text_of};

/// One check that failed.
#[derive(Debug, Clone)]
pub(crate) struct Miss {
    pub(crate) at: Duration,
    pub(crate) op: String,
    pub(crate) what: String,
    pub(crate) detail: String,
}

/// Counts of a fuzzy run.
#[derive(Debug)]
pub(crate) struct Tracker {
    started: Instant,
    op: String,
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) misses: Vec<Miss>,
    /// Per operation: (runs, checks passed, checks failed).
    per_op: BTreeMap<String, (u64, u64, u64)>,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            started: Instant::now(),
            op: String::new(),
            passed: 0,
            failed: 0,
            misses: Vec::new(),
            per_op: BTreeMap::new(),
        }
    }

    fn begin(&mut self, op: &str) {
        self.op = op.to_string();
        self.per_op.entry(op.to_string()).or_default().0 += 1;
    }

    /// The checks after the load: they count, as no operation.
    fn begin_final(&mut self) {
        self.op = FINAL.to_string();
        self.per_op.entry(FINAL.to_string()).or_default();
    }

    pub(crate) fn pass(&mut self) {
        self.passed += 1;
        self.per_op.entry(self.op.clone()).or_default().1 += 1;
    }

    pub(crate) fn fail(&mut self, what: &str, detail: &str) {
        self.failed += 1;
        self.per_op.entry(self.op.clone()).or_default().2 += 1;
        // A long run's misses are counted, but only the first are kept, so
        // that a broken node cannot grow the tracker without bound.
        if self.misses.len() >= KEPT_MISSES {
            return;
        }
        self.misses.push(Miss {
            at: self.started.elapsed(),
            op: self.op.clone(),
            what: what.to_string(),
            detail: detail.to_string(),
        });
    }

    fn total(&self) -> u64 {
        self.passed + self.failed
    }

    fn rate(&self) -> f64 {
        if self.total() == 0 {
            0.0
        } else {
            self.passed as f64 * 100.0 / self.total() as f64
        }
    }

    fn ops(&self) -> u64 {
        self.per_op.values().map(|(runs, ..)| runs).sum()
    }
}

/// The name the final checks are reported under.
const FINAL: &str = "final convergence";

/// How many failed checks a fuzzy run keeps the detail of (the rest are
/// only counted).
const KEPT_MISSES: usize = 500;

/// A node of the run: its name and merobox's optional executor key.
struct FuzzNode {
    name: String,
    executor: Option<String>,
}

pub(crate) async fn run(
    runner: &Runner<'_>,
    step: &Step,
    cfg: &Cfg,
    vars: &mut Vars,
) -> Result<Value, StepError> {
    let Nested::Ops(ops) = &step.nested else {
        return Err(StepError::new("`fuzzy_test` has no operations"));
    };
    let duration = match cfg.num("duration_seconds")? {
        Some(s) => s,
        None => cfg.num("duration_minutes")?.unwrap_or(0.0) * 60.0,
    };
    if !(duration > 0.0 && duration.is_finite()) {
        return Err(StepError::new("the duration must be positive"));
    }
    let duration = Duration::try_from_secs_f64(duration)
        .map_err(|_| StepError::new("the duration is out of range"))?;
    let ctx = cfg.str("context_id")?;
    let threshold = cfg.num("success_threshold")?.unwrap_or(100.0);
    let delay =
        Duration::try_from_secs_f64(cfg.num("operation_delay_ms")?.unwrap_or(100.0) / 1000.0)
            .map_err(|_| StepError::new("`operation_delay_ms` must be a positive number"))?;
    let every = cfg.secs("summary_interval_seconds")?.unwrap_or_else(|| {
        Duration::from_secs(60)
            .min(duration / 4)
            .max(Duration::from_secs(5))
    });
    let settle = cfg
        .secs("convergence_timeout")?
        .unwrap_or(Duration::from_secs(120));
    let nodes: Vec<FuzzNode> = cfg
        .0
        .get("nodes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| {
                    Some(FuzzNode {
                        name: n.get("name").map(text_of)?,
                        executor: n.get("executor_key").map(text_of),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if nodes.is_empty() {
        return Err(StepError::new("`nodes` lists no node"));
    }
    for n in &nodes {
        if runner.cluster.get(&n.name).is_none() {
            return Err(StepError::new(format!("no node is named `{}`", n.name)));
        }
    }
    let total_weight: f64 = ops.iter().map(|o| o.weight).sum();
    if !(total_weight.is_finite() && total_weight > 0.0) {
        return Err(StepError::new("the operations' weights must be positive"));
    }
    let tracker = RefCell::new(Tracker::new());
    runner.progress.line(&format!(
        "  fuzzy load: {} on {} ({} operations, threshold {threshold}%)",
        secs(duration),
        nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        ops.len()
    ));
    let started = Instant::now();
    let mut last_summary = Instant::now();
    let mut iteration = 0u64;
    while started.elapsed() < duration {
        iteration += 1;
        let mut pick = rand::rng().random_range(0.0..total_weight);
        let op = ops
            .iter()
            .find(|o| {
                pick -= o.weight;
                pick < 0.0
            })
            .or(ops.last())
            .ok_or_else(|| StepError::new("no operations"))?;
        tracker.borrow_mut().begin(&op.name);
        let live: Vec<&FuzzNode> = nodes
            .iter()
            .filter(|n| {
                runner
                    .cluster
                    .get(&n.name)
                    .is_some_and(|m| m.state() == State::Running)
            })
            .collect();
        if live.is_empty() {
            tracker
                .borrow_mut()
                .fail("choosing a node", "no node is running");
            break;
        }
        let (first, other) = {
            let mut rng = rand::rng();
            let first = live[rng.random_range(0..live.len())];
            let others: Vec<&&FuzzNode> = live.iter().filter(|n| n.name != first.name).collect();
            let other = if others.is_empty() {
                first
            } else {
                *others[rng.random_range(0..others.len())]
            };
            (first, other)
        };
        let mut pattern = vars.clone();
        pattern.set("random_node", json!(first.name));
        pattern.set("random_other_node", json!(other.name));
        if let Some(k) = &first.executor {
            pattern.set("random_executor", json!(k));
        }
        pattern.set("_iteration", json!(iteration));
        pattern.set("_pattern_name", json!(op.name));
        for s in &op.steps {
            // Resolved once, so that the call sends what `{{fuzzy_<arg>}}`
            // will name (generators draw anew at each resolution).
            let mut fixed = s.clone();
            if s.ty == "call"
                && let Some(args) = s.cfg.get("args")
            {
                match pattern.resolve(args) {
                    Ok(resolved) => {
                        for (k, v) in resolved.as_object().into_iter().flatten() {
                            pattern.set(format!("fuzzy_{k}"), v.clone());
                            pattern.set(format!("_fuzzy_args_{k}"), v.clone());
                        }
                        fixed.cfg.insert("args".into(), resolved);
                    }
                    Err(e) => {
                        tracker.borrow_mut().fail(&s.label(), &e.to_string());
                        break;
                    }
                }
            }
            match runner.run_step(&fixed, &mut pattern, Some(&tracker)).await {
                Ok(_) => {}
                Err(f) => {
                    // The rest of the operation builds on this step.
                    let on = f.node.map(|n| format!(" on {n}")).unwrap_or_default();
                    tracker.borrow_mut().fail(
                        &format!("step `{}` ({}){on}", f.label, f.ty),
                        &f.error.text(),
                    );
                    break;
                }
            }
        }
        if last_summary.elapsed() >= every {
            last_summary = Instant::now();
            let t = tracker.borrow();
            runner.progress.line(&format!(
                "  fuzzy load {} / {}: {} operations ({:.0}/min), {} checks, {} failed",
                secs(started.elapsed()),
                secs(duration),
                t.ops(),
                t.ops() as f64 * 60.0 / started.elapsed().as_secs_f64().max(0.001),
                t.total(),
                t.failed
            ));
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    let elapsed = started.elapsed();
    // Every node back, then one root hash everywhere.
    tracker.borrow_mut().begin_final();
    for n in &nodes {
        let Some(node) = runner.cluster.get(&n.name) else {
            continue;
        };
        let revived = match node.state() {
            State::Paused => node.resume().await,
            State::Stopped => node.start(runner.wait_timeout).await,
            State::Running => Ok(()),
        };
        if let Err(e) = revived {
            tracker
                .borrow_mut()
                .fail(&format!("bringing `{}` back", n.name), &e.to_string());
        }
    }
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    if names.len() > 1 {
        match runner
            .converge(&names, Some(&ctx), None, &Cfg(Map::new()), settle)
            .await
        {
            Ok(_) => tracker.borrow_mut().pass(),
            Err(e) => tracker.borrow_mut().fail(
                &format!("final convergence of {}", names.join(", ")),
                &e.text(),
            ),
        }
    }
    let t = tracker.into_inner();
    let ops_per_min = t.ops() as f64 * 60.0 / elapsed.as_secs_f64().max(0.001);
    let rate = t.rate();
    report(runner, &t, elapsed, ops_per_min, threshold);
    for (k, v) in [
        ("fuzzy_test_total_patterns", json!(t.ops())),
        ("fuzzy_test_total_assertions", json!(t.total())),
        ("fuzzy_test_assertions_passed", json!(t.passed)),
        ("fuzzy_test_assertions_failed", json!(t.failed)),
        ("fuzzy_test_pass_rate", json!(rate)),
        ("fuzzy_test_ops_per_minute", json!(ops_per_min)),
        ("fuzzy_test_had_exception", json!(false)),
    ] {
        vars.set(k, v);
    }
    let answer = json!({
        "operations": t.ops(),
        "ops_per_minute": ops_per_min,
        "assertions": t.total(),
        "passed": t.passed,
        "failed": t.failed,
        "pass_rate": rate,
        "elapsed_seconds": elapsed.as_secs_f64(),
    });
    if t.total() == 0 {
        return Err(StepError::assertion(
            "no assertion ran: the load checked nothing",
        ));
    }
    if rate < threshold {
        let mut e = StepError::assertion(format!(
            "{} of {} checks failed ({rate:.2}% passed, below {threshold}%)",
            t.failed,
            t.total()
        ));
        e.answer = Some(
            t.misses
                .iter()
                .take(20)
                .map(|m| format!("[{}] {}: {} {}", secs(m.at), m.op, m.what, m.detail))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        return Err(e);
    }
    Ok(answer)
}

fn report(runner: &Runner<'_>, t: &Tracker, elapsed: Duration, ops_per_min: f64, threshold: f64) {
    let p = runner.progress;
    p.line(&format!(
        "  fuzzy load done in {}: {} operations ({ops_per_min:.1}/min); {} checks, {} passed, {} failed: {:.2}% (threshold {threshold}%)",
        secs(elapsed),
        t.ops(),
        t.total(),
        t.passed,
        t.failed,
        t.rate()
    ));
    for (op, (runs, ok, bad)) in &t.per_op {
        if op == FINAL {
            p.line(&format!("    {op}: {ok} checks passed, {bad} failed"));
        } else {
            p.line(&format!(
                "    {op}: {runs} runs, {ok} checks passed, {bad} failed"
            ));
        }
    }
    // Every failed check (a cap keeps a broken run's output readable; the
    // count says how many were left out).
    for m in &t.misses {
        p.line(&format!(
            "    FAILED [{}] {}: {} {}",
            secs(m.at),
            m.op,
            m.what,
            m.detail
        ));
    }
    let left_out = t.failed.saturating_sub(t.misses.len() as u64);
    if left_out > 0 {
        p.line(&format!("    ... and {left_out} more failed checks"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_misses_are_kept_the_rest_counted() {
        let mut t = Tracker::new();
        t.begin("op");
        for i in 0..KEPT_MISSES + 250 {
            t.fail("check", &format!("miss {i}"));
        }
        assert_eq!(t.failed, (KEPT_MISSES + 250) as u64);
        assert_eq!(t.misses.len(), KEPT_MISSES);
        assert_eq!(t.misses[0].detail, "miss 0");
    }
}
