// Typed CRDT collections backed by the node, as in the Rust SDK.
//
// A collection is *detached* (made with `new`, holding its contents until it
// is stored: returned from `init` or put into a map) or *attached* (a handle
// to state the node holds: every read and write is a host call).
//
// Merge rules (the host owns them): LwwRegister last writer wins; map keys
// and set elements add-win; Vector keeps push order and concurrent pushes all
// survive; Counter counts every member's increments and decrements.
//
// Types are declared in the app's `state` with `UnorderedMap.of(key, value)`
// and friends. Encodings match the Rust SDK: values are compact JSON; keys
// are 'string' (UTF-8), 'bytes' (as is), 'bool' (one byte) or 'int' (a
// big-endian i64 with the sign bit flipped, so byte order is numeric order).

import { backend, host } from './host.js';

const PAGE = 512;
const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

export class SdkError extends Error {}

export function encode(value) {
  return te.encode(JSON.stringify(value === undefined ? null : value));
}

export function decode(bytes) {
  try {
    return JSON.parse(td.decode(bytes));
  } catch (e) {
    throw new SdkError(`stored value does not decode: ${e.message}`);
  }
}

const RUST = { string: 'String', int: 'i64', number: 'f64', bool: 'bool', bytes: 'Vec<u8>', json: 'Value' };

/** The key's bytes for a key type. */
export function keyBytes(key, ktype = 'string') {
  switch (ktype) {
    case 'string':
      if (typeof key !== 'string') throw new SdkError('a string key is expected');
      return te.encode(key);
    case 'bytes':
      if (!(key instanceof Uint8Array)) throw new SdkError('a Uint8Array key is expected');
      return key;
    case 'bool':
      return Uint8Array.of(key ? 1 : 0);
    case 'int': {
      const out = new Uint8Array(8);
      const u = BigInt.asUintN(64, BigInt(key)) ^ (1n << 63n);
      new DataView(out.buffer).setBigUint64(0, u);
      return out;
    }
    default:
      throw new SdkError(`unknown key type ${ktype}`);
  }
}

export function keyFrom(bytes, ktype = 'string') {
  switch (ktype) {
    case 'bytes':
      return bytes;
    case 'bool':
      return bytes[0] === 1;
    case 'int': {
      if (bytes.length !== 8) throw new SdkError('stored key does not decode as int');
      const u = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0) ^ (1n << 63n);
      return Number(BigInt.asIntN(64, u));
    }
    default:
      try {
        return td.decode(bytes);
      } catch {
        throw new SdkError('stored key does not decode as string');
      }
  }
}

/** A declared collection type: its class and type arguments. */
export class Spec {
  constructor(cls, args) {
    this.cls = cls;
    this.args = args;
  }

  /** As the Rust SDK writes it in a schema: equal layouts, equal schemas. */
  kind() {
    const a = this.args.map((x) => (x instanceof Spec ? x.kind() : (RUST[x] ?? String(x))));
    return a.length ? `${this.cls.name}<${a.join(',')}>` : this.cls.name;
  }
}

/** Where a collection lives: a root name (maybe frozen), or a key of a map. */
export class Loc {
  constructor({ name = null, parent = null, key = null, frozen = false }) {
    Object.assign(this, { name, parent, key, frozen });
  }

  open(resource) {
    if (this.parent) return this.parent[`${resource}At`](this.key);
    const st = backend().storage;
    const cls = { register: st.Register, map: st.Map, set: st.Set, vector: st.Vector, counter: st.Counter }[resource];
    return this.frozen ? cls.openFrozen(this.name) : cls.open(this.name);
  }
}

function detached() {
  return new SdkError('this collection is not stored yet: only insertions are possible before it is part of the state');
}

class Collection {
  static _getIn(spec, m, key) {
    if (!host(() => m.contains(key))) return undefined;
    return spec.cls._attach(spec, new Loc({ parent: m, key }));
  }

  _putIn(spec, m, key) {
    // A replaced nested collection starts empty.
    host(() => m.remove(key));
    host(() => m.insertKey(key));
    this._store(spec, new Loc({ parent: m, key }));
  }
}

function pages(fetch, next) {
  const out = [];
  let after;
  for (;;) {
    const page = host(() => fetch(after));
    out.push(...page);
    if (page.length < PAGE) return out;
    after = next(page[page.length - 1], out.length);
  }
}

// ---------------------------------------------------------------- register

export class LwwRegister extends Collection {
  /** A register type holding values described by `type` (for the schema). */
  static of(type = 'json') {
    return new Spec(LwwRegister, [type]);
  }

  constructor(...value) {
    super();
    this._value = value.length ? encode(value[0]) : undefined;
    this._handle = null;
    this._in = null;
  }

