//! Running steps: placeholders resolved, the step carried out against the
//! nodes through meroctl's [`Client`], `expected_failure` / `expected_error`
//! judged, `outputs` captured. One function per step type; the answer each
//! returns is what its `outputs` capture from (the node's `data`, or for a
//! call the JSON-RPC response, as merobox's).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use mero_api::jsonrpc::{ExecuteParams, Request, Response};
use mero_api::upgrade::UpgradeGroupRequest;
use mero_api::{
    AddMember, AddMembersRequest, Capabilities, CreateContextRequest, CreateGroupRequest,
    CreateNamespaceRequest, InstallApplicationRequest, InstallDevApplicationRequest, InviteRequest,
    JoinNamespaceRequest, RemoveMembersRequest, SetRoleRequest, SetVisibilityRequest,
};
use regex::RegexBuilder;
use serde_json::{Map, Value, json};

use super::expr;
use super::fuzzy::Tracker;
use super::nodes::{Cluster, ManagedNode, State};
use super::report::Progress;
use super::spec::{self, Nested, Step};
use super::vars::{self, Vars, text_of};
use crate::client::{Client, ClientError, NoBody};

/// Keys resolved by the step itself, not up front: statements are read
/// with their placeholders (to keep their types), outputs name fields.
const UNRESOLVED: &[&str] = &[
    "statements",
    // A script's command line gets its values shell-quoted (see `script`).
    "script",
    "outputs",
    "name",
    "description",
    "retry_for",
    "retry_interval",
];

/// A step that failed.
#[derive(Debug, Clone)]
pub(crate) struct StepError {
    pub(crate) message: String,
    /// What the node (or the script) answered.
    pub(crate) answer: Option<String>,
    /// An assertion that missed: `expected_failure` cannot excuse it.
    pub(crate) assertion: bool,
    /// merobox's error fields (`error_type`, `error_code`, `error_message`,
    /// `error`), for the `outputs` of a step that failed as expected.
    pub(crate) fields: Option<Value>,
}

impl StepError {
    pub(crate) fn new(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            answer: None,
            assertion: false,
            fields: None,
        }
    }

    fn answered(message: impl Into<String>, answer: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            answer: Some(answer.into()),
            assertion: false,
            fields: None,
        }
    }

    pub(crate) fn assertion(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            answer: None,
            assertion: true,
            fields: None,
        }
    }

    /// What `expected_error` is matched against: the node's answer only
    /// (its error type, exact kind and message), never the runner's own
    /// words around it, which name the method or request and would match
    /// any failure. Without an answer (the step failed before any node
    /// answered), the runner's message.
    pub(crate) fn judged(&self) -> String {
        if let Some(f) = &self.fields {
            let text = |v: &Value| match v {
                Value::Null => None,
                v => Some(text_of(v)),
            };
            // `message (type, kind, HTTP code)`, as meroctl prints it.
            let kinds: Vec<String> = [
                f.get("error_type").and_then(text),
                f.get("error").and_then(|e| e.get("kind")).and_then(text),
                f.get("error_code")
                    .and_then(text)
                    .map(|c| format!("HTTP {c}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            let message = f.get("error_message").and_then(text).unwrap_or_default();
            return format!("{message} ({})", kinds.join(", "));
        }
        self.answer.clone().unwrap_or_else(|| self.message.clone())
    }

    /// Message and answer, as reports show them.
    pub(crate) fn text(&self) -> String {
        match &self.answer {
            Some(a) => format!("{}: {a}", self.message),
            None => self.message.clone(),
        }
    }
}

/// A request that failed: the node's answer is the error's text.
fn request(what: &str, e: ClientError) -> StepError {
    let mut err = StepError::answered(format!("{what} failed"), e.to_string());
    if let ClientError::Api {
        status,
        kind,
        message,
    } = &e
    {
        err.fields = Some(json!({
            "error_type": kind,
            "error_code": status.as_u16(),
            "error_message": message,
            "error": {"type": kind, "message": message},
        }));
    }
    err
}

/// A step's failure as the run reports it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) label: String,
    pub(crate) ty: &'static str,
    pub(crate) line: usize,
    pub(crate) node: Option<String>,
    pub(crate) error: StepError,
    /// The step's keys with placeholders resolved.
    pub(crate) inputs: Option<Value>,
}

/// How a step that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passed {
    Ok,
    AsExpected,
}

/// Carries steps out.
pub(crate) struct Runner<'a> {
    pub(crate) cluster: &'a Cluster,
    /// The workflow file's directory: relative paths are looked up there
    /// first, then in the working directory.
    pub(crate) base_dir: PathBuf,
    pub(crate) wait_timeout: Duration,
    pub(crate) progress: &'a Progress,
}

/// A node's client, or one of a step's own.
pub(super) enum Conn<'a> {
    Shared(&'a Client),
    Own(Client),
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        match self {
            Conn::Shared(c) => c,
            Conn::Own(c) => c,
        }
    }
}

/// A step's resolved keys.
pub(crate) struct Cfg(pub(crate) Map<String, Value>);

impl Cfg {
    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    /// Whether `k` is given as true or false (where a number is wanted).
    pub(crate) fn is_bool(&self, k: &str) -> bool {
        matches!(self.get(k), Some(Value::Bool(_)))
    }

    pub(crate) fn str(&self, k: &str) -> Result<String, StepError> {
        self.opt_str(k)
            .ok_or_else(|| StepError::new(format!("`{k}` is required (a string)")))
    }

    pub(crate) fn opt_str(&self, k: &str) -> Option<String> {
        match self.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, k: &str, default: bool) -> Result<bool, StepError> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(other) => Err(StepError::new(format!(
                "`{k}` must be true or false, not {other}"
            ))),
        }
    }

    pub(crate) fn num(&self, k: &str) -> Result<Option<f64>, StepError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| StepError::new(format!("`{k}` must be a number, not `{s}`"))),
            Some(other) => Err(StepError::new(format!(
                "`{k}` must be a number, not {other}"
            ))),
        }
    }

    /// A duration in seconds.
    pub(crate) fn secs(&self, k: &str) -> Result<Option<Duration>, StepError> {
        match self.num(k)? {
            None => Ok(None),
            Some(s) if let Ok(d) = Duration::try_from_secs_f64(s) => Ok(Some(d)),
            Some(s) => Err(StepError::new(format!(
                "`{k}` must be a positive number of seconds, not {s}"
            ))),
        }
    }

    /// `node` / `nodes` as a list of names.
    pub(crate) fn node_list(&self, k: &str) -> Result<Vec<String>, StepError> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| StepError::new(format!("`{k}` lists node names, not {i}")))
                })
                .collect(),
            Some(other) => Err(StepError::new(format!(
                "`{k}` must name nodes, not {other}"
            ))),
        }
    }

    /// The target nodes of a lifecycle step (`node` or `nodes`, or
    /// merobox's `container`).
    fn targets(&self) -> Result<Vec<String>, StepError> {
        let mut all = self.node_list("nodes")?;
        all.extend(self.node_list("node")?);
        all.extend(self.node_list("container")?);
        Ok(all)
    }
}

