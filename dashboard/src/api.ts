// The one way the page talks to the node: same-origin fetches with the
// bearer token this tab holds (sessionStorage only), refreshed once when
// the node says it expired. No other origin is ever contacted.

const ACCESS = "mero.dashboard.access";
const REFRESH = "mero.dashboard.refresh";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the node refuses the token (or wants one). */
let onUnauthorized: (why: string) => void = () => {};
export function whenUnauthorized(f: (why: string) => void): void {
  onUnauthorized = f;
}

export function token(): string | null {
  return sessionStorage.getItem(ACCESS);
}

export function setTokens(access: string, refresh?: string | null): void {
  sessionStorage.setItem(ACCESS, access);
  if (refresh) sessionStorage.setItem(REFRESH, refresh);
  else sessionStorage.removeItem(REFRESH);
}

export function forgetTokens(): void {
  sessionStorage.removeItem(ACCESS);
  sessionStorage.removeItem(REFRESH);
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

async function refresh(): Promise<boolean> {
  const access = token();
  const refreshToken = sessionStorage.getItem(REFRESH);
  if (!access || !refreshToken) return false;
  const r = await fetch("/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ access_token: access, refresh_token: refreshToken }),
  });
  if (!r.ok) return false;
  const body = await r.json();
  if (!body?.data?.access_token) return false;
  setTokens(body.data.access_token, body.data.refresh_token);
  return true;
}

export type Body = { json: unknown } | { raw: Blob | ArrayBuffer; type: string } | undefined;

/** `method path` with `body`; the decoded JSON answer, or an ApiError. */
export async function call<T = unknown>(method: string, path: string, body?: Body, retried = false): Promise<T> {
  const headers: Record<string, string> = { ...authHeaders() };
  let payload: BodyInit | undefined;
  if (body && "json" in body) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body.json);
  } else if (body && "raw" in body) {
    headers["Content-Type"] = body.type;
    payload = body.raw;
  }
  const r = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  if (r.status === 401) {
    const code = r.headers.get("x-auth-error") ?? "";
    if (code === "token_expired" && !retried && (await refresh())) return call<T>(method, path, body, true);
    onUnauthorized(code || "unauthorized");
  }
  const text = await r.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!r.ok) {
    const e = parsed as { error?: string; type?: string } | null;
    throw new ApiError(r.status, e?.type ?? String(r.status), e?.error ?? (text || r.statusText));
  }
  return parsed as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
export const post = <T>(path: string, json?: unknown) => call<T>("POST", path, json === undefined ? undefined : { json });
export const put = <T>(path: string, json: unknown) => call<T>("PUT", path, { json });

/** `execute` over JSON-RPC: the method's output, or an ApiError with the
 * app's or the node's error. */
export async function execute(contextId: string, method: string, args: unknown): Promise<unknown> {
  const r = await post<{ result?: { output: unknown }; error?: { type?: string; data?: unknown } }>("/jsonrpc", {
    jsonrpc: "2.0",
    id: Date.now(),
    method: "execute",
    params: { contextId, method, argsJson: args },
  });
  if (r.error) {
    const data = r.error.data;
    throw new ApiError(200, r.error.type ?? "Error", typeof data === "string" ? data : JSON.stringify(data));
  }
  return r.result?.output ?? null;
}

// Wire shapes (upstream's, plus our own node-info and state routes).

export interface Data<T> {
  data: T;
}
export interface NodeInfo {
  version: string;
  publicKey: string;
  accountId: string;
  peerId: string;
  startedAt: number;
  uptimeSecs: number;
  listenAddrs: string[];
  peers: string[];
  storeBytes: number;
  blobBytes: number;
  authMode: string;
}
export interface MethodInfo {
  name: string;
  intent: "readOnly" | "mutating" | string;
}
export interface Application {
  id: string;
  blob: { bytecode: string };
  size: number;
  source: string;
  package: string;
  version: string | null;
  methods: MethodInfo[];
}
export interface NamespaceContext {
  contextId: string;
  applicationVersion: string;
  name?: string | null;
}
export interface Namespace {
  namespaceId: string;
  targetApplicationId: string;
  name?: string | null;
  memberCount: number;
  contextCount: number;
  subgroupCount: number;
  appVersion?: string | null;
  contexts: NamespaceContext[];
}
export interface Context {
  id: string;
  applicationId: string;
  contextStateHash: string;
  dagHeads: number[][];
  applicationVersion?: string | null;
  stateVersion?: number | null;
  name?: string | null;
  groupId?: string | null;
  deltaCount?: number | null;
  syncStatus?: Record<string, unknown> | null;
}
export interface GroupInfo {
  groupId: string;
  targetApplicationId: string;
  memberCount: number;
  contextCount: number;
  defaultCapabilities: number;
  subgroupVisibility: string;
  groupStateHash: string;
  namespaceId: string;
  parentGroupId?: string;
  name?: string;
}
export interface Member {
  identity: string;
  role: string;
}
export interface StateBytes {
  hex: string;
  text: string | null;
  len: number;
  truncated: boolean;
}
export interface StateEntry {
  kind: "register" | "key" | "counter" | "authored";
  key: StateBytes;
  value: StateBytes | null;
  child: { collection: string; entries: number } | null;
  counter: { increments: number; decrements: number } | null;
  /** An authored element's owner (base58) and the state version of its value. */
  authored?: { owner: string; version: number } | null;
}
export interface ContextState {
  stateVersion: number;
  fields: { name: string; kind: string; collection: string; entries: number }[];
  private: { entries: number; sizeInBytes: number };
  collection: string | null;
  entries: StateEntry[];
  next: string | null;
}
export interface UpgradeStatus {
  fromVersion: string;
  toVersion: string;
  status: string;
  localContextsTotal: number | null;
  localContextsSwapped: number | null;
  localContextsFailed: number | null;
  targetApplicationId: string;
  error?: string | null;
  initiatedAt: number;
  completedAt?: number | null;
}
export interface CascadeEntry {
  groupId: string;
  upgrade: UpgradeStatus;
  cascadeHlc?: string | null;
}
export interface MigrationStatus {
  targetVersion: number;
  expectedMembers: number;
  fleetCompletedAt?: number | null;
  members: {
    peer: string;
    account: string;
    state: string;
    report?: {
      schemaVersion: number;
      residueAuto: number;
      reportedAt: number;
      authoredRemaining: number;
      migrationFailed?: string | null;
    } | null;
  }[];
  rollup: {
    migrated: number;
    inProgress: number;
    unknown: number;
    failed: number;
    total: number;
    allMigrated: boolean;
    membersPendingSignature: number;
  };
}
export interface AppVersion {
  version: string;
  applicationId: string;
  package: string;
  size: number;
  stateVersion: number;
}

/** Capability bits of a group member (host/node/src/governance/rights.rs). */
export const CAPABILITIES: [number, string][] = [
  [1, "create contexts"],
  [1 << 1, "invite members"],
  [1 << 2, "join open subgroups"],
  [1 << 3, "manage members"],
  [1 << 4, "manage application"],
  [1 << 5, "create subgroups"],
  [1 << 6, "delete subgroups"],
  [1 << 7, "manage visibility"],
  [1 << 8, "manage metadata"],
];
