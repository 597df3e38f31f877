//! One test per versioned app under `apps/migrations/`, named after it. Each
//! checks what the app declares (package, version, state version, schema,
//! methods, migrations) and answers a few of upstream's calls. A v2+ test
//! also runs the migration (and its check) against state its predecessor
//! wrote, in a buffer as an upgrade stages it, and reads the migrated data
//! back through the new version's methods: the proof is the data, never
//! the `schema_version` string an app compiles in. Whether and when a node
//! runs an upgrade is the node's tests' business. An app in the fixtures'
//! `MIGRATION_APPS` without a test here is a compile error.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::sync::Arc;

use mero_crdt::{Clock, ContextId};
use mero_fixtures as fx;
use mero_runtime::{App, CallEnv, CallError, PrivateOverlay, state_over};
use mero_testkit::engine::{Engine, engine};
use serde_json::{Value, json};

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[expect(unused_imports, reason = "only checks that the test exists")]
        use self::$name as _;
    };
}
mero_fixtures::foreach_migration_app!(assert_test_exists);

const SUITE: &str = "com.calimero.migration-suite";
const STRINGS: &str = "UnorderedMap<String,LwwRegister<String>>";
const NUMBERS: &str = "UnorderedMap<String,LwwRegister<u64>>";
const STRING: &str = "LwwRegister<String>";
const NUMBER: &str = "LwwRegister<u64>";

/// What a fixture must declare.
struct Declares {
    package: &'static str,
    version: &'static str,
    state_version: u32,
    schema: &'static [(&'static str, &'static str)],
    methods: &'static [&'static str],
    /// Its migration: from which state version, by which method, whether
    /// checked, and the fixture whose state it reads.
    migration: Option<(u32, &'static str, bool, &'static str)>,
}

async fn load(e: &Engine, path: &str) -> Arc<App> {
    e.runtime.load(&std::fs::read(path).unwrap()).await.unwrap()
}

/// Loads the fixture at `path` and asserts it declares `d`.
async fn assert_declares(e: &Engine, path: &str, d: Declares) -> Arc<App> {
    let app = load(e, path).await;
    let desc = app.description();
    assert_eq!(desc.package, d.package, "{path}");
    assert_eq!(desc.version, d.version, "{path}");
    assert_eq!(desc.state_version, d.state_version, "{path}");
    let schema: Vec<(&str, &str)> = desc
        .schema
        .iter()
        .map(|(n, k)| (n.as_str(), k.as_str()))
        .collect();
    assert_eq!(schema, d.schema, "{path}");
    let mut methods: Vec<&str> = d.methods.to_vec();
    methods.sort_unstable();
    assert_eq!(
        desc.methods.keys().map(String::as_str).collect::<Vec<_>>(),
        methods,
        "{path}"
    );
    match d.migration {
        None => assert!(desc.migrations.is_empty(), "{path}: {:?}", desc.migrations),
        Some((from, method, checked, previous)) => {
            let [m] = desc.migrations.as_slice() else {
                panic!("{path}: {:?}", desc.migrations);
            };
            assert_eq!(
                (m.from_version, m.method.as_str(), m.checked),
                (from, method, checked),
                "{path}"
            );
            let previous = load(e, previous).await;
            assert_eq!(m.reads, previous.description().schema, "{path}");
            assert_eq!(previous.description().state_version, from, "{path}");
        }
    }
    app
}

/// An engine with the fixture at `path` installed and contexts `1..=n`
/// created with it.
async fn contexts(path: &str, n: u8) -> (Engine, Vec<ContextId>) {
    let e = engine(1);
    let blob = e.install(path).await;
    let mut ctxs = Vec::new();
    for id in 1..=n {
        ctxs.push(e.create(blob, id, "").await.unwrap());
    }
    (e, ctxs)
}

/// A context's committed state with another version's code over it, in a
/// buffer: what an upgrade stages before it commits.
struct Staged<'e> {
    e: &'e Engine,
    app: Arc<App>,
    env: Option<CallEnv>,
}

impl<'e> Staged<'e> {
    /// `app` over `ctx`'s committed state, with nothing run yet: a
    /// code-only upgrade.
    fn code_only(e: &'e Engine, ctx: ContextId, app: &Arc<App>) -> Staged<'e> {
        let snap = e.store.snapshot().unwrap();
        // Stamps after every committed write, as the executor's clock
        // would: a write in the same millisecond must not lose to them.
        let last = snap.context_meta(&ctx).unwrap().unwrap().last_hlc;
        let env = CallEnv::new(
            ctx,
            e.exec.author(),
            app.description().version.clone(),
            state_over(snap.context(ctx)),
            PrivateOverlay::new(snap.clone(), ctx),
            Clock::starting_after(last),
        );
        Staged {
            e,
            app: app.clone(),
            env: Some(env),
        }
    }

    /// `app`'s migration from `from` run on `ctx`'s committed state.
    async fn migrated(
        e: &'e Engine,
        ctx: ContextId,
        app: &Arc<App>,
        from: u32,
    ) -> Result<Staged<'e>, CallError> {
        let mut s = Staged::code_only(e, ctx, app);
        let (env, r) = e.runtime.migrate(app, s.take(), from).await;
        s.env = Some(env);
        r.map(|()| s)
    }

    /// The migration, then its check on the staged state.
    async fn upgraded(
        e: &'e Engine,
        ctx: ContextId,
        app: &Arc<App>,
        from: u32,
    ) -> Result<Staged<'e>, CallError> {
        let mut s = Staged::migrated(e, ctx, app, from).await?;
        let (env, r) = e.runtime.check_migration(app, s.take(), from).await;
        s.env = Some(env);
        r.map(|()| s)
    }

    fn take(&mut self) -> CallEnv {
        self.env.take().unwrap()
    }

    async fn call(&mut self, method: &str, args: Value) -> Result<Value, CallError> {
        let env = self.take();
        let (env, r) = self
            .e
            .runtime
            .call(&self.app, env, method, args.to_string())
            .await;
        self.env = Some(env);
        r
    }

    async fn ok(&mut self, method: &str, args: Value) -> Value {
        match self.call(method, args).await {
            Ok(v) => v,
            Err(err) => panic!("{method} failed on the staged state: {err:?}"),
        }
    }

    /// The same staged state read through another version's code.
    fn through(mut self, app: &Arc<App>) -> Staged<'e> {
        self.app = app.clone();
        self
    }
}