  static _attach(spec, loc) {
    const r = new LwwRegister();
    r._handle = loc.open('register');
    return r;
  }

  _raw() {
    return this._handle ? host(() => this._handle.get()) : this._value;
  }

  /** The value, or undefined if never set or cleared. */
  get() {
    const raw = this._raw();
    return raw === undefined ? undefined : decode(raw);
  }

  set(value) {
    const data = encode(value);
    if (this._in) {
      host(() => this._in[0].putRegister(this._in[1], data));
      this._value = data;
    } else if (this._handle) host(() => this._handle.set(data));
    else this._value = data;
  }

  clear() {
    if (this._in) {
      host(() => this._in[0].registerAt(this._in[1]).clear());
      this._value = undefined;
    } else if (this._handle) host(() => this._handle.clear());
    else this._value = undefined;
  }

  _store(spec, loc) {
    const raw = this._raw();
    if (raw !== undefined) host(() => loc.open('register').set(raw));
  }

  static _getIn(spec, m, key) {
    // One host call for the common map-of-registers case.
    const raw = host(() => m.getRegister(key));
    if (raw === undefined) return undefined;
    const r = new LwwRegister();
    r._value = raw;
    r._in = [m, key];
    return r;
  }

  _putIn(spec, m, key) {
    const raw = this._raw();
    if (raw === undefined) host(() => m.insertKey(key));
    else host(() => m.putRegister(key, raw));
  }
}

// --------------------------------------------------------------------- map

export class UnorderedMap extends Collection {
  /** A map type: `UnorderedMap.of('string', LwwRegister.of('string'))`. */
  static of(keyType, valueSpec) {
    if (!(valueSpec instanceof Spec)) {
      throw new SdkError('map values are collections: wrap plain values in LwwRegister.of(...)');
    }
    return new Spec(UnorderedMap, [keyType, valueSpec]);
  }

  constructor(entries = []) {
    super();
    this._items = new Map();
    this._handle = null;
    this._spec = null;
    for (const [k, v] of entries) this._items.set(k, v);
  }

  static _attach(spec, loc) {
    const m = new UnorderedMap();
    m._spec = spec;
    m._handle = loc.open('map');
    return m;
  }

  _h() {
    if (!this._handle) throw detached();
    return this._handle;
  }

  _k(key) {
    return keyBytes(key, this._spec.args[0]);
  }

  /** Makes `value` (a collection) the value at `key`. */
  insert(key, value) {
    if (!this._handle) {
      this._items.set(key, value);
      return;
    }
    value._putIn(this._spec.args[1], this._handle, this._k(key));
  }

  /** The collection at `key`, or undefined. */
  get(key) {
    const vs = this._spec?.args[1];
    return vs.cls._getIn(vs, this._h(), this._k(key));
  }

  /** The collection at `key`, inserting `key` first if absent. */
  entry(key) {
    const m = this._h();
    const k = this._k(key);
    if (!host(() => m.contains(k))) host(() => m.insertKey(k));
    const vs = this._spec.args[1];
    return vs.cls._attach(vs, new Loc({ parent: m, key: k }));
  }

  contains(key) {
    if (!this._handle) return this._items.has(key);
    return host(() => this._handle.contains(this._k(key)));
  }

  /** Removes `key` and clears its value; whether it was present. */
  remove(key) {
    if (!this._handle) return this._items.delete(key);
    return host(() => this._handle.remove(this._k(key)));
  }

  len() {
    return this._handle ? Number(host(() => this._handle.len())) : this._items.size;
  }

  _rawKeys() {
    const m = this._h();
    return pages((after) => m.keys(after, PAGE), (last) => last);
  }

  /** Every key, in byte order. */
  keys() {
    return this._rawKeys().map((k) => keyFrom(k, this._spec.args[0]));
  }

  /** Every [key, collection], in key byte order. */
  entries() {
    const vs = this._spec.args[1];
    return this._rawKeys().map((k) => [keyFrom(k, this._spec.args[0]), vs.cls._attach(vs, new Loc({ parent: this._handle, key: k }))]);
  }

  clear() {
    if (this._handle) host(() => this._handle.clear());
    else this._items.clear();
  }

  // Maps of registers: one host call each.

  /** Sets the register at `key`; returns the old value or undefined. */
  insertValue(key, value) {
    if (!this._handle) {
      const old = this._items.get(key);
      this._items.set(key, new LwwRegister(value));
      return old?.get();
    }
    const old = host(() => this._handle.putRegister(this._k(key), encode(value)));
    return old === undefined ? undefined : decode(old);
  }

  /** The value of the register at `key`, or undefined. */
  getValue(key) {
    const raw = host(() => this._h().getRegister(this._k(key)));
    return raw === undefined ? undefined : decode(raw);
  }

