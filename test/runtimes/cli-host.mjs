// Deno and Bun: `<runtime> cli-host.mjs <library URL> <extras URL> <plan file> <results file>`.
// Runs the probe's cases (encoded by test/support/probe.mjs) on the library, with the extras
// module (focal-ghm/extras) loaded by `init({ extras })`, and writes the results.
// node:fs is fine here: this is the test's harness, not the library.

import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { decode, encode, probe } from '../support/probe.mjs';

const [libUrl, extrasUrl, planFile, resultsFile] = process.argv.slice(2);
const lib = await import(libUrl);
const { extras } = await import(extrasUrl);
const { cases, init } = decode(readFileSync(planFile, 'utf8'));
writeFileSync(resultsFile, encode(await probe(lib, cases, { ...init, extras })));
// Bun and Deno would wait for a worker a failed pool left behind; the results are written.
process.exit(0);