// ------------------------------------------------- migration-suite v1 -> v5

const SUITE_V1_SCHEMA: &[(&str, &str)] = &[
    ("items", STRINGS),
    ("description", STRING),
    ("counter", NUMBER),
];

#[tokio::test]
async fn migration_suite_v1() {
    let (e, ctxs) = contexts(fx::MIGRATION_SUITE_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::MIGRATION_SUITE_V1,
        Declares {
            package: SUITE,
            version: "1.0.0",
            state_version: 1,
            schema: SUITE_V1_SCHEMA,
            methods: &[
                "set_item",
                "get_item",
                "set_description",
                "get_description",
                "increment_counter",
                "get_counter",
                "schema_info",
            ],
            migration: None,
        },
    )
    .await;
    assert_eq!(
        e.ok(ctx, "get_description", json!({})).await,
        json!("initial")
    );
    e.ok(ctx, "set_item", json!({"key": "k1", "value": "v1"}))
        .await;
    assert_eq!(
        e.ok(ctx, "get_item", json!({"key": "k1"})).await,
        json!("v1")
    );
    assert_eq!(
        e.ok(ctx, "get_item", json!({"key": "nope"})).await,
        json!(null)
    );
    e.ok(
        ctx,
        "set_description",
        json!({"description": "set-before-migration"}),
    )
    .await;
    assert_eq!(e.ok(ctx, "increment_counter", json!({})).await, json!(1));
    assert_eq!(e.ok(ctx, "get_counter", json!({})).await, json!(1));
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "description": "set-before-migration", "counter": "1"})
    );
}

#[tokio::test]
async fn migration_suite_v2_add_field() {
    let (e, ctxs) = contexts(fx::MIGRATION_SUITE_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::MIGRATION_SUITE_V2_ADD_FIELD,
        Declares {
            package: SUITE,
            version: "2.0.0",
            state_version: 2,
            schema: &[
                ("items", STRINGS),
                ("description", STRING),
                ("counter", NUMBER),
                ("notes", STRING),
            ],
            methods: &[
                "set_item",
                "get_item",
                "set_description",
                "get_description",
                "increment_counter",
                "get_counter",
                "set_notes",
                "get_notes",
                "schema_info",
            ],
            migration: Some((1, "migrate_v1_to_v2", false, fx::MIGRATION_SUITE_V1)),
        },
    )
    .await;
    e.ok(&ctx, "set_item", json!({"key": "k1", "value": "v1"}))
        .await;
    e.ok(
        &ctx,
        "set_description",
        json!({"description": "set-before-migration"}),
    )
    .await;
    e.ok(&ctx, "increment_counter", json!({})).await;

    let mut s = Staged::upgraded(&e, ctx, &v2, 1).await.unwrap();
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "description": "set-before-migration",
               "counter": "1", "notes": "added in v2"})
    );
    assert_eq!(s.ok("get_item", json!({"key": "k1"})).await, json!("v1"));
    s.ok("set_notes", json!({"notes": "written-post-migration"}))
        .await;
    assert_eq!(
        s.ok("get_notes", json!({})).await,
        json!("written-post-migration")
    );
}

#[tokio::test]
async fn migration_suite_v3_remove_field() {
    let (e, ctxs) = contexts(fx::MIGRATION_SUITE_V2_ADD_FIELD, 1).await;
    let ctx = ctxs[0];
    let v3 = assert_declares(
        &e,
        fx::MIGRATION_SUITE_V3_REMOVE_FIELD,
        Declares {
            package: SUITE,
            version: "3.0.0",
            state_version: 3,
            schema: SUITE_V1_SCHEMA,
            methods: &[
                "set_item",
                "get_item",
                "set_description",
                "get_description",
                "increment_counter",
                "get_counter",
                "schema_info",
            ],
            migration: Some((
                2,
                "migrate_v2_to_v3",
                false,
                fx::MIGRATION_SUITE_V2_ADD_FIELD,
            )),
        },
    )
    .await;
    e.ok(&ctx, "set_notes", json!({"notes": "to be dropped"}))
        .await;
    e.ok(&ctx, "set_description", json!({"description": "kept"}))
        .await;
    e.ok(&ctx, "increment_counter", json!({})).await;

    let mut s = Staged::upgraded(&e, ctx, &v3, 2).await.unwrap();
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "3.0.0", "description": "kept", "counter": "1"})
    );
    assert!(matches!(
        s.call("get_notes", json!({})).await,
        Err(CallError::UnknownMethod(_))
    ));
    // The dropped field's data is gone, not just unreachable.
    let v2 = load(&e, fx::MIGRATION_SUITE_V2_ADD_FIELD).await;
    let mut s = s.through(&v2);
    assert_eq!(s.ok("get_notes", json!({})).await, json!(""));
}

#[tokio::test]
async fn migration_suite_v4_rename_field() {
    let (e, ctxs) = contexts(fx::MIGRATION_SUITE_V3_REMOVE_FIELD, 1).await;
    let ctx = ctxs[0];
    let v4 = assert_declares(
        &e,
        fx::MIGRATION_SUITE_V4_RENAME_FIELD,
        Declares {
            package: SUITE,
            version: "4.0.0",
            state_version: 4,
            schema: &[("items", STRINGS), ("details", STRING), ("counter", NUMBER)],
            methods: &[
                "set_item",
                "get_item",
                "set_details",
                "get_details",
                "increment_counter",
                "get_counter",
                "schema_info",
            ],
            migration: Some((
                3,
                "migrate_v3_to_v4",
                false,
                fx::MIGRATION_SUITE_V3_REMOVE_FIELD,
            )),
        },
    )
    .await;
    e.ok(&ctx, "set_description", json!({"description": "renamed"}))
        .await;

    let mut s = Staged::upgraded(&e, ctx, &v4, 3).await.unwrap();
    assert_eq!(s.ok("get_details", json!({})).await, json!("renamed"));
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "4.0.0", "details": "renamed", "counter": "0"})
    );
    let v3 = load(&e, fx::MIGRATION_SUITE_V3_REMOVE_FIELD).await;
    let mut s = s.through(&v3);
    assert_eq!(s.ok("get_description", json!({})).await, json!(""));
}

