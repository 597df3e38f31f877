//! merobox's migration steps: `cascade_namespace_application`,
//! `get_cascade_status`, `get_migration_status`, `abort_migration`,
//! `resync_context` and the two asserts that poll the statuses. The summaries keep merobox's keys (its
//! workflows' `outputs:` name them); `migration-status`'s is recomputed
//! from the member rows, as merobox does, and a key the node left out stays
//! out rather than turning into 0.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mero_api::upgrade::{ResyncRequest, UpgradeGroupRequest};
use serde_json::{Map, Value, json};

use super::steps::{Cfg, Runner, StepError, data, pause_within, within};
use crate::client::NoBody;

/// merobox's defaults for the asserts.
const ASSERT_TIMEOUT: Duration = Duration::from_secs(30);
const ASSERT_POLL: Duration = Duration::from_secs(2);

/// `get_cascade_status`'s summary of the node's entries: a group counts as
/// completed or failed by its status; an aborted group (ours) counts as
/// failed, since it never completes.
pub(crate) fn cascade_summary(entries: &Value) -> Value {
    let groups = entries.as_array().cloned().unwrap_or_default();
    let status = |e: &Value| {
        e["upgrade"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
    };
    let total = groups.len();
    let completed = groups.iter().filter(|e| status(e) == "completed").count();
    let failed = groups
        .iter()
        .filter(|e| matches!(status(e).as_str(), "failed" | "aborted"))
        .count();
    json!({
        "total": total,
        "completed": completed,
        "failed": failed,
        "pending": total - completed - failed,
        "all_completed": total > 0 && completed == total,
        "groups": groups,
    })
}

/// `get_migration_status`'s summary, merobox's keys.
pub(crate) fn migration_summary(status: &Value) -> Value {
    let rows = status["members"].as_array().cloned().unwrap_or_default();
    let rollup = &status["rollup"];
    let target = status["targetVersion"].as_u64();
    let in_state = |s: &str| rows.iter().filter(|r| r["state"] == s).count() as u64;
    let counter = |key: &str, state: &str| rollup[key].as_u64().unwrap_or(0).max(in_state(state));
    let (migrated, in_progress, unknown, failed) = (
        counter("migrated", "migrated"),
        counter("inProgress", "in_progress"),
        counter("unknown", "unknown"),
        counter("failed", "failed"),
    );
    let all_migrated = rollup["allMigrated"] == true
        && failed == 0
        && in_progress == 0
        && unknown == 0
        && rows.iter().all(|r| r["state"] == "migrated");
    let reports: Vec<&Value> = rows.iter().filter_map(|r| r.get("report")).collect();
    let schema = |r: &Value| r["schemaVersion"].as_u64();
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    for (key, from) in [
        ("target_version", "targetVersion"),
        ("expected_members", "expectedMembers"),
        ("fleet_completed_at", "fleetCompletedAt"),
        ("cohort_pinned_at_hlc", "cohortPinnedAtHlc"),
    ] {
        if let Some(v) = status.get(from) {
            put(key, v.clone());
        }
    }
    put(
        "total",
        json!(rollup["total"].as_u64().unwrap_or(rows.len() as u64)),
    );
    put("migrated", json!(migrated));
    put("in_progress", json!(in_progress));
    put("unknown", json!(unknown));
    put("failed", json!(failed));
    put("all_migrated", json!(all_migrated));
    if let Some(v) = rollup.get("membersPendingSignature") {
        put("members_pending_signature", v.clone());
    }
    put(
        "reported_at_target",
        json!(
            reports
                .iter()
                .filter(|r| target.is_some_and(|t| schema(r).is_some_and(|s| s >= t)))
                .count()
        ),
    );
    put(
        "reported_below_target",
        target.map_or(Value::Null, |t| {
            json!(
                reports
                    .iter()
                    .filter(|r| schema(r).is_some_and(|s| s < t))
                    .count()
            )
        }),
    );
    put(
        "reported_missing",
        json!(rows.iter().filter(|r| r.get("report").is_none()).count()),
    );
    put(
        "min_reported_schema_version",
        reports
            .iter()
            .filter_map(|r| schema(r))
            .min()
            .map_or(Value::Null, |v| json!(v)),
    );
    put(
        "residue_total",
        json!(
            reports
                .iter()
                .filter_map(|r| r["residueAuto"].as_u64())
                .sum::<u64>()
        ),
    );
    let reasons: BTreeSet<&str> = reports
        .iter()
        .filter_map(|r| r["migrationFailed"].as_str())
        .collect();
    put("failure_reasons", json!(reasons));
    put(
        "stuck_members",
        json!(
            rows.iter()
                .filter(|r| r["state"] != "migrated")
                .filter_map(|r| r["peer"].as_str())
                .collect::<Vec<_>>()
        ),
    );
    let members: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            for (key, v) in [("peer", &r["peer"]), ("state", &r["state"])] {
                m.insert(key.into(), v.clone());
            }
            if let Some(rep) = r.get("report") {
                for (key, from) in [
                    ("migration_failed", "migrationFailed"),
                    ("schema_version", "schemaVersion"),
                    ("residue_auto", "residueAuto"),
                    ("synced_up_to_hlc", "syncedUpToHlc"),
                    ("reported_at", "reportedAt"),
                    ("authored_remaining", "authoredRemaining"),
                ] {
                    if let Some(v) = rep.get(from) {
                        m.insert(key.into(), v.clone());
                    }
                }
            }
            Value::Object(m)
        })
        .collect();
    put("members", json!(members));
    Value::Object(out)
}

