// Live events over SSE: choose contexts and groups, filter by type (the
// node's types or an app's event kinds), and resume after a disconnect
// from the last event seen (`Last-Event-ID`), the node replaying the rest.
import { Context, Data, get, Namespace } from "../api";
import { fill, h, id, notice } from "../dom";
import type { Page } from "../main";
import { EventStream } from "../sse";

const KNOWN_TYPES = [
  "StateMutation",
  "ExecutionEvent",
  "SyncStatus",
  "AppVersionChanged",
  "Ephemeral",
  "MemberJoined",
  "MemberAdded",
  "MemberRemoved",
  "MemberRoleSet",
  "MemberCapabilitySet",
  "ContextRegistered",
  "SubgroupCreated",
  "MigrationStarted",
  "MigrationProgress",
  "CascadeProgress",
  "MigrationCompleted",
  "MigrationAborted",
];

const LAST_ID = "mero.dashboard.lastEventId";
const MAX_SHOWN = 500;

export const eventsPage: Page = (root, args) => {
  const preselected = args[0] ?? null;
  let stream: EventStream | null = null;
  let count = 0;
  const scopes = h("div", { id: "event-scopes", class: "checks" }, h("p", { class: "muted" }, "Loading…"));
  const types = h(
    "div",
    { id: "event-types", class: "checks" },
    KNOWN_TYPES.map((t) => h("label", null, h("input", { type: "checkbox", value: t, class: "type" }), t)),
  );
  const extraTypes = h("input", { id: "event-extra-types", placeholder: "app event kinds, comma-separated (e.g. Inserted)" });
  const status = h("span", { id: "stream-status", class: "badge" }, "stopped");
  const log = h("ol", { id: "event-log", reversed: true });
  const counter = h("span", { id: "event-count", class: "muted" }, "0 events");
  const resume = h("input", { type: "checkbox", id: "resume", checked: true });

  const chosen = (cls: string) =>
    Array.from(root.querySelectorAll<HTMLInputElement>(`input.${cls}:checked`)).map((i) => i.value);

  const show = (eid: string | null, e: Record<string, unknown>) => {
    if (eid) sessionStorage.setItem(LAST_ID, eid);
    if (e.type === "Session") return;
    count++;
    counter.textContent = `${count} events`;
    const scope = (e.contextId as string) ?? (e.groupId as string) ?? "";
    const li = h(
      "li",
      { class: `event ${e.type === "Gap" ? "gap" : ""}`, "data-type": String(e.type), "data-scope": scope, "data-id": eid ?? "" },
      h("span", { class: "event-id muted" }, eid ?? "—"),
      h("strong", { class: "event-type" }, String(e.type)),
      scope ? id(scope, 6) : null,
      h("code", { class: "event-data" }, JSON.stringify(e.data ?? null)),
    );
    log.prepend(li);
    while (log.children.length > MAX_SHOWN) log.lastElementChild?.remove();
  };

  const connect = () => {
    stream?.stop();
    const contexts = chosen("scope-context");
    const groups = chosen("scope-group");
    if (!contexts.length && !groups.length) {
      status.textContent = "choose a context or a group";
      return;
    }
    const extra = extraTypes.value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    stream = new EventStream({
      contexts,
      groups,
      types: [...chosen("type"), ...extra],
      lastId: resume.checked ? sessionStorage.getItem(LAST_ID) : null,
      onEvent: show,
      onStatus: (s) => (status.textContent = s),
    });
    stream.start();
  };

  fill(
    root,
    h("h1", null, "Events"),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Subscribe to"),
      scopes,
      h("h3", null, "Types (none checked: all)"),
      types,
      extraTypes,
      h(
        "div",
        { class: "row" },
        h("button", { id: "connect", class: "primary", onclick: connect }, "Connect"),
        h(
          "button",
          {
            id: "disconnect",
            onclick: () => {
              stream?.stop();
              stream = null;
            },
          },
          "Disconnect",
        ),
        h("label", null, resume, " resume from the last event seen"),
        h("button", { id: "clear", class: "link", onclick: () => ((count = 0), log.replaceChildren(), (counter.textContent = "0 events")) }, "Clear"),
      ),
      h("p", null, "Stream: ", status, " ", counter),
    ),
    log,
  );

  void (async () => {
    try {
      const [contexts, namespaces] = await Promise.all([
        get<Data<{ contexts: Context[] }>>("/admin-api/contexts").then((r) => r.data.contexts),
        get<Data<Namespace[]>>("/admin-api/namespaces").then((r) => r.data),
      ]);
      fill(
        scopes,
        h("h3", null, "Contexts"),
        contexts.length
          ? contexts.map((c) =>
              h(
                "label",
                null,
                h("input", { type: "checkbox", class: "scope-context", value: c.id, checked: preselected ? c.id === preselected : true }),
                c.name ? `${c.name} ` : "",
                id(c.id, 6),
              ),
            )
          : h("p", { class: "muted" }, "none"),
        h("h3", null, "Namespaces"),
        namespaces.length
          ? namespaces.map((n) =>
              h(
                "label",
                null,
                h("input", { type: "checkbox", class: "scope-group", value: n.namespaceId, checked: !preselected }),
                n.name ? `${n.name} ` : "",
                id(n.namespaceId, 6),
              ),
            )
          : h("p", { class: "muted" }, "none"),
      );
      connect();
    } catch (e) {
      fill(scopes, notice("error", (e as Error).message));
    }
  })();
  return () => stream?.stop();
};