#[tokio::test]
async fn migration_suite_v5_change_type() {
    let (e, ctxs) = contexts(fx::MIGRATION_SUITE_V4_RENAME_FIELD, 1).await;
    let ctx = ctxs[0];
    let v5 = assert_declares(
        &e,
        fx::MIGRATION_SUITE_V5_CHANGE_TYPE,
        Declares {
            package: SUITE,
            version: "5.0.0",
            state_version: 5,
            schema: &[("items", STRINGS), ("details", STRING), ("counter", STRING)],
            methods: &[
                "set_item",
                "get_item",
                "set_details",
                "get_details",
                "set_counter",
                "get_counter",
                "schema_info",
            ],
            migration: Some((
                4,
                "migrate_v4_to_v5",
                false,
                fx::MIGRATION_SUITE_V4_RENAME_FIELD,
            )),
        },
    )
    .await;
    e.ok(&ctx, "increment_counter", json!({})).await;
    assert_eq!(e.ok(&ctx, "increment_counter", json!({})).await, json!(2));
    e.ok(&ctx, "set_details", json!({"details": "d"})).await;

    let mut s = Staged::upgraded(&e, ctx, &v5, 4).await.unwrap();
    assert_eq!(s.ok("get_counter", json!({})).await, json!("2"));
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "5.0.0", "details": "d", "counter": "2"})
    );
    s.ok("set_counter", json!({"counter": "ten"})).await;
    assert_eq!(s.ok("get_counter", json!({})).await, json!("ten"));
}

// ------------------------------------------------- code-only pairs

const NEW_METHOD_SCHEMA: &[(&str, &str)] = &[("items", STRINGS), ("counter", NUMBER)];

#[tokio::test]
async fn scenario_new_method_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_NEW_METHOD_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_NEW_METHOD_V1,
        Declares {
            package: "com.calimero.scenario-new-method",
            version: "1.0.0",
            state_version: 1,
            schema: NEW_METHOD_SCHEMA,
            methods: &["set_item", "get_item", "increment_counter", "schema_info"],
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "set_item", json!({"key": "a", "value": "1"}))
        .await;
    assert_eq!(e.ok(ctx, "get_item", json!({"key": "a"})).await, json!("1"));
    assert_eq!(e.ok(ctx, "increment_counter", json!({})).await, json!(1));
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "items_len": 1})
    );
}

#[tokio::test]
async fn scenario_new_method_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_NEW_METHOD_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_NEW_METHOD_V2,
        Declares {
            package: "com.calimero.scenario-new-method",
            version: "2.0.0",
            state_version: 1,
            schema: NEW_METHOD_SCHEMA,
            methods: &[
                "set_item",
                "get_item",
                "increment_counter",
                "clear_items",
                "schema_info",
            ],
            migration: None,
        },
    )
    .await;
    e.ok(&ctx, "set_item", json!({"key": "a", "value": "1"}))
        .await;
    e.ok(&ctx, "set_item", json!({"key": "b", "value": "2"}))
        .await;
    e.ok(&ctx, "increment_counter", json!({})).await;

    let mut s = Staged::code_only(&e, ctx, &v2);
    assert_eq!(s.ok("increment_counter", json!({})).await, json!(2));
    assert_eq!(s.ok("clear_items", json!({})).await, json!(2));
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "items_len": 0})
    );
}

const ENUM_SCHEMA: &[(&str, &str)] = &[("items", STRINGS), ("status", "LwwRegister<Status>")];

#[tokio::test]
async fn scenario_new_enum_variant_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_NEW_ENUM_VARIANT_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_NEW_ENUM_VARIANT_V1,
        Declares {
            package: "com.calimero.scenario-new-enum-variant",
            version: "1.0.0",
            state_version: 1,
            schema: ENUM_SCHEMA,
            methods: &[
                "set_status_active",
                "set_status_paused",
                "set_item",
                "get_item",
                "schema_info",
            ],
            migration: None,
        },
    )
    .await;
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "status": "Active"})
    );
    e.ok(ctx, "set_status_paused", json!({})).await;
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await["status"],
        json!("Paused")
    );
}

#[tokio::test]
async fn scenario_new_enum_variant_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_NEW_ENUM_VARIANT_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_NEW_ENUM_VARIANT_V2,
        Declares {
            package: "com.calimero.scenario-new-enum-variant",
            version: "2.0.0",
            state_version: 1,
            schema: ENUM_SCHEMA,
            methods: &[
                "set_status_active",
                "set_status_paused",
                "set_status_archived",
                "set_item",
                "get_item",
                "schema_info",
            ],
            migration: None,
        },
    )
    .await;
    e.ok(&ctx, "set_status_paused", json!({})).await;

    let mut s = Staged::code_only(&e, ctx, &v2);
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "status": "Paused"})
    );
    s.ok("set_status_archived", json!({})).await;
    assert_eq!(
        s.ok("schema_info", json!({})).await["status"],
        json!("Archived")
    );
}

const BUGFIX_SCHEMA: &[(&str, &str)] = &[("items", NUMBERS), ("last_sum", NUMBER)];
const BUGFIX_METHODS: &[&str] = &["add_value", "get_value", "sum_all_values", "schema_info"];

#[tokio::test]
async fn scenario_pure_bugfix_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_PURE_BUGFIX_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_PURE_BUGFIX_V1,
        Declares {
            package: "com.calimero.scenario-pure-bugfix",
            version: "1.0.0",
            state_version: 1,
            schema: BUGFIX_SCHEMA,
            methods: BUGFIX_METHODS,
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "add_value", json!({"key": "a", "value": 2}))
        .await;
    e.ok(ctx, "add_value", json!({"key": "b", "value": 3}))
        .await;
    assert_eq!(e.ok(ctx, "get_value", json!({"key": "a"})).await, json!(2));
    assert_eq!(
        e.ok(ctx, "get_value", json!({"key": "z"})).await,
        json!(null)
    );
    // v1's bug, kept on purpose: one too many.
    assert_eq!(e.ok(ctx, "sum_all_values", json!({})).await, json!(6));
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "last_sum": 6})
    );
}

