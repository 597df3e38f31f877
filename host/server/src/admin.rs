//! `/admin-api`: applications, namespaces, contexts, aliases, health.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use mero_api::ids::{b58, hex32, parse_b58, parse_group};
use mero_api::{
    AliasValue, Application, ApplicationBlob, ApplicationData, ApplicationIdData, ApplicationList,
    Context, ContextList, CreateContextAlias, CreateContextData, CreateContextRequest,
    CreateNamespaceData, CreateNamespaceRequest, Data, Deleted, Health, InstallApplicationRequest,
    InstallDevApplicationRequest, MethodInfo, Namespace, NamespaceContext,
};
use mero_node::ContextId;
use mero_node::Intent;
use mero_node::{ContextInfo, InstallSource, NamespaceInfo, Node};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// Parses a JSON request body, with a clear 400 when it is not.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad(
            "InvalidJson",
            "the request needs a JSON body",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad("InvalidJson", format!("invalid JSON body: {e}")))
}

pub(crate) fn context_id(s: &str) -> ApiResult<ContextId> {
    parse_b58(s, "context id")
        .map(ContextId)
        .map_err(|m| ApiError::bad("InvalidContextId", m))
}

pub(crate) fn application_id(s: &str) -> ApiResult<[u8; 32]> {
    parse_b58(s, "application id").map_err(|m| ApiError::bad("InvalidApplicationId", m))
}

pub(crate) fn group_id(s: &str) -> ApiResult<[u8; 32]> {
    parse_group(s).map_err(|m| ApiError::bad("InvalidGroupId", m))
}

const ZERO_B58: &str = "11111111111111111111111111111111";

fn application_dto(app: &mero_node::Application) -> Application {
    let r = &app.record;
    Application {
        id: b58(&r.id),
        blob: ApplicationBlob {
            bytecode: b58(&r.blob),
            compiled: ZERO_B58.into(),
        },
        size: r.size,
        source: r.source.clone(),
        metadata: r.metadata.clone(),
        package: r.package.clone(),
        version: Some(r.version.clone()),
        methods: app
            .methods
            .iter()
            .map(|(name, intent)| MethodInfo {
                name: name.clone(),
                intent: match intent {
                    Intent::ReadOnly => "readOnly".into(),
                    Intent::Mutating => "mutating".into(),
                },
            })
            .collect(),
    }
}

pub(crate) fn context_dto(c: &ContextInfo) -> Context {
    Context {
        id: b58(&c.meta.id.0),
        application_id: b58(&c.meta.application),
        root_hash: b58(&c.root_hash),
        dag_heads: c.heads.iter().map(|h| h.0).collect(),
        application_version: Some(c.meta.app_version.clone()),
        state_version: Some(c.meta.state_version),
        name: c.meta.name.clone(),
        group_id: c.meta.group.as_ref().map(hex32),
        delta_count: Some(c.meta.delta_count),
        sync_status: None,
    }
}

pub(crate) fn namespace_dto(n: &NamespaceInfo) -> Namespace {
    Namespace {
        namespace_id: hex32(&n.group.id),
        app_key: hex32(&n.group.blob),
        target_application_id: b58(&n.group.application),
        created_at: n.group.created_at_millis / 1000,
        name: n.group.name.clone(),
        member_count: n.members,
        context_count: n.contexts.len(),
        subgroup_count: n.subgroups,
        app_version: n.app_version.clone(),
        contexts: n
            .contexts
            .iter()
            .map(|c| NamespaceContext {
                context_id: b58(&c.id.0),
                application_version: c.app_version.clone(),
                name: c.name.clone(),
            })
            .collect(),
        governance_heads: n.governance_heads.iter().map(hex32).collect(),
    }
}

