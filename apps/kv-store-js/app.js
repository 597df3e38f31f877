// The component's entry: the kv-store of `kv-store.js` as the WIT `app`
// export (build: scripts/build-polyglot-apps).
import { exportApp } from '../../guest-sdk/js/src/wit.js';
import { kvStore } from './kv-store.js';

export const app = exportApp(kvStore);