#[tokio::test]
async fn scenario_pure_bugfix_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_PURE_BUGFIX_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_PURE_BUGFIX_V2,
        Declares {
            package: "com.calimero.scenario-pure-bugfix",
            version: "2.0.0",
            state_version: 1,
            schema: BUGFIX_SCHEMA,
            methods: BUGFIX_METHODS,
            migration: None,
        },
    )
    .await;
    e.ok(&ctx, "add_value", json!({"key": "a", "value": 2}))
        .await;
    e.ok(&ctx, "add_value", json!({"key": "b", "value": 3}))
        .await;
    e.ok(&ctx, "sum_all_values", json!({})).await;

    let mut s = Staged::code_only(&e, ctx, &v2);
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "last_sum": 6})
    );
    assert_eq!(s.ok("sum_all_values", json!({})).await, json!(5));
    assert_eq!(s.ok("schema_info", json!({})).await["last_sum"], json!(5));
}

// ------------------------------------------------- migrating pairs

#[tokio::test]
async fn scenario_crdt_native_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_CRDT_NATIVE_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_CRDT_NATIVE_V1,
        Declares {
            package: "com.calimero.scenario-crdt-native",
            version: "1.0.0",
            state_version: 1,
            schema: &[("items", STRINGS), ("title", STRING)],
            methods: &["set_title", "set_item", "get_item", "schema_info"],
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "set_item", json!({"key": "k1", "value": "v1"}))
        .await;
    assert_eq!(
        e.ok(ctx, "get_item", json!({"key": "k1"})).await,
        json!("v1")
    );
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "title": "untitled", "tag_count": 0})
    );
    e.ok(ctx, "set_title", json!({"title": "t"})).await;
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await["title"],
        json!("t")
    );
}

#[tokio::test]
async fn scenario_crdt_native_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_CRDT_NATIVE_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_CRDT_NATIVE_V2,
        Declares {
            package: "com.calimero.scenario-crdt-native",
            version: "2.0.0",
            state_version: 2,
            schema: &[
                ("items", STRINGS),
                ("title", STRING),
                ("tags", "Vector<String>"),
            ],
            methods: &[
                "set_title",
                "set_item",
                "get_item",
                "push_tag",
                "get_tag",
                "tag_count",
                "schema_info",
            ],
            migration: Some((1, "migrate_v1_to_v2", false, fx::SCENARIO_CRDT_NATIVE_V1)),
        },
    )
    .await;
    for key in ["k3", "k1", "k2"] {
        e.ok(&ctx, "set_item", json!({"key": key, "value": "v"}))
            .await;
    }

    let mut s = Staged::upgraded(&e, ctx, &v2, 1).await.unwrap();
    // Seeded from the keys, sorted, whatever order they were written in.
    assert_eq!(s.ok("tag_count", json!({})).await, json!(3));
    assert_eq!(s.ok("get_tag", json!({"index": 0})).await, json!("k1"));
    assert_eq!(s.ok("get_tag", json!({"index": 2})).await, json!("k3"));
    assert_eq!(s.ok("get_tag", json!({"index": 3})).await, json!(null));
    s.ok("push_tag", json!({"tag": "x"})).await;
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "title": "untitled", "tag_count": 4})
    );
    assert_eq!(s.ok("get_item", json!({"key": "k2"})).await, json!("v"));
}

const STRUCT_TO_ENUM_SCHEMA: &[(&str, &str)] =
    &[("name", STRING), ("status", "LwwRegister<Status>")];
const STRUCT_TO_ENUM_METHODS: &[&str] = &[
    "set_name",
    "set_status_active",
    "set_status_inactive",
    "schema_info",
];

#[tokio::test]
async fn scenario_struct_to_enum_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_STRUCT_TO_ENUM_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_STRUCT_TO_ENUM_V1,
        Declares {
            package: "com.calimero.scenario-struct-to-enum",
            version: "1.0.0",
            state_version: 1,
            schema: STRUCT_TO_ENUM_SCHEMA,
            methods: STRUCT_TO_ENUM_METHODS,
            migration: None,
        },
    )
    .await;
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "name": "entity",
               "status_active": true, "status_reason": null})
    );
    e.ok(ctx, "set_status_inactive", json!({"reason": "gone"}))
        .await;
    e.ok(ctx, "set_name", json!({"name": "n"})).await;
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "name": "n",
               "status_active": false, "status_reason": "gone"})
    );
}

#[tokio::test]
async fn scenario_struct_to_enum_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_STRUCT_TO_ENUM_V1, 2).await;
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_STRUCT_TO_ENUM_V2,
        Declares {
            package: "com.calimero.scenario-struct-to-enum",
            version: "2.0.0",
            state_version: 2,
            schema: STRUCT_TO_ENUM_SCHEMA,
            methods: STRUCT_TO_ENUM_METHODS,
            migration: Some((1, "migrate_v1_to_v2", false, fx::SCENARIO_STRUCT_TO_ENUM_V1)),
        },
    )
    .await;
    let (inactive, active) = (ctxs[0], ctxs[1]);
    e.ok(&inactive, "set_status_inactive", json!({"reason": "gone"}))
        .await;
    e.ok(&active, "set_name", json!({"name": "n"})).await;

    let mut s = Staged::upgraded(&e, inactive, &v2, 1).await.unwrap();
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "name": "entity",
               "status_kind": "inactive", "status_reason": "gone"})
    );
    let mut s = Staged::upgraded(&e, active, &v2, 1).await.unwrap();
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "name": "n",
               "status_kind": "active", "status_reason": null})
    );
}

#[tokio::test]
async fn scenario_field_split_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_FIELD_SPLIT_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_FIELD_SPLIT_V1,
        Declares {
            package: "com.calimero.scenario-field-split",
            version: "1.0.0",
            state_version: 1,
            schema: &[("name", STRING), ("address", STRING)],
            methods: &["set_name", "set_address", "get_address", "schema_info"],
            migration: None,
        },
    )
    .await;
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "name": "customer", "address": ""})
    );
    e.ok(
        ctx,
        "set_address",
        json!({"address": "1 Main St, Springfield, 12345"}),
    )
    .await;
    assert_eq!(
        e.ok(ctx, "get_address", json!({})).await,
        json!("1 Main St, Springfield, 12345")
    );
}

