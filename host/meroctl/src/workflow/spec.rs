//! The workflow format, merobox's: the top-level keys, the `nodes` block
//! (count form and explicit form) and every step type with its keys, what
//! each requires and what type it takes. [`load`] checks a whole file
//! against it before any node starts, and names every mistake with its line:
//! an unknown key is an error (a key nothing reads is a step that silently
//! does nothing), as are missing keys, wrong types and node names no node
//! has.
//!
//! Steps keep their configuration as JSON; placeholders are resolved when
//! they run. A value written as a placeholder passes any type check here
//! and is checked once resolved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::yaml::{self, Kind, Node};

/// A checked workflow.
#[derive(Debug)]
pub(crate) struct Workflow {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    pub(crate) nodes: Vec<NodeSpec>,
    /// How long a node may take to become healthy, and the default of
    /// waiting steps.
    pub(crate) wait_timeout: Duration,
    pub(crate) steps: Vec<Step>,
    /// `binary_path`: the merod to run, unless `--merod` says otherwise.
    pub(crate) binary_path: Option<String>,
    /// `log_level`: the nodes' `RUST_LOG`.
    pub(crate) log_level: Option<String>,
    /// Keys that only mean something to merobox's Docker mode, ignored.
    pub(crate) ignored: Vec<String>,
}

/// A node the workflow declares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeSpec {
    pub(crate) name: String,
    /// HTTP API port (merobox's `rpc_port` / `base_rpc_port`); a free one
    /// if not given.
    pub(crate) server_port: Option<u16>,
    /// Swarm port (merobox's `port` / `base_port`).
    pub(crate) swarm_port: Option<u16>,
}

/// One step.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Where it starts in the file.
    pub(crate) line: usize,
    /// Its type, aliases mapped to the name this runner knows them by.
    pub(crate) ty: &'static str,
    /// Its keys (nested steps excepted), unresolved.
    pub(crate) cfg: Map<String, Value>,
    pub(crate) nested: Nested,
}

/// The steps a step holds.
#[derive(Debug, Clone)]
pub(crate) enum Nested {
    None,
    /// `repeat`'s.
    Steps(Vec<Step>),
    /// `parallel`'s groups.
    Groups(Vec<Group>),
    /// `fuzzy_test`'s operations.
    Ops(Vec<Op>),
}

/// A group of `parallel`.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) name: Option<String>,
    pub(crate) steps: Vec<Step>,
}

/// An operation pattern of `fuzzy_test`.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) name: String,
    pub(crate) weight: f64,
    pub(crate) steps: Vec<Step>,
}

impl Step {
    /// Its `name`, else its type.
    pub(crate) fn label(&self) -> String {
        match self.cfg.get("name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => self.ty.to_string(),
        }
    }
}

/// What is wrong with a workflow file: every problem found, each with its
/// line.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(file, problems))]
pub(crate) struct SpecError {
    pub(crate) file: PathBuf,
    pub(crate) problems: Vec<Problem>,
}

/// One mistake and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub(crate) line: usize,
    pub(crate) message: String,
}

fn render(file: &Path, problems: &[Problem]) -> String {
    let n = problems.len();
    let mut out = format!(
        "{} is not a valid workflow ({n} problem{}):",
        file.display(),
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str(&format!("\n  {}:{}: {}", file.display(), p.line, p.message));
    }
    out
}

/// The type of a key's value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Str,
    Bool,
    Int,
    Num,
    List,
    Map,
    Any,
    /// A node the workflow declares.
    Node,
    /// One node or a list of them.
    Nodes,
    /// Nested steps (checked recursively).
    Steps,
}

type Fields = &'static [(&'static str, K, bool)];

/// Keys every step may have.
const COMMON: Fields = &[
    ("type", K::Str, true),
    ("name", K::Str, false),
    ("outputs", K::Map, false),
    ("description", K::Str, false),
    ("expected_failure", K::Bool, false),
    ("expected_error", K::Str, false),
    ("token", K::Str, false),
    // This runner's: run the step again until it passes, for this long.
    ("retry_for", K::Num, false),
    ("retry_interval", K::Num, false),
];

