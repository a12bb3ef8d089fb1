// Kernel edges of issue #17 (shared/repro 08), on both builds: GHM-C's soft-target g on a
// float32 edge lands in mmdetection's bin. docs/SPEC.md §10 states the rule.

import { beforeAll, describe, it } from 'vitest';
import { expectExactlyEqual } from './helpers/golden';
import { BUILDS, loadLib, type Lib } from './support/lib';

/** mmdetection's GHM-C bin of logit x = 0 and target t: g = |σ(0) - t| in float32. */
function mmdetBinAtZero(t: number, bins: number): number {
  const f = Math.fround;
  const g = f(Math.abs(f(0.5 - f(t))));
  const edges = Array.from({ length: bins + 1 }, (_, i) => f(i / bins));
  edges[bins] = f(edges[bins]! + f(1e-6));
  return edges.findIndex((e, i) => i < bins && e <= g && g < edges[i + 1]!);
}

describe.each(BUILDS)('%s build', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  describe('GHM-C soft targets: g on a float32 edge in mmdetection\'s bin (repro 08)', () => {
    const ts = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1 / 3, 2 / 3, 0.125, 0.375];
    for (const bins of [2, 3, 4, 5, 8, 10, 16, 20, 30, 40, 100]) {
      it(`x = ±0, bins = ${bins}: each t's bin is mmdetection's float32 one`, () => {
        for (const x0 of [0, -0]) {
          for (const t of ts) {
            const counts = new lib.GHMC({ bins }).collect(new Float32Array([x0]), new Float32Array([t])).counts;
            const want = new Float64Array(bins);
            want[mmdetBinAtZero(t, bins)] = 1;
            expectExactlyEqual(counts, want, `x = ${Object.is(x0, -0) ? '-0' : '0'}, t = ${t}`);
          }
        }
        // The EMA state of a whole batch, as repro 08 looks at it.
        const g = new lib.GHMC({ bins, momentum: 0.75 });
        g.forward(new Float32Array(ts.length), Float32Array.from(ts));
        const num = new Float64Array(bins);
        for (const t of ts) num[mmdetBinAtZero(t, bins)]!++;
        expectExactlyEqual(g.accSum, num.map((k) => 0.25 * k), 'accSum');
      });
    }
  });
});