#[tokio::test]
async fn scenario_field_split_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_FIELD_SPLIT_V1, 2).await;
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_FIELD_SPLIT_V2,
        Declares {
            package: "com.calimero.scenario-field-split",
            version: "2.0.0",
            state_version: 2,
            schema: &[
                ("name", STRING),
                ("street", STRING),
                ("city", STRING),
                ("postcode", STRING),
            ],
            methods: &[
                "set_name",
                "set_street",
                "set_city",
                "set_postcode",
                "get_street",
                "get_city",
                "get_postcode",
                "schema_info",
            ],
            migration: Some((1, "migrate_v1_to_v2", false, fx::SCENARIO_FIELD_SPLIT_V1)),
        },
    )
    .await;
    let (three_parts, other) = (ctxs[0], ctxs[1]);
    e.ok(
        &three_parts,
        "set_address",
        json!({"address": "1 Main St, Springfield, 12345"}),
    )
    .await;
    e.ok(&other, "set_address", json!({"address": "somewhere"}))
        .await;

    let mut s = Staged::upgraded(&e, three_parts, &v2, 1).await.unwrap();
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "name": "customer",
               "street": "1 Main St", "city": "Springfield", "postcode": "12345"})
    );
    let v1 = load(&e, fx::SCENARIO_FIELD_SPLIT_V1).await;
    let mut s = s.through(&v1);
    assert_eq!(s.ok("get_address", json!({})).await, json!(""));

    let mut s = Staged::upgraded(&e, other, &v2, 1).await.unwrap();
    assert_eq!(s.ok("get_street", json!({})).await, json!("somewhere"));
    assert_eq!(s.ok("get_city", json!({})).await, json!(""));
    assert_eq!(s.ok("get_postcode", json!({})).await, json!(""));
}

#[tokio::test]
async fn scenario_field_remove_archive_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_FIELD_REMOVE_ARCHIVE_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_FIELD_REMOVE_ARCHIVE_V1,
        Declares {
            package: "com.calimero.scenario-field-remove-archive",
            version: "1.0.0",
            state_version: 1,
            schema: &[
                ("name", STRING),
                ("legacy_note", STRING),
                ("counter", NUMBER),
            ],
            methods: &[
                "set_name",
                "set_legacy_note",
                "get_legacy_note",
                "bump_counter",
                "schema_info",
            ],
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "set_legacy_note", json!({"note": "old"})).await;
    assert_eq!(e.ok(ctx, "get_legacy_note", json!({})).await, json!("old"));
    assert_eq!(e.ok(ctx, "bump_counter", json!({})).await, json!(1));
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "name": "entity", "legacy_note": "old", "counter": 1})
    );
}

#[tokio::test]
async fn scenario_field_remove_archive_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_FIELD_REMOVE_ARCHIVE_V1, 2).await;
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_FIELD_REMOVE_ARCHIVE_V2,
        Declares {
            package: "com.calimero.scenario-field-remove-archive",
            version: "2.0.0",
            state_version: 2,
            schema: &[
                ("name", STRING),
                ("counter", NUMBER),
                ("archived_legacy", STRINGS),
            ],
            methods: &[
                "set_name",
                "bump_counter",
                "get_archived",
                "archived_keys",
                "schema_info",
            ],
            migration: Some((
                1,
                "migrate_v1_to_v2",
                false,
                fx::SCENARIO_FIELD_REMOVE_ARCHIVE_V1,
            )),
        },
    )
    .await;
    let (noted, empty) = (ctxs[0], ctxs[1]);
    e.ok(&noted, "set_legacy_note", json!({"note": "old"}))
        .await;
    e.ok(&noted, "bump_counter", json!({})).await;

    let mut s = Staged::upgraded(&e, noted, &v2, 1).await.unwrap();
    assert_eq!(
        s.ok("get_archived", json!({"key": "latest"})).await,
        json!("old")
    );
    assert_eq!(s.ok("archived_keys", json!({})).await, json!(["latest"]));
    assert_eq!(s.ok("bump_counter", json!({})).await, json!(2));
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "name": "entity", "counter": 2, "archived_latest": "old"})
    );
    let v1 = load(&e, fx::SCENARIO_FIELD_REMOVE_ARCHIVE_V1).await;
    let mut s = s.through(&v1);
    assert_eq!(s.ok("get_legacy_note", json!({})).await, json!(""));

    // An empty note is archived too.
    let mut s = Staged::upgraded(&e, empty, &v2, 1).await.unwrap();
    assert_eq!(
        s.ok("schema_info", json!({})).await["archived_latest"],
        json!("")
    );
}

#[tokio::test]
async fn scenario_invariant_reshuffle_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_INVARIANT_RESHUFFLE_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_INVARIANT_RESHUFFLE_V1,
        Declares {
            package: "com.calimero.scenario-invariant-reshuffle",
            version: "1.0.0",
            state_version: 1,
            schema: &[("global_count", NUMBER), ("per_item_counts", NUMBERS)],
            methods: &[
                "record",
                "get_global_count",
                "get_item_count",
                "schema_info",
            ],
            migration: None,
        },
    )
    .await;
    for item in ["b", "a", "a"] {
        assert_eq!(
            e.ok(ctx, "record", json!({"item": item})).await,
            json!(null)
        );
    }
    assert_eq!(e.ok(ctx, "get_global_count", json!({})).await, json!(3));
    assert_eq!(
        e.ok(ctx, "get_item_count", json!({"item": "a"})).await,
        json!(2)
    );
    assert_eq!(
        e.ok(ctx, "get_item_count", json!({"item": "z"})).await,
        json!(null)
    );
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "global_count": 3, "item_keys": ["a", "b"]})
    );
}

