// An in-memory host for unit tests outside a component (node --test). It
// keeps what app code can observe of the WIT: views cannot write (and the
// call fails even if the app swallowed the error), a failing call changes
// nothing and emits nothing, maps nest, removing a key clears what was under it.

import { createHash } from 'node:crypto';
import { setBackend, StorageError } from './host.js';
import { CallError } from './app.js';

const hex = (b) => Buffer.from(b).toString('hex');
const cmp = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const err = (tag, val = '') => Object.assign(new Error(tag), { payload: { tag, val } });

export class FakeHost {
  constructor() {
    this.data = new Map(); // path -> value (register bytes, key Map, Set Map, array, number)
    this.priv = new Map();
    this.blobs = new Map(); // hex id -> bytes
    this.events = [];
    this.readOnly = false;
    this.violation = false;
  }

  install() {
    const h = this;
    const handle = (kind, path, frozen) => new Handle(h, kind, path, frozen);
    const res = (kind) => ({ open: (n) => handle(kind, n, false), openFrozen: (n) => handle(kind, n, true) });
    setBackend({
      storage: { Register: res('register'), Map: res('map'), Set: res('set'), Vector: res('vector'), Counter: res('counter') },
      privateStorage: {
        read: (k) => h.priv.get(hex(k)),
        write: (k, v) => (h.write(), h.priv.set(hex(k), v)),
        remove: (k) => (h.write(), h.priv.delete(hex(k))),
      },
      events: { emit: (kind, data) => (h.write(), h.events.push([kind, JSON.parse(new TextDecoder().decode(data))])) },
      context: { contextId: () => new Uint8Array(32), executorId: () => new Uint8Array(32), appVersion: () => '0.1.0', chainIdentities: () => h.chainIdentities ?? [], chainAttestations: () => h.chainAttestations ?? [], nowMillis: () => 1700000000000n, log: () => {} },
      blobs: {
        size: (id) => (h.blobs.has(hex(id)) ? BigInt(h.blobs.get(hex(id)).length) : undefined),
        read: (id, offset, len) => {
          const b = h.blobs.get(hex(id));
          if (b === undefined) return undefined;
          if (offset > BigInt(b.length)) throw err('out-of-range', `offset ${offset} is past the end`);
          const at = Number(offset);
          return b.slice(at, at + Math.min(len, 1 << 20));
        },
        create: (data) => (h.write(), h.putBlob(data)),
      },
    });
    return this;
  }

  /** Stores a blob as the node would; returns its id (32 bytes). */
  putBlob(data) {
    const id = new Uint8Array(createHash('sha256').update(data).digest());
    this.blobs.set(hex(id), Uint8Array.from(data));
    return id;
  }

  write() {
    if (this.readOnly) {
      this.violation = true;
      throw err('read-only');
    }
  }

  clearUnder(path) {
    for (const k of [...this.data.keys()]) if (k === path || k.startsWith(`${path}/`)) this.data.delete(k);
  }

  /** A context of `app` (a `defineApp` dispatcher), initialised with `args`. */
  contextOf(app, args = {}) {
    this.transact(() => app.init(JSON.stringify(args)), false);
    const methods = Object.fromEntries(app.describe().methods.map((m) => [m.name, m.mutating]));
    return {
      call: (method, a = {}) => JSON.parse(this.transact(() => app.call(method, JSON.stringify(a)), !methods[method])),
      callRaw: (method, json) => this.transact(() => app.call(method, json), !methods[method]),
    };
  }

  transact(f, readOnly) {
    const saved = new Map([...this.data].map(([k, v]) => [k, structuredClone(v)]));
    const savedPriv = new Map(this.priv);
    const n = this.events.length;
    this.readOnly = readOnly;
    this.violation = false;
    try {
      const out = f();
      if (this.violation) throw new CallError('storage', new StorageError('read-only', ''));
      return out;
    } catch (e) {
      this.data = saved;
      this.priv = savedPriv;
      this.events.length = n;
      throw e;
    } finally {
      this.readOnly = false;
    }
  }
}