/// The node a step names (for the summary).
pub(crate) fn node_of(step: &Step) -> Option<String> {
    ["node", "context_node", "container"]
        .iter()
        .find_map(|k| step.cfg.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

impl<'a> Runner<'a> {
    /// Runs `steps` in order; the first failure stops them.
    pub(crate) fn run_steps<'s>(
        &'s self,
        steps: &'s [Step],
        vars: &'s mut Vars,
        tracker: Option<&'s RefCell<Tracker>>,
    ) -> LocalBoxFuture<'s, Result<(), Failure>> {
        async move {
            for step in steps {
                self.run_step(step, vars, tracker).await?;
            }
            Ok(())
        }
        .boxed_local()
    }

    /// Runs one step; with `retry_for: SECONDS` (this runner's addition to
    /// merobox's keys) again until it passes or the time is up, so that a
    /// workflow waits for a condition by polling, not by sleeping.
    pub(crate) fn run_step<'s>(
        &'s self,
        step: &'s Step,
        vars: &'s mut Vars,
        tracker: Option<&'s RefCell<Tracker>>,
    ) -> LocalBoxFuture<'s, Result<Passed, Failure>> {
        async move {
            // Resolved (`{{x}}`) and read as every duration is: a string
            // such as "60" (from `${RETRY:-60}`) retries too.
            let retry = |k: &str| -> Result<Option<Duration>, StepError> {
                let Some(raw) = step.cfg.get(k).filter(|v| !v.is_null()) else {
                    return Ok(None);
                };
                let v = vars
                    .resolve(raw)
                    .map_err(|e| StepError::new(format!("`{k}`: {e}")))?;
                Cfg(Map::from_iter([(k.to_string(), v)])).secs(k)
            };
            let (limit, interval) = match (retry("retry_for"), retry("retry_interval")) {
                (Ok(l), Ok(i)) => (l, i),
                (Err(error), _) | (_, Err(error)) => {
                    return Err(Failure {
                        label: display_label(step, vars),
                        ty: step.ty,
                        line: step.line,
                        node: node_of(step),
                        error,
                        inputs: None,
                    });
                }
            };
            let Some(limit) = limit.filter(|l| !l.is_zero()) else {
                return self.attempt(step, vars, tracker).await;
            };
            let interval = interval.unwrap_or(Duration::from_millis(200));
            let started = Instant::now();
            loop {
                match self.attempt(step, vars, tracker).await {
                    Err(mut f) if started.elapsed() >= limit => {
                        f.error.message = format!(
                            "still failing after {}: {}",
                            super::report::secs(limit),
                            f.error.message
                        );
                        return Err(f);
                    }
                    Err(_) => tokio::time::sleep(interval).await,
                    done => return done,
                }
            }
        }
        .boxed_local()
    }

    /// Runs one step once: resolve, carry out, judge, capture.
    fn attempt<'s>(
        &'s self,
        step: &'s Step,
        vars: &'s mut Vars,
        tracker: Option<&'s RefCell<Tracker>>,
    ) -> LocalBoxFuture<'s, Result<Passed, Failure>> {
        async move {
            let label = display_label(step, vars);
            self.progress.set(format!("{label} ({})", step.ty));
            let fail = |error: StepError, inputs: Option<Value>, node: Option<String>| Failure {
                label: label.clone(),
                ty: step.ty,
                line: step.line,
                node,
                error,
                inputs,
            };
            let cfg = match resolve_cfg(&step.cfg, vars) {
                Ok(c) => c,
                Err(e) => return Err(fail(e, None, node_of(step))),
            };
            let inputs = Value::Object(cfg.0.clone());
            let node = ["node", "context_node", "container"]
                .iter()
                .find_map(|k| cfg.opt_str(k));
            let expected = cfg.bool("expected_failure", false).unwrap_or(false);
            let expected_error = cfg.opt_str("expected_error");
            let outcome = self.execute(step, &cfg, vars, tracker).await;
            let outputs = step.cfg.get("outputs").and_then(Value::as_object);
            match outcome {
                Ok(answer) => {
                    if expected && (step.ty != "call" || expected_error.is_some()) {
                        let mut e = StepError::new("expected a failure, but the step succeeded");
                        e.answer = Some(answer.to_string());
                        return Err(fail(e, Some(inputs), node));
                    }
                    if expected {
                        // merobox lets a call marked expected_failure pass
                        // when it succeeds (a "may not have propagated" probe);
                        // with `expected_error` it must fail.
                        self.progress.line(&format!(
                            "  ! `{label}`: expected a failure but the call succeeded (no `expected_error`, so this passes)"
                        ));
                    }
                    auto_exports(step.ty, &answer, node.as_deref(), vars);
                    // A call that was expected to fail and did not exports
                    // merobox's error fields as null.
                    let answer = match (expected, answer) {
                        (true, Value::Object(mut m)) => {
                            for k in ["error", "error_code", "error_type", "error_message"] {
                                m.insert(k.into(), Value::Null);
                            }
                            Value::Object(m)
                        }
                        (_, answer) => answer,
                    };
                    if let Some(outputs) = outputs {
                        vars::capture(outputs, &answer, node.as_deref(), vars).map_err(|e| {
                            fail(StepError::answered(e.to_string(), answer.to_string()), Some(inputs.clone()), node.clone())
                        })?;
                    }
                    Ok(Passed::Ok)
                }
                Err(e) if expected && !e.assertion => {
                    let text = e.text();
                    if let Some(want) = &expected_error
                        && !e.judged().contains(want.as_str())
                    {
                        let mut e = e;
                        e.message = format!(
                            "failed, but not with the expected error `{want}` (the answer was `{}`): {}",
                            e.judged(),
                            e.message
                        );
                        return Err(fail(e, Some(inputs), node));
                    }
                    // The error's fields, for outputs that capture them; a
                    // capture of the call's own fields has nothing to bind.
                    let mut error_answer = json!({
                        "success": false,
                        "error": text,
                        "error_message": e.answer.clone().unwrap_or_else(|| e.message.clone()),
                        "error_type": Value::Null,
                        "error_code": Value::Null,
                    });
                    if let (Some(Value::Object(fields)), Value::Object(out)) =
                        (&e.fields, &mut error_answer)
                    {
                        out.extend(fields.clone());
                    }
                    if let Some(outputs) = outputs {
                        for (var, spec) in outputs {
                            let one: Map<String, Value> = [(var.clone(), spec.clone())].into_iter().collect();
                            let _ = vars::capture(&one, &error_answer, node.as_deref(), vars);
                        }
                    }
                    Ok(Passed::AsExpected)
                }
                Err(e) => Err(fail(e, Some(inputs), node)),
            }
        }
        .boxed_local()
    }

    fn node(&self, name: &str) -> Result<&ManagedNode, StepError> {
        self.cluster.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.cluster.all().iter().map(|n| n.name.as_str()).collect();
            StepError::new(format!(
                "no node is named `{name}`; the nodes are: {}",
                names.join(", ")
            ))
        })
    }

    /// The client a step uses: the node's owner's (shared, so that its
    /// connections are reused), or one with the step's `token`.
    pub(super) fn client(&self, cfg: &Cfg, key: &str) -> Result<(String, Conn<'_>), StepError> {
        let name = cfg.str(key)?;
        let node = self.node(&name)?;
        let conn = match cfg.opt_str("token") {
            Some(t) => Conn::Own(
                node.client_with(Some(t))
                    .map_err(|e| StepError::new(e.to_string()))?,
            ),
            None => Conn::Shared(node.client()),
        };
        Ok((name, conn))
    }

    async fn execute(
        &self,
        step: &Step,
        cfg: &Cfg,
        vars: &mut Vars,
        tracker: Option<&RefCell<Tracker>>,
    ) -> Result<Value, StepError> {
        // Steps that wait on their own terms; the rest get the workflow's
        // timeout, so that a paused node cannot hang the run.
        let waits = matches!(
            step.ty,
            "wait"
                | "wait_for_sync"
                | "repeat"
                | "parallel"
                | "fuzzy_test"
                | "script"
                | "start_node"
                | "restart_node"
                | "restart_container"
                | "create_mesh"
        );
        if waits {
            return self.dispatch(step, cfg, vars, tracker).await;
        }
        let limit = cfg.secs("timeout")?.unwrap_or(self.wait_timeout);
        match tokio::time::timeout(limit, self.dispatch(step, cfg, vars, tracker)).await {
            Ok(r) => r,
            Err(_) => Err(StepError::new(format!(
                "no answer within {} (is the node paused or overloaded?)",
                super::report::secs(limit)
            ))),
        }
    }

    async fn dispatch(
        &self,
        step: &Step,
        cfg: &Cfg,
        vars: &mut Vars,
        tracker: Option<&RefCell<Tracker>>,
    ) -> Result<Value, StepError> {
        match step.ty {
            "install_application" => self.install(cfg, vars).await,
            "uninstall_application" => {
                let (_, c) = self.client(cfg, "node")?;
                let id = cfg.str("application_id")?;
                data(
                    c.delete::<Value>(&format!("/admin-api/applications/{id}"))
                        .await,
                    "uninstalling",
                )
            }
            "get_application" => {
                let (_, c) = self.client(cfg, "node")?;
                let id = cfg.str("application_id")?;
                data(
                    c.get::<Value>(&format!("/admin-api/applications/{id}"))
                        .await,
                    "reading the application",
                )
            }
            "list_application_versions" => {
                let (_, c) = self.client(cfg, "node")?;
                let id = cfg.str("application_id")?;
                let versions = data(
                    c.get::<Value>(&format!("/admin-api/applications/{id}/versions"))
                        .await,
                    "listing versions",
                )?;
                let count = versions.as_array().map_or(0, Vec::len);
                Ok(json!({"count": count, "versions": versions}))
            }
            "create_namespace" => {
                let (_, c) = self.client(cfg, "node")?;
                let body = CreateNamespaceRequest {
                    application_id: cfg.str("application_id")?,
                    name: None,
                    app_key: cfg.opt_str("app_key"),
                    initialization_params: Some(params(cfg)?),
                };
                data(
                    c.post::<Value>("/admin-api/namespaces", &body).await,
                    "creating the namespace",
                )
            }
            "create_namespace_invitation" => {
                let (_, c) = self.client(cfg, "node")?;
                let ns = namespace(cfg)?;
                let body = InviteRequest {
                    expiration_timestamp: cfg.num("expiration_timestamp")?.map(|n| n as u64),
                    recursive: Some(cfg.bool("recursive", false)?),
                    role: cfg.opt_str("role"),
                    chain_accounts: Vec::new(),
                    min_token_balances: Vec::new(),
                };
                data(
                    c.post::<Value>(&format!("/admin-api/namespaces/{ns}/invite"), &body)
                        .await,
                    "creating the invitation",
                )
            }
            "join_namespace" => {
                let (_, c) = self.client(cfg, "node")?;
                let ns = namespace(cfg)?;
                let invitation = match cfg.get("invitation") {
                    Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                        StepError::new(format!(
                            "`invitation` is not the JSON an invitation step captured: {e}"
                        ))
                    })?,
                    Some(v) => v.clone(),
                    None => return Err(StepError::new("`invitation` is required")),
                };
                data(
                    c.post::<Value>(
                        &format!("/admin-api/namespaces/{ns}/join"),
                        &JoinNamespaceRequest {
                            invitation,
                            chain_proofs: Vec::new(),
                        },
                    )
                    .await,
                    "joining the namespace",
                )
            }
            "create_group_in_namespace" => {
                let (_, c) = self.client(cfg, "node")?;
                let ns = cfg.str("namespace_id")?;
                // Upstream's default birth visibility is restricted.
                let body = CreateGroupRequest {
                    name: cfg.opt_str("group_name"),
                    parent_group_id: cfg.opt_str("parent_group_id"),
                    subgroup_visibility: Some(
                        cfg.opt_str("visibility")
                            .map_or_else(|| "restricted".into(), |v| v.to_ascii_lowercase()),
                    ),
                };
                data(
                    c.post::<Value>(&format!("/admin-api/namespaces/{ns}/groups"), &body)
                        .await,
                    "creating the group",
                )
            }
            "list_namespaces" => {
                let (_, c) = self.client(cfg, "node")?;
                data(
                    c.get::<Value>("/admin-api/namespaces").await,
                    "listing namespaces",
                )
            }
            "list_namespace_groups" => {
                let (_, c) = self.client(cfg, "node")?;
                let ns = cfg.str("namespace_id")?;
                data(
                    c.get::<Value>(&format!("/admin-api/namespaces/{ns}/groups"))
                        .await,
                    "listing groups",
                )
            }
            "leave_namespace" => {
                let (_, c) = self.client(cfg, "node")?;
                let ns = cfg.str("namespace_id")?;
                data(
                    c.post::<Value>(&format!("/admin-api/namespaces/{ns}/leave"), &NoBody {})
                        .await,
                    "leaving the namespace",
                )
            }
            "delete_namespace" => {
                let (_, c) = self.client(cfg, "node")?;
                let ns = cfg.str("namespace_id")?;
                data(
                    c.delete::<Value>(&format!("/admin-api/namespaces/{ns}"))
                        .await,
                    "deleting the namespace",
                )
            }
            "set_subgroup_visibility" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                let body = SetVisibilityRequest {
                    subgroup_visibility: cfg.str("visibility")?.to_ascii_lowercase(),
                };
                c.put::<Value>(
                    &format!("/admin-api/groups/{group}/settings/subgroup-visibility"),
                    &body,
                )
                .await
                .map_err(|e| request("setting the visibility", e))?;
                Ok(json!({"groupId": group, "subgroupVisibility": body.subgroup_visibility}))
            }
            "join_subgroup_inheritance" => self.join_inherited(cfg).await,
            "list_group_members" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                data(
                    c.get::<Value>(&format!("/admin-api/groups/{group}/members"))
                        .await,
                    "listing members",
                )
            }
            "list_group_contexts" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                data(
                    c.get::<Value>(&format!("/admin-api/groups/{group}/contexts"))
                        .await,
                    "listing contexts",
                )
            }
            "create_context" => {
                let (_, c) = self.client(cfg, "node")?;
                let body = CreateContextRequest {
                    application_id: cfg.str("application_id")?,
                    group_id: cfg.str("group_id")?,
                    initialization_params: params(cfg)?,
                    context_seed: None,
                    identity_secret: None,
                    name: cfg.opt_str("service_name"),
                };
                data(
                    c.post::<Value>("/admin-api/contexts", &body).await,
                    "creating the context",
                )
            }
            "join_context" => {
                let (_, c) = self.client(cfg, "node")?;
                let ctx = cfg.str("context_id")?;
                data(
                    c.post::<Value>(&format!("/admin-api/contexts/{ctx}/join"), &NoBody {})
                        .await,
                    "joining the context",
                )
            }
            "delete_context" => {
                let (_, c) = self.client(cfg, "node")?;
                let ctx = cfg.str("context_id")?;
                data(
                    c.delete::<Value>(&format!("/admin-api/contexts/{ctx}"))
                        .await,
                    "deleting the context",
                )
            }
            "create_identity" | "node_identity" => {
                let node = self.node(&cfg.str("node")?)?;
                identity(node)
            }
            "create_mesh" => self.mesh(cfg, vars).await,
            "call" => self.call(cfg).await,
            "wait" => {
                let d = cfg.secs("seconds")?.unwrap_or_default();
                if let Some(m) = cfg.opt_str("message") {
                    self.progress.set(m);
                }
                tokio::time::sleep(d).await;
                Ok(json!({"waited_seconds": d.as_secs_f64()}))
            }
            "wait_for_sync" => self.wait_for_sync(cfg, tracker).await,
            "repeat" => self.repeat(step, cfg, vars, tracker).await,
            "parallel" => self.parallel(step, cfg, vars, tracker).await,
            "script" => self.script(cfg, vars).await,
            "assert" | "json_assert" => assert(step, cfg, vars, tracker),
            "assert_api_response" => self.api_response(cfg).await,
            "assert_log_present" | "assert_log_absent" => self.logs(step.ty, cfg),
            "add_group_members" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                let members =
                    cfg.get("members")
                        .and_then(Value::as_array)
                        .ok_or_else(|| StepError::new("`members` must be a list"))?
                        .iter()
                        .map(|m| match m {
                            Value::String(s) => Ok(AddMember {
                                identity: s.clone(),
                                role: None,
                            }),
                            Value::Object(o) => Ok(AddMember {
                                identity: o.get("identity").map(text_of).ok_or_else(|| {
                                    StepError::new("each member needs an `identity`")
                                })?,
                                role: o.get("role").map(text_of),
                            }),
                            other => Err(StepError::new(format!(
                                "a member is `{{identity, role}}`, not {other}"
                            ))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                c.post::<Value>(
                    &format!("/admin-api/groups/{group}/members"),
                    &AddMembersRequest { members },
                )
                .await
                .map_err(|e| request("adding members", e))?;
                Ok(json!({"groupId": group}))
            }
            "remove_group_members" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                let members: Vec<String> = cfg
                    .get("members")
                    .and_then(Value::as_array)
                    .ok_or_else(|| StepError::new("`members` must be a list"))?
                    .iter()
                    .map(text_of)
                    .collect();
                c.post::<Value>(
                    &format!("/admin-api/groups/{group}/members/remove"),
                    &RemoveMembersRequest {
                        members: members.clone(),
                    },
                )
                .await
                .map_err(|e| request("removing members", e))?;
                Ok(json!({"groupId": group, "members": members}))
            }
            "update_member_role" => {
                let (_, c) = self.client(cfg, "node")?;
                let (group, member) = (cfg.str("group_id")?, cfg.str("member_id")?);
                let written = cfg.str("role")?;
                let role = spec::role(&written).ok_or_else(|| {
                    StepError::new(format!(
                        "unknown role `{written}`: Admin, Member or ReadOnly"
                    ))
                })?;
                c.put::<Value>(
                    &format!("/admin-api/groups/{group}/members/{member}/role"),
                    &SetRoleRequest { role: role.into() },
                )
                .await
                .map_err(|e| request("setting the role", e))?;
                Ok(json!({"groupId": group, "memberId": member, "role": role}))
            }
            "set_member_capabilities" => {
                let (_, c) = self.client(cfg, "node")?;
                let (group, member) = (cfg.str("group_id")?, cfg.str("member_id")?);
                let caps = cfg
                    .num("capabilities")?
                    .filter(|n| n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(n))
                    .ok_or_else(|| {
                        StepError::new("`capabilities` must be a bitmask (an integer)")
                    })? as u32;
                c.put::<Value>(
                    &format!("/admin-api/groups/{group}/members/{member}/capabilities"),
                    &Capabilities { capabilities: caps },
                )
                .await
                .map_err(|e| request("setting capabilities", e))?;
                Ok(json!({"groupId": group, "memberId": member, "capabilities": caps}))
            }
            "get_member_capabilities" => {
                let (_, c) = self.client(cfg, "node")?;
                let (group, member) = (cfg.str("group_id")?, cfg.str("member_id")?);
                data(
                    c.get::<Value>(&format!(
                        "/admin-api/groups/{group}/members/{member}/capabilities"
                    ))
                    .await,
                    "reading capabilities",
                )
            }
            "stop_node" | "kill_node" | "pause_node" | "resume_node" | "pause_container"
            | "unpause_container" | "start_node" | "restart_node" | "restart_container" => {
                self.lifecycle(step.ty, cfg).await
            }
            "upgrade_group" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                let body = UpgradeGroupRequest {
                    target_application_id: cfg.str("target_application_id")?,
                    cascade: cfg.bool("cascade", false)?,
                    force_code_only: cfg.bool("force_code_only", false)?,
                };
                data(
                    c.post::<Value>(&format!("/admin-api/groups/{group}/upgrade"), &body)
                        .await,
                    "upgrading the group",
                )
            }
            "get_group_upgrade_status" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                data(
                    c.get::<Value>(&format!("/admin-api/groups/{group}/upgrade/status"))
                        .await,
                    "reading the upgrade status",
                )
            }
            "retry_group_upgrade" => {
                let (_, c) = self.client(cfg, "node")?;
                let group = cfg.str("group_id")?;
                data(
                    c.post::<Value>(
                        &format!("/admin-api/groups/{group}/upgrade/retry"),
                        &NoBody {},
                    )
                    .await,
                    "retrying the upgrade",
                )
            }
            "fuzzy_test" => super::fuzzy::run(self, step, cfg, vars).await,
            "cascade_namespace_application"
            | "get_cascade_status"
            | "get_migration_status"
            | "abort_migration"
            | "assert_cascade_complete"
            | "assert_migration_complete"
            | "resync_context" => self.migration_step(step.ty, cfg).await,
            other => Err(StepError::new(format!(
                "step type `{other}` is not supported yet"
            ))),
        }
    }

    async fn install(&self, cfg: &Cfg, vars: &mut Vars) -> Result<Value, StepError> {
        let (name, c) = self.client(cfg, "node")?;
        if let Some(url) = cfg.opt_str("url") {
            let body = InstallApplicationRequest {
                url,
                hash: None,
                metadata: cfg.opt_str("metadata").unwrap_or_default().into_bytes(),
                package: cfg.opt_str("package"),
                version: cfg.opt_str("version"),
            };
            return data(
                c.post::<Value>("/admin-api/install-application", &body)
                    .await,
                "installing",
            );
        }
        let path = self.path(&cfg.str("path")?)?;
        vars.set(
            format!("app_path_{name}"),
            Value::String(path.display().to_string()),
        );
        if cfg.bool("dev", false)? {
            // The node reads the file itself, as upstream's dev install.
            let body = InstallDevApplicationRequest {
                path: path.display().to_string(),
                metadata: cfg.opt_str("metadata").unwrap_or_default().into_bytes(),
                package: cfg.opt_str("package"),
                version: cfg.opt_str("version"),
            };
            return data(
                c.post::<Value>("/admin-api/install-dev-application", &body)
                    .await,
                "installing",
            );
        }
        upload(&c, &path, cfg).await
    }

    /// A path as written: absolute, or relative to the workflow's
    /// directory, else to the working directory.
    fn path(&self, written: &str) -> Result<PathBuf, StepError> {
        let p = Path::new(written);
        let candidates = if p.is_absolute() {
            vec![p.to_path_buf()]
        } else {
            vec![self.base_dir.join(p), p.to_path_buf()]
        };
        candidates
            .iter()
            .find(|c| c.exists())
            .map(|c| std::path::absolute(c).unwrap_or_else(|_| c.clone()))
            .ok_or_else(|| {
                StepError::new(format!(
                    "no file `{written}` (looked in {} and the working directory)",
                    self.base_dir.display()
                ))
            })
    }

    async fn join_inherited(&self, cfg: &Cfg) -> Result<Value, StepError> {
        let (name, c) = self.client(cfg, "node")?;
        let group = cfg.str("group_id")?;
        // An open subgroup's members here are its parent's members holding
        // join-open-subgroups, implicitly: there is nothing to join, only
        // to check that this node is one.
        let me = identity(self.node(&name)?)?;
        let account = me["accountId"].as_str().unwrap_or_default().to_string();
        let listed = c
            .get::<Value>(&format!("/admin-api/groups/{group}/members"))
            .await
            .map_err(|e| request("listing the group's members", e))?;
        let member = listed["members"].as_array().is_some_and(|m| {
            m.iter()
                .any(|x| x["identity"].as_str() == Some(account.as_str()))
        });
        if !member {
            return Err(StepError::answered(
                format!(
                    "node `{name}` is not a member of group {group} (not an open subgroup, or no join-open-subgroups capability)"
                ),
                listed.to_string(),
            ));
        }
        Ok(json!({"groupId": group, "memberAccount": account, "memberIdentity": me["publicKey"]}))
    }

    /// merobox's create_mesh: a namespace with its context on
    /// `context_node`, and every other node invited, joined, in the context.
    async fn mesh(&self, cfg: &Cfg, vars: &mut Vars) -> Result<Value, StepError> {
        let (owner, c) = self.client(cfg, "context_node")?;
        // Several requests: each bounded by the step's timeout.
        let limit = cfg.secs("timeout")?.unwrap_or(self.wait_timeout);
        let body = CreateNamespaceRequest {
            application_id: cfg.str("application_id")?,
            name: None,
            app_key: None,
            initialization_params: Some(params(cfg)?),
        };
        let made = data(
            bounded(limit, c.post::<Value>("/admin-api/namespaces", &body)).await,
            "creating the namespace",
        )?;
        let ns = made["namespaceId"].as_str().unwrap_or_default().to_string();
        let ctx = made["contextId"].as_str().unwrap_or_default().to_string();
        let me = identity(self.node(&owner)?)?;
        // merobox's create_mesh sets these whatever `outputs` asks.
        vars.set("namespace_id", json!(ns));
        vars.set("group_id", json!(ns));
        vars.set("context_id", json!(ctx));
        vars.set("member_public_key", me["publicKey"].clone());
        for name in cfg.node_list("nodes")? {
            if name == owner {
                continue;
            }
            let invited = data(
                bounded(
                    limit,
                    c.post::<Value>(
                        &format!("/admin-api/namespaces/{ns}/invite"),
                        &InviteRequest::default(),
                    ),
                )
                .await,
                "inviting",
            )?;
            let node = self.node(&name)?;
            let joined = data(
                bounded(
                    limit,
                    node.client().post::<Value>(
                        &format!("/admin-api/namespaces/{ns}/join"),
                        &JoinNamespaceRequest {
                            invitation: invited["invitation"].clone(),
                            chain_proofs: Vec::new(),
                        },
                    ),
                )
                .await,
                &format!("joining the namespace on `{name}`"),
            )?;
            data(
                bounded(
                    limit,
                    node.client()
                        .post::<Value>(&format!("/admin-api/contexts/{ctx}/join"), &NoBody {}),
                )
                .await,
                &format!("joining the context on `{name}`"),
            )?;
            vars.set(
                format!("member_account_{name}"),
                joined["memberAccount"].clone(),
            );
            vars.set(
                format!("member_identity_{name}"),
                joined["memberIdentity"].clone(),
            );
            vars.set(
                format!("public_key_{name}"),
                joined["memberIdentity"].clone(),
            );
        }
        Ok(json!({
            "contextId": ctx,
            "memberPublicKey": me["publicKey"],
            "namespaceId": ns,
        }))
    }

    async fn call(&self, cfg: &Cfg) -> Result<Value, StepError> {
        let (_, mut c) = self.client(cfg, "node")?;
        if cfg.bool("unauthenticated", false)? {
            c = Conn::Own(
                self.node(&cfg.str("node")?)?
                    .client_with(None)
                    .map_err(|e| StepError::new(e.to_string()))?,
            );
        }
        let method = cfg.str("method")?;
        let params = ExecuteParams {
            context_id: cfg.str("context_id")?,
            method: method.clone(),
            args_json: cfg.get("args").cloned().unwrap_or_else(|| json!({})),
        };
        let req = Request {
            jsonrpc: "2.0".into(),
            id: json!(1),
            method: "execute".into(),
            params: serde_json::to_value(params).map_err(|e| StepError::new(e.to_string()))?,
        };
        let response: Response = c
            .post("/jsonrpc", &req)
            .await
            .map_err(|e| request(&format!("calling `{method}`"), e))?;
        let answer = serde_json::to_value(&response).map_err(|e| StepError::new(e.to_string()))?;
        if let Some(err) = &response.error {
            return Err(call_error(&method, err));
        }
        Ok(answer)
    }

    async fn wait_for_sync(
        &self,
        cfg: &Cfg,
        tracker: Option<&RefCell<Tracker>>,
    ) -> Result<Value, StepError> {
        let nodes = cfg.node_list("nodes")?;
        for n in &nodes {
            self.node(n)?;
        }
        let timeout = cfg.secs("timeout")?.unwrap_or(self.wait_timeout);
        let result = self
            .converge(
                &nodes,
                cfg.opt_str("context_id").as_deref(),
                cfg.opt_str("group_id").as_deref(),
                cfg,
                timeout,
            )
            .await;
        if let Some(t) = tracker {
            let what = format!("wait_for_sync on {}", nodes.join(", "));
            match &result {
                Ok(_) => t.borrow_mut().pass(),
                Err(e) => t.borrow_mut().fail(&what, &e.text()),
            }
        }
        result
    }

    /// Polls until `nodes` agree on the context's root hash and/or the
    /// group's governance state (and `expect` reads the same), or `timeout`.
    pub(crate) async fn converge(
        &self,
        nodes: &[String],
        context: Option<&str>,
        group: Option<&str>,
        cfg: &Cfg,
        timeout: Duration,
    ) -> Result<Value, StepError> {
        let started = Instant::now();
        let deadline = started
            .checked_add(timeout)
            .unwrap_or(started + Duration::from_secs(86400 * 365));
        let mut pause = cfg
            .secs("initial_check_interval")?
            .unwrap_or(Duration::from_millis(50));
        let cap = cfg
            .secs("check_interval")?
            .unwrap_or(Duration::from_millis(500));
        let factor = cfg.num("backoff_factor")?.unwrap_or(2.0).max(1.0);
        let trigger = cfg.bool("trigger_sync", false)?;
        let expect = cfg.get("expect").and_then(Value::as_object).cloned();
        let mut attempts = 0u32;
        let mut last_trigger: Option<Instant> = None;
        loop {
            attempts += 1;
            if trigger
                && let Some(ctx) = context
                && last_trigger.is_none_or(|t| t.elapsed() > Duration::from_secs(2))
            {
                for n in nodes {
                    if let Ok(node) = self.node(n) {
                        let _ = within(deadline, async {
                            node.client()
                                .post::<Value>(
                                    &format!("/admin-api/contexts/sync/{ctx}"),
                                    &NoBody {},
                                )
                                .await
                                .map_err(|e| e.to_string())
                        })
                        .await;
                    }
                }
                last_trigger = Some(Instant::now());
            }
            let mut seen: Vec<(String, Result<String, String>)> = Vec::new();
            for n in nodes {
                let node = self.node(n)?;
                let mut state = Ok(String::new());
                if let Some(ctx) = context {
                    state = within(deadline, root_hash(node, ctx)).await;
                }
                if let Some(g) = group
                    && let Ok(s) = &state
                {
                    state = within(deadline, group_state(node, g))
                        .await
                        .map(|g| format!("{s}|{g}"));
                }
                seen.push((n.clone(), state));
            }
            let agreed = match seen.first() {
                Some((_, Ok(first))) => seen.iter().all(|(_, s)| s.as_ref().ok() == Some(first)),
                _ => false,
            };
            let mut expect_ok = true;
            let mut reads = Vec::new();
            if agreed && let (Some(e), Some(ctx)) = (&expect, context) {
                for n in nodes {
                    let read = within(deadline, self.read(n, ctx, e)).await;
                    let ok = read
                        .as_ref()
                        .is_ok_and(|v| expr::loose_eq(v, e.get("equals").unwrap_or(&Value::Null)));
                    expect_ok &= ok;
                    reads.push((n.clone(), read));
                }
            }
            if agreed && expect_ok {
                let state = seen
                    .first()
                    .and_then(|(_, s)| s.clone().ok())
                    .unwrap_or_default();
                let (ctx_hash, group_hash) = match state.split_once('|') {
                    Some((c, g)) => (c.to_string(), g.to_string()),
                    None => (state.clone(), String::new()),
                };
                let mut answer = json!({
                    "synced": true,
                    "elapsed_seconds": started.elapsed().as_secs_f64(),
                    "attempts": attempts,
                });
                if context.is_some() {
                    answer["context_state_hash"] = json!(ctx_hash);
                    answer["root_hash"] = json!(ctx_hash);
                }
                if group.is_some() {
                    answer["group_state_hash"] = json!(group_hash);
                }
                return Ok(answer);
            }
            if Instant::now() >= deadline {
                let mut lines: Vec<String> = seen
                    .iter()
                    .map(|(n, s)| match s {
                        // `root|governance`, either part empty when not asked.
                        Ok(h) => format!("{n}: {}", h.trim_matches('|')),
                        Err(e) => format!("{n}: {e}"),
                    })
                    .collect();
                for (n, r) in reads {
                    lines.push(match r {
                        Ok(v) => format!("{n} read {v}"),
                        Err(e) => format!("{n} read failed: {e}"),
                    });
                }
                return Err(StepError::answered(
                    format!("no convergence after {}", super::report::secs(timeout)),
                    lines.join("; "),
                ));
            }
            tokio::time::sleep(pause_within(pause, deadline)).await;
            pause = next_pause(pause, factor, cap);
        }
    }

    /// `expect`'s read on node `n`: the call's `result` (`{"output": ...}`).
    async fn read(&self, n: &str, ctx: &str, e: &Map<String, Value>) -> Result<Value, String> {
        let node = self.node(n).map_err(|e| e.message)?;
        let params = ExecuteParams {
            context_id: ctx.into(),
            method: e.get("method").map(text_of).unwrap_or_default(),
            args_json: e.get("args").cloned().unwrap_or_else(|| json!({})),
        };
        let req = Request {
            jsonrpc: "2.0".into(),
            id: json!(1),
            method: "execute".into(),
            params: serde_json::to_value(params).map_err(|e| e.to_string())?,
        };
        let r: Response = node
            .client()
            .post("/jsonrpc", &req)
            .await
            .map_err(|e| e.to_string())?;
        match (r.result, r.error) {
            (Some(res), _) => Ok(json!({"output": res.output})),
            (None, Some(err)) => Err(err.message()),
            (None, None) => Err("an empty answer".into()),
        }
    }

    fn repeat<'s>(
        &'s self,
        step: &'s Step,
        cfg: &'s Cfg,
        vars: &'s mut Vars,
        tracker: Option<&'s RefCell<Tracker>>,
    ) -> LocalBoxFuture<'s, Result<Value, StepError>> {
        async move {
            let Nested::Steps(steps) = &step.nested else {
                return Err(StepError::new("`repeat` has no steps"));
            };
            let count = cfg
                .num("count")?
                .filter(|c| *c >= 1.0 && c.fract() == 0.0)
                .ok_or_else(|| StepError::new("`count` must be a positive integer"))?
                as u64;
            let outputs = step.cfg.get("outputs").and_then(Value::as_object);
            vars.set("total_iterations", json!(count));
            vars.set("step_count", json!(steps.len()));
            let started = Instant::now();
            for i in 0..count {
                let mut iteration = vars.clone();
                for (k, v) in [
                    ("iteration", i + 1),
                    ("iteration_index", i),
                    ("iteration_zero_based", i),
                    ("iteration_one_based", i + 1),
                ] {
                    iteration.set(k, json!(v));
                }
                // `outputs` of a repeat rename its counters.
                for (name, source) in outputs.into_iter().flatten() {
                    let src = source
                        .as_str()
                        .or_else(|| source.get("field").and_then(Value::as_str));
                    if let Some(v) = src.and_then(|s| iteration.get(s).cloned()) {
                        iteration.set(name.clone(), v);
                    }
                }
                self.run_steps(steps, &mut iteration, tracker)
                    .await
                    .map_err(|f| nested_error(&f, &format!("iteration {}", i + 1)))?;
                vars.absorb(iteration);
            }
            let secs = started.elapsed().as_secs_f64();
            let answer = json!({
                "iteration": count,
                "total_iterations": count,
                "duration_seconds": secs,
                "duration_ms": secs * 1000.0,
                "throughput_ops_per_sec": if secs > 0.0 { count as f64 / secs } else { 0.0 },
                "avg_time_per_op_ms": secs * 1000.0 / count as f64,
            });
            for k in [
                "duration_seconds",
                "duration_ms",
                "throughput_ops_per_sec",
                "avg_time_per_op_ms",
            ] {
                vars.set(k, answer[k].clone());
            }
            Ok(answer)
        }
        .boxed_local()
    }

    fn parallel<'s>(
        &'s self,
        step: &'s Step,
        cfg: &'s Cfg,
        vars: &'s mut Vars,
        tracker: Option<&'s RefCell<Tracker>>,
    ) -> LocalBoxFuture<'s, Result<Value, StepError>> {
        async move {
            let Nested::Groups(groups) = &step.nested else {
                return Err(StepError::new("`parallel` has no groups"));
            };
            let mode = cfg
                .opt_str("failure_mode")
                .unwrap_or_else(|| "fail-slow".into());
            let mut copies: Vec<Vars> = groups.iter().map(|_| vars.clone()).collect();
            let runs = groups
                .iter()
                .zip(copies.iter_mut())
                .map(|(g, v)| async move { self.run_steps(&g.steps, v, tracker).await });
            let results: Vec<Result<(), Failure>> = if mode == "fail-fast" {
                match futures::future::try_join_all(runs).await {
                    Ok(done) => done.into_iter().map(Ok).collect(),
                    Err(f) => vec![Err(f)],
                }
            } else {
                futures::future::join_all(runs).await
            };
            let failed: Vec<String> = results
                .iter()
                .zip(groups)
                .filter_map(|(r, g)| {
                    r.as_ref().err().map(|f| {
                        format!(
                            "group `{}`: {}",
                            g.name.clone().unwrap_or_default(),
                            nested_error(f, "").text()
                        )
                    })
                })
                .collect();
            for v in copies {
                vars.absorb(v);
            }
            let ok = match mode.as_str() {
                "continue-on-error" => failed.len() < groups.len(),
                _ => failed.is_empty(),
            };
            if !ok {
                return Err(StepError::answered(
                    format!("{} of {} groups failed", failed.len().max(1), groups.len()),
                    failed.join("\n"),
                ));
            }
            Ok(json!({"groups": groups.len(), "failed": failed.len()}))
        }
        .boxed_local()
    }

    async fn script(&self, cfg: &Cfg, vars: &mut Vars) -> Result<Value, StepError> {
        let written = cfg.str("script")?;
        // A file path may be a placeholder; a command line gets each value
        // shell-quoted, so that a value (perhaps a node's answer) is one
        // word, never shell syntax. Values reach the script safely as
        // environment variables and `args` too.
        let plain = vars
            .resolve_str(&written)
            .map(|v| text_of(&v))
            .map_err(|e| StepError::new(format!("`script`: {e}")))?;
        let args: Vec<String> = cfg
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(text_of).collect())
            .unwrap_or_default();
        // A file runs with sh, as merobox's; anything else is a command line.
        let mut cmd = match self.path(&plain) {
            Ok(p) if p.is_file() => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg(p).args(&args);
                c
            }
            _ => {
                let line = vars
                    .resolve_shell(&written)
                    .map_err(|e| StepError::new(format!("`script`: {e}")))?;
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg("-c").arg(&line).arg("sh").args(&args);
                c
            }
        };
        // The workflow's variables, as merobox passes them (NAME in capitals),
        // and where each node is.
        for (k, v) in vars.iter() {
            let key = k.to_ascii_uppercase().replace(['-', '.'], "_");
            if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                cmd.env(key, text_of(v));
            }
        }
        for n in self.cluster.all() {
            let key = n.name.to_ascii_uppercase().replace(['-', '.'], "_");
            cmd.env(format!("NODE_{key}_URL"), n.client().base());
            cmd.env(
                format!("NODE_{key}_HOME"),
                n.dir().parent().unwrap_or(Path::new(".")),
            );
        }
        cmd.current_dir(&self.base_dir)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let limit = cfg.secs("timeout")?.unwrap_or(self.wait_timeout);
        let out = tokio::time::timeout(limit, cmd.output())
            .await
            .map_err(|_| {
                StepError::new(format!(
                    "the script ran longer than {}",
                    super::report::secs(limit)
                ))
            })?
            .map_err(|e| StepError::new(format!("cannot run the script: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let code = out.status.code().unwrap_or(-1);
        vars.set("script_exit_code_local", json!(code));
        vars.set("script_output_local", json!(stdout));
        if !out.status.success() {
            return Err(StepError::answered(
                format!("the script exited with {code}"),
                format!(
                    "{}{}",
                    stdout.trim_end(),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!("\n{}", stderr.trim_end())
                    }
                ),
            ));
        }
        Ok(
            json!({"output": stdout.trim_end(), "stdout": stdout, "stderr": stderr, "exit_code": code}),
        )
    }

    async fn api_response(&self, cfg: &Cfg) -> Result<Value, StepError> {
        let (_, c) = self.client(cfg, "node")?;
        let path = cfg.str("path")?;
        let body = c
            .get::<Value>(&path)
            .await
            .map_err(|e| request(&format!("GET {path}"), e))?;
        let mut misses = Vec::new();
        if let Some(Value::Object(m)) = cfg.get("match") {
            for (p, want) in m {
                match vars::lookup_path(&body, p) {
                    None => misses.push(format!("{p}: absent (expected {want})")),
                    Some(got) if !expr::loose_eq(&got, want) => {
                        misses.push(format!("{p}: {got} (expected {want})"));
                    }
                    Some(_) => {}
                }
            }
        }
        for p in cfg
            .get("present")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if vars::lookup_path(&body, &text_of(p)).is_none() {
                misses.push(format!("{}: absent (expected present)", text_of(p)));
            }
        }
        for p in cfg
            .get("absent")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(got) = vars::lookup_path(&body, &text_of(p)) {
                misses.push(format!("{}: {got} (expected absent)", text_of(p)));
            }
        }
        if !misses.is_empty() {
            let mut e = StepError::assertion(format!(
                "the answer to GET {path} misses: {}",
                misses.join("; ")
            ));
            e.answer = Some(body.to_string());
            return Err(e);
        }
        Ok(body)
    }

    fn logs(&self, ty: &str, cfg: &Cfg) -> Result<Value, StepError> {
        let mut names = cfg.node_list("nodes")?;
        if names.is_empty() {
            names = self
                .cluster
                .all()
                .iter()
                .filter(|n| n.state() != State::Stopped)
                .map(|n| n.name.clone())
                .collect();
        }
        let patterns: Vec<String> = cfg
            .get("patterns")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(text_of).collect())
            .unwrap_or_default();
        let is_regex = cfg.bool("regex", false)?;
        let case = cfg.bool("case_sensitive", true)?;
        let tail = cfg.num("tail_lines")?.map(|n| n as usize);
        let matchers = patterns
            .iter()
            .map(|p| {
                let source = if is_regex {
                    p.clone()
                } else {
                    regex::escape(p)
                };
                RegexBuilder::new(&source)
                    .case_insensitive(!case)
                    .build()
                    .map_err(|e| StepError::new(format!("pattern `{p}` is not a valid regex: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut hits = vec![0usize; patterns.len()];
        let mut examples: Vec<String> = Vec::new();
        for name in &names {
            let node = self.node(name)?;
            let text = std::fs::read_to_string(node.log_path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = tail.map_or(0, |t| lines.len().saturating_sub(t));
            for line in &lines[from..] {
                for (i, m) in matchers.iter().enumerate() {
                    if m.is_match(line) {
                        hits[i] += 1;
                        if examples.len() < 5 {
                            examples.push(format!("{name}: {line}"));
                        }
                    }
                }
            }
        }
        let counts: Map<String, Value> = patterns
            .iter()
            .cloned()
            .zip(hits.iter().map(|h| json!(h)))
            .collect();
        let logs: Vec<String> = names
            .iter()
            .filter_map(|n| {
                self.cluster
                    .get(n)
                    .map(|x| x.log_path().display().to_string())
            })
            .collect();
        if ty == "assert_log_present" {
            let min = cfg.num("min_matches")?.map_or(1, |n| n as usize);
            let short: Vec<String> = patterns
                .iter()
                .zip(&hits)
                .filter(|(_, h)| **h < min)
                .map(|(p, h)| format!("`{p}` ({h} of {min})"))
                .collect();
            if !short.is_empty() {
                let mut e = StepError::assertion(format!(
                    "not in the logs of {}: {}",
                    names.join(", "),
                    short.join(", ")
                ));
                e.answer = Some(format!("logs: {}", logs.join(", ")));
                return Err(e);
            }
        } else if hits.iter().any(|h| *h > 0) {
            let found: Vec<String> = patterns
                .iter()
                .zip(&hits)
                .filter(|(_, h)| **h > 0)
                .map(|(p, h)| format!("`{p}` ({h}×)"))
                .collect();
            let mut e = StepError::assertion(format!("found in the logs: {}", found.join(", ")));
            e.answer = Some(examples.join("\n"));
            return Err(e);
        }
        Ok(json!({"matches": counts, "nodes": names}))
    }

    async fn lifecycle(&self, ty: &str, cfg: &Cfg) -> Result<Value, StepError> {
        let targets = cfg.targets()?;
        let timeout = cfg
            .secs("wait_timeout")?
            .or(cfg.secs("timeout")?)
            .unwrap_or(self.wait_timeout);
        for name in &targets {
            let node = self.node(name)?;
            let node_err = |e: super::nodes::NodeError| StepError::new(e.to_string());
            match ty {
                "stop_node" => node.stop().await,
                "kill_node" => node.kill().await,
                "pause_node" | "pause_container" => node.pause().await.map_err(node_err)?,
                "resume_node" | "unpause_container" => node.resume().await.map_err(node_err)?,
                "start_node" => node.start(timeout).await.map_err(node_err)?,
                "restart_node" | "restart_container" => {
                    if cfg.opt_str("signal").as_deref() == Some("kill") {
                        node.kill().await;
                    } else {
                        node.stop().await;
                    }
                    node.start(timeout).await.map_err(node_err)?;
                }
                other => return Err(StepError::new(format!("`{other}` is not a lifecycle step"))),
            }
        }
        Ok(json!({"nodes": targets}))
    }
}

/// The pause between two polls: at least 10 ms (no busy loop), at most
/// the time left (no sleeping past the deadline).
pub(super) fn pause_within(pause: Duration, deadline: Instant) -> Duration {
    pause
        .max(Duration::from_millis(10))
        .min(deadline.saturating_duration_since(Instant::now()))
}

/// The next pause of a backoff: `pause * factor` (factor in [1, 10]),
/// capped; never panics on an overflow.
fn next_pause(pause: Duration, factor: f64, cap: Duration) -> Duration {
    let factor = if factor.is_nan() {
        1.0
    } else {
        factor.clamp(1.0, 10.0)
    };
    Duration::try_from_secs_f64(pause.as_secs_f64() * factor)
        .unwrap_or(cap)
        .min(cap)
}

/// `f`, or an error once `deadline` passes: every request of a poll is
/// bounded by the time left, so that a frozen node cannot hang it.
pub(super) async fn within<T>(
    deadline: Instant,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, f)
        .await
        .unwrap_or_else(|_| Err("no answer in time (is the node paused?)".into()))
}

/// A request that gives up after `limit`.
async fn bounded<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(ClientError::Unexpected(format!(
            "no answer within {} (is the node paused or overloaded?)",
            super::report::secs(limit)
        )))
    })
}