#[tokio::test]
async fn scenario_invariant_reshuffle_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_INVARIANT_RESHUFFLE_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_INVARIANT_RESHUFFLE_V2,
        Declares {
            package: "com.calimero.scenario-invariant-reshuffle",
            version: "2.0.0",
            state_version: 2,
            schema: &[("total", NUMBER), ("per_item", NUMBERS)],
            methods: &["record", "get_total", "get_item_count", "schema_info"],
            migration: Some((
                1,
                "migrate_v1_to_v2",
                true,
                fx::SCENARIO_INVARIANT_RESHUFFLE_V1,
            )),
        },
    )
    .await;
    for item in ["b", "a", "a"] {
        e.ok(&ctx, "record", json!({"item": item})).await;
    }

    let mut s = Staged::upgraded(&e, ctx, &v2, 1).await.unwrap();
    assert_eq!(s.ok("get_total", json!({})).await, json!(3));
    assert_eq!(s.ok("get_item_count", json!({"item": "a"})).await, json!(2));
    assert_eq!(s.ok("record", json!({"item": "c"})).await, json!(4));
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "total": 4, "item_keys": ["a", "b", "c"]})
    );
    let v1 = load(&e, fx::SCENARIO_INVARIANT_RESHUFFLE_V1).await;
    let mut s = s.through(&v1);
    assert_eq!(s.ok("get_global_count", json!({})).await, json!(0));
    assert_eq!(s.ok("schema_info", json!({})).await["item_keys"], json!([]));
}

// ------------------------------------------------- checked migrations

const CHECK_V1_SCHEMA: &[(&str, &str)] = &[("items", STRINGS), ("title", STRING)];
const CHECK_V2_SCHEMA: &[(&str, &str)] =
    &[("items", STRINGS), ("title", STRING), ("notes", STRING)];
const CHECK_V1_METHODS: &[&str] = &[
    "set_title",
    "set_item",
    "get_item",
    "item_count",
    "schema_info",
];
const CHECK_V2_METHODS: &[&str] = &[
    "set_title",
    "set_item",
    "get_item",
    "item_count",
    "get_notes",
    "schema_info",
];

/// A context of a check fixture's v1 holding alpha, bravo and charlie.
async fn three_items(e: &Engine, ctx: &ContextId) {
    for (key, value) in [("alpha", "a"), ("bravo", "b"), ("charlie", "c")] {
        e.ok(ctx, "set_item", json!({"key": key, "value": value}))
            .await;
    }
}

async fn assert_check_v1(path: &str, package: &'static str) {
    let (e, ctxs) = contexts(path, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        path,
        Declares {
            package,
            version: "1.0.0",
            state_version: 1,
            schema: CHECK_V1_SCHEMA,
            methods: CHECK_V1_METHODS,
            migration: None,
        },
    )
    .await;
    three_items(&e, ctx).await;
    assert_eq!(e.ok(ctx, "item_count", json!({})).await, json!(3));
    assert_eq!(
        e.ok(ctx, "get_item", json!({"key": "alpha"})).await,
        json!("a")
    );
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "title": "untitled", "item_count": 3})
    );
}

#[tokio::test]
async fn scenario_migration_check_pass_v1() {
    assert_check_v1(
        fx::SCENARIO_MIGRATION_CHECK_PASS_V1,
        "com.calimero.scenario-migration-check-pass",
    )
    .await;
}

#[tokio::test]
async fn scenario_migration_check_pass_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_MIGRATION_CHECK_PASS_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_MIGRATION_CHECK_PASS_V2,
        Declares {
            package: "com.calimero.scenario-migration-check-pass",
            version: "2.0.0",
            state_version: 2,
            schema: CHECK_V2_SCHEMA,
            methods: CHECK_V2_METHODS,
            migration: Some((
                1,
                "migrate_v1_to_v2",
                true,
                fx::SCENARIO_MIGRATION_CHECK_PASS_V1,
            )),
        },
    )
    .await;
    three_items(&e, &ctx).await;

    let mut s = Staged::upgraded(&e, ctx, &v2, 1).await.unwrap();
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "title": "untitled",
               "item_count": 3, "notes": "added in v2"})
    );
    assert_eq!(s.ok("get_item", json!({"key": "alpha"})).await, json!("a"));
}

#[tokio::test]
async fn scenario_migration_check_fail_v1() {
    assert_check_v1(
        fx::SCENARIO_MIGRATION_CHECK_FAIL_V1,
        "com.calimero.scenario-migration-check-fail",
    )
    .await;
}

#[tokio::test]
async fn scenario_migration_check_fail_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_MIGRATION_CHECK_FAIL_V1, 2).await;
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_MIGRATION_CHECK_FAIL_V2,
        Declares {
            package: "com.calimero.scenario-migration-check-fail",
            version: "2.0.0",
            state_version: 2,
            schema: CHECK_V2_SCHEMA,
            methods: CHECK_V2_METHODS,
            migration: Some((
                1,
                "migrate_v1_to_v2",
                true,
                fx::SCENARIO_MIGRATION_CHECK_FAIL_V1,
            )),
        },
    )
    .await;
    let (full, empty) = (ctxs[0], ctxs[1]);
    three_items(&e, &full).await;

    // The migration alone succeeds and loses the smallest key...
    let mut s = Staged::migrated(&e, full, &v2, 1).await.unwrap();
    assert_eq!(s.ok("get_item", json!({"key": "alpha"})).await, json!(null));
    assert_eq!(s.ok("item_count", json!({})).await, json!(2));
    // ...which its check catches.
    let err = Staged::upgraded(&e, full, &v2, 1).await.err().unwrap();
    assert!(format!("{err}").contains("check"), "{err}");
    // Nothing was committed: v1 still holds every item.
    assert_eq!(e.ok(&full, "item_count", json!({})).await, json!(3));
    assert_eq!(
        e.ok(&full, "get_item", json!({"key": "alpha"})).await,
        json!("a")
    );

    // With nothing to lose, the same check passes.
    let mut s = Staged::upgraded(&e, empty, &v2, 1).await.unwrap();
    assert_eq!(s.ok("get_notes", json!({})).await, json!("added in v2"));
}

// ------------------------------------------------- refused: no version bump

const LAYOUT_METHODS: &[&str] = &["set_item", "get_item", "schema_info"];

#[tokio::test]
async fn scenario_layout_no_bump_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_LAYOUT_NO_BUMP_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_LAYOUT_NO_BUMP_V1,
        Declares {
            package: "com.calimero.scenario-layout-no-bump",
            version: "1.0.0",
            state_version: 1,
            schema: &[("items", STRINGS)],
            methods: LAYOUT_METHODS,
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "set_item", json!({"key": "k", "value": "v"}))
        .await;
    assert_eq!(e.ok(ctx, "get_item", json!({"key": "k"})).await, json!("v"));
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "item_count": 1})
    );
}

