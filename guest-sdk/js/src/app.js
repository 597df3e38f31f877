// Declaring an app (state, init, views and mutating methods, events) and the
// dispatcher answering the WIT `app` exports.

import { StorageError, backend, host } from './host.js';
import { Loc, Spec, SdkError } from './collections.js';

const te = new TextEncoder();

/** An error a method returns to its client: any JSON value. */
export class AppError extends Error {
  constructor(value) {
    super(typeof value === 'string' ? value : JSON.stringify(value));
    this.value = value;
  }
}

/** Why a call failed, in the terms of the WIT `app-error`. */
export class CallError extends Error {
  /** @param {'unknown-method'|'invalid-arguments'|'failed'|'storage'} tag */
  constructor(tag, val) {
    super(`${tag}: ${val instanceof StorageError ? val.message : val}`);
    this.tag = tag;
    this.val = val;
  }
}

/**
 * A read-only method: the node runs it on a store that refuses writes.
 * `params` names each JSON argument and its type ('string', 'int', 'number',
 * 'bool', 'object', 'array', 'any'; a trailing '?' makes it optional).
 * `fn(state, args)` returns the JSON result.
 */
export function view(params, fn) {
  return { mutating: false, params, fn };
}

/** A method that may change state; like `view`. */
export function mutate(params, fn) {
  return { mutating: true, params, fn };
}

/** Emits an event of `kind` with a JSON payload (`null` if none). It is
 * delivered only if the call succeeds; from a view it fails the call. */
export function emit(kind, data = null) {
  try {
    host(() => backend().events.emit(kind, te.encode(JSON.stringify(data))));
  } catch (e) {
    // The node records the failure and fails the call (as in Rust).
    if (!(e instanceof StorageError)) throw e;
  }
}

/**
 * Declares an app.
 * @param {{package: string, version?: string, stateVersion?: number,
 *   state: Record<string, Spec>, init: (args: object) => object,
 *   initParams?: object, methods: Record<string, ReturnType<typeof view>>}} def
 */
export function defineApp(def) {
  for (const [n, s] of Object.entries(def.state)) {
    if (!(s instanceof Spec)) throw new SdkError(`state field \`${n}\` is not a collection type`);
  }
  return new Dispatcher(def);
}

export class Dispatcher {
  constructor(def) {
    this.def = def;
  }

  describe() {
    const d = this.def;
    return {
      package: d.package,
      version: d.version ?? '0.1.0',
      methods: Object.entries(d.methods).map(([name, m]) => ({ name, mutating: m.mutating })),
      stateVersion: d.stateVersion ?? 1,
      schema: Object.entries(d.state).map(([name, s]) => ({ name, kind: s.kind() })),
    };
  }

  /** The state: a handle to every field's collection. */
  load() {
    const s = {};
    for (const [n, spec] of Object.entries(this.def.state)) {
      s[n] = spec.cls._attach(spec, new Loc({ name: n }));
    }
    return s;
  }

  init(argsJson) {
    const args = parseArgs('init', this.def.initParams ?? {}, argsJson);
    const value = run(() => this.def.init(args));
    for (const [n, spec] of Object.entries(this.def.state)) {
      const c = value?.[n];
      if (!(c instanceof spec.cls)) throw new CallError('failed', JSON.stringify(`init left field \`${n}\` unset`));
      run(() => c._store(spec, new Loc({ name: n })));
    }
  }

  call(method, argsJson) {
    const m = Object.hasOwn(this.def.methods, method) ? this.def.methods[method] : undefined;
    if (!m) throw new CallError('unknown-method', method);
    const args = parseArgs(method, m.params, argsJson);
    const out = run(() => m.fn(this.load(), args));
    return JSON.stringify(out === undefined ? null : out);
  }
}

function run(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof CallError) throw e;
    if (e instanceof StorageError) throw new CallError('storage', e);
    if (e instanceof AppError) throw new CallError('failed', JSON.stringify(e.value));
    // A bug in the app: fail the call, keep its message.
    throw new CallError('failed', JSON.stringify(`${e?.name ?? 'Error'}: ${e?.message ?? e}`));
  }
}

const CHECKS = {
  string: (v) => typeof v === 'string',
  int: (v) => Number.isInteger(v),
  number: (v) => typeof v === 'number',
  bool: (v) => typeof v === 'boolean',
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  array: (v) => Array.isArray(v),
  any: () => true,
};

const RUST = { string: 'String', int: 'i64', number: 'f64', bool: 'bool', object: 'a map', array: 'a sequence', any: 'any' };

/** Parses and checks JSON arguments; an empty body or `null` is `{}`;
 * unknown and missing names are errors. */
export function parseArgs(method, params, argsJson) {
  const bad = (msg) => new CallError('invalid-arguments', `arguments of \`${method}\`: ${msg}`);
  const text = (argsJson ?? '').trim();
  let args;
  try {
    args = text === '' || text === 'null' ? {} : JSON.parse(text);
  } catch (e) {
    throw bad(e.message);
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw bad('expected a JSON object keyed by parameter name');
  }
  for (const k of Object.keys(args)) {
    if (!Object.hasOwn(params, k)) throw bad(`unknown field \`${k}\``);
  }
  for (const [k, t] of Object.entries(params)) {
    const optional = t.endsWith('?');
    const base = optional ? t.slice(0, -1) : t;
    const check = CHECKS[base] ?? CHECKS.any;
    if (!Object.hasOwn(args, k) || args[k] === null) {
      if (!optional && !(Object.hasOwn(args, k) && base === 'any')) throw bad(`missing field \`${k}\``);
      args[k] = null;
    } else if (!check(args[k])) {
      throw bad(`\`${k}\` must be ${RUST[base] ?? base}, got ${JSON.stringify(args[k])}`);
    }
  }
  return args;
}