/// Whether the node is up (`status: alive`) and ready: the store takes
/// commits, the write-ahead log is sound, the executor and networking run.
#[utoipa::path(get, path = "/admin-api/health", tag = "admin",
    responses((status = 200, description = "The node answers and is ready", body = Data<Health>),
        (status = 503, description = "The node answers but is not ready; `checks` say why", body = Data<Health>)))]
pub(crate) async fn health(State(node): State<Node>) -> (StatusCode, Json<Data<Health>>) {
    let r = node.readiness();
    let check = |why: Option<String>| mero_api::HealthCheck {
        ok: why.is_none(),
        reason: why,
    };
    let ready = r.ready();
    let health = Health {
        status: "alive".into(),
        ready,
        checks: mero_api::HealthChecks {
            store: check(r.store),
            log: check(r.log),
            executor: check(r.executor),
            network: check(r.network),
        },
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Data::new(health)))
}

/// Installs an application from a path on the node's machine.
#[utoipa::path(post, path = "/admin-api/install-dev-application", tag = "applications",
    request_body = InstallDevApplicationRequest,
    responses(
        (status = 200, body = Data<ApplicationIdData>),
        (status = 400, description = "Unreadable path, not a regular file, or not a component of our world", body = mero_api::ErrorBody),
        (status = 403, description = "Path outside server.install_root", body = mero_api::ErrorBody)))]
pub(crate) async fn install_dev_application(
    State(node): State<Node>,
    State(root): State<crate::install::InstallRoot>,
    body: Bytes,
) -> ApiResult<Json<Data<ApplicationIdData>>> {
    let req: InstallDevApplicationRequest = json_body(&body)?;
    let bytes = crate::install::read(&req.path, &root).await?;
    let id = node
        .install_application(
            InstallSource::Bytes(bytes),
            req.metadata,
            req.package,
            req.version,
        )
        .await
        .map_err(crate::install::without_bytes)?;
    Ok(Json(Data::new(ApplicationIdData {
        application_id: b58(&id),
    })))
}

/// Installs an application from a loopback URL (JSON body) or from the
/// uploaded bytes (`Content-Type: application/wasm` or
/// `application/octet-stream`; `?package=&version=&metadata=` then say
/// what the JSON body would).
#[utoipa::path(post, path = "/admin-api/install-application", tag = "applications",
    request_body(content = InstallApplicationRequest, description = "JSON with a loopback URL, or the component bytes"),
    responses(
        (status = 200, body = Data<ApplicationIdData>),
        (status = 400, description = "Not a component of our world, bad URL, hash mismatch", body = mero_api::ErrorBody),
        (status = 403, description = "URL not on loopback", body = mero_api::ErrorBody)))]
pub(crate) async fn install_application(
    State(node): State<Node>,
    headers: HeaderMap,
    axum::extract::Query(upload): axum::extract::Query<crate::install::UploadQuery>,
    body: Bytes,
) -> ApiResult<Json<Data<ApplicationIdData>>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let id = if content_type.starts_with("application/wasm")
        || content_type.starts_with("application/octet-stream")
    {
        node.install_application(
            InstallSource::Bytes(body.to_vec()),
            upload.metadata.unwrap_or_default().into_bytes(),
            upload.package,
            upload.version,
        )
        .await
        .map_err(crate::install::without_bytes)?
    } else {
        let req: InstallApplicationRequest = json_body(&body)?;
        let hash = req
            .hash
            .as_deref()
            .map(|h| parse_b58(h, "hash"))
            .transpose()
            .map_err(|m| ApiError::bad("InvalidHash", m))?;
        node.install_application(
            InstallSource::Url { url: req.url, hash },
            req.metadata,
            req.package,
            req.version,
        )
        .await?
    };
    Ok(Json(Data::new(ApplicationIdData {
        application_id: b58(&id),
    })))
}

/// Installed applications.
#[utoipa::path(get, path = "/admin-api/applications", tag = "applications",
    responses((status = 200, body = Data<ApplicationList>)))]