/// A step type as written: its canonical name and its keys.
fn step_spec(ty: &str) -> Option<(&'static str, Fields)> {
    use K::*;
    let spec: (&'static str, Fields) = match ty {
        "install_application" => (
            "install_application",
            &[
                ("node", Node, true),
                ("path", Str, false),
                ("url", Str, false),
                ("dev", Bool, false),
                ("package", Str, false),
                ("version", Str, false),
                ("metadata", Str, false),
            ],
        ),
        "uninstall_application" | "get_application" | "list_application_versions" => (
            match ty {
                "uninstall_application" => "uninstall_application",
                "get_application" => "get_application",
                _ => "list_application_versions",
            },
            &[("node", Node, true), ("application_id", Str, true)],
        ),
        "create_namespace" | "create_group" => (
            "create_namespace",
            &[
                ("node", Node, true),
                ("application_id", Str, true),
                ("app_key", Str, false),
                ("params", Any, false),
            ],
        ),
        "create_namespace_invitation"
        | "create_group_invitation"
        | "invite"
        | "invite_identity"
        | "invite_open" => (
            "create_namespace_invitation",
            &[
                ("node", Node, true),
                ("namespace_id", Str, false),
                ("group_id", Str, false),
                ("recursive", Bool, false),
                ("role", Str, false),
                ("expiration_timestamp", Int, false),
            ],
        ),
        "join_namespace" | "join_group" | "join" | "join_open" => (
            "join_namespace",
            &[
                ("node", Node, true),
                ("namespace_id", Str, false),
                ("group_id", Str, false),
                ("invitation", Any, true),
            ],
        ),
        "create_group_in_namespace" => (
            "create_group_in_namespace",
            &[
                ("node", Node, true),
                ("namespace_id", Str, true),
                ("group_name", Str, false),
                ("visibility", Str, false),
                ("parent_group_id", Str, false),
            ],
        ),
        "list_namespaces" | "create_identity" | "node_identity" => (
            match ty {
                "list_namespaces" => "list_namespaces",
                "create_identity" => "create_identity",
                _ => "node_identity",
            },
            &[("node", Node, true)],
        ),
        "list_namespace_groups" | "leave_namespace" | "delete_namespace" => (
            match ty {
                "list_namespace_groups" => "list_namespace_groups",
                "leave_namespace" => "leave_namespace",
                _ => "delete_namespace",
            },
            &[("node", Node, true), ("namespace_id", Str, true)],
        ),
        "set_subgroup_visibility" | "set_default_visibility" => (
            "set_subgroup_visibility",
            &[
                ("node", Node, true),
                ("group_id", Str, true),
                ("visibility", Str, true),
            ],
        ),
        "join_subgroup_inheritance"
        | "list_group_members"
        | "list_group_contexts"
        | "get_group_upgrade_status"
        | "retry_group_upgrade" => (
            match ty {
                "join_subgroup_inheritance" => "join_subgroup_inheritance",
                "list_group_members" => "list_group_members",
                "list_group_contexts" => "list_group_contexts",
                "get_group_upgrade_status" => "get_group_upgrade_status",
                _ => "retry_group_upgrade",
            },
            &[("node", Node, true), ("group_id", Str, true)],
        ),
        "create_context" => (
            "create_context",
            &[
                ("node", Node, true),
                ("application_id", Str, true),
                ("group_id", Str, true),
                ("params", Any, false),
                ("service_name", Str, false),
            ],
        ),
        "join_context" | "delete_context" => (
            if ty == "join_context" {
                "join_context"
            } else {
                "delete_context"
            },
            &[("node", Node, true), ("context_id", Str, true)],
        ),
        "create_mesh" => (
            "create_mesh",
            &[
                ("context_node", Node, true),
                ("application_id", Str, true),
                ("nodes", Nodes, true),
                ("params", Any, false),
                ("path", Str, false),
            ],
        ),
        "call" => (
            "call",
            &[
                ("node", Node, true),
                ("context_id", Str, true),
                ("method", Str, true),
                ("args", Map, false),
                // Accepted: a node here calls as its one identity.
                ("executor_public_key", Str, false),
                ("executor", Str, false),
                ("exec_type", Str, false),
                ("unauthenticated", Bool, false),
                ("state_retry_attempts", Int, false),
                ("state_retry_delay", Num, false),
                ("timeout", Num, false),
            ],
        ),
        "wait" => ("wait", &[("seconds", Num, true), ("message", Str, false)]),
        "wait_for_sync" => (
            "wait_for_sync",
            &[
                ("nodes", Nodes, true),
                ("context_id", Str, false),
                ("group_id", Str, false),
                ("timeout", Num, false),
                ("check_interval", Num, false),
                ("initial_check_interval", Num, false),
                ("backoff_factor", Num, false),
                ("trigger_sync", Bool, false),
                ("retry_attempts", Int, false),
                ("expect", Map, false),
            ],
        ),
        "repeat" => ("repeat", &[("count", Int, true), ("steps", Steps, true)]),
        "parallel" => (
            "parallel",
            &[
                ("groups", List, true),
                ("mode", Str, false),
                ("failure_mode", Str, false),
            ],
        ),
        "script" => (
            "script",
            &[
                ("script", Str, true),
                ("target", Str, false),
                ("args", List, false),
                ("timeout", Num, false),
            ],
        ),
        "assert" => (
            "assert",
            &[("statements", List, true), ("non_blocking", Bool, false)],
        ),
        "json_assert" => ("json_assert", &[("statements", List, true)]),
        "assert_api_response" => (
            "assert_api_response",
            &[
                ("node", Node, true),
                ("path", Str, true),
                ("match", Map, false),
                ("present", List, false),
                ("absent", List, false),
            ],
        ),
        "assert_log_present" => (
            "assert_log_present",
            &[
                ("nodes", Nodes, true),
                ("patterns", List, true),
                ("regex", Bool, false),
                ("tail_lines", Int, false),
                ("case_sensitive", Bool, false),
                ("min_matches", Int, false),
            ],
        ),
        "assert_log_absent" => (
            "assert_log_absent",
            &[
                ("nodes", Nodes, true),
                ("patterns", List, true),
                ("regex", Bool, false),
                ("tail_lines", Int, false),
                ("case_sensitive", Bool, false),
            ],
        ),
        "add_group_members" | "remove_group_members" => (
            if ty == "add_group_members" {
                "add_group_members"
            } else {
                "remove_group_members"
            },
            &[
                ("node", Node, true),
                ("group_id", Str, true),
                ("members", List, true),
            ],
        ),
        "update_member_role" => (
            "update_member_role",
            &[
                ("node", Node, true),
                ("group_id", Str, true),
                ("member_id", Str, true),
                ("role", Str, true),
            ],
        ),
        "set_member_capabilities" => (
            "set_member_capabilities",
            &[
                ("node", Node, true),
                ("group_id", Str, true),
                ("member_id", Str, true),
                ("capabilities", Any, true),
            ],
        ),
        "get_member_capabilities" => (
            "get_member_capabilities",
            &[
                ("node", Node, true),
                ("group_id", Str, true),
                ("member_id", Str, true),
            ],
        ),
        "stop_node" | "kill_node" | "pause_node" | "resume_node" => (
            match ty {
                "stop_node" => "stop_node",
                "kill_node" => "kill_node",
                "pause_node" => "pause_node",
                _ => "resume_node",
            },
            &[("nodes", Nodes, false), ("node", Node, false)],
        ),
        "start_node" | "restart_node" => (
            if ty == "start_node" {
                "start_node"
            } else {
                "restart_node"
            },
            &[
                ("nodes", Nodes, false),
                ("node", Node, false),
                ("wait_for_ready", Bool, false),
                ("wait_timeout", Num, false),
                ("signal", Str, false),
            ],
        ),
        "pause_container" | "unpause_container" => (
            if ty == "pause_container" {
                "pause_container"
            } else {
                "unpause_container"
            },
            &[("container", Node, true)],
        ),
        "restart_container" => (
            "restart_container",
            &[
                ("container", Node, true),
                ("wait_healthy", Bool, false),
                ("timeout", Num, false),
            ],
        ),
        "upgrade_group" => (
            "upgrade_group",
            &[
                ("node", Node, true),
                ("group_id", Str, true),
                ("target_application_id", Str, true),
                ("cascade", Bool, false),
                ("force_code_only", Bool, false),
            ],
        ),
        "fuzzy_test" => (
            "fuzzy_test",
            &[
                ("duration_minutes", Num, false),
                ("duration_seconds", Num, false),
                ("context_id", Str, true),
                ("nodes", List, true),
                ("operations", List, true),
                ("summary_interval_seconds", Num, false),
                ("operation_delay_ms", Num, false),
                ("success_threshold", Num, false),
                ("convergence_timeout", Num, false),
            ],
        ),
        "cascade_namespace_application" => (
            "cascade_namespace_application",
            &[
                ("node", Node, true),
                ("namespace_id", Str, true),
                ("target_application_id", Str, true),
            ],
        ),
        "get_cascade_status" | "get_migration_status" | "abort_migration" => (
            match ty {
                "get_cascade_status" => "get_cascade_status",
                "get_migration_status" => "get_migration_status",
                _ => "abort_migration",
            },
            &[("node", Node, true), ("namespace_id", Str, true)],
        ),
        "assert_cascade_complete" | "assert_migration_complete" => (
            if ty == "assert_cascade_complete" {
                "assert_cascade_complete"
            } else {
                "assert_migration_complete"
            },
            &[
                ("node", Node, true),
                ("namespace_id", Str, true),
                ("timeout_seconds", Num, false),
                ("poll_interval", Num, false),
            ],
        ),
        "resync_context" => (
            "resync_context",
            &[
                ("node", Node, true),
                ("context_id", Str, true),
                ("force", Bool, false),
            ],
        ),
        _ => return None,
    };
    Some(spec)
}

/// merobox's step types this runner does not run: Docker, TEE, blobs,
/// proposals, metadata and auth-flow steps.
const ELSEWHERE: &[&str] = &[
    "account_create",
    "account_pair",
    "account_revoke",
    "node_exec",
    "reparent_group",
    "list_subgroups",
    "set_member_auto_follow",
    "set_default_capabilities",
    "get_group_info",
    "delete_group",
    "leave_context",
    "leave_group",
    "set_group_metadata",
    "get_group_metadata",
    "set_member_metadata",
    "get_member_metadata",
    "set_context_metadata",
    "get_context_metadata",
    "detach_context_from_group",
    "sync_group",
    "register_group_signing_key",
    "get_proposal",
    "list_proposals",
    "get_proposal_approvers",
    "upload_blob",
    "download_blob",
    "delete_blob_on_disk",
    "delete_blob",
    "disconnect_node",
    "connect_node",
    "partition_peers",
    "heal_peers",
    "inject_network_fault",
    "set_tee_admission_policy",
    "tee_fleet_join",
    "assert_tee_member",
    "assert_not_member",
    "login",
    "refresh",
    "ws_connect",
    "ws_subscribe",
    "assert_ws_event",
];

