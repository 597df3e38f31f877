// Building the page from data without ever parsing data as HTML: every
// value goes in as a text node or an attribute.

export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (e: Event) => void;
export type Attrs = Record<string, string | number | boolean | Handler | null | undefined>;

/** An element with attributes (`on…` are listeners; booleans are
 * properties such as `checked`, `disabled`) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) (el as unknown as Record<string, unknown>)[k] = true;
    else if (k === "value") (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A table with a header row. */
export function table(head: string[], rows: Child[][], attrs?: Attrs): HTMLTableElement {
  return h(
    "table",
    attrs,
    h("thead", null, h("tr", null, head.map((c) => h("th", null, c)))),
    h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, c))))),
  );
}

/** A definition list of label/value pairs. */
export function facts(pairs: [string, Child][], attrs?: Attrs): HTMLDListElement {
  return h("dl", { class: "facts", ...attrs }, pairs.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

/** A monospace id, cut in the middle when long, whole in its title. */
export function id(value: string, keep = 10): HTMLElement {
  const short = value.length > 2 * keep + 1 ? `${value.slice(0, keep)}…${value.slice(-keep)}` : value;
  return h("code", { class: "id", title: value, "data-full": value }, short);
}

/** Pretty JSON in a block. */
export function json(value: unknown, attrs?: Attrs): HTMLPreElement {
  return h("pre", { class: "json", ...attrs }, JSON.stringify(value, null, 2));
}

/** A notice that an action failed (or worked). */
export function notice(kind: "error" | "ok" | "info", text: string): HTMLElement {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A progress bar from `done` of `total` (and `failed`). */
export function progress(done: number, total: number, failed = 0, label?: string): HTMLElement {
  const pct = total > 0 ? Math.min(100, Math.round((100 * done) / total)) : 0;
  const bad = total > 0 ? Math.min(100 - pct, Math.round((100 * failed) / total)) : 0;
  const bar = h("div", {
    class: "progress",
    role: "progressbar",
    "aria-valuemin": 0,
    "aria-valuemax": total,
    "aria-valuenow": done,
    "data-done": done,
    "data-total": total,
  });
  const ok = h("span", { class: "done" });
  ok.style.width = `${pct}%`;
  const ko = h("span", { class: "failed" });
  ko.style.width = `${bad}%`;
  bar.append(ok, ko);
  return h("div", { class: "progress-row" }, bar, h("span", { class: "muted" }, label ?? `${done}/${total}`));
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function duration(secs: number): string {
  const d = Math.floor(secs / 86400);
  const hh = Math.floor((secs % 86400) / 3600);
  const mm = Math.floor((secs % 3600) / 60);
  const ss = Math.floor(secs % 60);
  return [d ? `${d}d` : "", d || hh ? `${hh}h` : "", d || hh || mm ? `${mm}m` : "", `${ss}s`]
    .filter(Boolean)
    .join(" ");
}

export function when(millis: number | null | undefined): string {
  if (!millis) return "—";
  return new Date(millis).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Base58 of bytes (the wire's encoding of context ids and hashes). */
export function base58(data: ArrayLike<number>): string {
  const digits: number[] = [];
  for (let i = 0; i < data.length; i++) {
    let carry = data[i];
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = "";
  for (let i = 0; i < data.length && data[i] === 0; i++) out += "1";
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i]];
  return out;
}

/** Copies `text`; falls back to selecting it in `el` when the clipboard
 * is refused. */
export async function copy(text: string, el?: HTMLTextAreaElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (el) {
      el.select();
      return document.execCommand("copy");
    }
    return false;
  }
}