  /** Every [key, value] of a map of registers, in key byte order. */
  values() {
    const m = this._h();
    return pages((after) => m.registerEntries(after, PAGE), (last) => last[0]).map(([k, v]) => [
      keyFrom(k, this._spec.args[0]),
      decode(v),
    ]);
  }

  _store(spec, loc) {
    const m = loc.open('map');
    const [kt, vs] = spec.args;
    for (const [k, v] of this._items) v._putIn(vs, m, keyBytes(k, kt));
  }
}

// --------------------------------------------------------------------- set

export class UnorderedSet extends Collection {
  static of(elementType = 'string') {
    return new Spec(UnorderedSet, [elementType]);
  }

  constructor(items = []) {
    super();
    this._items = new Set(items);
    this._handle = null;
    this._t = 'string';
  }

  static _attach(spec, loc) {
    const s = new UnorderedSet();
    s._t = spec.args[0];
    s._handle = loc.open('set');
    return s;
  }

  insert(v) {
    if (!this._handle) {
      const had = this._items.has(v);
      this._items.add(v);
      return !had;
    }
    return host(() => this._handle.insert(keyBytes(v, this._t)));
  }

  remove(v) {
    if (!this._handle) return this._items.delete(v);
    return host(() => this._handle.remove(keyBytes(v, this._t)));
  }

  contains(v) {
    if (!this._handle) return this._items.has(v);
    return host(() => this._handle.contains(keyBytes(v, this._t)));
  }

  len() {
    return this._handle ? Number(host(() => this._handle.len())) : this._items.size;
  }

  /** Every element, in byte order. */
  elements() {
    if (!this._handle) return [...this._items];
    const h = this._handle;
    return pages((after) => h.elements(after, PAGE), (last) => last).map((e) => keyFrom(e, this._t));
  }

  clear() {
    if (this._handle) host(() => this._handle.clear());
    else this._items.clear();
  }

  _store(spec, loc) {
    const s = loc.open('set');
    for (const v of this._items) host(() => s.insert(keyBytes(v, spec.args[0])));
  }
}

// ------------------------------------------------------------------ vector

export class Vector extends Collection {
  static of(type = 'json') {
    return new Spec(Vector, [type]);
  }

  constructor(items = []) {
    super();
    this._items = items.map(encode);
    this._handle = null;
  }

  static _attach(spec, loc) {
    const v = new Vector();
    v._handle = loc.open('vector');
    return v;
  }

  _h() {
    if (!this._handle) throw detached();
    return this._handle;
  }

  push(value) {
    if (this._handle) host(() => this._handle.push(encode(value)));
    else this._items.push(encode(value));
  }

  /** The element at `index`, or undefined past the end. */
  get(index) {
    const raw = host(() => this._h().get(BigInt(index)));
    return raw === undefined ? undefined : decode(raw);
  }

  /** Replaces the element at `index`; returns the old one. */
  set(index, value) {
    return decode(host(() => this._h().set(BigInt(index), encode(value))));
  }

  remove(index) {
    return decode(host(() => this._h().remove(BigInt(index))));
  }

  pop() {
    const raw = host(() => this._h().pop());
    return raw === undefined ? undefined : decode(raw);
  }

  len() {
    return this._handle ? Number(host(() => this._handle.len())) : this._items.length;
  }

  /** Every element, in order. */
  items() {
    if (!this._handle) return this._items.map(decode);
    const h = this._handle;
    const out = [];
    for (;;) {
      const page = host(() => h.range(BigInt(out.length), PAGE));
      out.push(...page.map(decode));
      if (page.length < PAGE) return out;
    }
  }

  clear() {
    if (this._handle) host(() => this._handle.clear());
    else this._items = [];
  }

  _store(spec, loc) {
    const v = loc.open('vector');
    for (const b of this._items) host(() => v.push(b));
  }
}

// ----------------------------------------------------------------- counter

export class Counter extends Collection {
  static of() {
    return new Spec(Counter, []);
  }

  constructor(value = 0) {
    super();
    this._value = value;
    this._handle = null;
  }

  static _attach(spec, loc) {
    const c = new Counter();
    c._handle = loc.open('counter');
    return c;
  }

  value() {
    return this._handle ? Number(host(() => this._handle.value())) : this._value;
  }

  /** Adds `by`; returns the new value. */
  increment(by = 1) {
    if (!this._handle) return (this._value += by);
    return Number(host(() => this._handle.increment(BigInt(by))));
  }

  decrement(by = 1) {
    if (!this._handle) return (this._value -= by);
    return Number(host(() => this._handle.decrement(BigInt(by))));
  }

  _store(spec, loc) {
    const c = loc.open('counter');
    if (this._value > 0) host(() => c.increment(BigInt(this._value)));
    else if (this._value < 0) host(() => c.decrement(BigInt(-this._value)));
  }
}
