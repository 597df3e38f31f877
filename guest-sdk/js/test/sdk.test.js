// Unit tests of the JS SDK and the JS kv-store on the fake host: `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, LwwRegister, UnorderedMap, UnorderedSet, Vector, AppError, CallError, defineApp, emit, mutate, privateStorage, view } from '../src/index.js';
import { FakeHost } from '../src/testing.js';
import { blobs, env, MAX_BLOB_READ } from '../src/index.js';
import { blobIdBytes, toBase58 } from '../src/blobs.js';
import { kvStore } from '../../../apps/kv-store-js/kv-store.js';

const boards = defineApp({
  package: 'boards',
  state: {
    boards: UnorderedMap.of('string', Vector.of('string')),
    tags: UnorderedMap.of('string', UnorderedSet.of('string')),
    nested: UnorderedMap.of('string', UnorderedMap.of('int', LwwRegister.of('int'))),
    votes: UnorderedMap.of('string', Counter.of()),
    title: LwwRegister.of('string'),
    total: Counter.of(),
  },
  initParams: { title: 'string?' },
  init: ({ title }) => ({
    boards: new UnorderedMap(), tags: new UnorderedMap(), nested: new UnorderedMap(), votes: new UnorderedMap(),
    title: new LwwRegister(title ?? 'untitled'), total: new Counter(5),
  }),
  methods: {
    add: mutate({ board: 'string', item: 'string' }, (s, { board, item }) => {
      const v = s.boards.entry(board);
      v.push(item);
      s.total.increment();
      emit('Added', { board, item });
      return v.len();
    }),
    tag: mutate({ board: 'string', tag: 'string' }, (s, { board, tag }) => s.tags.entry(board).insert(tag)),
    put: mutate({ outer: 'string', inner: 'int', value: 'int' }, (s, a) => {
      s.nested.entry(a.outer).insertValue(a.inner, a.value);
    }),
    vote: mutate({ board: 'string' }, (s, { board }) => s.votes.entry(board).increment()),
    fail: mutate({ board: 'string' }, (s, { board }) => {
      s.boards.entry(board).push('lost');
      throw new AppError({ kind: 'Nope' });
    }),
    remember: mutate({ secret: 'string' }, (s, { secret }) => privateStorage.set('secret', secret)),
    secret: view({}, () => privateStorage.get('secret') ?? null),
    show: view({}, (s) => ({
      title: s.title.get(),
      total: s.total.value(),
      boards: Object.fromEntries(s.boards.entries().map(([k, v]) => [k, v.items()])),
      tags: Object.fromEntries(s.tags.entries().map(([k, v]) => [k, v.elements()])),
      nested: Object.fromEntries(s.nested.entries().map(([k, m]) => [k, m.values()])),
      votes: Object.fromEntries(s.votes.entries().map(([k, c]) => [k, c.value()])),
    })),
    sneaky: view({}, (s) => {
      try { s.total.increment(); } catch { /* swallowing it does not help */ }
    }),
  },
});

test('describe declares intents and a Rust-compatible schema', () => {
  const info = boards.describe();
  assert.deepEqual(info.methods.find((m) => m.name === 'add'), { name: 'add', mutating: true });
  assert.deepEqual(info.methods.find((m) => m.name === 'show'), { name: 'show', mutating: false });
  assert.ok(info.schema.some((f) => f.name === 'nested' && f.kind === 'UnorderedMap<String,UnorderedMap<i64,LwwRegister<i64>>>'));
  assert.deepEqual(kvStore.describe().schema, [{ name: 'items', kind: 'UnorderedMap<String,LwwRegister<String>>' }]);
});

test('collections nest and persist across calls', () => {
  const host = new FakeHost().install();
  const ctx = host.contextOf(boards, { title: 't' });
  assert.equal(ctx.call('add', { board: 'b', item: 'x' }), 1);
  assert.equal(ctx.call('add', { board: 'b', item: 'y' }), 2);
  assert.equal(ctx.call('tag', { board: 'b', tag: 'red' }), true);
  assert.equal(ctx.call('tag', { board: 'b', tag: 'red' }), false);
  ctx.call('put', { outer: 'o', inner: 10, value: 2 });
  ctx.call('put', { outer: 'o', inner: -2, value: 1 });
  assert.equal(ctx.call('vote', { board: 'b' }), 1);
  assert.deepEqual(ctx.call('show'), {
    title: 't', total: 7, boards: { b: ['x', 'y'] }, tags: { b: ['red'] },
    nested: { o: [[-2, 1], [10, 2]] }, votes: { b: 1 },
  });
  assert.deepEqual(host.events.at(-1), ['Added', { board: 'b', item: 'y' }]);
});

