// Installed applications: package, version, size, methods; install a
// component from a file; uninstall.
import { Application, call, Data, get } from "../api";
import { bytes, fill, h, id, notice, table } from "../dom";
import type { Page } from "../main";

export const applicationsPage: Page = (root) => {
  const list = h("div", { id: "apps" }, h("p", { class: "muted" }, "Loading…"));
  const status = h("div", { id: "install-status" });
  const file = h("input", { type: "file", id: "install-file", accept: ".wasm,application/wasm" });
  const install = async () => {
    const f = file.files?.[0];
    if (!f) {
      fill(status, notice("error", "Choose a component (.wasm) first."));
      return;
    }
    fill(status, notice("info", `Installing ${f.name}…`));
    try {
      const r = await call<Data<{ applicationId: string }>>("POST", "/admin-api/install-application", {
        raw: f,
        type: "application/wasm",
      });
      fill(status, notice("ok", `Installed ${f.name} as ${r.data.applicationId}`));
      file.value = "";
      await load();
    } catch (e) {
      fill(status, notice("error", `Install failed: ${(e as Error).message}`));
    }
  };
  const load = async () => {
    try {
      const apps = (await get<Data<{ apps: Application[] }>>("/admin-api/applications")).data.apps;
      if (!apps.length) {
        fill(list, h("p", { class: "muted" }, "No application installed."));
        return;
      }
      fill(
        list,
        table(
          ["Package", "Version", "Id", "Size", "Source", "Methods", ""],
          apps.map((a) => {
            const views = a.methods.filter((m) => m.intent === "readOnly").length;
            return [
              a.package,
              h("span", { class: "version" }, a.version ?? "—"),
              id(a.id),
              bytes(a.size),
              h("span", { class: "muted" }, a.source.length > 40 ? `…${a.source.slice(-40)}` : a.source),
              `${a.methods.length} (${views} views)`,
              h(
                "button",
                {
                  class: "danger small",
                  onclick: async () => {
                    if (!confirm(`Uninstall ${a.package} ${a.version ?? ""}?`)) return;
                    try {
                      await call("DELETE", `/admin-api/applications/${a.id}`);
                      fill(status, notice("ok", `Uninstalled ${a.id}`));
                      await load();
                    } catch (e) {
                      fill(status, notice("error", (e as Error).message));
                    }
                  },
                },
                "Uninstall",
              ),
            ];
          }),
          { id: "apps-table" },
        ),
      );
    } catch (e) {
      fill(list, notice("error", (e as Error).message));
    }
  };
  fill(
    root,
    h("h1", null, "Applications"),
    list,
    h(
      "section",
      { class: "card" },
      h("h2", null, "Install from a file"),
      h("p", { class: "muted" }, "A WebAssembly component built for the node's app world; its package and version come from the component."),
      h("div", { class: "row" }, file, h("button", { id: "install", class: "primary", onclick: install }, "Install")),
      status,
    ),
  );
  void load();
};
