// The kv-store in JavaScript: exactly the Rust kv-store's methods, JSON and
// events (apps/kv-store/src/lib.rs), on the same state layout. `app.js` is
// the component's entry; this file is plain JS, so unit tests import it.

import { AppError, LwwRegister, StorageError, UnorderedMap, defineApp, emit, mutate, view } from '../../guest-sdk/js/src/index.js';

const kv = { key: 'string', value: 'string' };
const k = { key: 'string' };
// JSON null for an absent value, as Rust's `Option::None`.
const orNull = (v) => (v === undefined ? null : v);

export const kvStore = defineApp({
  package: 'kv-store-js',
  version: '0.1.0',
  state: { items: UnorderedMap.of('string', LwwRegister.of('string')) },
  init: () => ({ items: new UnorderedMap() }),
  methods: {
    /** Sets `key` to `value`. */
    set: mutate(kv, ({ items }, { key, value }) => {
      const old = items.insertValue(key, value);
      emit(old === undefined ? 'Inserted' : 'Updated', { key, value });
    }),
    /** Sets `key` to `value` only if it exists; returns whether it did. */
    update_if_exists: mutate(kv, ({ items }, { key, value }) => {
      if (!items.contains(key)) return false;
      items.insertValue(key, value);
      emit('Updated', { key, value });
      return true;
    }),
    /** The value of `key`, inserting `value` first if absent. */
    get_or_insert: mutate(kv, ({ items }, { key, value }) => {
      const existing = items.getValue(key);
      if (existing !== undefined) return existing;
      items.insertValue(key, value);
      emit('Inserted', { key, value });
      return value;
    }),
    /** Every key with its value. */
    entries: view({}, ({ items }) => Object.fromEntries(items.values())),
    /** Number of keys. */
    len: view({}, ({ items }) => items.len()),
    /** The value of `key`, or null. */
    get: view(k, ({ items }, { key }) => orNull(items.getValue(key))),
    /** The value of `key`; an error if absent. */
    get_unchecked: view(k, ({ items }, { key }) => {
      const v = items.getValue(key);
      if (v === undefined) throw new AppError(`key not found: ${key}`);
      return v;
    }),
    /** The value of `key`; `{"kind":"NotFound","data":key}` if absent. */
    get_result: view(k, ({ items }, { key }) => {
      let v;
      try {
        v = items.getValue(key);
      } catch (e) {
        if (e instanceof StorageError) throw new AppError({ kind: 'Storage', data: e.describe() });
        throw e;
      }
      if (v === undefined) throw new AppError({ kind: 'NotFound', data: key });
      return v;
    }),
    /** Removes `key`; returns its old value, or null. */
    remove: mutate(k, ({ items }, { key }) => {
      const old = items.getValue(key);
      if (old !== undefined) {
        items.remove(key);
        emit('Removed', { key });
      }
      return orNull(old);
    }),
    /** Removes every key. */
    clear: mutate({}, ({ items }) => {
      items.clear();
      emit('Cleared');
    }),
  },
});

