// Namespaces and their subgroups as a tree; a group's members with their
// roles and capabilities (change them, remove a member), invitations with
// a chosen role (copy them), joining with one, creating namespaces and
// subgroups.
import { Application, CAPABILITIES, Data, get, GroupInfo, Member, Namespace, post, put } from "../api";
import { copy, facts, fill, h, id, notice, table } from "../dom";
import type { Page } from "../main";

interface TreeNode {
  groupId: string;
  name?: string | null;
  children: TreeNode[];
}

async function subtree(groupId: string, name: string | null | undefined, depth = 0): Promise<TreeNode> {
  let children: TreeNode[] = [];
  if (depth < 8) {
    const subs = await get<{ subgroups: { groupId: string; name?: string }[] }>(`/admin-api/groups/${groupId}/subgroups`);
    children = await Promise.all(subs.subgroups.map((s) => subtree(s.groupId, s.name, depth + 1)));
  }
  return { groupId, name, children };
}

export const groupsPage: Page = (root, args) => {
  const selected = args[0] ?? "";
  const tree = h("div", { id: "group-tree", class: "tree" }, h("p", { class: "muted" }, "Loading…"));
  const detail = h("div", { id: "group-detail" });
  // Kept across redraws: it tells what the last action did.
  const status = h("div", { id: "member-status" });
  const forms = h("div", { class: "forms" });
  fill(root, h("h1", null, "Namespaces and groups"), h("div", { class: "split" }, h("div", null, tree, forms), detail));

  const drawTree = async () => {
    try {
      const namespaces = (await get<Data<Namespace[]>>("/admin-api/namespaces")).data;
      if (!namespaces.length) {
        fill(tree, h("p", { class: "muted" }, "This node is in no namespace yet."));
        return namespaces;
      }
      const roots = await Promise.all(namespaces.map((n) => subtree(n.namespaceId, n.name)));
      const item = (t: TreeNode, ns: boolean): HTMLElement =>
        h(
          "li",
          null,
          h(
            "a",
            {
              href: `#/groups/${t.groupId}`,
              class: t.groupId === selected ? "selected" : "",
              "data-group": t.groupId,
            },
            ns ? "◆ " : "◇ ",
            t.name ? `${t.name} ` : "",
            id(t.groupId, 6),
          ),
          t.children.length ? h("ul", null, t.children.map((c) => item(c, false))) : null,
        );
      fill(tree, h("ul", null, roots.map((r) => item(r, true))));
      return namespaces;
    } catch (e) {
      fill(tree, notice("error", (e as Error).message));
      return [];
    }
  };

  const drawForms = async () => {
    let apps: Application[] = [];
    try {
      apps = (await get<Data<{ apps: Application[] }>>("/admin-api/applications")).data.apps;
    } catch {
      /* shown by the applications page */
    }
    const appSelect = h(
      "select",
      { id: "new-namespace-app", "aria-label": "Application" },
      apps.map((a) => h("option", { value: a.id }, `${a.package} ${a.version ?? ""}`)),
    );
    const nsName = h("input", { id: "new-namespace-name", placeholder: "name (optional)" });
    const nsStatus = h("div");
    const invitation = h("textarea", { id: "join-invitation", rows: 4, placeholder: '{"invitation": …}', "aria-label": "Invitation" });
    const joinStatus = h("div", { id: "join-status" });
    fill(
      forms,
      h(
        "section",
        { class: "card" },
        h("h2", null, "New namespace"),
        h("div", { class: "row" }, appSelect, nsName),
        h(
          "button",
          {
            id: "create-namespace",
            class: "primary",
            onclick: async () => {
              try {
                const r = await post<Data<{ namespaceId: string; contextId: string }>>("/admin-api/namespaces", {
                  applicationId: appSelect.value,
                  name: nsName.value.trim() || undefined,
                });
                fill(nsStatus, notice("ok", `Created namespace ${r.data.namespaceId} with context ${r.data.contextId}`));
                location.hash = `#/groups/${r.data.namespaceId}`;
              } catch (e) {
                fill(nsStatus, notice("error", (e as Error).message));
              }
            },
          },
          "Create",
        ),
        nsStatus,
      ),
      h(
        "section",
        { class: "card" },
        h("h2", null, "Join with an invitation"),
        invitation,
        h(
          "button",
          {
            id: "join",
            onclick: async () => {
              try {
                const v = JSON.parse(invitation.value);
                const inner = v.invitation ?? v;
                const ns = inner?.invitation?.group_id ?? inner?.invitation?.groupId ?? v.namespaceId;
                const nsHex = Array.isArray(ns) ? ns.map((b: number) => b.toString(16).padStart(2, "0")).join("") : String(ns);
                await post(`/admin-api/namespaces/${nsHex}/join`, { invitation: inner });
                fill(joinStatus, notice("ok", `Joined namespace ${nsHex}`));
                location.hash = `#/groups/${nsHex}`;
              } catch (e) {
                fill(joinStatus, notice("error", `Join failed: ${(e as Error).message}`));
              }
            },
          },
          "Join",
        ),
        joinStatus,
      ),
    );
  };

  const drawDetail = async () => {
    if (!selected) {
      fill(detail, h("p", { class: "muted" }, "Choose a namespace or group."));
      return;
    }
    try {
      const [info, members, me, contexts] = await Promise.all([
        get<Data<GroupInfo>>(`/admin-api/groups/${selected}`).then((r) => r.data),
        get<{ members: Member[] }>(`/admin-api/groups/${selected}/members`).then((r) => r.members),
        get<Data<{ accountId: string }>>("/admin-api/identity").then((r) => r.data.accountId),
        get<Data<{ contextId: string; name?: string }[]>>(`/admin-api/groups/${selected}/contexts`).then((r) => r.data),
      ]);
      const caps = await Promise.all(
        members.map((m) =>
          get<Data<{ capabilities: number }>>(`/admin-api/groups/${selected}/members/${m.identity}/capabilities`)
            .then((r) => r.data.capabilities)
            .catch(() => 0),
        ),
      );
      const isNamespace = info.namespaceId === info.groupId;
      const rows = members.map((m, i) => {
        const role = h(
          "select",
          { class: "role", "aria-label": "Role" },
          ["Admin", "Member", "ReadOnly"].map((r) => h("option", { value: r, selected: r === m.role }, r)),
        );
        const boxes = CAPABILITIES.map(([bit, label]) =>
          h("label", { class: "cap" }, h("input", { type: "checkbox", value: bit, checked: (caps[i] & bit) !== 0 }), label),
        );
        const act = async (what: string, f: () => Promise<unknown>) => {
          try {
            await f();
            await drawDetail();
            fill(status, notice("ok", what));
          } catch (e) {
            fill(status, notice("error", `${what} failed: ${(e as Error).message}`));
          }
        };
        const row: HTMLElement[] = [
          h("span", null, id(m.identity, 8), m.identity === me ? h("span", { class: "badge" }, "this node") : null),
          h("span", { class: "member-role", "data-role": m.role }, m.role),
          h(
            "div",
            { class: "row" },
            role,
            h(
              "button",
              {
                class: "small set-role",
                onclick: () =>
                  act(`Role of ${m.identity.slice(0, 8)}… set to ${role.value}`, () =>
                    put(`/admin-api/groups/${selected}/members/${m.identity}/role`, { role: role.value }),
                  ),
              },
              "Set role",
            ),
          ),
          h(
            "div",
            { class: "caps" },
            boxes,
            h(
              "button",
              {
                class: "small set-caps",
                onclick: () => {
                  const mask = boxes.reduce((acc, b) => {
                    const input = b.querySelector("input") as HTMLInputElement;
                    return input.checked ? acc | Number(input.value) : acc;
                  }, 0);
                  return act(`Capabilities of ${m.identity.slice(0, 8)}… set to ${mask}`, () =>
                    put(`/admin-api/groups/${selected}/members/${m.identity}/capabilities`, { capabilities: mask }),
                  );
                },
              },
              "Save capabilities",
            ),
          ),
          h(
            "button",
            {
              class: "small danger remove-member",
              onclick: () => {
                if (!confirm(`Remove ${m.identity} from this group?`)) return;
                void act(`Removed ${m.identity.slice(0, 8)}…`, () =>
                  post(`/admin-api/groups/${selected}/members/remove`, { members: [m.identity] }),
                );
              },
            },
            "Remove",
          ),
        ];
        return row;
      });
      const inviteRole = h(
        "select",
        { id: "invite-role", "aria-label": "Role of the invited" },
        ["member", "admin", "read-only"].map((r) => h("option", { value: r }, r)),
      );
      const inviteOut = h("textarea", { id: "invitation", rows: 6, readonly: true, "aria-label": "Invitation" });
      const inviteStatus = h("div", { id: "invite-status" });
      const subName = h("input", { id: "subgroup-name", placeholder: "subgroup name" });
      fill(
        detail,
        h("h2", null, isNamespace ? "Namespace " : "Group ", info.name ? `${info.name} ` : "", id(info.groupId, 10)),
        facts([
          ["Application", id(info.targetApplicationId)],
          ["Members", String(info.memberCount)],
          ["Contexts", String(info.contextCount)],
          ["Visibility", info.subgroupVisibility],
          ["Default capabilities", String(info.defaultCapabilities)],
          ["Governance digest", id(info.groupStateHash)],
          ...(info.parentGroupId ? ([["Parent", h("a", { href: `#/groups/${info.parentGroupId}` }, id(info.parentGroupId, 8))]] as [string, HTMLElement][]) : []),
        ]),
        h("h3", null, "Members"),
        table(["Member", "Role", "Change role", "Capabilities", ""], rows, { id: "members" }),
        status,
        h("h3", null, "Contexts"),
        contexts.length
          ? h("ul", { id: "group-contexts" }, contexts.map((c) => h("li", null, h("a", { href: `#/contexts/${c.contextId}` }, c.name ? `${c.name} ` : "", id(c.contextId)))))
          : h("p", { class: "muted" }, "None."),
        isNamespace
          ? h(
              "section",
              { class: "card" },
              h("h3", null, "Invite"),
              h(
                "div",
                { class: "row" },
                h("label", null, "Role ", inviteRole),
                h(
                  "button",
                  {
                    id: "invite",
                    class: "primary",
                    onclick: async () => {
                      try {
                        const r = await post<Data<{ invitation: unknown }>>(`/admin-api/namespaces/${selected}/invite`, {
                          role: inviteRole.value,
                        });
                        inviteOut.value = JSON.stringify({ invitation: r.data.invitation });
                        fill(inviteStatus, notice("ok", `Invitation for a ${inviteRole.value} created.`));
                      } catch (e) {
                        fill(inviteStatus, notice("error", (e as Error).message));
                      }
                    },
                  },
                  "Create invitation",
                ),
                h(
                  "button",
                  {
                    id: "copy-invitation",
                    onclick: async () => {
                      if (!inviteOut.value) return;
                      const ok = await copy(inviteOut.value, inviteOut);
                      fill(inviteStatus, notice(ok ? "ok" : "error", ok ? "Copied to the clipboard." : "Copy refused: select the text and copy it."));
                    },
                  },
                  "Copy",
                ),
              ),
              inviteOut,
              inviteStatus,
            )
          : null,
        h(
          "section",
          { class: "card" },
          h("h3", null, "New subgroup"),
          h(
            "div",
            { class: "row" },
            subName,
            h(
              "button",
              {
                id: "create-subgroup",
                onclick: async () => {
                  try {
                    const r = await post<Data<{ groupId: string }>>(`/admin-api/namespaces/${info.namespaceId}/groups`, {
                      name: subName.value.trim() || undefined,
                      parentGroupId: info.groupId,
                    });
                    location.hash = `#/groups/${r.data.groupId}`;
                  } catch (e) {
                    fill(status, notice("error", (e as Error).message));
                  }
                },
              },
              "Create",
            ),
          ),
        ),
      );
    } catch (e) {
      fill(detail, notice("error", (e as Error).message));
    }
  };

  void drawTree();
  void drawForms();
  void drawDetail();
};
