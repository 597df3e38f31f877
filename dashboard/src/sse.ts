// Server-sent events over fetch (an EventSource cannot send the bearer
// token in a header): reads `/sse`, and when the stream ends or fails,
// comes back with `Last-Event-ID` and its session id so that the node
// replays what was missed from its event log (or says there is a gap).

import { authHeaders } from "./api";

export interface StreamOptions {
  contexts: string[];
  groups: string[];
  types: string[];
  /** Resume after this event id (e.g. kept from an earlier stream). */
  lastId?: string | null;
  onEvent: (id: string | null, event: Record<string, unknown>) => void;
  onStatus: (status: string) => void;
}

export class EventStream {
  lastId: string | null;
  sessionId: string | null = null;
  private abort: AbortController | null = null;
  private stopped = false;

  constructor(private readonly o: StreamOptions) {
    this.lastId = o.lastId ?? null;
  }

  url(): string {
    const q = new URLSearchParams();
    if (this.o.contexts.length) q.set("contextIds", this.o.contexts.join(","));
    if (this.o.groups.length) q.set("groupIds", this.o.groups.join(","));
    if (this.o.types.length) q.set("eventTypes", this.o.types.join(","));
    return `/sse?${q}`;
  }

  start(): void {
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private async run(): Promise<void> {
    let delay = 500;
    while (!this.stopped) {
      this.abort = new AbortController();
      const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders() };
      if (this.lastId) headers["Last-Event-ID"] = this.lastId;
      if (this.sessionId) headers["X-SSE-Session-ID"] = this.sessionId;
      try {
        this.o.onStatus(this.lastId ? `resuming after ${this.lastId}` : "connecting");
        const r = await fetch(this.url(), { headers, signal: this.abort.signal, cache: "no-store" });
        if (!r.ok || !r.body) {
          const text = await r.text();
          let why = text;
          try {
            why = JSON.parse(text).error ?? text;
          } catch {
            /* not JSON */
          }
          this.o.onStatus(`refused (${r.status}): ${why}`);
          if (r.status === 401 || r.status === 403 || r.status === 400 || r.status === 404) return;
        } else {
          this.o.onStatus(this.lastId ? `live (resumed after ${this.lastId})` : "live");
          delay = 500;
          await this.read(r.body);
          if (!this.stopped) this.o.onStatus("stream ended; reconnecting");
        }
      } catch (e) {
        if (this.stopped) break;
        this.o.onStatus(`disconnected (${(e as Error).message}); reconnecting`);
      }
      if (this.stopped) break;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
    this.o.onStatus("stopped");
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let id: string | null = null;
    let data: string[] = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (data.length) this.dispatch(id, data.join("\n"));
          id = null;
          data = [];
        } else if (line.startsWith(":")) {
          // keep-alive comment
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const v = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") data.push(v);
          else if (field === "id") id = v;
        }
      }
    }
  }

  private dispatch(id: string | null, text: string): void {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(text);
    } catch {
      event = { type: "Unparsed", data: text };
    }
    if (event.type === "Session") {
      const d = event.data as { sessionId?: string } | undefined;
      if (d?.sessionId) this.sessionId = d.sessionId;
    }
    if (id) this.lastId = id;
    this.o.onEvent(id, event);
    if (event.type === "TokenRevoked" || event.type === "TokenExpired") this.stop();
  }
}
