// Contexts: the list (app and version, root hash, heads), creating one,
// and one context's page: members, sync status, DAG heads, its state
// browsed collection by collection, and a call form from its app's
// methods.
import { Application, Context, ContextState, Data, execute, get, Namespace, post, StateBytes, StateEntry } from "../api";
import { base58, bytes, facts, fill, h, id, json, notice, table, when } from "../dom";
import type { Page } from "../main";

export const contextsPage: Page = (root, args) => {
  if (args[0]) return contextPage(root, args[0]);
  const list = h("div", { id: "contexts" }, h("p", { class: "muted" }, "Loading…"));
  const create = h("section", { class: "card" });
  fill(root, h("h1", null, "Contexts"), list, create);
  const load = async () => {
    try {
      const contexts = (await get<Data<{ contexts: Context[] }>>("/admin-api/contexts")).data.contexts;
      fill(
        list,
        contexts.length
          ? table(
              ["Context", "Application", "Version", "Root hash", "Heads", "Deltas", "Group"],
              contexts.map((c) => [
                h("a", { href: `#/contexts/${c.id}`, class: "context-link", "data-context": c.id }, c.name ? `${c.name} ` : "", id(c.id)),
                id(c.applicationId),
                c.applicationVersion ?? "—",
                id(c.contextStateHash),
                String(c.dagHeads.length),
                String(c.deltaCount ?? "—"),
                c.groupId ? h("a", { href: `#/groups/${c.groupId}` }, id(c.groupId, 6)) : "—",
              ]),
              { id: "contexts-table" },
            )
          : h("p", { class: "muted" }, "No context on this node."),
      );
    } catch (e) {
      fill(list, notice("error", (e as Error).message));
    }
  };
  const drawCreate = async () => {
    try {
      const [namespaces, apps] = await Promise.all([
        get<Data<Namespace[]>>("/admin-api/namespaces").then((r) => r.data),
        get<Data<{ apps: Application[] }>>("/admin-api/applications").then((r) => r.data.apps),
      ]);
      const groups: { id: string; label: string; app: string }[] = [];
      for (const n of namespaces) {
        groups.push({ id: n.namespaceId, label: `${n.name ?? "namespace"} ${n.namespaceId.slice(0, 8)}…`, app: n.targetApplicationId });
        try {
          const subs = (await get<Data<{ groupId: string; name?: string }[]>>(`/admin-api/namespaces/${n.namespaceId}/groups`)).data;
          for (const s of subs) groups.push({ id: s.groupId, label: `  └ ${s.name ?? "group"} ${s.groupId.slice(0, 8)}…`, app: n.targetApplicationId });
        } catch {
          /* a namespace whose subgroups we may not list */
        }
      }
      const group = h("select", { id: "new-context-group", "aria-label": "Group" }, groups.map((g) => h("option", { value: g.id }, g.label)));
      const app = h("select", { id: "new-context-app", "aria-label": "Application" }, apps.map((a) => h("option", { value: a.id }, `${a.package} ${a.version ?? ""}`)));
      const pick = () => {
        const g = groups.find((x) => x.id === group.value);
        if (g && apps.some((a) => a.id === g.app)) app.value = g.app;
      };
      group.addEventListener("change", pick);
      pick();
      const name = h("input", { id: "new-context-name", placeholder: "name (optional)" });
      const init = h("input", { id: "new-context-init", placeholder: "init arguments, JSON (optional)" });
      const status = h("div", { id: "create-status" });
      fill(
        create,
        h("h2", null, "New context"),
        groups.length
          ? [
              h("div", { class: "row" }, h("label", null, "Group ", group), h("label", null, "App ", app)),
              h("div", { class: "row" }, name, init),
              h(
                "button",
                {
                  id: "create-context",
                  class: "primary",
                  onclick: async () => {
                    try {
                      const params = init.value.trim() ? Array.from(new TextEncoder().encode(JSON.stringify(JSON.parse(init.value)))) : [];
                      const r = await post<Data<{ contextId: string }>>("/admin-api/contexts", {
                        applicationId: app.value,
                        groupId: group.value,
                        name: name.value.trim() || undefined,
                        initializationParams: params,
                      });
                      fill(status, notice("ok", `Created context ${r.data.contextId}`));
                      await load();
                    } catch (e) {
                      fill(status, notice("error", (e as Error).message));
                    }
                  },
                },
                "Create context",
              ),
              status,
            ]
          : h("p", { class: "muted" }, "Create or join a namespace first (Namespaces page)."),
      );
    } catch (e) {
      fill(create, notice("error", (e as Error).message));
    }
  };
  void load();
  void drawCreate();
  return undefined;
};