pub(crate) async fn list_applications(
    State(node): State<Node>,
) -> ApiResult<Json<Data<ApplicationList>>> {
    let apps = node.applications()?.iter().map(application_dto).collect();
    Ok(Json(Data::new(ApplicationList { apps })))
}

/// One application.
#[utoipa::path(get, path = "/admin-api/applications/{id}", tag = "applications",
    params(("id" = String, Path, description = "Base58 application id")),
    responses((status = 200, body = Data<ApplicationData>), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_application(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<ApplicationData>>> {
    let app = node.application(&application_id(&id)?)?;
    Ok(Json(Data::new(ApplicationData {
        application: application_dto(&app),
    })))
}

/// Uninstalls an application; refused while contexts run it.
#[utoipa::path(delete, path = "/admin-api/applications/{id}", tag = "applications",
    params(("id" = String, Path, description = "Base58 application id")),
    responses((status = 200, body = Data<ApplicationIdData>), (status = 404, body = mero_api::ErrorBody),
        (status = 409, description = "Contexts run it", body = mero_api::ErrorBody)))]
pub(crate) async fn delete_application(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<ApplicationIdData>>> {
    let raw = application_id(&id)?;
    node.uninstall_application(&raw).await?;
    Ok(Json(Data::new(ApplicationIdData {
        application_id: b58(&raw),
    })))
}

/// Creates a namespace and its first context; this node is its creator.
#[utoipa::path(post, path = "/admin-api/namespaces", tag = "namespaces",
    request_body = CreateNamespaceRequest,
    responses((status = 200, body = Data<CreateNamespaceData>), (status = 400, body = mero_api::ErrorBody),
        (status = 404, description = "Unknown application", body = mero_api::ErrorBody)))]
pub(crate) async fn create_namespace(
    State(node): State<Node>,
    body: Bytes,
) -> ApiResult<Json<Data<CreateNamespaceData>>> {
    let req: CreateNamespaceRequest = json_body(&body)?;
    let app = application_id(&req.application_id)?;
    let app_key = req.app_key.as_deref().map(group_id).transpose()?;
    let (ns, ctx) = node
        .create_namespace(
            &app,
            req.name,
            app_key,
            req.initialization_params.unwrap_or_default(),
        )
        .await?;
    Ok(Json(Data::new(CreateNamespaceData {
        namespace_id: hex32(&ns),
        context_id: b58(&ctx.0),
    })))
}

/// Namespaces, each with its contexts and the app version they run.
#[utoipa::path(get, path = "/admin-api/namespaces", tag = "namespaces",
    responses((status = 200, body = Data<Vec<Namespace>>)))]
pub(crate) async fn list_namespaces(
    State(node): State<Node>,
) -> ApiResult<Json<Data<Vec<Namespace>>>> {
    Ok(Json(Data::new(
        node.namespaces()?.iter().map(namespace_dto).collect(),
    )))
}

/// One namespace.
#[utoipa::path(get, path = "/admin-api/namespaces/{id}", tag = "namespaces",
    params(("id" = String, Path, description = "Hex (or base58) namespace id")),
    responses((status = 200, body = Data<Namespace>), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_namespace(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Namespace>>> {
    Ok(Json(Data::new(namespace_dto(
        &node.namespace(&group_id(&id)?)?,
    ))))
}

/// Deletes a namespace and its contexts from this node.
#[utoipa::path(delete, path = "/admin-api/namespaces/{id}", tag = "namespaces",
    params(("id" = String, Path, description = "Hex (or base58) namespace id")),
    responses((status = 200, body = Data<Deleted>)))]