/// A call the node answered with an error.
fn call_error(method: &str, err: &mero_api::jsonrpc::RpcError) -> StepError {
    let mut e = StepError::answered(
        format!(
            "the call `{method}` failed: {} ({})",
            err.message(),
            err.detail.clone().unwrap_or_else(|| err.kind.clone())
        ),
        serde_json::to_string(err).unwrap_or_default(),
    );
    e.fields = Some(json!({
        "error_type": err.kind,
        "error_code": Value::Null,
        "error_message": err.message(),
        "error": err,
    }));
    e
}

/// The answer's `data`, or the error of the request.
pub(super) fn data(result: Result<Value, ClientError>, what: &str) -> Result<Value, StepError> {
    match result {
        Ok(Value::Object(mut m)) if m.contains_key("data") => {
            Ok(m.remove("data").unwrap_or(Value::Null))
        }
        Ok(other) => Ok(other),
        Err(e) => Err(request(what, e)),
    }
}

/// Uploads a component's bytes, as `meroctl app install --path`.
async fn upload(c: &Client, path: &Path, cfg: &Cfg) -> Result<Value, StepError> {
    let bytes =
        std::fs::read(path).map_err(|e| StepError::new(format!("{}: {e}", path.display())))?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(p) = cfg.opt_str("package") {
        query.append_pair("package", &p);
    }
    if let Some(v) = cfg.opt_str("version") {
        query.append_pair("version", &v);
    }
    let query = query
        .append_pair("metadata", &cfg.opt_str("metadata").unwrap_or_default())
        .finish();
    data(
        c.post_bytes::<Value>(
            &format!("/admin-api/install-application?{query}"),
            "application/wasm",
            bytes,
        )
        .await,
        "installing",
    )
}

