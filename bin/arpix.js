#!/usr/bin/env node
// The `arpix` command. Runs the compiled CLI when the package is built (dist/), else the
// TypeScript sources through tsx, so `npx arpix …` works in a development checkout too.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const built = new URL('../dist/cli/main.js', import.meta.url);
let mod;
if (existsSync(built)) {
  mod = await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
process.exitCode = await mod.main(process.argv.slice(2));
