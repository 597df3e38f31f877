// The component side: installs the WIT bindings as the SDK's host and turns
// an app into the `app` export. Only resolvable inside componentize-js, which
// provides the `calimero:context/*` modules.

import * as storage from 'calimero:context/storage@0.1.0';
import * as privateStorage from 'calimero:context/private-storage@0.1.0';
import * as events from 'calimero:context/events@0.1.0';
import * as context from 'calimero:context/context@0.1.0';
import * as blobs from 'calimero:context/blobs@0.1.0';
import { setBackend, StorageError } from './host.js';
import { CallError } from './app.js';

setBackend({ storage, privateStorage, events, context, blobs });

function witError(e) {
  if (e instanceof CallError) {
    if (e.tag === 'storage' && e.val instanceof StorageError) return { tag: 'storage', val: e.val.raw };
    return { tag: e.tag, val: String(e.val) };
  }
  return { tag: 'failed', val: JSON.stringify(String(e)) };
}

/** The object to export as `app` for a `defineApp(...)` dispatcher. */
export function exportApp(d) {
  return {
    describe() {
      const info = d.describe();
      return {
        package: info.package,
        version: info.version,
        methods: info.methods.map((m) => ({ name: m.name, intent: m.mutating ? 'mutating' : 'read-only' })),
        stateVersion: info.stateVersion,
        schema: info.schema,
        migrations: [],
      };
    },
    init(argsJson) {
      try {
        d.init(argsJson);
      } catch (e) {
        throw witError(e);
      }
    },
    call(method, argsJson) {
      try {
        return d.call(method, argsJson);
      } catch (e) {
        throw witError(e);
      }
    },
    migrate(fromVersion) {
      // Migrations are not in this SDK yet (see README).
      throw { tag: 'unknown-method', val: `no migration from state version ${fromVersion}` };
    },
    checkMigration() {},
  };
}