test('a failing call changes nothing; a writing view fails', () => {
  const host = new FakeHost().install();
  const ctx = host.contextOf(boards);
  assert.throws(() => ctx.call('fail', { board: 'b' }), (e) => e instanceof CallError && e.tag === 'failed' && e.val === '{"kind":"Nope"}');
  assert.deepEqual(ctx.call('show').boards, {});
  assert.throws(() => ctx.call('sneaky'), (e) => e instanceof CallError && e.tag === 'storage');
  assert.equal(ctx.call('show').total, 5);
});

test('private storage', () => {
  const ctx = new FakeHost().install().contextOf(boards);
  assert.equal(ctx.call('secret'), null);
  ctx.call('remember', { secret: 's' });
  assert.equal(ctx.call('secret'), 's');
});

test('arguments are checked', () => {
  const ctx = new FakeHost().install().contextOf(boards);
  for (const bad of ['{"board":1,"item":"x"}', '{"board":"b"}', '{"board":"b","item":"x","z":1}', '[1]', '{']) {
    assert.throws(() => ctx.callRaw('add', bad), (e) => e.tag === 'invalid-arguments', bad);
  }
  assert.throws(() => ctx.callRaw('nope', '{}'), (e) => e.tag === 'unknown-method');
  assert.equal(ctx.callRaw('secret', 'null'), 'null');
});

test('the JS kv-store on the fake host', () => {
  const host = new FakeHost().install();
  const ctx = host.contextOf(kvStore);
  assert.equal(ctx.call('set', { key: 'a', value: '1' }), null);
  ctx.call('set', { key: 'a', value: '2' });
  assert.equal(ctx.call('get', { key: 'a' }), '2');
  assert.equal(ctx.call('get', { key: 'zz' }), null);
  assert.deepEqual(ctx.call('entries'), { a: '2' });
  assert.throws(() => ctx.call('get_result', { key: 'zz' }), (e) => e.val === '{"kind":"NotFound","data":"zz"}');
  ctx.call('clear');
  assert.deepEqual(host.events, [['Inserted', { key: 'a', value: '1' }], ['Updated', { key: 'a', value: '2' }], ['Cleared', null]]);
});

const attachments = defineApp({
  package: 'attachments',
  state: { file: LwwRegister.of('string?') },
  init: () => ({ file: new LwwRegister(null) }),
  methods: {
    attach: mutate({ blob: 'string' }, (s, { blob }) => s.file.set(blob)),
    write: mutate({ text: 'string' }, (s, { text }) => {
      const id = blobs.create(text);
      s.file.set(id);
      return id;
    }),
    writeInView: view({}, () => blobs.create('x')),
    text: view({}, (s) => {
      const id = s.file.get();
      if (id === null) return null;
      const bytes = blobs.readAll(id);
      return bytes === undefined ? null : { size: blobs.size(id), text: new TextDecoder().decode(bytes) };
    }),
  },
});

test('blobs: ids are base58 as the node writes them, reads and makes go through the host', () => {
  assert.equal(toBase58(new Uint8Array(32)), '1'.repeat(32));
  const id = new Uint8Array(32).map((_, i) => i * 7 + 1);
  assert.deepEqual(blobIdBytes(toBase58(id)), id);
  for (const bad of ['0OIl', 'abc', '', 7]) assert.throws(() => blobIdBytes(bad), String(bad));

  const host = new FakeHost().install();
  const ctx = host.contextOf(attachments);
  assert.equal(ctx.call('text'), null);
  // Larger than one read: read on.
  const big = new Uint8Array(MAX_BLOB_READ + 10).fill(97);
  const bigId = toBase58(host.putBlob(big));
  ctx.call('attach', { blob: bigId });
  assert.equal(ctx.call('text').size, big.length);
  assert.equal(ctx.call('text').text.length, big.length);
  // Made by a call: its id is the SHA-256 of the bytes, in base58.
  const made = ctx.call('write', { text: 'hello' });
  assert.deepEqual(ctx.call('text'), { size: 5, text: 'hello' });
  assert.equal(made, toBase58(host.putBlob(new TextEncoder().encode('hello'))));
  // A view cannot make one; an unknown id reads as nothing; a bad one fails.
  assert.throws(() => ctx.call('writeInView'), (e) => e.tag === 'storage');
  ctx.call('attach', { blob: toBase58(new Uint8Array(32).fill(9)) });
  assert.equal(ctx.call('text'), null);
  ctx.call('attach', { blob: 'not base58!' });
  assert.throws(() => ctx.call('text'));
});

test('env.chainIdentities is what the host says', () => {
  const host = new FakeHost().install();
  assert.deepEqual(env.chainIdentities(), []);
  host.chainIdentities = [{ chain: 'ethereum', account: '0xAb', verifiedOnChain: true }];
  assert.deepEqual(env.chainIdentities(), [{ chain: 'ethereum', account: '0xAb', verifiedOnChain: true }]);
});
