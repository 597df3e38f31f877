// Moving a namespace (and, cascading, its subgroups) to another version of
// its app: trigger it, follow each descendant group's progress on this
// node and each member's signed report, abort a cascade, retry a failure.
import { AppVersion, ApiError, CascadeEntry, Data, get, GroupInfo, MigrationStatus, Namespace, post, UpgradeStatus } from "../api";
import { facts, fill, h, id, json, notice, progress, table, when } from "../dom";
import type { Page } from "../main";

export const migrationsPage: Page = (root, args) => {
  const selected = args[0] ?? "";
  let stopped = false;
  const picker = h("div", { id: "migration-namespaces" }, h("p", { class: "muted" }, "Loading…"));
  const detail = h("div", { id: "migration-detail" });
  const actions = h("div", { id: "migration-actions" });
  const answer = h("div", { id: "migration-answer" });
  fill(root, h("h1", null, "Migrations"), picker, actions, answer, detail);

  void (async () => {
    try {
      const namespaces = (await get<Data<Namespace[]>>("/admin-api/namespaces")).data;
      fill(
        picker,
        namespaces.length
          ? h(
              "ul",
              { class: "plain inline" },
              namespaces.map((n) =>
                h(
                  "li",
                  null,
                  h(
                    "a",
                    { href: `#/migrations/${n.namespaceId}`, class: n.namespaceId === selected ? "selected" : "", "data-group": n.namespaceId },
                    n.name ? `${n.name} ` : "",
                    id(n.namespaceId, 6),
                    ` (${n.appVersion ?? "?"})`,
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No namespace on this node."),
      );
    } catch (e) {
      fill(picker, notice("error", (e as Error).message));
    }
  })();
  if (!selected) {
    fill(detail, h("p", { class: "muted" }, "Choose a namespace."));
    return;
  }

  const act = async (what: string, f: () => Promise<unknown>) => {
    fill(answer, notice("info", `${what}…`));
    try {
      const r = await f();
      fill(answer, notice("ok", `${what}: the node answered`), json(r, { id: "migration-response" }));
    } catch (e) {
      fill(answer, notice("error", `${what}: ${e instanceof ApiError ? `${e.kind}: ` : ""}${(e as Error).message}`));
    }
    void poll();
  };

  void (async () => {
    try {
      const info = (await get<Data<GroupInfo>>(`/admin-api/groups/${selected}`)).data;
      const versions = (await get<Data<AppVersion[]>>(`/admin-api/applications/${info.targetApplicationId}/versions`)).data;
      const target = h(
        "select",
        { id: "upgrade-target", "aria-label": "Target version" },
        versions.map((v) =>
          h("option", { value: v.applicationId, selected: v.applicationId !== info.targetApplicationId && v === versions[versions.length - 1] }, `${v.package} ${v.version} (state v${v.stateVersion})${v.applicationId === info.targetApplicationId ? " — running" : ""}`),
        ),
      );
      const cascade = h("input", { type: "checkbox", id: "upgrade-cascade", checked: true });
      const codeOnly = h("input", { type: "checkbox", id: "upgrade-code-only" });
      fill(
        actions,
        h(
          "section",
          { class: "card" },
          h("h2", null, "Upgrade"),
          h(
            "div",
            { class: "row" },
            h("label", null, "To ", target),
            h("label", null, cascade, " cascade to subgroups"),
            h("label", null, codeOnly, " code only (no migration)"),
          ),
          h(
            "div",
            { class: "row" },
            h(
              "button",
              {
                id: "upgrade",
                class: "primary",
                onclick: () =>
                  act("Upgrade", () =>
                    post(`/admin-api/groups/${selected}/upgrade`, {
                      targetApplicationId: target.value,
                      cascade: cascade.checked,
                      forceCodeOnly: codeOnly.checked,
                    }),
                  ),
              },
              "Start upgrade",
            ),
            h("button", { id: "retry", onclick: () => act("Retry", () => post(`/admin-api/groups/${selected}/upgrade/retry`)) }, "Retry failed"),
            h(
              "button",
              {
                id: "abort",
                class: "danger",
                onclick: () => {
                  if (confirm("Abort the cascade? Groups not yet committed stay on their version.")) void act("Abort", () => post(`/admin-api/groups/${selected}/migration/abort`));
                },
              },
              "Abort cascade",
            ),
          ),
        ),
      );
    } catch (e) {
      fill(actions, notice("error", (e as Error).message));
    }
  })();

  const upgradeFacts = (u: UpgradeStatus) =>
    facts([
      ["Status", h("span", { class: `status ${u.status}` }, u.status)],
      ["From → to", `${u.fromVersion} → ${u.toVersion}`],
      ["Started", when(u.initiatedAt * (u.initiatedAt < 1e12 ? 1000 : 1))],
      ["Completed", u.completedAt ? when(u.completedAt * (u.completedAt < 1e12 ? 1000 : 1)) : "—"],
      ...(u.error ? ([["Error", h("span", { class: "error" }, u.error)]] as [string, HTMLElement][]) : []),
    ]);

  const poll = async () => {
    if (stopped) return;
    try {
      const [status, cascade, members] = await Promise.all([
        get<Data<UpgradeStatus | null>>(`/admin-api/groups/${selected}/upgrade/status`).then((r) => r.data),
        get<Data<CascadeEntry[]>>(`/admin-api/groups/${selected}/cascade-status`).then((r) => r.data),
        get<MigrationStatus>(`/admin-api/groups/${selected}/migration-status`),
      ]);
      if (stopped) return;
      const r = members.rollup;
      fill(
        detail,
        h("h2", null, "This namespace here"),
        status ? upgradeFacts(status) : h("p", { class: "muted", id: "no-upgrade" }, "No upgrade on record."),
        h("h2", null, "Cascade: each group of the subtree"),
        cascade.length
          ? table(
              ["Group", "Versions", "Status", "Contexts migrated here"],
              cascade.map((c) => {
                const u = c.upgrade;
                const total = u.localContextsTotal ?? 0;
                const swapped = u.localContextsSwapped ?? (u.status === "completed" ? total : 0);
                return [
                  h("a", { href: `#/groups/${c.groupId}` }, id(c.groupId, 8)),
                  `${u.fromVersion} → ${u.toVersion}`,
                  h("span", { class: `status ${u.status}` }, u.status),
                  progress(swapped, total, u.localContextsFailed ?? 0, total ? `${swapped}/${total}${u.localContextsFailed ? `, ${u.localContextsFailed} failed` : ""}` : "no local context"),
                ];
              }),
              { id: "cascade-status" },
            )
          : h("p", { class: "muted", id: "cascade-status" }, "No group of this subtree has an upgrade."),
        h("h2", null, `Members (target state version ${members.targetVersion})`),
        progress(r.migrated, r.total, r.failed, `${r.migrated}/${r.total} migrated · ${r.inProgress} in progress · ${r.unknown} unknown · ${r.failed} failed${r.allMigrated ? " · all migrated" : ""}`),
        table(
          ["Member", "State", "Schema", "Residue", "Authored left", "Reported", "Failure"],
          members.members.map((m) => [
            id(m.account, 8),
            h("span", { class: `status ${m.state}` }, m.state),
            String(m.report?.schemaVersion ?? "—"),
            String(m.report?.residueAuto ?? "—"),
            String(m.report?.authoredRemaining ?? "—"),
            m.report ? when(m.report.reportedAt * (m.report.reportedAt < 1e12 ? 1000 : 1)) : "—",
            m.report?.migrationFailed ?? "",
          ]),
          { id: "migration-members" },
        ),
      );
    } catch (e) {
      fill(detail, notice("error", (e as Error).message));
    }
  };
  void poll();
  const timer = window.setInterval(() => void poll(), 2000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
};
