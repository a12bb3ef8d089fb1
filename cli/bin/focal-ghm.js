#!/usr/bin/env node
// The `focal-ghm` executable: a committed file (so that npm links it when installing, before the
// first build) that runs the bundled command.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(bundle)) {
  console.error('focal-ghm: cli/dist/cli.js is not built yet: run `npm run build` at the repository root');
  process.exit(1);
}
await import(bundle.href);
