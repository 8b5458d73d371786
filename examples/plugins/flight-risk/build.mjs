// Builds plugin.js into a vigilo plugin component with componentize-js: a pure component, every
// WASI feature of the JS engine switched off, because a plugin gets no WASI.
// Usage: node build.mjs OUTPUT.wasm
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const output = process.argv[2] ?? 'target/flight-risk.wasm';
const { component } = await componentize({
  sourcePath: 'plugin.js',
  witPath: '../../../wit/vigilo-alarms.wit',
  worldName: 'rule-plugin',
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await writeFile(output, component);
console.error(`built ${output} (${component.length} bytes)`);