#[tokio::test]
async fn scenario_layout_no_bump_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_LAYOUT_NO_BUMP_V1, 1).await;
    let ctx = ctxs[0];
    // The same package and state version, no migration, another layout:
    // what the node must refuse to upgrade to.
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_LAYOUT_NO_BUMP_V2,
        Declares {
            package: "com.calimero.scenario-layout-no-bump",
            version: "2.0.0",
            state_version: 1,
            schema: &[("items", NUMBERS)],
            methods: LAYOUT_METHODS,
            migration: None,
        },
    )
    .await;
    e.ok(&ctx, "set_item", json!({"key": "k", "value": "v"}))
        .await;

    // Why: v2's code cannot read the state v1 wrote.
    let mut s = Staged::code_only(&e, ctx, &v2);
    assert!(s.call("get_item", json!({"key": "k"})).await.is_err());
    assert_eq!(
        s.ok("schema_info", json!({})).await,
        json!({"schema_version": "2.0.0", "item_count": 1})
    );
}

// ------------------------------------------------------ authored entries

const AUTHORED_STRINGS: &str = "AuthoredMap<String,String>";
/// What every app with an authored field answers besides its own methods.
const OWNER_BUILTINS: [&str; 2] = ["migrate_my_entries", "count_my_pending"];

fn with_builtins(own: &[&'static str]) -> &'static [&'static str] {
    let all: Vec<&'static str> = own.iter().copied().chain(OWNER_BUILTINS).collect();
    all.leak()
}

fn map_methods(v2: bool) -> &'static [&'static str] {
    let mut own = vec![
        "set_title",
        "put_entry",
        "remove_entry",
        "get_entry",
        "owner_of",
        "entry_count",
        "schema_info",
    ];
    if v2 {
        own.push("migration_note");
    }
    with_builtins(&own)
}

#[tokio::test]
async fn scenario_authored_map_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_AUTHORED_MAP_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_AUTHORED_MAP_V1,
        Declares {
            package: "com.calimero.scenario-authored-map",
            version: "1.0.0",
            state_version: 1,
            schema: &[("entries", AUTHORED_STRINGS), ("title", STRING)],
            methods: map_methods(false),
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "put_entry", json!({"key": "k1", "value": "one"}))
        .await;
    let me = bs58::encode(e.exec.author().0).into_string();
    assert_eq!(e.ok(ctx, "owner_of", json!({"key": "k1"})).await, json!(me));
    assert_eq!(
        e.ok(ctx, "get_entry", json!({"key": "k1"})).await,
        json!("one")
    );
    assert_eq!(e.ok(ctx, "entry_count", json!({})).await, json!(1));
    // Written under the running version: nothing to rewrite.
    assert_eq!(e.ok(ctx, "count_my_pending", json!({})).await, json!(0));
    assert_eq!(
        e.ok(ctx, "remove_entry", json!({"key": "k1"})).await,
        json!(true)
    );
    assert_eq!(
        e.ok(ctx, "owner_of", json!({"key": "k1"})).await,
        json!(null)
    );
}

#[tokio::test]
async fn scenario_authored_map_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_AUTHORED_MAP_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_AUTHORED_MAP_V2,
        Declares {
            package: "com.calimero.scenario-authored-map",
            version: "2.0.0",
            state_version: 2,
            schema: &[
                ("entries", AUTHORED_STRINGS),
                ("title", STRING),
                ("migration_note", STRING),
            ],
            methods: map_methods(true),
            migration: Some((1, "migrate_v1_to_v2", false, fx::SCENARIO_AUTHORED_MAP_V1)),
        },
    )
    .await;
    e.ok(&ctx, "put_entry", json!({"key": "k1", "value": "one"}))
        .await;
    let owner = e.ok(&ctx, "owner_of", json!({"key": "k1"})).await;

    let mut s = Staged::upgraded(&e, ctx, &v2, 1).await.unwrap();
    assert_eq!(s.ok("owner_of", json!({"key": "k1"})).await, owner);
    assert_eq!(s.ok("get_entry", json!({"key": "k1"})).await, json!("one"));
    assert_eq!(
        s.ok("migration_note", json!({})).await,
        json!("migrated from 1.0.0 to 2.0.0")
    );
    // Carried over as v1 wrote it: pending for its owner until rewritten.
    assert_eq!(s.ok("count_my_pending", json!({})).await, json!(1));
    assert_eq!(
        s.ok("migrate_my_entries", json!({})).await,
        json!({"converted": 1, "remaining": 0})
    );
    assert_eq!(s.ok("owner_of", json!({"key": "k1"})).await, owner);
}

fn vector_methods(v2: bool) -> &'static [&'static str] {
    let mut own = vec![
        "set_title",
        "push_entry",
        "set_entry",
        "get_entry",
        "owner_of",
        "entry_count",
        "schema_info",
    ];
    if v2 {
        own.push("migration_note");
    }
    with_builtins(&own)
}

const AUTHORED_VECTOR: &str = "AuthoredVector<String>";

#[tokio::test]
async fn scenario_authored_vector_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_AUTHORED_VECTOR_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_AUTHORED_VECTOR_V1,
        Declares {
            package: "com.calimero.scenario-authored-vector",
            version: "1.0.0",
            state_version: 1,
            schema: &[("entries", AUTHORED_VECTOR), ("title", STRING)],
            methods: vector_methods(false),
            migration: None,
        },
    )
    .await;
    assert_eq!(
        e.ok(ctx, "push_entry", json!({"value": "first"})).await,
        json!(1)
    );
    assert_eq!(
        e.ok(ctx, "set_entry", json!({"index": 0, "value": "first'"}))
            .await,
        json!("first")
    );
    assert_eq!(
        e.ok(ctx, "get_entry", json!({"index": 0})).await,
        json!("first'")
    );
    let me = bs58::encode(e.exec.author().0).into_string();
    assert_eq!(e.ok(ctx, "owner_of", json!({"index": 0})).await, json!(me));
}

