// The node: who it is, how long it has run, where it listens, whom it is
// connected to, what it holds on disk.
import { Data, get, NodeInfo } from "../api";
import { bytes, duration, facts, fill, h, id, notice, when } from "../dom";
import type { Page } from "../main";

export const nodePage: Page = (root) => {
  const body = h("div", { id: "node-info" }, h("p", { class: "muted" }, "Loading…"));
  fill(root, h("h1", null, "Node"), body);
  let started = 0;
  let stopped = false;
  const uptime = h("span", { id: "uptime" });
  const tick = () => {
    if (started) uptime.textContent = duration(Math.max(0, (Date.now() - started) / 1000));
  };
  const load = async () => {
    try {
      const n = (await get<Data<NodeInfo>>("/admin-api/node-info")).data;
      if (stopped) return;
      started = n.startedAt;
      tick();
      fill(
        body,
        facts([
          ["Version", h("span", { id: "version" }, n.version)],
          ["Public key", id(n.publicKey, 24)],
          ["Account", id(n.accountId, 24)],
          ["Peer id", id(n.peerId, 24)],
          ["Started", when(n.startedAt)],
          ["Uptime", uptime],
          ["Store size", h("span", { id: "store-size" }, bytes(n.storeBytes))],
          ["Blobs and compiled apps", bytes(n.blobBytes)],
          ["Auth", n.authMode],
        ]),
        h("h2", null, "Listen addresses"),
        n.listenAddrs.length
          ? h("ul", { id: "listen-addrs" }, n.listenAddrs.map((a) => h("li", null, h("code", null, a))))
          : h("p", { class: "muted" }, "Not listening (networking is off)."),
        h("h2", null, `Peers (${n.peers.length})`),
        n.peers.length
          ? h("ul", { id: "peers" }, n.peers.map((p) => h("li", null, id(p, 20))))
          : h("p", { id: "peers", class: "muted" }, "No peer connected."),
      );
    } catch (e) {
      fill(body, notice("error", (e as Error).message));
    }
  };
  void load();
  const clock = window.setInterval(tick, 1000);
  const refresh = window.setInterval(load, 10_000);
  return () => {
    stopped = true;
    clearInterval(clock);
    clearInterval(refresh);
  };
};
