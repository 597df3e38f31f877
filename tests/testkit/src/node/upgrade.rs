//! The steps the upgrade tests take on a node: installing a version,
//! reading a context, ordering an upgrade and reading its status, a call
//! that must fail, and a subset check of a JSON object.

use serde_json::Value;

use super::TestNode;

/// `meroctl app install --path component`; returns the application id.
pub fn install(node: &TestNode, component: &str) -> String {
    node.meroctl_json(&["app", "install", "--path", component])["applicationId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `meroctl context get ctx`.
pub fn context(node: &TestNode, ctx: &str) -> Value {
    node.meroctl_json(&["context", "get", ctx])
}

/// `meroctl group upgrade trigger group --target-application-id app`.
pub fn trigger(node: &TestNode, group: &str, app: &str) -> Value {
    node.meroctl_json(&[
        "group",
        "upgrade",
        "trigger",
        group,
        "--target-application-id",
        app,
    ])
}

/// The `data` of `GET /admin-api/groups/:group/upgrade/status`.
pub fn status(node: &TestNode, group: &str) -> Value {
    let (code, v) = node.request(
        "GET",
        &format!("/admin-api/groups/{group}/upgrade/status"),
        None,
    );
    assert_eq!(code, 200, "{v}");
    v["data"].clone()
}

/// Calls `method`, which must fail; returns the error.
pub fn fails(node: &TestNode, ctx: &str, method: &str, args: Value) -> Value {
    let v = node.rpc(ctx, method, args);
    assert!(v.get("error").is_some(), "{method} should fail: {v}");
    v["error"].clone()
}

/// Asserts `sub`'s keys and values are in `v`.
pub fn subset(v: &Value, sub: Value) {
    for (k, want) in sub.as_object().unwrap() {
        assert_eq!(&v[k], want, "{k} in {v}");
    }
}