pub(crate) async fn delete_namespace(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Deleted>>> {
    let is_deleted = node.delete_namespace(&group_id(&id)?).await?;
    Ok(Json(Data::new(Deleted { is_deleted })))
}

/// Creates a context in a namespace or group and runs its `init`.
#[utoipa::path(post, path = "/admin-api/contexts", tag = "contexts",
    request_body = CreateContextRequest,
    responses((status = 200, body = Data<CreateContextData>),
        (status = 400, description = "Bad request or init failed", body = mero_api::ErrorBody),
        (status = 403, description = "Not a member or lacking the capability", body = mero_api::ErrorBody),
        (status = 404, description = "Unknown application or group", body = mero_api::ErrorBody)))]
pub(crate) async fn create_context(
    State(node): State<Node>,
    body: Bytes,
) -> ApiResult<Json<Data<CreateContextData>>> {
    let req: CreateContextRequest = json_body(&body)?;
    let app = application_id(&req.application_id)?;
    let group = group_id(&req.group_id)?;
    let seed = req
        .context_seed
        .as_deref()
        .map(|s| parse_b58(s, "context seed"))
        .transpose()
        .map_err(|m| ApiError::bad("InvalidSeed", m))?;
    let ctx = node
        .create_context(&app, &group, req.initialization_params, seed, req.name)
        .await?;
    Ok(Json(Data::new(CreateContextData {
        context_id: b58(&ctx.0),
        member_public_key: b58(&node.public_key()),
        group_id: Some(hex32(&group)),
        group_created: false,
    })))
}

/// Contexts on this node.
#[utoipa::path(get, path = "/admin-api/contexts", tag = "contexts",
    responses((status = 200, body = Data<ContextList>)))]
pub(crate) async fn list_contexts(State(node): State<Node>) -> ApiResult<Json<Data<ContextList>>> {
    Ok(Json(Data::new(ContextList {
        contexts: node.contexts()?.iter().map(context_dto).collect(),
    })))
}

/// One context, with its state root hash, DAG heads and app version.
#[utoipa::path(get, path = "/admin-api/contexts/{id}", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<Context>), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_context(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Context>>> {
    let ctx = context_id(&id)?;
    let mut dto = context_dto(&node.context(&ctx)?);
    dto.sync_status = serde_json::to_value(node.sync_status(&ctx)).ok();
    Ok(Json(Data::new(dto)))
}

/// Deletes a context and everything this node stores for it.
#[utoipa::path(delete, path = "/admin-api/contexts/{id}", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<Deleted>)))]
pub(crate) async fn delete_context(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Deleted>>> {
    let is_deleted = node.delete_context(&context_id(&id)?).await?;
    Ok(Json(Data::new(Deleted { is_deleted })))
}

/// Names a context.
#[utoipa::path(post, path = "/admin-api/alias/create/context", tag = "aliases",
    request_body = CreateContextAlias,
    responses((status = 200, body = Data<Option<String>>), (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody), (status = 409, body = mero_api::ErrorBody)))]
pub(crate) async fn create_context_alias(
    State(node): State<Node>,
    body: Bytes,
) -> ApiResult<Json<Data<Option<String>>>> {
    let req: CreateContextAlias = json_body(&body)?;
    node.create_alias("context", &req.alias, context_id(&req.context_id)?.0)
        .await?;
    Ok(Json(Data::new(None)))
}

/// What a context alias stands for; `value` is null if nothing.
#[utoipa::path(post, path = "/admin-api/alias/lookup/context/{name}", tag = "aliases",
    params(("name" = String, Path, description = "The alias")),
    responses((status = 200, body = Data<AliasValue>)))]
pub(crate) async fn lookup_context_alias(
    State(node): State<Node>,
    Path(name): Path<String>,
) -> ApiResult<Json<Data<AliasValue>>> {
    let value = node.lookup_alias("context", &name)?.map(|id| b58(&id));
    Ok(Json(Data::new(AliasValue { value })))
}

/// Removes a context alias.
#[utoipa::path(post, path = "/admin-api/alias/delete/context/{name}", tag = "aliases",
    params(("name" = String, Path, description = "The alias")),
    responses((status = 200, body = Data<Option<String>>)))]
