// Every golden case of test/fixtures/golden, through the public API, on both the SIMD and the
// scalar build, within docs/SPEC.md §5. The cases run through the same
// probe that test/runtimes.test.ts runs in Deno, Bun, Chromium and workerd.

import { beforeAll, describe, it } from 'vitest';
import { checkCase, goldenCases } from './support/checks';
import { BUILDS, loadLib, type Lib } from './support/lib';
import { runCase } from './support/probe.mjs';

describe.each(BUILDS)('golden cases, %s build', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  for (const [label, c] of goldenCases()) {
    it(label, async () => {
      checkCase(c, await runCase(lib, c));
    });
  }
});
