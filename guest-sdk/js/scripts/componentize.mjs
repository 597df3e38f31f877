#!/usr/bin/env node
// Builds a JS app into a component of the `context-app` world through
// componentize-js's `componentize()` API (its CLI, `jco componentize`, was
// seen to fail here on a preopen path).
//   node scripts/componentize.mjs <app.js> <out.wasm> [wit dir]
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const [source, out, wit] = process.argv.slice(2);
if (!source || !out) {
  console.error('usage: componentize.mjs <app.js> <out.wasm> [wit dir]');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
// componentize-js resolves an app's relative imports inside its working
// directory only: run from the repository root so that apps/ reach guest-sdk/.
const sourcePath = resolve(source);
const outPath = resolve(out);
process.chdir(root);
const started = Date.now();
const { component } = await componentize({
  sourcePath,
  witPath: resolve(wit ?? `${root}/wit`),
  worldName: 'context-app',
  // The node links WASI p2 but not wasi:http.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(outPath, component);
console.log(`${out}: ${component.length} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s`);