pub(crate) async fn delete_context_alias(
    State(node): State<Node>,
    Path(name): Path<String>,
) -> ApiResult<Json<Data<Option<String>>>> {
    node.delete_alias("context", &name).await?;
    Ok(Json(Data::new(None)))
}

/// Every context alias.
#[utoipa::path(get, path = "/admin-api/alias/list/context", tag = "aliases",
    responses((status = 200, body = Data<std::collections::BTreeMap<String, String>>)))]
pub(crate) async fn list_context_aliases(
    State(node): State<Node>,
) -> ApiResult<Json<Data<std::collections::BTreeMap<String, String>>>> {
    Ok(Json(Data::new(
        node.aliases("context")?
            .into_iter()
            .map(|(k, v)| (k, b58(&v)))
            .collect(),
    )))
}

/// Connected peers.
#[utoipa::path(get, path = "/admin-api/peers", tag = "admin",
    responses((status = 200, body = mero_api::PeerCount)))]
pub(crate) async fn peers(State(node): State<Node>) -> Json<mero_api::PeerCount> {
    Json(mero_api::PeerCount {
        count: node.peer_count().await,
    })
}

/// Signs an invitation to a namespace; paste it into `join` on another node.
#[utoipa::path(post, path = "/admin-api/namespaces/{id}/invite", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    request_body = mero_api::InviteRequest,
    responses((status = 200, body = Data<mero_api::InvitationData>),
        (status = 403, description = "Not allowed to invite", body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn invite(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<mero_api::InvitationData>>> {
    let req: mero_api::InviteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        mero_api::InviteRequest::default()
    } else {
        json_body(&body)?
    };
    let role = match req.role.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("member") => mero_node::Role::Member,
        Some("admin") => mero_node::Role::Admin,
        Some("read-only" | "readonly" | "read_only") => mero_node::Role::ReadOnly,
        Some(other) => {
            return Err(ApiError::bad(
                "InvalidRole",
                format!("unknown role `{other}`: use admin, member or read-only"),
            ));
        }
    };
    let mut conditions = req
        .chain_accounts
        .iter()
        .map(|text| chain_account_condition(text))
        .collect::<ApiResult<Vec<_>>>()?;
    for text in &req.min_token_balances {
        conditions.push(crate::relayer::token_balance_condition(text, &conditions)?);
    }
    let (signed, group_name) = node
        .membership()
        .invite(
            &group_id(&id)?,
            req.expiration_timestamp
                .unwrap_or(node.config().membership.invitation_ttl_secs),
            role,
            conditions,
        )
        .await?;
    let invitation = serde_json::to_value(&signed)
        .map_err(|e| ApiError::from(mero_node::NodeError::Internal(e.to_string())))?;
    Ok(Json(Data::new(mero_api::InvitationData {
        invitation,
        group_name,
    })))
}

/// `<chain>:<account>` as an invitation's condition, the account in its
/// canonical text.
fn chain_account_condition(text: &str) -> ApiResult<mero_node::Condition> {
    let bad = |m: String| ApiError::bad("InvalidChainAccount", m);
    let (chain, account) = text.split_once(':').ok_or_else(|| {
        bad(format!(
            "`{text}`: give a chain account as <chain>:<account>, e.g. ethereum:0x…"
        ))
    })?;
    let chain: mero_node::mero_chains::Chain = chain
        .parse()
        .map_err(|e: mero_node::mero_chains::Error| bad(e.to_string()))?;
    let account = mero_node::mero_chains::canonical_account(chain, account)
        .map_err(|e| bad(e.to_string()))?;
    Ok(mero_node::Condition::ChainAccount { chain, account })
}

/// Joins a namespace with an invitation: reaches the inviter, becomes a
/// member and learns the namespace's members and contexts.
#[utoipa::path(post, path = "/admin-api/namespaces/{id}/join", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    request_body = mero_api::JoinNamespaceRequest,
    responses((status = 200, body = Data<mero_api::JoinNamespaceData>),
        (status = 400, description = "Malformed or mismatched invitation", body = mero_api::ErrorBody),
        (status = 403, description = "Forged, tampered or expired invitation", body = mero_api::ErrorBody),
        (status = 504, description = "No member reachable", body = mero_api::ErrorBody)))]