function shown(b: StateBytes | null): HTMLElement {
  if (!b) return h("span", { class: "muted" }, "—");
  const text = b.text !== null ? b.text : `0x${b.hex}`;
  return h("code", { class: "value", title: `${b.len} bytes` }, text, b.truncated ? `… (${bytes(b.len)})` : "");
}

function contextPage(root: HTMLElement, contextId: string): () => void {
  let stopped = false;
  const head = h("div", { id: "context-info" }, h("p", { class: "muted" }, "Loading…"));
  const stateBox = h("section", { id: "state", class: "card" });
  const callBox = h("section", { id: "call", class: "card" });
  fill(
    root,
    h("p", null, h("a", { href: "#/contexts" }, "← Contexts")),
    h("h1", null, "Context ", id(contextId, 12)),
    head,
    h("div", { class: "split" }, stateBox, callBox),
  );

  const drawInfo = async () => {
    try {
      const [c, members, storage] = await Promise.all([
        get<Data<Context>>(`/admin-api/contexts/${contextId}`).then((r) => r.data),
        get<Data<{ identities: string[] }>>(`/admin-api/contexts/${contextId}/identities`).then((r) => r.data.identities),
        get<Data<{ sizeInBytes: number }>>(`/admin-api/contexts/${contextId}/storage`).then((r) => r.data.sizeInBytes),
      ]);
      if (stopped) return c;
      const sync = c.syncStatus ?? {};
      const syncText = [
        String(sync.state ?? "—"),
        sync.lastSyncMillis ? `last compared ${when(Number(sync.lastSyncMillis))}` : "",
        `merged ${sync.merged ?? 0}`,
        Number(sync.rejected ?? 0) ? `rejected ${sync.rejected}` : "",
        sync.lastError ? `error: ${sync.lastError}` : "",
      ]
        .filter(Boolean)
        .join(" · ");
      const syncStatus = h("div");
      fill(
        head,
        facts([
          ["Name", c.name ?? "—"],
          ["Application", h("span", null, id(c.applicationId), " ", h("span", { class: "version" }, c.applicationVersion ?? ""))],
          ["State version", String(c.stateVersion ?? "—")],
          ["Root hash", h("span", { id: "root-hash" }, id(c.contextStateHash, 22))],
          ["DAG heads", h("ul", { id: "dag-heads", class: "plain" }, c.dagHeads.map((hd) => h("li", null, id(base58(hd), 22))))],
          ["Deltas", String(c.deltaCount ?? "—")],
          ["Group", c.groupId ? h("a", { href: `#/groups/${c.groupId}` }, id(c.groupId, 8)) : "—"],
          ["Members", h("ul", { id: "context-members", class: "plain" }, members.map((m) => h("li", null, id(m, 22))))],
          ["Sync", h("span", { id: "sync-status" }, syncText)],
          ["Stored state", bytes(storage)],
        ]),
        h(
          "div",
          { class: "row" },
          h(
            "button",
            {
              id: "sync-now",
              onclick: async () => {
                try {
                  await post(`/admin-api/contexts/sync/${contextId}`);
                  fill(syncStatus, notice("ok", "Sync round started."));
                } catch (e) {
                  fill(syncStatus, notice("error", (e as Error).message));
                }
              },
            },
            "Sync now",
          ),
          h("a", { href: `#/events/${contextId}`, class: "button" }, "Watch its events"),
        ),
        syncStatus,
      );
      return c;
    } catch (e) {
      fill(head, notice("error", (e as Error).message));
      return null;
    }
  };

  // The state browser: a path of collections from a root field down.
  type Crumb = { label: string; collection: string; after: string | null; history: (string | null)[] };
  let path: Crumb[] = [];
  const drawState = async () => {
    const at = path[path.length - 1];
    const q = at ? `?collection=${at.collection}&limit=20${at.after ? `&after=${at.after}` : ""}` : "";
    try {
      const s = (await get<Data<ContextState>>(`/admin-api/contexts/${contextId}/state${q}`)).data;
      if (stopped) return;
      const crumbs = h(
        "div",
        { class: "crumbs" },
        h("a", { href: "#", onclick: (e: Event) => (e.preventDefault(), (path = []), void drawState()) }, "fields"),
        path.map((c, i) => [
          " / ",
          h("a", { href: "#", onclick: (e: Event) => (e.preventDefault(), (path = path.slice(0, i + 1)), void drawState()) }, c.label),
        ]),
      );
      const open = (label: string, collection: string) => {
        path = [...path, { label, collection, after: null, history: [] }];
        void drawState();
      };
      const entryRow = (e: StateEntry) => [
        e.kind,
        shown(e.key),
        e.kind === "counter" && e.counter
          ? `+${e.counter.increments} −${e.counter.decrements}`
          : e.authored
            ? h("span", null, shown(e.value), ` (owner ${e.authored.owner.slice(0, 8)}…, v${e.authored.version})`)
            : shown(e.value),
        // A map of registers shows its value inline; only deeper
        // collections open.
        e.child && !(e.value && e.child.entries === 1)
          ? h("button", { class: "small open-child", onclick: () => open(e.key.text ?? e.key.hex.slice(0, 12), e.child!.collection) }, `open (${e.child.entries})`)
          : "",
      ];
      fill(
        stateBox,
        h("h2", null, "State"),
        h(
          "p",
          { id: "private-size", class: "muted" },
          `State version ${s.stateVersion}. Private storage on this node: ${s.private.entries} values, ${bytes(s.private.sizeInBytes)} (sizes only).`,
        ),
        crumbs,
        at
          ? [
              s.entries.length
                ? table(["Kind", "Key", "Value", ""], s.entries.map(entryRow), { id: "state-entries" })
                : h("p", { class: "muted", id: "state-entries" }, "No entries."),
              h(
                "div",
                { class: "row" },
                h(
                  "button",
                  {
                    class: "small",
                    id: "state-prev",
                    disabled: at.history.length === 0,
                    onclick: () => {
                      at.after = at.history.pop() ?? null;
                      void drawState();
                    },
                  },
                  "← Previous",
                ),
                h(
                  "button",
                  {
                    class: "small",
                    id: "state-next",
                    disabled: !s.next,
                    onclick: () => {
                      at.history.push(at.after);
                      at.after = s.next;
                      void drawState();
                    },
                  },
                  "Next →",
                ),
              ),
            ]
          : table(
              ["Field", "Type", "Entries", ""],
              s.fields.map((f) => [
                h("code", null, f.name),
                h("code", { class: "muted" }, f.kind),
                String(f.entries),
                h("button", { class: "small browse", "data-field": f.name, onclick: () => open(f.name, f.collection) }, "Browse"),
              ]),
              { id: "state-fields" },
            ),
      );
    } catch (e) {
      fill(stateBox, h("h2", null, "State"), notice("error", (e as Error).message));
    }
  };

  const drawCall = async (c: Context | null) => {
    if (!c) return;
    let app: Application;
    try {
      app = (await get<Data<{ application: Application }>>(`/admin-api/applications/${c.applicationId}`)).data.application;
    } catch (e) {
      fill(callBox, h("h2", null, "Call"), notice("error", (e as Error).message));
      return;
    }
    const methods = [...app.methods].sort((a, b) => a.name.localeCompare(b.name));
    const method = h(
      "select",
      { id: "call-method", "aria-label": "Method" },
      methods.map((m) => h("option", { value: m.name, "data-intent": m.intent }, `${m.name} — ${m.intent === "readOnly" ? "view" : "mutating"}`)),
    );
    const badge = h("span", { id: "call-intent", class: "badge" });
    const showIntent = () => {
      const m = methods.find((x) => x.name === method.value);
      const view = m?.intent === "readOnly";
      badge.textContent = view ? "view: reads committed state" : "mutating: writes a delta";
      badge.className = `badge ${view ? "view" : "mutating"}`;
    };
    method.addEventListener("change", showIntent);
    showIntent();
    const argsBox = h("textarea", { id: "call-args", rows: 4, "aria-label": "Arguments (JSON object)", value: "{}" });
    const result = h("div", { id: "call-result" });
    fill(
      callBox,
      h("h2", null, "Call"),
      h("p", { class: "muted" }, `${app.package} ${app.version ?? ""}: ${methods.length} methods, views marked.`),
      h("div", { class: "row" }, method, badge),
      h("label", null, "Arguments (a JSON object keyed by parameter name)"),
      argsBox,
      h(
        "button",
        {
          id: "call-run",
          class: "primary",
          onclick: async () => {
            let args: unknown;
            try {
              args = argsBox.value.trim() ? JSON.parse(argsBox.value) : {};
            } catch (e) {
              fill(result, notice("error", `The arguments are not JSON: ${(e as Error).message}`));
              return;
            }
            fill(result, notice("info", "Calling…"));
            const t0 = performance.now();
            try {
              const out = await execute(contextId, method.value, args);
              fill(result, h("p", { class: "muted" }, `${method.value} answered in ${Math.round(performance.now() - t0)} ms:`), json(out, { id: "call-output" }));
              void drawInfo();
              void drawState();
            } catch (e) {
              fill(result, notice("error", `${method.value} failed: ${(e as Error).message}`));
            }
          },
        },
        "Call",
      ),
      result,
    );
  };

  void drawInfo().then(drawCall);
  void drawState();
  const timer = window.setInterval(() => void drawInfo(), 5000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
