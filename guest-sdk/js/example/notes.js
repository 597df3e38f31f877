// A short example: notes with a view, a mutating method, an event and a
// counter. Build it with `scripts/build-polyglot-apps --examples`.
import { Counter, LwwRegister, UnorderedMap, defineApp, emit, mutate, view } from '../src/index.js';
import { exportApp } from '../src/wit.js';

const notes = defineApp({
  package: 'notes-js',
  state: { notes: UnorderedMap.of('string', LwwRegister.of('string')), writes: Counter.of() },
  init: () => ({ notes: new UnorderedMap(), writes: new Counter() }),
  methods: {
    // Stores a note; returns how many writes there were.
    write: mutate({ title: 'string', body: 'string' }, (s, { title, body }) => {
      s.notes.insertValue(title, body);
      emit('Written', { title });
      return s.writes.increment();
    }),
    // A read-only view: the node refuses its writes.
    read: view({ title: 'string' }, (s, { title }) => s.notes.getValue(title) ?? null),
  },
});

export const app = exportApp(notes);