pub(crate) async fn join_namespace(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<mero_api::JoinNamespaceData>>> {
    let ns = group_id(&id)?;
    let value: serde_json::Value = json_body(&body)?;
    // The proofs of a bound invitation's accounts sit beside it.
    let signatures = match value.get("chainProofs") {
        None => Vec::new(),
        Some(v) => serde_json::from_value::<Vec<mero_api::JoinChainProof>>(v.clone())
            .map_err(|e| ApiError::bad("InvalidChainProof", format!("chainProofs: {e}")))?
            .into_iter()
            .map(|p| {
                Ok(mero_node::ChainSignature {
                    account: p.account,
                    signature: p.signature,
                    public_key: p.public_key,
                    scheme: p.scheme.as_deref().map(str::parse).transpose().map_err(
                        |e: mero_node::mero_chains::Error| {
                            ApiError::bad("InvalidChainProof", e.to_string())
                        },
                    )?,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
    };
    // `{"invitation": ...}` as upstream sends it; the node peels any wrapper.
    node.membership()
        .join_namespace(&ns, &value, &signatures)
        .await?;
    Ok(Json(Data::new(mero_api::JoinNamespaceData {
        namespace_id: hex32(&ns),
        member_identity: b58(&node.public_key()),
        member_account: hex32(&node.public_key()),
    })))
}

/// Joins a context of a namespace this node is a member of and pulls its
/// current state.
#[utoipa::path(post, path = "/admin-api/contexts/{id}/join", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<mero_api::JoinContextData>),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn join_context(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<mero_api::JoinContextData>>> {
    let ctx = context_id(&id)?;
    node.join_context(&ctx).await?;
    Ok(Json(Data::new(mero_api::JoinContextData {
        context_id: b58(&ctx.0),
        member_public_key: b58(&node.public_key()),
    })))
}

/// Members of a group and their roles.
#[utoipa::path(get, path = "/admin-api/groups/{id}/members", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    responses((status = 200, body = mero_api::GroupMembers),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn group_members(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<mero_api::GroupMembers>> {
    let members = node
        .membership()
        .group_members(&group_id(&id)?)?
        .into_iter()
        .map(|(k, role)| mero_api::GroupMember {
            identity: hex32(&k),
            role: format!("{role:?}"),
        })
        .collect();
    Ok(Json(mero_api::GroupMembers { members }))
}

pub(crate) fn member_id(s: &str) -> ApiResult<[u8; 32]> {
    parse_group(s).map_err(|_| {
        ApiError::bad(
            "InvalidAccount",
            "Invalid account format: expected 64 hex characters (32 bytes)",
        )
    })
}

/// Sets a member's role (`Admin`, `Member`, `ReadOnly`).
#[utoipa::path(put, path = "/admin-api/groups/{id}/members/{account}/role", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("account" = String, Path, description = "Hex member key")),
    request_body = mero_api::SetRoleRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 403, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_member_role(
    State(node): State<Node>,
    Path((id, account)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: mero_api::SetRoleRequest = json_body(&body)?;
    let role = match req
        .role
        .to_ascii_lowercase()
        .replace(['-', '_'], "")
        .as_str()
    {
        "admin" => mero_node::Role::Admin,
        "member" => mero_node::Role::Member,
        "readonly" => mero_node::Role::ReadOnly,
        other => {
            return Err(ApiError::bad(
                "InvalidRole",
                format!("unknown role `{other}`: use Admin, Member or ReadOnly"),
            ));
        }
    };
    node.membership()
        .set_member_role(&group_id(&id)?, &member_id(&account)?, role)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// Sets a member's capability mask. The mask is absolute: bits not given
/// are cleared.
#[utoipa::path(put, path = "/admin-api/groups/{id}/members/{account}/capabilities", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("account" = String, Path, description = "Hex member key")),
    request_body = mero_api::Capabilities,
    responses((status = 200, description = "Done: `{}`"), (status = 403, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_member_capabilities(
    State(node): State<Node>,
    Path((id, account)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: mero_api::Capabilities = json_body(&body)?;
    node.membership()
        .set_member_capabilities(&group_id(&id)?, &member_id(&account)?, req.capabilities)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// A member's effective capability mask.
#[utoipa::path(get, path = "/admin-api/groups/{id}/members/{account}/capabilities", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("account" = String, Path, description = "Hex member key")),
    responses((status = 200, body = Data<mero_api::Capabilities>), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_member_capabilities(
    State(node): State<Node>,
    Path((id, account)): Path<(String, String)>,
) -> ApiResult<Json<Data<mero_api::Capabilities>>> {
    let capabilities = node
        .membership()
        .member_capabilities(&group_id(&id)?, &member_id(&account)?)?;
    Ok(Json(Data::new(mero_api::Capabilities { capabilities })))
}

fn visibility(s: Option<&str>) -> ApiResult<bool> {
    match s.map(str::to_ascii_lowercase).as_deref() {
        None | Some("open") => Ok(true),
        Some("restricted") => Ok(false),
        Some(other) => Err(ApiError::bad(
            "InvalidVisibility",
            format!("subgroupVisibility is `open` or `restricted`, not `{other}`"),
        )),
    }
}

/// This node leaves the namespace; what it wrote stays, and it cannot
/// rejoin.
#[utoipa::path(post, path = "/admin-api/namespaces/{id}/leave", tag = "namespaces",
    params(("id" = String, Path, description = "Hex namespace id")),
    responses((status = 200, body = Data<mero_api::LeaveNamespaceData>), (status = 403, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn leave_namespace(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<mero_api::LeaveNamespaceData>>> {
    let ns = group_id(&id)?;
    node.membership().leave_namespace(&ns).await?;
    Ok(Json(Data::new(mero_api::LeaveNamespaceData {
        namespace_id: hex32(&ns),
        member_public_key: b58(&node.public_key()),
    })))
}

/// Creates a subgroup of the namespace (or of one of its subgroups).
#[utoipa::path(post, path = "/admin-api/namespaces/{id}/groups", tag = "groups",
    params(("id" = String, Path, description = "Hex namespace id")),
    request_body = mero_api::CreateGroupRequest,
    responses((status = 200, body = Data<mero_api::CreateGroupData>), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn create_group(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<mero_api::CreateGroupData>>> {
    let req: mero_api::CreateGroupRequest = if body.is_empty() {
        mero_api::CreateGroupRequest::default()
    } else {
        json_body(&body)?
    };
    let ns = group_id(&id)?;
    node.namespace(&ns)?;
    let parent = match &req.parent_group_id {
        Some(p) => group_id(p)?,
        None => ns,
    };
    if node.membership().namespace_of_group(&parent) != Some(ns) {
        return Err(ApiError::not_found(
            "GroupNotFound",
            "the parent group is not in this namespace",
        ));
    }
    let open = visibility(req.subgroup_visibility.as_deref())?;
    let group = node
        .membership()
        .create_group(&parent, req.name, open)
        .await?;
    Ok(Json(Data::new(mero_api::CreateGroupData {
        group_id: hex32(&group),
    })))
}

/// The subgroups of a namespace.
#[utoipa::path(get, path = "/admin-api/namespaces/{id}/groups", tag = "groups",
    params(("id" = String, Path, description = "Hex namespace id")),
    responses((status = 200, body = Data<Vec<mero_api::Subgroup>>), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn list_groups(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Vec<mero_api::Subgroup>>>> {
    Ok(Json(Data::new(
        node.membership()
            .subgroups(&group_id(&id)?)?
            .into_iter()
            .map(|g| mero_api::Subgroup {
                group_id: hex32(&g.id),
                parent_group_id: hex32(&g.parent),
                name: g.name,
                subgroup_visibility: if g.open { "open" } else { "restricted" }.into(),
                member_count: g.members,
                context_count: g.contexts,
                key_epoch: g.key_epoch,
            })
            .collect(),
    )))
}

/// Admits namespace members to a subgroup.
#[utoipa::path(post, path = "/admin-api/groups/{id}/members", tag = "groups",
    params(("id" = String, Path, description = "Hex subgroup id")),
    request_body = mero_api::AddMembersRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn add_group_members(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: mero_api::AddMembersRequest = json_body(&body)?;
    if req.members.is_empty() {
        return Err(ApiError::bad("InvalidRequest", "members must not be empty"));
    }
    let members = req
        .members
        .iter()
        .map(|m| member_id(&m.identity))
        .collect::<ApiResult<Vec<_>>>()?;
    node.membership()
        .add_group_members(&group_id(&id)?, &members)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// Opens or restricts a subgroup.
#[utoipa::path(put, path = "/admin-api/groups/{id}/settings/subgroup-visibility", tag = "groups",
    params(("id" = String, Path, description = "Hex subgroup id")),
    request_body = mero_api::SetVisibilityRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_group_visibility(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: mero_api::SetVisibilityRequest = json_body(&body)?;
    let open = visibility(Some(&req.subgroup_visibility))?;
    node.membership()
        .set_group_visibility(&group_id(&id)?, open)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// Removes members from a group; what they wrote before stays.
#[utoipa::path(post, path = "/admin-api/groups/{id}/members/remove", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    request_body = mero_api::RemoveMembersRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 403, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn remove_members(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: mero_api::RemoveMembersRequest = json_body(&body)?;
    if req.members.is_empty() {
        return Err(ApiError::bad("InvalidRequest", "members must not be empty"));
    }
    let members = req
        .members
        .iter()
        .map(|m| member_id(m))
        .collect::<ApiResult<Vec<_>>>()?;
    node.membership()
        .remove_members(&group_id(&id)?, &members)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// Contexts registered in a group.
#[utoipa::path(get, path = "/admin-api/groups/{id}/contexts", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    responses((status = 200, body = Data<Vec<mero_api::GroupContext>>), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn group_contexts(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Vec<mero_api::GroupContext>>>> {
    Ok(Json(Data::new(
        node.membership()
            .group_contexts(&group_id(&id)?)?
            .into_iter()
            .map(|(c, name)| mero_api::GroupContext {
                context_id: b58(&c),
                name,
            })
            .collect(),
    )))
}

/// Starts a sync round of this one context with its peers now.
#[utoipa::path(post, path = "/admin-api/contexts/sync/{id}", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<Option<String>>), (status = 404, body = mero_api::ErrorBody),
        (status = 504, description = "Networking is not running", body = mero_api::ErrorBody)))]
pub(crate) async fn sync_context(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Option<String>>>> {
    let ctx = context_id(&id)?;
    node.context(&ctx)?;
    node.trigger_sync_of(&ctx)?;
    Ok(Json(Data::new(None)))
}

/// Starts a sync round of every context now.
#[utoipa::path(post, path = "/admin-api/contexts/sync", tag = "contexts",
    responses((status = 200, body = Data<Option<String>>),
        (status = 504, description = "Networking is not running", body = mero_api::ErrorBody)))]
pub(crate) async fn sync_all(State(node): State<Node>) -> ApiResult<Json<Data<Option<String>>>> {
    node.trigger_sync()?;
    Ok(Json(Data::new(None)))
}