/// Every step type this runner accepts as written (for suggestions).
const KNOWN: &[&str] = &[
    "install_application",
    "uninstall_application",
    "get_application",
    "list_application_versions",
    "create_namespace",
    "create_group",
    "create_namespace_invitation",
    "create_group_invitation",
    "invite",
    "invite_identity",
    "invite_open",
    "join_namespace",
    "join_group",
    "join",
    "join_open",
    "create_group_in_namespace",
    "list_namespaces",
    "create_identity",
    "node_identity",
    "list_namespace_groups",
    "leave_namespace",
    "delete_namespace",
    "set_subgroup_visibility",
    "set_default_visibility",
    "join_subgroup_inheritance",
    "list_group_members",
    "list_group_contexts",
    "get_group_upgrade_status",
    "retry_group_upgrade",
    "create_context",
    "join_context",
    "delete_context",
    "create_mesh",
    "call",
    "wait",
    "wait_for_sync",
    "repeat",
    "parallel",
    "script",
    "assert",
    "json_assert",
    "assert_api_response",
    "assert_log_present",
    "assert_log_absent",
    "add_group_members",
    "remove_group_members",
    "update_member_role",
    "set_member_capabilities",
    "get_member_capabilities",
    "stop_node",
    "kill_node",
    "pause_node",
    "resume_node",
    "start_node",
    "restart_node",
    "pause_container",
    "unpause_container",
    "restart_container",
    "upgrade_group",
    "fuzzy_test",
    "cascade_namespace_application",
    "get_cascade_status",
    "get_migration_status",
    "abort_migration",
    "assert_cascade_complete",
    "assert_migration_complete",
    "resync_context",
];

/// Top-level keys: (key, type, required).
const TOP: Fields = &[
    ("name", K::Str, true),
    ("description", K::Str, false),
    ("nodes", K::Any, true),
    ("steps", K::Steps, true),
    ("nuke_on_start", K::Bool, false),
    ("nuke_on_end", K::Bool, false),
    ("stop_all_nodes", K::Bool, false),
    ("restart", K::Bool, false),
    ("wait_timeout", K::Num, false),
    ("force_pull_image", K::Bool, false),
    ("auth_service", K::Bool, false),
    ("auth_image", K::Str, false),
    ("auth_use_cached", K::Bool, false),
    ("webui_use_cached", K::Bool, false),
    ("auth_mode", K::Str, false),
    ("log_level", K::Str, false),
    ("rust_backtrace", K::Str, false),
    ("no_docker", K::Bool, false),
    ("binary_path", K::Str, false),
    ("e2e_mode", K::Bool, false),
    ("preserve_default_bootstrap", K::Bool, false),
    ("bootstrap_nodes", K::List, false),
    ("topology", K::Map, false),
    ("remote_nodes", K::Map, false),
];

/// The count form of `nodes`.
const NODES_COUNT: Fields = &[
    ("count", K::Int, true),
    ("prefix", K::Str, false),
    ("image", K::Str, false),
    ("base_port", K::Int, false),
    ("base_rpc_port", K::Int, false),
    ("config_path", K::Str, false),
    ("use_image_entrypoint", K::Bool, false),
    ("mdns", K::Bool, false),
    ("network_admin", K::Bool, false),
    // An old merobox key some workflows still carry.
    ("chain_id", K::Str, false),
];

/// One node of the explicit form.
const NODE_EXPLICIT: Fields = &[
    ("port", K::Int, false),
    ("rpc_port", K::Int, false),
    ("config_path", K::Str, false),
    ("mock_tee", K::Bool, false),
    ("image", K::Str, false),
];