class Handle {
  constructor(h, kind, path, frozen) {
    Object.assign(this, { h, kind, path, frozen });
  }

  w() {
    if (this.frozen) throw err('read-only');
    this.h.write();
  }

  slot(init) {
    if (!this.h.data.has(this.path)) this.h.data.set(this.path, init());
    return this.h.data.get(this.path);
  }

  // register
  get(i) {
    if (this.kind === 'vector') {
      const v = this.slot(() => []);
      return i < BigInt(v.length) ? v[Number(i)] : undefined;
    }
    return this.h.data.get(this.path);
  }

  set(a, b) {
    this.w();
    if (this.kind === 'vector') {
      const v = this.slot(() => []);
      if (a >= BigInt(v.length)) throw err('out-of-range', `index ${a}, length ${v.length}`);
      const old = v[Number(a)];
      v[Number(a)] = b;
      return old;
    }
    this.h.data.set(this.path, a);
  }

  clear() {
    this.w();
    if (this.kind === 'register') this.h.data.delete(this.path);
    else if (this.kind === 'map') for (const k of [...this.slot(() => new Map()).values()]) this.remove(k);
    else if (this.kind === 'set') this.slot(() => new Map()).clear();
    else if (this.kind === 'vector') this.h.data.set(this.path, []);
  }

  // map and set
  keysMap() {
    return this.slot(() => new Map());
  }

  contains(k) {
    return this.keysMap().has(hex(k));
  }

  insertKey(k) {
    this.w();
    const had = this.contains(k);
    this.keysMap().set(hex(k), k);
    return !had;
  }

  insert(k) {
    return this.insertKey(k);
  }

  remove(k) {
    this.w();
    if (this.kind === 'vector') {
      const v = this.slot(() => []);
      if (k >= BigInt(v.length)) throw err('out-of-range', `index ${k}, length ${v.length}`);
      return v.splice(Number(k), 1)[0];
    }
    const had = this.keysMap().delete(hex(k));
    if (this.kind === 'map') this.h.clearUnder(`${this.path}/${hex(k)}`);
    return had;
  }

  len() {
    if (this.kind === 'vector') return BigInt(this.slot(() => []).length);
    return BigInt(this.keysMap().size);
  }

  keys(after, limit) {
    return [...this.keysMap().values()].sort(cmp).filter((k) => after === undefined || cmp(k, after) > 0).slice(0, limit);
  }

  elements(after, limit) {
    return this.keys(after, limit);
  }

  getRegister(k) {
    return this.contains(k) ? this.h.data.get(`${this.path}/${hex(k)}`) : undefined;
  }

  putRegister(k, v) {
    this.w();
    const old = this.getRegister(k);
    this.keysMap().set(hex(k), k);
    this.h.data.set(`${this.path}/${hex(k)}`, v);
    return old;
  }

  registerEntries(after, limit) {
    return this.keys(after, Infinity)
      .map((k) => [k, this.h.data.get(`${this.path}/${hex(k)}`)])
      .filter(([, v]) => v !== undefined)
      .slice(0, limit);
  }

  at(kind, k) {
    return new Handle(this.h, kind, `${this.path}/${hex(k)}`, this.frozen);
  }

  registerAt(k) { return this.at('register', k); }
  mapAt(k) { return this.at('map', k); }
  setAt(k) { return this.at('set', k); }
  vectorAt(k) { return this.at('vector', k); }
  counterAt(k) { return this.at('counter', k); }

  // vector
  push(v) {
    this.w();
    this.slot(() => []).push(v);
  }

  pop() {
    this.w();
    return this.slot(() => []).pop();
  }

  range(start, limit) {
    return this.slot(() => []).slice(Number(start), Number(start) + limit);
  }

  // counter
  value() {
    return BigInt(this.h.data.get(this.path) ?? 0);
  }

  increment(by) {
    this.w();
    this.h.data.set(this.path, Number(this.value() + by));
    return this.value();
  }

  decrement(by) {
    this.w();
    this.h.data.set(this.path, Number(this.value() - by));
    return this.value();
  }
}
