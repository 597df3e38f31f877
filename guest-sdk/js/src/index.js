// Write context apps for mero nodes in JavaScript: a thin layer over the
// bindings componentize-js generates from `wit/context.wit`. See README.md.

import { backend, host } from './host.js';

export { StorageError, setBackend } from './host.js';
export { Counter, LwwRegister, SdkError, Spec, UnorderedMap, UnorderedSet, Vector } from './collections.js';
export { AppError, CallError, Dispatcher, defineApp, emit, mutate, parseArgs, view } from './app.js';
export { MAX_BLOB_READ, blobs } from './blobs.js';

const te = new TextEncoder();
const td = new TextDecoder();

/** Node-local storage: never replicated, never in the state hash. Writes
 * commit with the call. */
export const privateStorage = {
  /** The raw bytes under `key`, or undefined. */
  read: (key) => host(() => backend().privateStorage.read(key)),
  write: (key, value) => host(() => backend().privateStorage.write(key, value)),
  /** Whether `key` was there. */
  remove: (key) => host(() => backend().privateStorage.remove(key)),
  /** A JSON value under a string key, or undefined. */
  get(key) {
    const raw = this.read(te.encode(key));
    return raw === undefined ? undefined : JSON.parse(td.decode(raw));
  },
  set(key, value) {
    this.write(te.encode(key), te.encode(JSON.stringify(value)));
  },
};

/** Facts about the running call. */
export const env = {
  contextId: () => backend().context.contextId(),
  executorId: () => backend().context.executorId(),
  appVersion: () => backend().context.appVersion(),
  /**
   * The chain accounts the executing member proved it holds in the
   * context's namespace: `{chain, account, verifiedOnChain}`. Empty in a
   * migration.
   */
  chainIdentities: () =>
    backend().context.chainIdentities().map((i) => ({
      chain: i.chain,
      account: i.account,
      verifiedOnChain: i.verifiedOnChain,
    })),
  /**
   * Attestations recorded in the context's namespace about the executing
   * member's proven chain accounts (a member's node's signed claim of what
   * the chain said): `{chain, network, blockNumber, blockHash, kind,
   * account, token, atLeast, observed, holds, attestedBy, atMillis}`.
   * Empty in a migration.
   */
  chainAttestations: () =>
    backend().context.chainAttestations().map((a) => ({
      chain: a.chain,
      network: a.network,
      blockNumber: Number(a.blockNumber),
      blockHash: a.blockHash,
      kind: a.kind,
      account: a.account,
      token: a.token ?? null,
      atLeast: a.atLeast ?? null,
      observed: a.observed,
      holds: a.holds,
      attestedBy: a.attestedBy,
      atMillis: Number(a.atMillis),
    })),
  /** Milliseconds since the epoch from the call's hybrid logical clock. */
  nowMillis: () => Number(backend().context.nowMillis()),
  /** `level`: 'trace' | 'debug' | 'info' | 'warn' | 'error'. */
  log: (message, level = 'info') => backend().context.log(level, message),
};