/// `params` as the bytes `init` receives: a string is sent as written, a
/// mapping as its JSON; none is no bytes.
fn params(cfg: &Cfg) -> Result<Vec<u8>, StepError> {
    match cfg.get("params") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s)
                .map_err(|e| StepError::new(format!("`params` must be JSON: {e}")))?;
            Ok(s.clone().into_bytes())
        }
        Some(v) => Ok(v.to_string().into_bytes()),
    }
}

fn namespace(cfg: &Cfg) -> Result<String, StepError> {
    cfg.opt_str("namespace_id")
        .or_else(|| cfg.opt_str("group_id"))
        .ok_or_else(|| StepError::new("`namespace_id` is required"))
}

/// Who a node is: its signing key (base58) and account (hex), from its
/// config; each node here has exactly one identity.
fn identity(node: &ManagedNode) -> Result<Value, StepError> {
    let config = mero_config::ConfigFile::load(&node.dir())
        .and_then(|c| c.signing_key())
        .map_err(|e| StepError::new(format!("cannot read the identity of `{}`: {e}", node.name)))?;
    let key = config.verifying_key().to_bytes();
    Ok(json!({
        "publicKey": bs58::encode(key).into_string(),
        "accountId": hex::encode(key),
        "deviceId": bs58::encode(key).into_string(),
    }))
}