#[tokio::test]
async fn scenario_authored_vector_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_AUTHORED_VECTOR_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_AUTHORED_VECTOR_V2,
        Declares {
            package: "com.calimero.scenario-authored-vector",
            version: "2.0.0",
            state_version: 2,
            schema: &[
                ("entries", AUTHORED_VECTOR),
                ("title", STRING),
                ("migration_note", STRING),
            ],
            methods: vector_methods(true),
            migration: Some((
                1,
                "migrate_v1_to_v2",
                false,
                fx::SCENARIO_AUTHORED_VECTOR_V1,
            )),
        },
    )
    .await;
    e.ok(&ctx, "push_entry", json!({"value": "first"})).await;
    let owner = e.ok(&ctx, "owner_of", json!({"index": 0})).await;
    let mut s = Staged::upgraded(&e, ctx, &v2, 1).await.unwrap();
    assert_eq!(s.ok("owner_of", json!({"index": 0})).await, owner);
    assert_eq!(s.ok("get_entry", json!({"index": 0})).await, json!("first"));
    assert_eq!(s.ok("entry_count", json!({})).await, json!(1));
}

fn ux_methods(v2: bool) -> &'static [&'static str] {
    let mut own = vec![
        "set_note",
        "my_note",
        "owner_of",
        "note_count",
        "note_schema_version",
        "schema_info",
    ];
    if v2 {
        own.extend(["note_edits", "migration_note"]);
    }
    with_builtins(&own)
}

#[tokio::test]
async fn scenario_authored_migrate_ux_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_AUTHORED_MIGRATE_UX_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_AUTHORED_MIGRATE_UX_V1,
        Declares {
            package: "com.calimero.scenario-authored-migrate-ux",
            version: "1.0.0",
            state_version: 1,
            schema: &[("notes", AUTHORED_STRINGS)],
            methods: ux_methods(false),
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "set_note", json!({"key": "a", "text": "alpha"}))
        .await;
    assert_eq!(
        e.ok(ctx, "my_note", json!({"key": "a"})).await,
        json!("alpha")
    );
    assert_eq!(
        e.ok(ctx, "note_schema_version", json!({"key": "a"})).await,
        json!(1)
    );
    assert_eq!(
        e.ok(ctx, "schema_info", json!({})).await,
        json!({"schema_version": "1.0.0", "note_count": 1})
    );
}

#[tokio::test]
async fn scenario_authored_migrate_ux_v2() {
    let (e, ctxs) = contexts(fx::SCENARIO_AUTHORED_MIGRATE_UX_V1, 1).await;
    let ctx = ctxs[0];
    let v2 = assert_declares(
        &e,
        fx::SCENARIO_AUTHORED_MIGRATE_UX_V2,
        Declares {
            package: "com.calimero.scenario-authored-migrate-ux",
            version: "2.0.0",
            state_version: 2,
            schema: &[
                ("notes", "AuthoredMap<String,Note,String>"),
                ("migration_note", STRING),
            ],
            methods: ux_methods(true),
            migration: Some((
                1,
                "migrate_v1_to_v2",
                false,
                fx::SCENARIO_AUTHORED_MIGRATE_UX_V1,
            )),
        },
    )
    .await;
    for (k, t) in [("a", "alpha"), ("b", "beta")] {
        e.ok(&ctx, "set_note", json!({"key": k, "text": t})).await;
    }
    let mut s = Staged::upgraded(&e, ctx, &v2, 1).await.unwrap();
    // A v1 note reads as a v2 record through `From<String>`...
    assert_eq!(s.ok("my_note", json!({"key": "a"})).await, json!("alpha"));
    assert_eq!(s.ok("note_edits", json!({"key": "a"})).await, json!(0));
    assert_eq!(
        s.ok("note_schema_version", json!({"key": "a"})).await,
        json!(1)
    );
    // ...until its owner rewrites it (upstream's scenario 33).
    assert_eq!(s.ok("count_my_pending", json!({})).await, json!(2));
    assert_eq!(
        s.ok("migrate_my_entries", json!({})).await,
        json!({"converted": 2, "remaining": 0})
    );
    assert_eq!(s.ok("count_my_pending", json!({})).await, json!(0));
    assert_eq!(
        s.ok("note_schema_version", json!({"key": "b"})).await,
        json!(2)
    );
    assert_eq!(s.ok("my_note", json!({"key": "b"})).await, json!("beta"));
    assert_eq!(
        s.ok("migrate_my_entries", json!({})).await,
        json!({"converted": 0, "remaining": 0})
    );
    // An edit under v2 counts.
    s.ok("set_note", json!({"key": "a", "text": "alpha 2"}))
        .await;
    assert_eq!(s.ok("note_edits", json!({"key": "a"})).await, json!(1));
}

#[tokio::test]
async fn scenario_identity_downgrade_v1() {
    let (e, ctxs) = contexts(fx::SCENARIO_IDENTITY_DOWNGRADE_V1, 1).await;
    let ctx = &ctxs[0];
    assert_declares(
        &e,
        fx::SCENARIO_IDENTITY_DOWNGRADE_V1,
        Declares {
            package: "com.calimero.scenario-identity-downgrade",
            version: "1.0.0",
            state_version: 1,
            schema: &[("wiki", AUTHORED_STRINGS)],
            methods: with_builtins(&["put", "get", "owner_of"]),
            migration: None,
        },
    )
    .await;
    e.ok(ctx, "put", json!({"key": "page", "value": "text"}))
        .await;
    assert_eq!(
        e.ok(ctx, "get", json!({"key": "page"})).await,
        json!("text")
    );
}

#[tokio::test]
async fn scenario_identity_downgrade_v2() {
    let (e, _) = contexts(fx::SCENARIO_IDENTITY_DOWNGRADE_V1, 1).await;
    // Declares a plain map where v1 had an authored one: the node refuses
    // the upgrade before anything runs (the e2e test shows it).
    assert_declares(
        &e,
        fx::SCENARIO_IDENTITY_DOWNGRADE_V2,
        Declares {
            package: "com.calimero.scenario-identity-downgrade",
            version: "2.0.0",
            state_version: 2,
            schema: &[("wiki", STRINGS)],
            methods: &["put", "get"],
            migration: Some((
                1,
                "migrate_v1_to_v2",
                false,
                fx::SCENARIO_IDENTITY_DOWNGRADE_V1,
            )),
        },
    )
    .await;
}
