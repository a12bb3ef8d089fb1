// The pool's part of issue #17: a GHM call that rejects leaves the EMA state as it was (and a
// retry steps it once); createPool accepts any finite startTimeout; calls in flight are bounded,
// so shared memory stays at what a few calls need however many are made; calls waiting their
// turn reject when the pool closes, leaving state and heap as they were.

import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { expectExactlyEqual, expectReducedClose } from './helpers/golden';
import { binaryTargets, logits as makeLogits } from './helpers/random';
import { loadLib, type Lib } from './support/lib';

type Pool = Awaited<ReturnType<Lib['createPool']>>;

let lib: Lib;

beforeAll(async () => {
  lib = await loadLib('simd');
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Bytes of the pool's shared memory (what the process keeps: wasm memory never shrinks). */
function sharedBytes(p: Pool): number {
  const b = p.createBatch({ length: 1 });
  const bytes = b.logits.buffer.byteLength;
  b.free();
  return bytes;
}

describe('a GHM call that rejects leaves the EMA state as it was (repro 04)', () => {
  const n = 100_003; // 4 blocks
  const x = makeLogits(n, 1);
  const t = binaryTargets(n, 2);

  for (const how of ['close', 'terminate', 'throw'] as const) {
    it(`the pool fails (${how}) between the statistics and the gradient pass`, async () => {
      const p = await lib.createPool({ threads: 2 });
      const ghmc = new lib.GHMC({ bins: 10, momentum: 0.75 });
      const before = ghmc.accSum;
      // The statistics of the last block are the moment the step is made from.
      const addRaw = lib.GHMStats.prototype.addRaw;
      let blocks = 0;
      vi.spyOn(lib.GHMStats.prototype, 'addRaw').mockImplementation(function (this: InstanceType<Lib['GHMStats']>, raw: Float64Array) {
        addRaw.call(this, raw);
        if (++blocks === 4) {
          if (how === 'close') void p.close();
          else p._killWorker(0, how);
        }
      });
      await expect(p.ghmc(ghmc, x, t, undefined, { grad: true })).rejects.toThrow(/pool\.ghmc: the pool (was closed during the call|is closed)/);
      expect(blocks).toBe(4);
      expectExactlyEqual(ghmc.accSum, before, 'EMA state after a rejected call');
      vi.restoreAllMocks();

      // A retry on a new pool steps once: as one single-thread forward.
      const again = await lib.createPool({ threads: 2 });
      const single = new lib.GHMC({ bins: 10, momentum: 0.75 });
      const ref = single.forward(x, t, undefined, { grad: true });
      const r = await again.ghmc(ghmc, x, t, undefined, { grad: true });
      expectReducedClose(r.loss, ref.loss);
      expectExactlyEqual(ghmc.accSum, single.accSum, 'EMA state after the retry');
      await again.close();
      await p.close();
    });
  }

  it('calls on one GHM object in flight together step in call order, as sequential forwards', async () => {
    const p = await lib.createPool({ threads: 2, chunkElements: 1 << 16 });
    const batches = [3, 4, 5].map((s) => ({ x: makeLogits(n, s), t: binaryTargets(n, 10 + s) }));
    const single = new lib.GHMC({ bins: 30, momentum: 0.75 });
    const refs = batches.map((b) => single.forward(b.x, b.t, undefined, { grad: true }));
    const ghmc = new lib.GHMC({ bins: 30, momentum: 0.75 });
    const results = await Promise.all(batches.map((b) => p.ghmc(ghmc, b.x, b.t, undefined, { grad: true })));
    results.forEach((r, i) => expectReducedClose(r.loss, refs[i]!.loss, 1e-5, `call ${i}`));
    expectExactlyEqual(ghmc.accSum, single.accSum);
    await p.close();
  });

  it('a call on a GHM object that rejects (bad targets) does not hold up or change the next one', async () => {
    const p = await lib.createPool({ threads: 2 });
    const ghmr = new lib.GHMR({ bins: 10, momentum: 0.7 });
    const single = new lib.GHMR({ bins: 10, momentum: 0.7 });
    const pred = makeLogits(n, 6);
    const target = makeLogits(n, 7);
    const ghmc = new lib.GHMC({ momentum: 0.5 });
    const [bad, good, rBad] = await Promise.allSettled([
      p.ghmc(ghmc, x, new Uint8Array(n).fill(2), undefined, { grad: true }),
      p.ghmr(ghmr, pred, target, undefined, { grad: true }),
      p.ghmr(ghmr, pred, target.subarray(1)),
    ]);
    expect(bad.status).toBe('rejected');
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/GHMC\.forward: targets has values in \[2, 2\]/);
    expectExactlyEqual(ghmc.accSum, new Float64Array(10));
    expect(rBad.status).toBe('rejected');
    expect(good.status).toBe('fulfilled');
    expectReducedClose((good as PromiseFulfilledResult<{ loss: number }>).value.loss, single.forward(pred, target).loss);
    expectExactlyEqual(ghmr.accSum, single.accSum);
    await p.close();
  });
});

describe('createPool: startTimeout', () => {
  it('accepts timeouts beyond what one timer can wait (2^31 - 1 ms; repro 13)', async () => {
    for (const startTimeout of [2 ** 31, 3e9, Number.MAX_SAFE_INTEGER]) {
      const p = await lib.createPool({ threads: 2, startTimeout });
      expect(p.threads).toBe(2);
      await p.close();
    }
  });

  it('still rejects when the workers do not start in time', async () => {
    await expect(lib.createPool({ threads: 2, startTimeout: 1e-3 })).rejects.toThrow('createPool: the workers did not start within 0.001 ms');
  });
});

describe('calls in flight are bounded (repro 16)', () => {
  it('shared memory stays at what a few calls need, with 40 large calls in flight; results as sequential calls', async () => {
    const p = await lib.createPool({ threads: 2 });
    const n = (1 << 21) + 5;
    const x = makeLogits(n, 30);
    const t = binaryTargets(n, 31);
    const ref = await p.sigmoidFocalLoss(x, t, { grad: true });
    const inUse = p.memoryInUse;
    const calls = (k: number) => Promise.all(Array.from({ length: k }, (_, i) => (i % 2 ? p.sigmoidFocalLoss(x, t, { grad: true }) : p.ghmc(new lib.GHMC(), x, t, undefined, { grad: true }))));
    await calls(4);
    const few = sharedBytes(p);
    const results = await calls(40);
    expect(sharedBytes(p)).toBeLessThanOrEqual(few + (1 << 20));
    expect(p.memoryInUse).toBe(inUse);
    for (const [i, r] of results.entries()) if (i % 2) expect(Object.is(r.loss, ref.loss)).toBe(true);
    await p.close();
  });

  it('calls waiting their turn reject when the pool closes; GHM states and the heap stay as they were', async () => {
    const p = await lib.createPool({ threads: 2 });
    const n = 1 << 20;
    const x = makeLogits(n, 40);
    const t = binaryTargets(n, 41);
    const inUse = p.memoryInUse;
    const ghms = Array.from({ length: 8 }, () => new lib.GHMC({ momentum: 0.9 }));
    const calls = ghms.map((g) => p.ghmc(g, x, t, undefined, { grad: true }));
    const focal = Array.from({ length: 8 }, () => p.sigmoidFocalLoss(x, t, { alpha: 'auto', grad: true }));
    await p.close();
    for (const c of [...calls, ...focal]) await expect(c).rejects.toThrow(/the pool was closed during the call \(close\(\) was called\)/);
    for (const g of ghms) expectExactlyEqual(g.accSum, new Float64Array(10));
    expect(p.memoryInUse).toBe(inUse);
  });
});