async fn root_hash(node: &ManagedNode, ctx: &str) -> Result<String, String> {
    let v: Value = node
        .client()
        .get(&format!("/admin-api/contexts/{ctx}"))
        .await
        .map_err(|e| e.to_string())?;
    v["data"]["contextStateHash"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "no contextStateHash in the answer".into())
}

/// A group's governance state as a comparable string: a namespace's
/// governance heads, else (a subgroup) its member list.
async fn group_state(node: &ManagedNode, group: &str) -> Result<String, String> {
    if let Ok(v) = node
        .client()
        .get::<Value>(&format!("/admin-api/namespaces/{group}"))
        .await
    {
        let mut heads: Vec<String> = v["data"]["governanceHeads"]
            .as_array()
            .map(|a| a.iter().map(text_of).collect())
            .unwrap_or_default();
        heads.sort();
        return Ok(heads.join(","));
    }
    let v: Value = node
        .client()
        .get(&format!("/admin-api/groups/{group}/members"))
        .await
        .map_err(|e| e.to_string())?;
    let mut members: Vec<String> = v["members"]
        .as_array()
        .map(|a| a.iter().map(|m| m.to_string()).collect())
        .unwrap_or_default();
    members.sort();
    Ok(members.join(","))
}

/// Evaluates `assert` / `json_assert` statements. In a fuzzy run (or with
/// `non_blocking`), misses are recorded and the step passes.
fn assert(
    step: &Step,
    cfg: &Cfg,
    vars: &Vars,
    tracker: Option<&RefCell<Tracker>>,
) -> Result<Value, StepError> {
    let statements = step
        .cfg
        .get("statements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let non_blocking = cfg.bool("non_blocking", false)? || tracker.is_some();
    let mut misses = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        let (text, message) = match s {
            Value::String(t) => (t.clone(), None),
            Value::Object(o) => (
                o.get("statement").map(text_of).unwrap_or_default(),
                o.get("message").map(text_of),
            ),
            other => (other.to_string(), None),
        };
        let what = message.unwrap_or_else(|| format!("#{} `{text}`", i + 1));
        let miss = match expr::evaluate(&text, vars) {
            Ok(v) if v.passed => None,
            Ok(v) => Some(format!("{what} {}", v.detail)),
            Err(e) => Some(format!("{what}: {e}")),
        };
        if let Some(t) = tracker {
            match &miss {
                None => t.borrow_mut().pass(),
                Some(m) => t.borrow_mut().fail(&step.label(), m),
            }
        }
        misses.extend(miss);
    }
    let answer = json!({"passed": statements.len() - misses.len(), "failed": misses.len()});
    if !misses.is_empty() && !non_blocking {
        return Err(StepError::assertion(format!(
            "{} of {} statements failed: {}",
            misses.len(),
            statements.len(),
            misses.join("; ")
        )));
    }
    Ok(answer)
}