/// Reads and checks `file`: `${VAR}` expanded from `env`, every problem
/// reported at once.
pub(crate) fn load(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Workflow, SpecError> {
    let fail = |problems| SpecError {
        file: file.to_path_buf(),
        problems,
    };
    let mut doc = yaml::parse(text).map_err(|e| {
        fail(vec![Problem {
            line: e.line,
            message: e.message,
        }])
    })?;
    yaml::expand_env(&mut doc, env).map_err(|e| {
        fail(vec![Problem {
            line: e.line,
            message: e.message,
        }])
    })?;
    let mut c = Checker::default();
    let workflow = c.workflow(&doc, file);
    if c.problems.is_empty()
        && let Some(w) = workflow
    {
        return Ok(w);
    }
    c.problems.sort_by_key(|p| p.line);
    Err(fail(c.problems))
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    node_names: Vec<String>,
}

impl Checker {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            message: message.into(),
        });
    }

    fn workflow(&mut self, doc: &Node, file: &Path) -> Option<Workflow> {
        if doc.entries().is_none() {
            self.problem(
                doc.line,
                format!(
                    "a workflow is a mapping (name, nodes, steps), not {}",
                    doc.describe()
                ),
            );
            return None;
        }
        self.keys(doc, TOP, &[], "the workflow");
        let mut ignored = Vec::new();
        for (key, value) in doc.entries().unwrap_or_default() {
            match key.name.as_str() {
                "remote_nodes" => self.problem(
                    key.line,
                    "`remote_nodes` is not supported: this runner starts its own nodes on 127.0.0.1",
                ),
                "topology" => self.problem(
                    key.line,
                    "`topology` is not supported: nodes run on 127.0.0.1 and find each other through invitations",
                ),
                "bootstrap_nodes" if value.items().is_some_and(|i| !i.is_empty()) => self.problem(
                    key.line,
                    "`bootstrap_nodes` is not supported: the runner's nodes talk only to each other",
                ),
                "auth_service" if value.kind == Kind::Bool(true) => self.problem(
                    key.line,
                    "`auth_service` is Docker-only; nodes here authenticate with their embedded auth",
                ),
                "auth_mode" if value.as_str().is_some_and(|m| m != "embedded") => self.problem(
                    key.line,
                    "`auth_mode` may only be `embedded` here: the runner's nodes use their embedded auth",
                ),
                "force_pull_image" | "auth_image" | "auth_use_cached" | "webui_use_cached"
                | "rust_backtrace" | "restart" | "nuke_on_start" | "nuke_on_end"
                | "stop_all_nodes" | "no_docker" | "e2e_mode" | "preserve_default_bootstrap" => {
                    ignored.push(key.name.clone())
                }
                _ => {}
            }
        }
        let wait_timeout = doc
            .get("wait_timeout")
            .and_then(number)
            .filter(|s| *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(Duration::from_secs(60));
        let nodes = match doc.get("nodes") {
            Some(n) => self.nodes(n, &mut ignored),
            None => Vec::new(),
        };
        self.node_names = nodes.iter().map(|n| n.name.clone()).collect();
        let steps = match doc.get("steps") {
            Some(s) => self.steps(s, "steps"),
            None => Vec::new(),
        };
        Some(Workflow {
            name: doc
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("workflow")
                .to_string(),
            file: file.to_path_buf(),
            nodes,
            wait_timeout,
            steps,
            binary_path: doc
                .get("binary_path")
                .and_then(Node::as_str)
                .map(str::to_string),
            log_level: doc
                .get("log_level")
                .and_then(Node::as_str)
                .map(str::to_string),
            ignored,
        })
    }

    fn nodes(&mut self, n: &Node, ignored: &mut Vec<String>) -> Vec<NodeSpec> {
        let mut ports = Vec::new();
        let nodes = self.node_specs(n, ignored, &mut ports);
        // No two nodes (nor one node's two ports) on the same port.
        let mut seen: Vec<(u16, usize)> = Vec::new();
        for (port, line, what) in ports {
            if let Some((_, first)) = seen.iter().find(|(p, _)| *p == port) {
                self.problem(
                    line,
                    format!("{what}: port {port} is already taken (line {first})"),
                );
            } else {
                seen.push((port, line));
            }
        }
        nodes
    }

    /// A node name or `prefix` must be a plain file name: it names the
    /// node's home under the run's directory.
    fn node_name(&mut self, name: &str, line: usize, what: &str) -> bool {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.problem(
                line,
                format!("{what} `{name}` may hold only letters, digits, `_` and `-`"),
            );
        }
        ok
    }

    /// A port, `base + offset`, if it is one (1 to 65535); a problem at
    /// `line` otherwise.
    fn port(&mut self, v: &Node, offset: i64, what: &str) -> Option<u16> {
        // Not a number: the key's check says so.
        let p = integer(v)?;
        match p.checked_add(offset).and_then(|p| u16::try_from(p).ok()) {
            Some(port) if port > 0 => Some(port),
            _ if offset == 0 => {
                self.problem(v.line, format!("{what} {p} is not a port (1 to 65535)"));
                None
            }
            _ => {
                self.problem(
                    v.line,
                    format!("{what} {p} + {offset} is not a port (1 to 65535)"),
                );
                None
            }
        }
    }

    fn node_specs(
        &mut self,
        n: &Node,
        ignored: &mut Vec<String>,
        ports: &mut Vec<(u16, usize, String)>,
    ) -> Vec<NodeSpec> {
        let Some(entries) = n.entries() else {
            self.problem(
                n.line,
                format!(
                    "`nodes` is a mapping (`count: N` or one entry per node), not {}",
                    n.describe()
                ),
            );
            return Vec::new();
        };
        if n.get("count").is_some() {
            self.keys(n, NODES_COUNT, &[], "`nodes`");
            if let Some(c) = n.get("config_path") {
                self.problem(
                    c.line,
                    "`config_path` is not supported: the runner writes each node's config",
                );
            }
            for docker in [
                "image",
                "use_image_entrypoint",
                "network_admin",
                "mdns",
                "chain_id",
            ] {
                if n.get(docker).is_some() {
                    ignored.push(format!("nodes.{docker}"));
                }
            }
            let count = n.get("count").and_then(integer).unwrap_or(0);
            if !(1..=64).contains(&count) {
                self.problem(n.line, "`nodes.count` must be between 1 and 64");
                return Vec::new();
            }
            let prefix = n
                .get("prefix")
                .and_then(Node::as_str)
                .unwrap_or("calimero-node");
            if let Some(p) = n.get("prefix") {
                self.node_name(prefix, p.line, "`prefix`");
            }
            let mut out = Vec::new();
            for i in 0..count {
                let name = format!("{prefix}-{}", i + 1);
                let mut port = |key: &str| {
                    let v = n.get(key)?;
                    let what = format!("`nodes.{key}` (node `{name}`)");
                    let p = self.port(v, i, &what)?;
                    ports.push((p, v.line, what));
                    Some(p)
                };
                let server_port = port("base_rpc_port");
                let swarm_port = port("base_port");
                out.push(NodeSpec {
                    name,
                    server_port,
                    swarm_port,
                });
            }
            return out;
        }
        let mut out = Vec::new();
        for (key, spec) in entries {
            if spec.entries().is_none() && spec.kind != Kind::Null {
                self.problem(
                    key.line,
                    format!(
                        "node `{}`: expected a mapping of its settings (port, rpc_port), not {}; \
                         for N identical nodes write `count: N`",
                        key.name,
                        spec.describe()
                    ),
                );
                continue;
            }
            if spec.entries().is_some() {
                self.keys(spec, NODE_EXPLICIT, &[], &format!("node `{}`", key.name));
            }
            if let Some(c) = spec.get("config_path") {
                self.problem(
                    c.line,
                    "`config_path` is not supported: the runner writes each node's config",
                );
            }
            if let Some(t) = spec.get("mock_tee")
                && t.kind == Kind::Bool(true)
            {
                self.problem(t.line, "`mock_tee` is not supported");
            }
            self.node_name(&key.name, key.line, "node name");
            let mut port = |k: &str| {
                let v = spec.get(k)?;
                let what = format!("node `{}`: `{k}`", key.name);
                let p = self.port(v, 0, &what)?;
                ports.push((p, v.line, what));
                Some(p)
            };
            out.push(NodeSpec {
                name: key.name.clone(),
                server_port: port("rpc_port"),
                swarm_port: port("port"),
            });
        }
        if out.is_empty() {
            self.problem(n.line, "`nodes` declares no node");
        }
        out
    }

    /// Checks a list of steps.
    fn steps(&mut self, n: &Node, what: &str) -> Vec<Step> {
        let Some(items) = n.items() else {
            self.problem(
                n.line,
                format!("`{what}` is a list of steps, not {}", n.describe()),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(n.line, format!("`{what}` has no steps"));
        }
        items.iter().filter_map(|s| self.step(s)).collect()
    }

    fn step(&mut self, n: &Node) -> Option<Step> {
        if n.entries().is_none() {
            self.problem(
                n.line,
                format!("a step is a mapping with a `type`, not {}", n.describe()),
            );
            return None;
        }
        let Some(written) = n.get("type").and_then(Node::as_str) else {
            self.problem(n.line, "this step has no `type`");
            return None;
        };
        let Some((ty, fields)) = step_spec(written) else {
            let line = n.get("type").map_or(n.line, |t| t.line);
            if ELSEWHERE.contains(&written) {
                self.problem(
                    line,
                    format!("step type `{written}` is merobox's but this runner does not run it"),
                );
            } else {
                self.problem(
                    line,
                    format!("unknown step type `{written}`{}", suggest(written, KNOWN)),
                );
            }
            return None;
        };
        let what = format!("step `{written}`");
        self.keys(n, fields, COMMON, &what);
        self.common(n, &what);
        self.special(ty, n, &what);
        let mut cfg = match n.to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let nested = match ty {
            "repeat" => {
                cfg.remove("steps");
                Nested::Steps(
                    n.get("steps")
                        .map(|s| self.steps(s, "steps"))
                        .unwrap_or_default(),
                )
            }
            "parallel" => {
                cfg.remove("groups");
                Nested::Groups(n.get("groups").map(|g| self.groups(g)).unwrap_or_default())
            }
            "fuzzy_test" => {
                cfg.remove("operations");
                Nested::Ops(n.get("operations").map(|o| self.ops(o)).unwrap_or_default())
            }
            _ => Nested::None,
        };
        Some(Step {
            line: n.line,
            ty,
            cfg,
            nested,
        })
    }

    fn groups(&mut self, n: &Node) -> Vec<Group> {
        let Some(items) = n.items() else {
            self.problem(n.line, "`groups` is a list of `{name, steps}`");
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(n.line, "`groups` is empty");
        }
        let mut out = Vec::new();
        for g in items {
            if g.entries().is_none() {
                self.problem(g.line, "a group is a mapping `{name, steps}`");
                continue;
            }
            self.keys(
                g,
                &[("name", K::Str, false), ("steps", K::Steps, true)],
                &[],
                "a group of `parallel`",
            );
            out.push(Group {
                name: g.get("name").and_then(Node::as_str).map(str::to_string),
                steps: g
                    .get("steps")
                    .map(|s| self.steps(s, "steps"))
                    .unwrap_or_default(),
            });
        }
        out
    }

    fn ops(&mut self, n: &Node) -> Vec<Op> {
        let Some(items) = n.items() else {
            self.problem(n.line, "`operations` is a list of `{name, weight, steps}`");
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(n.line, "`operations` is empty");
        }
        let mut out = Vec::new();
        for o in items {
            if o.entries().is_none() {
                self.problem(o.line, "an operation is a mapping `{name, weight, steps}`");
                continue;
            }
            self.keys(
                o,
                &[
                    ("name", K::Str, true),
                    ("weight", K::Num, true),
                    ("steps", K::Steps, true),
                ],
                &[],
                "an operation of `fuzzy_test`",
            );
            let weight = o.get("weight").and_then(number).unwrap_or(0.0);
            if weight <= 0.0 || !weight.is_finite() {
                self.problem(o.line, "an operation's `weight` must be a positive number");
            }
            let steps = o
                .get("steps")
                .map(|s| self.steps(s, "steps"))
                .unwrap_or_default();
            for s in &steps {
                if matches!(s.ty, "fuzzy_test" | "parallel") {
                    self.problem(
                        s.line,
                        format!("`{}` cannot run inside a fuzzy operation", s.ty),
                    );
                }
            }
            out.push(Op {
                name: o
                    .get("name")
                    .and_then(Node::as_str)
                    .unwrap_or("op")
                    .to_string(),
                weight,
                steps,
            });
        }
        out
    }

    /// Checks a mapping's keys against `fields` (and `common`): unknown
    /// keys, missing required ones, and types.
    fn keys(&mut self, n: &Node, fields: Fields, common: Fields, what: &str) {
        let all = || fields.iter().chain(common.iter());
        for (key, value) in n.entries().unwrap_or_default() {
            match all().find(|(name, ..)| *name == key.name) {
                None => {
                    let names: Vec<&str> = all().map(|(name, ..)| *name).collect();
                    self.problem(
                        key.line,
                        format!(
                            "{what}: unknown key `{}`{}; its keys are: {}",
                            key.name,
                            suggest(&key.name, &names),
                            fields
                                .iter()
                                .map(|(n, ..)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                Some((name, kind, _)) => self.kind(value, *kind, &format!("{what}: `{name}`")),
            }
        }
        for (name, _, required) in all() {
            if *required && n.get(name).is_none() {
                self.problem(n.line, format!("{what}: `{name}` is required"));
            }
        }
    }

    /// Checks that `v` is of kind `k`; a placeholder is of every kind.
    fn kind(&mut self, v: &Node, k: K, what: &str) {
        if v.as_str().is_some_and(|s| s.contains("{{")) && k != K::Steps {
            return;
        }
        let ok = match k {
            K::Any => true,
            K::Str => matches!(v.kind, Kind::Str(_) | Kind::Int(_) | Kind::Float(_)),
            // Strings holding the value pass too: `${VAR}` expands to text.
            K::Bool => {
                matches!(v.kind, Kind::Bool(_)) || matches!(v.as_str(), Some("true" | "false"))
            }
            K::Int => integer(v).is_some() && !matches!(v.kind, Kind::Float(_)),
            K::Num => number(v).is_some(),
            K::List | K::Steps => matches!(v.kind, Kind::Seq(_)),
            K::Map => matches!(v.kind, Kind::Map(_)),
            K::Node => {
                if let Some(name) = v.as_str() {
                    self.node_ref(name, v.line, what);
                    true
                } else {
                    false
                }
            }
            K::Nodes => match &v.kind {
                Kind::Str(name) => {
                    self.node_ref(name, v.line, what);
                    true
                }
                Kind::Seq(items) => {
                    for i in items {
                        match i.as_str() {
                            Some(name) if !name.contains("{{") => self.node_ref(name, i.line, what),
                            Some(_) => {}
                            None => self.problem(i.line, format!("{what}: node names are strings")),
                        }
                    }
                    true
                }
                _ => false,
            },
        };
        if !ok {
            let want = match k {
                K::Str => "a string",
                K::Bool => "true or false",
                K::Int => "an integer",
                K::Num => "a number",
                K::List | K::Steps => "a list",
                K::Map => "a mapping",
                K::Node => "a node name",
                K::Nodes => "a node name or a list of them",
                K::Any => "anything",
            };
            self.problem(
                v.line,
                format!("{what} must be {want}, not {}", v.describe()),
            );
        }
    }

    /// A literal node name must be one the workflow declares.
    fn node_ref(&mut self, name: &str, line: usize, what: &str) {
        if name.contains("{{") || self.node_names.is_empty() {
            return;
        }
        if !self.node_names.iter().any(|n| n == name) {
            let names: Vec<&str> = self.node_names.iter().map(String::as_str).collect();
            self.problem(
                line,
                format!(
                    "{what}: no node is named `{name}`{}; the nodes are: {}",
                    suggest(name, &names),
                    names.join(", ")
                ),
            );
        }
    }

    /// Rules every step shares.
    fn common(&mut self, n: &Node, what: &str) {
        if let Some(e) = n.get("expected_error")
            && n.get("expected_failure").map(|f| &f.kind) != Some(&Kind::Bool(true))
        {
            self.problem(
                e.line,
                format!("{what}: `expected_error` needs `expected_failure: true` (on its own it asserts nothing)"),
            );
        }
        if let Some(outputs) = n.get("outputs") {
            for (key, spec) in outputs.entries().unwrap_or_default() {
                let ok = match &spec.kind {
                    Kind::Str(_) => true,
                    Kind::Map(_) => spec.get("field").and_then(Node::as_str).is_some(),
                    _ => false,
                };
                if !ok {
                    self.problem(
                        key.line,
                        format!(
                            "{what}: output `{}` must name a field, or be a mapping with `field`",
                            key.name
                        ),
                    );
                }
            }
        }
    }

    /// Rules of particular step types.
    fn special(&mut self, ty: &str, n: &Node, what: &str) {
        let has = |k: &str| n.get(k).is_some();
        let literal = |k: &str| {
            n.get(k)
                .and_then(Node::as_str)
                .filter(|s| !s.contains("{{"))
        };
        match ty {
            "install_application" if !has("path") && !has("url") => {
                self.problem(n.line, format!("{what}: give `path` or `url`"));
            }
            "create_namespace_invitation" | "join_namespace"
                if !has("namespace_id") && !has("group_id") =>
            {
                self.problem(
                    n.line,
                    format!("{what}: `namespace_id` (or `group_id`) is required"),
                );
            }
            "wait_for_sync" => {
                if !has("context_id") && !has("group_id") {
                    self.problem(
                        n.line,
                        format!("{what}: give `context_id` or `group_id` (or both)"),
                    );
                }
                if let Some(items) = n.get("nodes").and_then(Node::items) {
                    let mut names: Vec<&str> = items.iter().filter_map(Node::as_str).collect();
                    names.sort_unstable();
                    names.dedup();
                    if names.len() < 2 || names.len() != items.len() {
                        self.problem(
                            n.line,
                            format!("{what}: `nodes` must list at least two different nodes"),
                        );
                    }
                }
                if let Some(expect) = n.get("expect") {
                    self.keys(
                        expect,
                        &[
                            ("method", K::Str, true),
                            ("args", K::Map, false),
                            ("equals", K::Any, true),
                        ],
                        &[],
                        &format!("{what}: `expect`"),
                    );
                    if !has("context_id") {
                        self.problem(expect.line, format!("{what}: `expect` needs `context_id`"));
                    }
                }
            }
            "stop_node" | "kill_node" | "pause_node" | "resume_node" | "start_node"
            | "restart_node"
                if has("node") == has("nodes") =>
            {
                self.problem(
                    n.line,
                    format!("{what}: give `node` or `nodes` (one of them)"),
                );
            }
            "repeat" if n.get("count").and_then(integer).is_some_and(|c| c < 1) => {
                self.problem(n.line, format!("{what}: `count` must be at least 1"));
            }
            "parallel" => {
                if let Some(m) = literal("failure_mode")
                    && !["fail-slow", "fail-fast", "continue-on-error"].contains(&m)
                {
                    self.problem(
                        n.line,
                        format!(
                            "{what}: `failure_mode` is fail-slow, fail-fast or continue-on-error"
                        ),
                    );
                }
                if let Some(m) = literal("mode")
                    && !["burst", "sustained", "mixed"].contains(&m)
                {
                    self.problem(
                        n.line,
                        format!("{what}: `mode` is burst, sustained or mixed"),
                    );
                }
            }
            "script" => {
                if let Some(t) = literal("target")
                    && !["image", "nodes", "local"].contains(&t)
                {
                    self.problem(n.line, format!("{what}: `target` is image, nodes or local"));
                }
            }
            "assert" | "json_assert" => {
                for s in n
                    .get("statements")
                    .and_then(Node::items)
                    .unwrap_or_default()
                {
                    match &s.kind {
                        Kind::Str(_) => {}
                        Kind::Map(_) => self.keys(
                            s,
                            &[("statement", K::Str, true), ("message", K::Str, false)],
                            &[],
                            &format!("{what}: a statement"),
                        ),
                        _ => self.problem(
                            s.line,
                            format!("{what}: a statement is a string or `{{statement, message}}`"),
                        ),
                    }
                }
            }
            "assert_api_response" if !has("match") && !has("present") && !has("absent") => {
                self.problem(
                    n.line,
                    format!("{what}: give at least one of `match`, `present`, `absent`"),
                );
            }
            "update_member_role" => {
                if let Some(r) = literal("role")
                    && role(r).is_none()
                {
                    self.problem(
                        n.line,
                        format!("{what}: `role` is Admin, Member or ReadOnly"),
                    );
                }
            }
            "set_subgroup_visibility" => {
                if let Some(v) = literal("visibility")
                    && !["open", "restricted"].contains(&v.to_ascii_lowercase().as_str())
                {
                    self.problem(
                        n.line,
                        format!("{what}: `visibility` is open or restricted"),
                    );
                }
            }
            "fuzzy_test" => {
                if has("duration_minutes") == has("duration_seconds") {
                    self.problem(
                        n.line,
                        format!("{what}: give `duration_minutes` (or `duration_seconds`)"),
                    );
                }
                for entry in n.get("nodes").and_then(Node::items).unwrap_or_default() {
                    if entry.entries().is_some() {
                        self.keys(
                            entry,
                            &[("name", K::Node, true), ("executor_key", K::Str, false)],
                            &[],
                            &format!("{what}: a node"),
                        );
                    } else {
                        self.problem(
                            entry.line,
                            format!("{what}: a node is `{{name, executor_key?}}`"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// merobox's role spellings, as the node spells them.
pub(crate) fn role(r: &str) -> Option<&'static str> {
    match r.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "admin" => Some("Admin"),
        "member" => Some("Member"),
        "readonly" => Some("ReadOnly"),
        _ => None,
    }
}

/// An integer, or a string holding one (what `${VAR}` expands to).
fn integer(n: &Node) -> Option<i64> {
    match &n.kind {
        Kind::Int(i) => Some(*i),
        Kind::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A number, or a string holding one.
fn number(n: &Node) -> Option<f64> {
    match &n.kind {
        Kind::Int(i) => Some(*i as f64),
        Kind::Float(f) => Some(*f),
        Kind::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// ` (did you mean `x`?)` when a known name is close to `word`.
fn suggest(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<Workflow, SpecError> {
        load(Path::new("wf.yml"), yaml, &|_| None)
    }

    /// A workflow of two nodes (`n-1`, `n-2`) with `steps` (YAML, indented
    /// as list items under `steps:`).
    fn with_steps(steps: &str) -> String {
        format!("name: t\nnodes:\n  count: 2\n  prefix: n\nsteps:\n{steps}")
    }

    fn problems(yaml: &str) -> Vec<(usize, String)> {
        match check(yaml) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| (p.line, p.message))
                .collect(),
        }
    }

    #[test]
    fn node_names_and_prefixes_are_plain_names() {
        let p = problems("name: t\nnodes:\n  count: 2\n  prefix: ../x\nsteps: []\n");
        assert!(
            p.iter()
                .any(|(l, m)| *l == 4 && m.contains("`prefix` `../x`")),
            "{p:?}"
        );
        let p = problems("name: t\nnodes:\n  /tmp/x: {}\n  ok_1-a: {}\nsteps: []\n");
        assert!(
            p.iter()
                .any(|(l, m)| *l == 3 && m.contains("node name `/tmp/x`")),
            "{p:?}"
        );
        assert!(!p.iter().any(|(_, m)| m.contains("ok_1-a")), "{p:?}");
    }

    #[test]
    fn ports_out_of_range_overflowing_or_taken_are_problems() {
        let p = problems(
            "name: t\nnodes:\n  count: 2\n  prefix: n\n  base_rpc_port: 65535\n  base_port: 9223372036854775807\nsteps: []\n",
        );
        assert!(
            p.iter()
                .any(|(l, m)| *l == 5 && m.contains("65535 + 1 is not a port")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|(l, m)| *l == 6 && m.contains("is not a port")),
            "{p:?}"
        );
        let p = problems(
            "name: t\nnodes:\n  a:\n    rpc_port: 70000\n    port: 3000\n  b:\n    rpc_port: 3000\nsteps: []\n",
        );
        assert!(
            p.iter()
                .any(|(l, m)| *l == 4 && m.contains("70000 is not a port")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|(l, m)| *l == 7 && m.contains("port 3000 is already taken (line 5)")),
            "{p:?}"
        );
    }

    /// One step of every type this runner runs, with its required keys,
    /// and the canonical type it is known by.
    const EVERY: &[(&str, &str, &str)] = &[
        (
            "install_application",
            "node: n-1\n    path: a.wasm",
            "install_application",
        ),
        (
            "install_application",
            "node: n-1\n    url: http://127.0.0.1:1/a.wasm\n    dev: true",
            "install_application",
        ),
        (
            "uninstall_application",
            "node: n-1\n    application_id: A",
            "uninstall_application",
        ),
        (
            "get_application",
            "node: n-1\n    application_id: A",
            "get_application",
        ),
        (
            "list_application_versions",
            "node: n-1\n    application_id: A",
            "list_application_versions",
        ),
        (
            "create_namespace",
            "node: n-1\n    application_id: A\n    params: {a: 1}",
            "create_namespace",
        ),
        (
            "create_group",
            "node: n-1\n    application_id: A",
            "create_namespace",
        ),
        (
            "create_namespace_invitation",
            "node: n-1\n    namespace_id: N\n    role: read-only",
            "create_namespace_invitation",
        ),
        (
            "create_group_invitation",
            "node: n-1\n    group_id: N",
            "create_namespace_invitation",
        ),
        (
            "invite",
            "node: n-1\n    group_id: N\n    recursive: true",
            "create_namespace_invitation",
        ),
        (
            "invite_identity",
            "node: n-1\n    namespace_id: N",
            "create_namespace_invitation",
        ),
        (
            "invite_open",
            "node: n-1\n    namespace_id: N",
            "create_namespace_invitation",
        ),
        (
            "join_namespace",
            "node: n-2\n    namespace_id: N\n    invitation: '{{inv}}'",
            "join_namespace",
        ),
        (
            "join_group",
            "node: n-2\n    group_id: N\n    invitation: '{{inv}}'",
            "join_namespace",
        ),
        (
            "join",
            "node: n-2\n    namespace_id: N\n    invitation: '{{inv}}'",
            "join_namespace",
        ),
        (
            "join_open",
            "node: n-2\n    namespace_id: N\n    invitation: '{{inv}}'",
            "join_namespace",
        ),
        (
            "create_group_in_namespace",
            "node: n-1\n    namespace_id: N\n    group_name: g\n    visibility: open",
            "create_group_in_namespace",
        ),
        ("list_namespaces", "node: n-1", "list_namespaces"),
        ("create_identity", "node: n-1", "create_identity"),
        ("node_identity", "node: n-1", "node_identity"),
        (
            "list_namespace_groups",
            "node: n-1\n    namespace_id: N",
            "list_namespace_groups",
        ),
        (
            "leave_namespace",
            "node: n-2\n    namespace_id: N",
            "leave_namespace",
        ),
        (
            "delete_namespace",
            "node: n-1\n    namespace_id: N",
            "delete_namespace",
        ),
        (
            "set_subgroup_visibility",
            "node: n-1\n    group_id: G\n    visibility: Restricted",
            "set_subgroup_visibility",
        ),
        (
            "set_default_visibility",
            "node: n-1\n    group_id: G\n    visibility: open",
            "set_subgroup_visibility",
        ),
        (
            "join_subgroup_inheritance",
            "node: n-2\n    group_id: G",
            "join_subgroup_inheritance",
        ),
        (
            "list_group_members",
            "node: n-1\n    group_id: G",
            "list_group_members",
        ),
        (
            "list_group_contexts",
            "node: n-1\n    group_id: G",
            "list_group_contexts",
        ),
        (
            "create_context",
            "node: n-1\n    application_id: A\n    group_id: G\n    params: '{\"a\": 1}'",
            "create_context",
        ),
        (
            "join_context",
            "node: n-2\n    context_id: C",
            "join_context",
        ),
        (
            "delete_context",
            "node: n-1\n    context_id: C",
            "delete_context",
        ),
        (
            "create_mesh",
            "context_node: n-1\n    application_id: A\n    nodes: [n-2]",
            "create_mesh",
        ),
        (
            "call",
            "node: n-1\n    context_id: C\n    method: set\n    args: {key: a, value: b}\n    executor_public_key: K",
            "call",
        ),
        ("wait", "seconds: 1\n    message: hi", "wait"),
        (
            "wait_for_sync",
            "context_id: C\n    nodes: [n-1, n-2]\n    timeout: 30\n    trigger_sync: true",
            "wait_for_sync",
        ),
        (
            "wait_for_sync",
            "group_id: G\n    nodes: [n-1, n-2]\n    check_interval: 0.5",
            "wait_for_sync",
        ),
        (
            "wait_for_sync",
            "context_id: C\n    nodes: [n-1, n-2]\n    expect: {method: get, args: {key: a}, equals: {output: b}}",
            "wait_for_sync",
        ),
        (
            "repeat",
            "count: 2\n    steps:\n      - type: wait\n        seconds: 0",
            "repeat",
        ),
        (
            "parallel",
            "failure_mode: fail-fast\n    groups:\n      - name: a\n        steps:\n          - type: wait\n            seconds: 0",
            "parallel",
        ),
        (
            "script",
            "script: echo hi\n    target: local\n    args: [a]",
            "script",
        ),
        (
            "assert",
            "statements:\n      - 'is_set({{x}})'\n      - statement: '1 == 1'\n        message: m\n    non_blocking: true",
            "assert",
        ),
        (
            "json_assert",
            "statements:\n      - 'json_subset({{x}}, {\"a\": 1})'",
            "json_assert",
        ),
        (
            "assert_api_response",
            "node: n-1\n    path: /admin-api/health\n    match: {status: alive}\n    present: [status]\n    absent: [nope]",
            "assert_api_response",
        ),
        (
            "assert_log_present",
            "nodes: [n-1]\n    patterns: [node running]\n    min_matches: 1\n    regex: false",
            "assert_log_present",
        ),
        (
            "assert_log_absent",
            "nodes: []\n    patterns: [panicked]\n    case_sensitive: false\n    tail_lines: 100",
            "assert_log_absent",
        ),
        (
            "add_group_members",
            "node: n-1\n    group_id: G\n    members: [{identity: X, role: Member}]",
            "add_group_members",
        ),
        (
            "remove_group_members",
            "node: n-1\n    group_id: G\n    members: [X]",
            "remove_group_members",
        ),
        (
            "update_member_role",
            "node: n-1\n    group_id: G\n    member_id: X\n    role: read_only",
            "update_member_role",
        ),
        (
            "set_member_capabilities",
            "node: n-1\n    group_id: G\n    member_id: X\n    capabilities: 6",
            "set_member_capabilities",
        ),
        (
            "get_member_capabilities",
            "node: n-1\n    group_id: G\n    member_id: X",
            "get_member_capabilities",
        ),
        ("stop_node", "nodes: n-2", "stop_node"),
        (
            "start_node",
            "nodes: [n-2]\n    wait_for_ready: true\n    wait_timeout: 30",
            "start_node",
        ),
        (
            "restart_node",
            "node: n-2\n    signal: kill",
            "restart_node",
        ),
        ("kill_node", "node: n-2", "kill_node"),
        ("pause_node", "node: n-2", "pause_node"),
        ("resume_node", "node: n-2", "resume_node"),
        ("pause_container", "container: n-2", "pause_container"),
        ("unpause_container", "container: n-2", "unpause_container"),
        (
            "restart_container",
            "container: n-2\n    wait_healthy: true",
            "restart_container",
        ),
        (
            "upgrade_group",
            "node: n-1\n    group_id: G\n    target_application_id: A2\n    cascade: false",
            "upgrade_group",
        ),
        (
            "get_group_upgrade_status",
            "node: n-1\n    group_id: G",
            "get_group_upgrade_status",
        ),
        (
            "retry_group_upgrade",
            "node: n-1\n    group_id: G",
            "retry_group_upgrade",
        ),
        (
            "fuzzy_test",
            "duration_minutes: 0.1\n    context_id: C\n    nodes: [{name: n-1}, {name: n-2, executor_key: K}]\n    operations:\n      - name: op\n        weight: 1\n        steps:\n          - type: call\n            node: '{{random_node}}'\n            context_id: C\n            method: get",
            "fuzzy_test",
        ),
        (
            "cascade_namespace_application",
            "node: n-1\n    namespace_id: N\n    target_application_id: A",
            "cascade_namespace_application",
        ),
        (
            "get_cascade_status",
            "node: n-1\n    namespace_id: N",
            "get_cascade_status",
        ),
        (
            "get_migration_status",
            "node: n-1\n    namespace_id: N",
            "get_migration_status",
        ),
        (
            "abort_migration",
            "node: n-1\n    namespace_id: N",
            "abort_migration",
        ),
        (
            "assert_cascade_complete",
            "node: n-1\n    namespace_id: N\n    timeout_seconds: 60\n    poll_interval: 1",
            "assert_cascade_complete",
        ),
        (
            "assert_migration_complete",
            "node: n-1\n    namespace_id: N\n    timeout_seconds: 60\n    poll_interval: 1",
            "assert_migration_complete",
        ),
        (
            "resync_context",
            "node: n-1\n    context_id: C\n    force: true",
            "resync_context",
        ),
    ];

    #[test]
    fn every_step_type_parses_with_its_keys() {
        let mut steps = String::new();
        for (ty, body, _) in EVERY {
            steps.push_str(&format!(
                "  - type: {ty}\n    name: a {ty}\n    expected_failure: false\n    {body}\n"
            ));
        }
        let wf = check(&with_steps(&steps)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(wf.steps.len(), EVERY.len());
        for (step, (written, _, canonical)) in wf.steps.iter().zip(EVERY) {
            assert_eq!(step.ty, *canonical, "{written}");
            assert_eq!(step.label(), format!("a {written}"));
        }
        // Every type the runner names is in the table above, once at least.
        for known in KNOWN {
            assert!(
                EVERY.iter().any(|(t, ..)| t == known),
                "`{known}` has no parsing test"
            );
        }
        let Nested::Steps(inner) = &wf.steps[37].nested else {
            panic!("repeat lost its steps");
        };
        assert_eq!(inner[0].ty, "wait");
        let fuzzy = wf.steps.iter().find(|s| s.ty == "fuzzy_test").unwrap();
        let Nested::Ops(ops) = &fuzzy.nested else {
            panic!("fuzzy_test lost its operations");
        };
        assert_eq!((ops[0].name.as_str(), ops[0].weight), ("op", 1.0));
    }

    #[test]
    fn migration_steps_parse_with_their_keys() {
        for (ty, body) in [
            (
                "cascade_namespace_application",
                "node: n-1\n    namespace_id: N\n    target_application_id: A",
            ),
            ("get_cascade_status", "node: n-1\n    namespace_id: N"),
            (
                "assert_cascade_complete",
                "node: n-1\n    namespace_id: N\n    timeout_seconds: 60",
            ),
            ("get_migration_status", "node: n-1\n    namespace_id: N"),
            (
                "assert_migration_complete",
                "node: n-1\n    namespace_id: N\n    poll_interval: 1",
            ),
            ("abort_migration", "node: n-1\n    namespace_id: N"),
            (
                "resync_context",
                "node: n-1\n    context_id: C\n    force: true",
            ),
        ] {
            let found = problems(&with_steps(&format!("  - type: {ty}\n    {body}\n")));
            assert!(found.is_empty(), "{ty}: {found:?}");
            // Their keys are checked too.
            let found = problems(&with_steps(&format!(
                "  - type: {ty}\n    {body}\n    colour: red\n"
            )));
            assert!(
                found
                    .iter()
                    .any(|(_, m)| m.contains("unknown key `colour`")),
                "{found:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_line_wherever_they_are() {
        let yaml = "\
name: t
colour: blue
nodes:
  count: 2
  prefix: n
  flavour: x
steps:
  - type: call
    node: n-1
    context_id: C
    metod: get
    method: get
  - type: repeat
    count: 1
    steps:
      - type: wait
        seconds: 1
        secs: 2
  - type: parallel
    groups:
      - name: a
        stepz: []
        steps:
          - type: wait
            seconds: 0
  - type: fuzzy_test
    duration_seconds: 5
    context_id: C
    nodes: [{name: n-1, key: k}]
    operations:
      - name: op
        weight: 1
        wieght: 2
        steps:
          - type: wait
            seconds: 0
";
        let found = problems(yaml);
        let at = |line: usize, needle: &str| {
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(needle)),
                "no `{needle}` at line {line}: {found:#?}"
            );
        };
        at(2, "the workflow: unknown key `colour`");
        at(6, "`nodes`: unknown key `flavour`");
        at(
            11,
            "step `call`: unknown key `metod` (did you mean `method`?)",
        );
        at(18, "step `wait`: unknown key `secs`");
        at(
            22,
            "a group of `parallel`: unknown key `stepz` (did you mean `steps`?)",
        );
        at(29, "unknown key `key`");
        at(33, "unknown key `wieght` (did you mean `weight`?)");
        assert_eq!(found.len(), 7, "{found:#?}");
    }

    #[test]
    fn bad_yaml_is_reported_with_its_line() {
        let e = check("name: t\nnodes:\n  count: 1\nsteps:\n  - type: wait\n    seconds: [1\n")
            .unwrap_err();
        assert!(e.problems[0].line >= 6, "{e}");
        assert!(e.to_string().contains("wf.yml:"), "{e}");
        assert!(e.problems[0].message.starts_with("invalid YAML"), "{e}");
        let e = check("- just\n- a list\n").unwrap_err();
        assert!(
            e.problems[0].message.contains("a workflow is a mapping"),
            "{e}"
        );
        let e = check("").unwrap_err();
        assert!(e.problems[0].message.contains("empty"), "{e}");
    }

    #[test]
    fn required_keys_types_and_node_names_are_checked() {
        let found = problems(&with_steps(
            "  - type: call\n    node: n-3\n    context_id: C\n  - type: wait\n    seconds: soon\n  - type: repeat\n    count: 0\n    steps: []\n  - type: wiat\n  - type: upload_blob\n    node: n-1\n  - type: install_application\n    node: n-1\n  - type: wait_for_sync\n    nodes: [n-1]\n  - type: stop_node\n",
        ));
        let has = |line: usize, needle: &str| {
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(needle)),
                "no `{needle}` at line {line}: {found:#?}"
            );
        };
        has(6, "`method` is required");
        has(
            7,
            "no node is named `n-3` (did you mean `n-1`?); the nodes are: n-1, n-2",
        );
        has(10, "`seconds` must be a number, not a string");
        has(11, "`count` must be at least 1");
        has(13, "`steps` has no steps");
        has(14, "unknown step type `wiat` (did you mean `wait`?)");
        has(
            15,
            "`upload_blob` is merobox's but this runner does not run it",
        );
        has(17, "give `path` or `url`");
        has(19, "give `context_id` or `group_id`");
        has(19, "at least two different nodes");
        has(21, "give `node` or `nodes`");
    }

    #[test]
    fn expected_error_needs_expected_failure_and_outputs_name_fields() {
        let found = problems(&with_steps(
            "  - type: wait\n    seconds: 0\n    expected_error: boom\n  - type: wait\n    seconds: 0\n    outputs:\n      x: [1]\n",
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].1.contains("needs `expected_failure: true`"),
            "{found:?}"
        );
        assert!(
            found[1].1.contains("output `x` must name a field"),
            "{found:?}"
        );
        assert!(problems(&with_steps(
            "  - type: wait\n    seconds: 0\n    expected_failure: true\n    expected_error: boom\n"
        ))
        .is_empty());
    }

    #[test]
    fn nodes_come_in_merobox_count_and_explicit_forms() {
        let wf = check("name: t\nnodes:\n  count: 3\n  base_port: 2428\n  base_rpc_port: 2528\n  image: x\nsteps:\n  - type: wait\n    seconds: 0\n").unwrap();
        assert_eq!(
            wf.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["calimero-node-1", "calimero-node-2", "calimero-node-3"]
        );
        assert_eq!(
            (wf.nodes[2].server_port, wf.nodes[2].swarm_port),
            (Some(2530), Some(2430))
        );
        assert!(wf.ignored.contains(&"nodes.image".to_string()));
        let wf = check("name: t\nnodes:\n  alpha:\n    port: 7080\n    rpc_port: 7180\n  beta: {}\nsteps:\n  - type: wait\n    seconds: 0\n").unwrap();
        assert_eq!(
            wf.nodes,
            [
                NodeSpec {
                    name: "alpha".into(),
                    server_port: Some(7180),
                    swarm_port: Some(7080)
                },
                NodeSpec {
                    name: "beta".into(),
                    server_port: None,
                    swarm_port: None
                },
            ]
        );
        let found = problems(
            "name: t\nnodes:\n  count: 1\nremote_nodes: {a: {url: x}}\nsteps:\n  - type: wait\n    seconds: 0\n",
        );
        assert!(
            found[0].1.contains("`remote_nodes` is not supported"),
            "{found:?}"
        );
    }

    #[test]
    fn environment_values_expand_before_the_checks() {
        let env = |n: &str| (n == "MINUTES").then(|| "2".to_string());
        let wf = load(
            Path::new("wf.yml"),
            "name: t\nnodes:\n  count: 1\nsteps:\n  - type: wait\n    seconds: ${MINUTES}\n  - type: repeat\n    count: ${N:-3}\n    steps:\n      - type: wait\n        seconds: 0\n",
            &env,
        )
        .unwrap();
        assert_eq!(wf.steps[0].cfg["seconds"], "2");
        assert_eq!(wf.steps[1].cfg["count"], "3");
    }

    #[test]
    fn the_repository_workflows_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yml") {
                let text = std::fs::read_to_string(&path).unwrap();
                load(&path, &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen >= 6, "{seen} workflows in {}", dir.display());
    }
}