impl Runner<'_> {
    /// Runs one of the migration steps.
    pub(super) async fn migration_step(&self, ty: &str, cfg: &Cfg) -> Result<Value, StepError> {
        let (_, c) = self.client(cfg, "node")?;
        match ty {
            "cascade_namespace_application" => {
                let ns = cfg.str("namespace_id")?;
                let body = UpgradeGroupRequest {
                    target_application_id: cfg.str("target_application_id")?,
                    cascade: true,
                    force_code_only: false,
                };
                let done = data(
                    c.post::<Value>(&format!("/admin-api/groups/{ns}/upgrade"), &body)
                        .await,
                    "cascading the upgrade",
                )?;
                Ok(json!({"groupId": done["groupId"], "status": done["status"]}))
            }
            "get_cascade_status" | "get_migration_status" => self.status_step(ty, cfg).await,
            "abort_migration" => {
                let ns = cfg.str("namespace_id")?;
                data(
                    c.post::<Value>(
                        &format!("/admin-api/groups/{ns}/migration/abort"),
                        &NoBody {},
                    )
                    .await,
                    "aborting the migration",
                )
            }
            "resync_context" => {
                let ctx = cfg.str("context_id")?;
                let body = ResyncRequest {
                    force: cfg.bool("force", false)?,
                };
                data(
                    c.post::<Value>(&format!("/admin-api/contexts/{ctx}/resync"), &body)
                        .await,
                    "resyncing the context",
                )
            }
            "assert_cascade_complete" | "assert_migration_complete" => {
                self.assert_complete(ty == "assert_cascade_complete", cfg)
                    .await
            }
            other => Err(StepError::new(format!("`{other}` is not a migration step"))),
        }
    }

    /// `get_cascade_status` or `get_migration_status`: the summary.
    async fn status_step(&self, ty: &str, cfg: &Cfg) -> Result<Value, StepError> {
        let (_, c) = self.client(cfg, "node")?;
        match ty {
            "get_cascade_status" => {
                let ns = cfg.str("namespace_id")?;
                let entries = data(
                    c.get::<Value>(&format!("/admin-api/groups/{ns}/cascade-status"))
                        .await,
                    "reading the cascade status",
                )?;
                Ok(cascade_summary(&entries))
            }
            "get_migration_status" => {
                let ns = cfg.str("namespace_id")?;
                let status = data(
                    c.get::<Value>(&format!("/admin-api/groups/{ns}/migration-status"))
                        .await,
                    "reading the migration status",
                )?;
                Ok(migration_summary(&status))
            }
            other => Err(StepError::new(format!("`{other}` is not a status step"))),
        }
    }

    /// Polls the cascade (or migration) status until complete; fails at
    /// once when a group (or member) failed, and on timeout says what is
    /// missing. A request that fails is retried until the deadline.
    async fn assert_complete(&self, cascade: bool, cfg: &Cfg) -> Result<Value, StepError> {
        if cfg.is_bool("timeout_seconds") {
            return Err(StepError::new(
                "`timeout_seconds` must be a number of seconds, not a bool",
            ));
        }
        let timeout = cfg.secs("timeout_seconds")?.unwrap_or(ASSERT_TIMEOUT);
        if timeout.is_zero() {
            return Err(StepError::new("`timeout_seconds` must be above 0"));
        }
        let poll = cfg.secs("poll_interval")?.unwrap_or(ASSERT_POLL);
        let ty = if cascade {
            "get_cascade_status"
        } else {
            "get_migration_status"
        };
        let (done_key, what) = if cascade {
            ("all_completed", "a group's upgrade")
        } else {
            ("all_migrated", "a member's migration")
        };
        let deadline = Instant::now() + timeout;
        // The last summary read, kept when a later poll fails.
        let mut last: Option<Value> = None;
        let mut error = String::from("no answer yet");
        loop {
            let answer = within(deadline, async {
                self.status_step(ty, cfg).await.map_err(|e| e.text())
            })
            .await;
            match answer {
                Ok(summary) => {
                    if summary[done_key] == true {
                        return Ok(summary);
                    }
                    if summary["failed"].as_u64().is_some_and(|f| f > 0) {
                        return Err(StepError::new(format!("{what} failed: {summary}")));
                    }
                    last = Some(summary);
                }
                Err(e) => error = e,
            }
            if Instant::now() >= deadline {
                let detail = match &last {
                    Some(s) if cascade => format!(
                        "{} of {} groups completed ({} pending)",
                        s["completed"], s["total"], s["pending"]
                    ),
                    Some(s) => format!(
                        "not all migrated: reported_below_target={}, reported_missing={}, stuck={}",
                        s["reported_below_target"], s["reported_missing"], s["stuck_members"]
                    ),
                    None => format!("the status could not be read: {error}"),
                };
                return Err(StepError::new(format!(
                    "not complete after {}s: {detail}",
                    timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(pause_within(poll, deadline)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cascade_summary_counts_groups_by_status() {
        let entries = json!([
            {"groupId": "a", "upgrade": {"status": "completed"}},
            {"groupId": "b", "upgrade": {"status": "in_progress"}},
            {"groupId": "c", "upgrade": {"status": "aborted"}},
        ]);
        let s = cascade_summary(&entries);
        assert_eq!(s["total"], 3);
        assert_eq!(s["completed"], 1);
        assert_eq!(s["failed"], 1);
        assert_eq!(s["pending"], 1);
        assert_eq!(s["all_completed"], false);
        assert_eq!(cascade_summary(&json!([]))["all_completed"], false);
    }

    #[test]
    fn the_migration_summary_recomputes_from_rows_and_keeps_absent_keys_absent() {
        let status = json!({
            "targetVersion": 2, "expectedMembers": 3, "fleetCompletedAt": null,
            "members": [
                {"peer": "p1", "state": "migrated",
                 "report": {"schemaVersion": 2, "residueAuto": 0, "reportedAt": 5,
                            "authoredRemaining": 0, "syncedUpToHlc": 9}},
                {"peer": "p2", "state": "failed",
                 "report": {"schemaVersion": 1, "residueAuto": 2, "reportedAt": 5,
                            "authoredRemaining": 1, "migrationFailed": "apply_failed"}},
                {"peer": "p3", "state": "unknown"}
            ],
            // A rollup that undercounts: the rows win.
            "rollup": {"migrated": 1, "inProgress": 0, "unknown": 0, "failed": 0,
                       "total": 3, "allMigrated": true, "membersPendingSignature": 1}
        });
        let s = migration_summary(&status);
        assert_eq!(s["failed"], 1);
        assert_eq!(s["unknown"], 1);
        assert_eq!(s["all_migrated"], false);
        assert_eq!(s["reported_at_target"], 1);
        assert_eq!(s["reported_below_target"], 1);
        assert_eq!(s["reported_missing"], 1);
        assert_eq!(s["min_reported_schema_version"], 1);
        assert_eq!(s["residue_total"], 2);
        assert_eq!(s["failure_reasons"], json!(["apply_failed"]));
        assert_eq!(s["stuck_members"], json!(["p2", "p3"]));
        assert!(s.get("cohort_pinned_at_hlc").is_none());
        assert_eq!(s["members"][2], json!({"peer": "p3", "state": "unknown"}));
        assert_eq!(s["members"][0]["synced_up_to_hlc"], 9);
        assert!(s["members"][0].get("migration_failed").is_none());
        // Without a target, "below target" is not a number.
        let s = migration_summary(&json!({"members": [], "rollup": {}}));
        assert!(s["reported_below_target"].is_null());
    }
}