/// A nested step's failure as its parent's error.
fn nested_error(f: &Failure, at: &str) -> StepError {
    let mut e = f.error.clone();
    e.message = format!(
        "{}step `{}` ({}, line {}){}: {}",
        if at.is_empty() {
            String::new()
        } else {
            format!("{at}: ")
        },
        f.label,
        f.ty,
        f.line,
        f.node
            .as_ref()
            .map(|n| format!(" on {n}"))
            .unwrap_or_default(),
        e.message
    );
    e
}

/// The step's keys with their placeholders resolved (names and
/// descriptions too when they can be: they are only shown).
fn resolve_cfg(raw: &Map<String, Value>, vars: &Vars) -> Result<Cfg, StepError> {
    let mut out = Map::new();
    for (k, v) in raw {
        if UNRESOLVED.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let resolved = vars
            .resolve(v)
            .map_err(|e| StepError::new(format!("`{k}`: {e}")))?;
        out.insert(k.clone(), resolved);
    }
    Ok(Cfg(out))
}

/// The step's label with placeholders filled in where possible.
fn display_label(step: &Step, vars: &Vars) -> String {
    let label = step.label();
    match vars.resolve_str(&label) {
        Ok(v) => text_of(&v),
        Err(_) => label,
    }
}

/// merobox's per-node variables, set whether or not `outputs` asks.
fn auto_exports(ty: &str, answer: &Value, node: Option<&str>, vars: &mut Vars) {
    let Some(node) = node else {
        return;
    };
    let pairs: &[(&str, &str)] = match ty {
        "install_application" => &[("applicationId", "app_id_")],
        "create_namespace" => &[("namespaceId", "namespace_id_")],
        "create_context" => &[
            ("contextId", "context_id_"),
            ("memberPublicKey", "member_public_key_"),
        ],
        "join_context" => &[
            ("contextId", "context_id_"),
            ("memberPublicKey", "context_member_public_key_"),
        ],
        "join_namespace" => &[
            ("namespaceId", "namespace_id_"),
            ("memberIdentity", "namespace_member_identity_"),
            ("memberAccount", "namespace_member_account_"),
        ],
        "create_namespace_invitation" => &[("invitation", "namespace_invitation_")],
        "create_identity" => &[("publicKey", "public_key_")],
        _ => &[],
    };
    for (field, prefix) in pairs {
        if let Some(v) = answer.get(*field) {
            vars.set(format!("{prefix}{node}"), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::spec;

    /// Runs `steps` (YAML list items) of a one-node workflow on a cluster
    /// without nodes: only steps that need none.
    async fn run(steps: &str, vars: &mut Vars) -> Vec<Result<Passed, Failure>> {
        let yaml = format!("name: t\nnodes:\n  count: 1\nsteps:\n{steps}");
        let wf = spec::load(Path::new("t.yml"), &yaml, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        let cluster = Cluster::empty();
        let progress = Progress::new();
        let runner = Runner {
            cluster: &cluster,
            base_dir: std::env::temp_dir(),
            wait_timeout: Duration::from_secs(10),
            progress: &progress,
        };
        let mut out = Vec::new();
        for step in &wf.steps {
            out.push(runner.run_step(step, vars, None).await);
        }
        out
    }

    fn failure(r: &Result<Passed, Failure>) -> String {
        match r {
            Err(f) => f.error.text(),
            Ok(p) => panic!("passed ({p:?}) but should have failed"),
        }
    }

    #[tokio::test]
    async fn expected_failures_pass_only_with_the_expected_error() {
        let mut vars = Vars::default();
        let results = run(
            "  - type: script
    script: 'echo out; echo boom >&2; exit 3'
    expected_failure: true
    expected_error: boom
    outputs:
      why: error_message
  - type: script
    script: 'exit 3'
    expected_failure: true
    expected_error: something else
  - type: script
    script: 'true'
    expected_failure: true
  - type: assert
    statements: ['1 == 2']
    expected_failure: true
  - type: script
    script: 'exit 1'
    expected_failure: true
",
            &mut vars,
        )
        .await;
        assert_eq!(results[0].as_ref().ok(), Some(&Passed::AsExpected));
        assert_eq!(vars.get("why"), Some(&json!("out\nboom")));
        let e = failure(&results[1]);
        assert!(
            e.starts_with("failed, but not with the expected error `something else`"),
            "{e}"
        );
        let e = failure(&results[2]);
        assert!(
            e.starts_with("expected a failure, but the step succeeded"),
            "{e}"
        );
        // An assertion that misses is never an expected failure.
        let e = failure(&results[3]);
        assert!(e.contains("1 of 1 statements failed"), "{e}");
        assert_eq!(results[4].as_ref().ok(), Some(&Passed::AsExpected));
    }

    #[test]
    fn poll_pauses_stay_between_10ms_and_the_time_left() {
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(pause_within(Duration::ZERO, far), Duration::from_millis(10));
        let soon = Instant::now() + Duration::from_millis(200);
        assert!(pause_within(Duration::from_secs(1_000_000), soon) <= Duration::from_millis(200));
        let cap = Duration::from_millis(500);
        assert_eq!(next_pause(Duration::MAX, 10.0, cap), cap);
        assert_eq!(
            next_pause(Duration::from_millis(100), f64::INFINITY, cap),
            cap
        );
        assert_eq!(
            next_pause(Duration::from_millis(100), f64::NAN, cap),
            Duration::from_millis(100)
        );
        assert_eq!(
            next_pause(Duration::from_millis(100), 2.0, cap),
            Duration::from_millis(200)
        );
    }

    #[tokio::test]
    async fn a_bounded_request_gives_up() {
        let started = Instant::now();
        let e = bounded::<Value>(Duration::from_millis(50), futures::future::pending())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no answer within"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn expected_error_matches_the_nodes_answer_not_the_method_name() {
        let err = mero_api::jsonrpc::RpcError {
            kind: "ContextNotFound".into(),
            data: json!("Context not found"),
            detail: Some("NotFound".into()),
        };
        let e = call_error("set_notes", &err);
        assert!(e.text().contains("set_notes"));
        assert_eq!(e.judged(), "Context not found (ContextNotFound, NotFound)");
        let unknown = mero_api::jsonrpc::RpcError {
            kind: "FunctionCallError".into(),
            data: json!("method \"set_notes\" not found"),
            detail: Some("UnknownMethod".into()),
        };
        assert!(
            call_error("set_notes", &unknown)
                .judged()
                .contains("UnknownMethod")
        );
        let api = request(
            "inviting",
            ClientError::Api {
                status: reqwest::StatusCode::FORBIDDEN,
                kind: "Forbidden".into(),
                message: "not an admin".into(),
            },
        );
        assert_eq!(api.judged(), "not an admin (Forbidden, HTTP 403)");
    }

    #[tokio::test]
    async fn a_bare_expected_failure_accepts_any_error_a_pinned_one_only_its_own() {
        // The node does not exist: the call fails, which satisfies a bare
        // expected_failure (merobox's semantics) but not a pinned one.
        let mut vars = Vars::default();
        let results = run(
            "  - type: call
    node: '{{who}}'
    context_id: C
    method: get
    expected_failure: true
  - type: call
    node: '{{who}}'
    context_id: C
    method: get
    expected_failure: true
    expected_error: Unauthorized
",
            &mut {
                vars.set("who", json!("ghost"));
                vars
            },
        )
        .await;
        assert_eq!(results[0].as_ref().ok(), Some(&Passed::AsExpected));
        let e = failure(&results[1]);
        assert!(e.contains("no node is named `ghost`"), "{e}");
    }

    #[tokio::test]
    async fn outputs_capture_and_a_missing_field_fails_naming_it() {
        let mut vars = Vars::default();
        let results = run(
            "  - type: script
    script: 'printf hello'
    outputs:
      said: output
      code: exit_code
  - type: script
    script: 'true'
    outputs:
      nope: stdoutt
",
            &mut vars,
        )
        .await;
        assert!(results[0].is_ok());
        assert_eq!(vars.get("said"), Some(&json!("hello")));
        assert_eq!(vars.get("code"), Some(&json!(0)));
        let e = failure(&results[1]);
        assert!(
            e.starts_with("output `nope` captures `stdoutt`, which the answer does not have; it has: exit_code, output, stderr, stdout"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn repeat_exports_its_iteration_and_placeholders_must_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("seen");
        let mut vars = Vars::default();
        vars.set("file", json!(file.display().to_string()));
        let results = run(
            "  - type: repeat
    count: 3
    outputs:
      n: iteration
    steps:
      - type: script
        script: 'echo {{n}}-{{iteration_index}}-{{total_iterations}} >> {{file}}'
  - type: script
    script: 'echo {{nope}}'
",
            &mut vars,
        )
        .await;
        assert!(results[0].is_ok(), "{:?}", results[0].as_ref().err());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "1-0-3\n2-1-3\n3-2-3\n"
        );
        let e = failure(&results[1]);
        assert!(e.contains("`{{nope}}` names no variable"), "{e}");
    }

    #[tokio::test]
    async fn retry_for_reads_strings_and_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("n");
        let mut vars = Vars::default();
        vars.set("count", json!(count.display().to_string()));
        vars.set("retry", json!("30"));
        vars.set("bad", json!("soon"));
        let results = run(
            "  - type: script
    script: 'echo x >> {{count}}; test $(wc -l < {{count}}) -ge 2'
    retry_for: '{{retry}}'
    retry_interval: '0.01'
  - type: script
    script: 'exit 1'
    retry_for: '{{bad}}'
",
            &mut vars,
        )
        .await;
        assert!(results[0].is_ok(), "{:?}", results[0].as_ref().err());
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
        let e = failure(&results[1]);
        assert!(e.contains("`retry_for` must be a number"), "{e}");
    }

    #[tokio::test]
    async fn scripts_get_values_quoted_not_pasted() {
        let mut vars = Vars::default();
        vars.set("evil", json!("$(echo injected); exit 7"));
        let results = run(
            "  - type: script
    script: 'printf %s {{evil}}'
    outputs:
      out: output
",
            &mut vars,
        )
        .await;
        assert!(results[0].is_ok(), "{:?}", results[0].as_ref().err());
        assert_eq!(vars.get("out"), Some(&json!("$(echo injected); exit 7")));
    }

    #[tokio::test]
    async fn retry_for_polls_until_the_step_passes() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("n");
        let mut vars = Vars::default();
        vars.set("count", json!(count.display().to_string()));
        // Passes on its third run.
        let results = run(
            "  - type: script
    script: 'echo x >> {{count}}; test $(wc -l < {{count}}) -ge 3'
    retry_for: 30
    retry_interval: 0.01
  - type: script
    script: 'exit 1'
    retry_for: 0.05
    retry_interval: 0.01
",
            &mut vars,
        )
        .await;
        assert!(results[0].is_ok(), "{:?}", results[0].as_ref().err());
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
        let e = failure(&results[1]);
        assert!(e.starts_with("still failing after"), "{e}");
    }

    #[tokio::test]
    async fn parallel_groups_run_and_a_failed_group_fails_the_step() {
        let mut vars = Vars::default();
        let results = run(
            "  - type: parallel
    groups:
      - name: a
        steps:
          - type: script
            script: 'printf a'
            outputs: {from_a: output}
      - name: b
        steps:
          - type: script
            script: 'printf b'
            outputs: {from_b: output}
  - type: parallel
    groups:
      - name: ok
        steps:
          - type: wait
            seconds: 0
      - name: broken
        steps:
          - type: script
            script: 'exit 4'
",
            &mut vars,
        )
        .await;
        assert!(results[0].is_ok());
        assert_eq!(
            (vars.get("from_a"), vars.get("from_b")),
            (Some(&json!("a")), Some(&json!("b")))
        );
        let e = failure(&results[1]);
        assert!(
            e.contains("1 of 2 groups failed") && e.contains("group `broken`"),
            "{e}"
        );
    }
}
