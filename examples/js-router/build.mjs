// Componentizes router.js against the `router` world of wit/v0.1.0.
// HTTP is disabled: Switchboard refuses plugins that import wasi:http.
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const { component } = await componentize({
  sourcePath: here('router.js'),
  witPath: here('../../wit/v0.1.0'),
  worldName: 'router',
  disableFeatures: ['http', 'fetch-event'],
});
const out = process.argv[2] ?? here('router.wasm');
await writeFile(out, component);
console.log(`wrote ${out} (${component.length} bytes)`);
