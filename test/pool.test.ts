// The thread pool (issue #4): bitwise the same results for 1, 2, 3 and 8 threads; the same as
// the single-thread API within SPEC §5 (GHM EMA state exactly); the same validation messages;
// crashes, termination and close() reject pending and later calls instead of hanging; the
// fallback without SharedArrayBuffer; no shared-memory leak over 10^3 calls.

import { resolveObjectURL } from 'node:buffer';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker as NodeWorker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { expectSameBits } from './helpers/close';
import { expectElementsClose, expectExactlyEqual, expectReducedClose } from './helpers/golden';
import { binaryTargets, logits as makeLogits, regression, sigmoidLabels, softTargets, weights } from './helpers/random';
import { exec } from './support/exec';
import { loadLib, type Lib } from './support/lib';

type Pool = Awaited<ReturnType<Lib['createPool']>>;
type Result = Awaited<ReturnType<Pool['sigmoidFocalLoss']>>;

let lib: Lib;
/** Thread counts under test, with step sizes that make the larger batches take several steps. */
const CONFIGS = [
  { threads: 1 },
  { threads: 2, chunkElements: 1 << 16 },
  { threads: 3, chunkElements: 100_000 },
  { threads: 8 },
];
let pools: Pool[] = [];

beforeAll(async () => {
  lib = await loadLib('simd');
  pools = await Promise.all(CONFIGS.map((c) => lib.createPool(c)));
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

function expectSameResult(a: { loss: number | Float32Array; grad?: Float32Array }, b: typeof a, label: string): void {
  if (typeof a.loss === 'number') expect(Object.is(a.loss, b.loss), `${label}: loss ${a.loss} vs ${String(b.loss)}`).toBe(true);
  else expectSameBits(a.loss, b.loss as Float32Array, `${label}: loss`);
  expectSameBits(a.grad, b.grad, `${label}: grad`);
}

/** SPEC §5 bounds against the single-thread API. */
function expectSpecClose(a: { loss: number | Float32Array; grad?: Float32Array }, ref: typeof a, label: string): void {
  if (typeof ref.loss === 'number') expectReducedClose(a.loss as number, ref.loss, 1e-5, label);
  else expectElementsClose(a.loss as Float32Array, ref.loss, 1e-5, `${label}: loss`);
  if (ref.grad) expectElementsClose(a.grad!, ref.grad, 1e-5, `${label}: grad`);
}

const SIZES = [0, 1, 5, 32768, 32769, 100_003, 300_001];

describe('sigmoid focal loss on the pool', () => {
  const cases: Array<{ name: string; make: (n: number) => [Float32Array, Parameters<Lib['sigmoidFocalLoss']>[1], Parameters<Lib['sigmoidFocalLoss']>[2]] }> = [
    { name: 'binary, mean, grad', make: (n) => [makeLogits(n, 1), binaryTargets(n, 2), { grad: true }] },
    { name: "soft, weights, 'none', grad", make: (n) => [makeLogits(n, 3), softTargets(n, 4), { weight: weights(n, 5), reduction: 'none', grad: true, gamma: 1.5 }] },
    { name: "binary, alpha 'auto', sum, weights", make: (n) => [makeLogits(n, 6), binaryTargets(n, 7, 0.05), { alpha: 'auto', reduction: 'sum', weight: weights(n, 8) }] },
    { name: 'alpha null, gamma 0.5, avgFactor, lossWeight', make: (n) => [makeLogits(n, 9, 'extreme'), binaryTargets(n, 10), { alpha: null, gamma: 0.5, avgFactor: 123.5, lossWeight: 0.7, grad: true }] },
  ];

  for (const c of cases) {
    it(`${c.name}: same bits for 1/2/3/8 threads, SPEC §5 of the single-thread API`, async () => {
      for (const n of SIZES) {
        const [x, t, o] = c.make(n);
        const ref = lib.sigmoidFocalLoss(x, t, o);
        const results: Result[] = [];
        for (const p of pools) results.push(await p.sigmoidFocalLoss(x, t, o));
        for (let i = 0; i < pools.length; i++) {
          const label = `n=${n}, ${CONFIGS[i]!.threads} threads`;
          expectSameResult(results[i]!, results[0]!, `${label} vs 1 thread`);
          expect(results[i]!.alpha).toBe(ref.alpha);
          expectSpecClose(results[i]!, ref, label);
        }
      }
    });
  }

  it('class-index targets (rows not aligned to blocks), row weights, alpha auto, grad', async () => {
    for (const [rows, numClasses] of [[0, 3], [1, 80], [5, 3], [40_001, 3], [3001, 81], [2, 40_000]] as const) {
      const n = rows * numClasses;
      const x = makeLogits(n, 11);
      const t = { labels: sigmoidLabels(rows, numClasses, 12), numClasses };
      for (const o of [{ grad: true, weight: weights(rows, 13) }, { alpha: 'auto' as const, reduction: 'none' as const, grad: true }]) {
        const ref = lib.sigmoidFocalLoss(x, t, o);
        const results: Result[] = [];
        for (const p of pools) results.push(await p.sigmoidFocalLoss(x, t, o));
        results.forEach((r, i) => {
          const label = `${rows}×${numClasses}, ${CONFIGS[i]!.threads} threads`;
          expectSameResult(r, results[0]!, label);
          expect(r.alpha).toBe(ref.alpha);
          expectSpecClose(r, ref, label);
        });
      }
    }
  });

  it('batch views kept across a memory growth are still read in place, not copied', async () => {
    const p = await lib.createPool({ threads: 2 });
    try {
      const n = 100_000;
      const b = p.createBatch({ length: n, targets: 'u8' });
      const x = b.logits;
      const t = b.targets as Uint8Array;
      x.set(makeLogits(n, 42));
      t.set(binaryTargets(n, 43));
      const other = p.createBatch({ length: 1 << 24 }); // grows the shared memory: x and t are now views of an older buffer
      expect(x.buffer).not.toBe(b.logits.buffer);
      const ref = await p.sigmoidFocalLoss(x.slice(), t.slice());
      const f32 = vi.spyOn(Float32Array.prototype, 'set');
      const u8 = vi.spyOn(Uint8Array.prototype, 'set');
      try {
        const r = await p.sigmoidFocalLoss(x, t);
        expect(f32).not.toHaveBeenCalled();
        expect(u8).not.toHaveBeenCalled();
        expect(Object.is(r.loss, ref.loss)).toBe(true);
      } finally {
        vi.restoreAllMocks();
      }
      other.free();
      b.free();
    } finally {
      await p.close();
    }
  });

  it('overlapping calls give the results of sequential ones', async () => {
    const p = pools[1]!;
    const inputs = [1, 70_000, 5, 200_000, 33_000].map((n, i) => [makeLogits(n, 20 + i), binaryTargets(n, 30 + i)] as const);
    const sequential: Result[] = [];
    for (const [x, t] of inputs) sequential.push(await p.sigmoidFocalLoss(x, t, { grad: true }));
    const parallel = await Promise.all(inputs.map(([x, t]) => p.sigmoidFocalLoss(x, t, { grad: true })));
    parallel.forEach((r, i) => expectSameResult(r, sequential[i]!, `call ${i}`));
  });

  it('arrays of pool.createBatch are used in place, with out.grad written in place', async () => {
    const n = 150_001;
    const x = makeLogits(n, 40);
    const t = binaryTargets(n, 41);
    for (const p of pools) {
      const ref = await p.sigmoidFocalLoss(x, t, { grad: true });
      const b = p.createBatch({ length: n, targets: 'u8', grad: true });
      b.logits.set(x);
      (b.targets as Uint8Array).set(t);
      const r = await p.sigmoidFocalLoss(b.logits, b.targets, { out: { grad: b.grad } });
      expect(Object.is(r.loss, ref.loss)).toBe(true);
      expectSameBits(b.grad, ref.grad, `${p.threads} threads: in-place grad`);
      const stale = b.logits;
      b.free();
      await expect(p.sigmoidFocalLoss(stale, t)).rejects.toThrow(/view of a freed batch/);
    }
  });
});

describe('GHM on the pool', () => {
  it('GHM-C: same bits for 1/2/3/8 threads; loss, grad and EMA state as GHMC.forward', async () => {
    for (const n of SIZES) {
      for (const withWeight of [false, true]) {
        const batches = [0, 1, 2].map((s) => {
          const x = makeLogits(n, 50 + s);
          return { x, t: binaryTargets(n, 60 + s), w: withWeight ? weights(n, 70 + s) : undefined };
        });
        const single = new lib.GHMC({ bins: 30, momentum: 0.75 });
        const refs = batches.map((b) => single.forward(b.x, b.t, b.w, { grad: true }));
        const first: Array<{ loss: number | Float32Array; grad?: Float32Array }> = [];
        for (const [i, p] of pools.entries()) {
          const ghmc = new lib.GHMC({ bins: 30, momentum: 0.75 });
          for (const [k, b] of batches.entries()) {
            const label = `n=${n}, weights ${withWeight}, ${CONFIGS[i]!.threads} threads, call ${k}`;
            const r = await p.ghmc(ghmc, b.x, b.t, b.w, { grad: true });
            if (i === 0) first.push(r);
            else expectSameResult(r, first[k]!, label);
            expectSpecClose(r, refs[k]!, label);
          }
          expectExactlyEqual(ghmc.accSum, single.accSum, `EMA state, ${CONFIGS[i]!.threads} threads, n=${n}`);
          expectSameBits(new Float32Array(new Float64Array(ghmc.accSum).buffer), new Float32Array(new Float64Array(single.accSum).buffer), 'EMA bits');
        }
      }
    }
  });

  it('GHM-C with class-index targets and row weights; without grad', async () => {
    // C = 5: rows walked block by block; C = 80: tiles of whole rows. The most bins: the
    // largest per-lane histograms, on each worker's own stack.
    for (const [rows, numClasses, bins] of [[20_001, 5, 10], [2_501, 80, lib.MAX_BINS]] as const) {
      const x = makeLogits(rows * numClasses, 80);
      const t = { labels: sigmoidLabels(rows, numClasses, 81), numClasses };
      const w = weights(rows, 82);
      const single = new lib.GHMC({ bins });
      const ref = single.forward(x, t, w);
      for (const p of pools) {
        const ghmc = new lib.GHMC({ bins });
        const r = await p.ghmc(ghmc, x, t, w);
        expect(r.grad).toBeUndefined();
        expectReducedClose(r.loss as number, ref.loss as number);
        expectExactlyEqual(ghmc.accSum, single.accSum);
      }
    }
  });

  it('GHM-R: same bits for 1/2/3/8 threads, as GHMR.forward', async () => {
    for (const n of [0, 5, 100_003]) {
      const { pred, target } = regression(n, 90);
      const single = new lib.GHMR({ mu: 0.02, bins: 10, momentum: 0.7 });
      const refs = [single.forward(pred, target, undefined, { grad: true }), single.forward(pred, target, undefined, { grad: true })];
      const first: Array<{ loss: number | Float32Array; grad?: Float32Array }> = [];
      for (const [i, p] of pools.entries()) {
        const ghmr = new lib.GHMR({ mu: 0.02, bins: 10, momentum: 0.7 });
        for (let k = 0; k < 2; k++) {
          const r = await p.ghmr(ghmr, pred, target, undefined, { grad: true });
          if (i === 0) first.push(r);
          else expectSameResult(r, first[k]!, `GHM-R n=${n}`);
          expectSpecClose(r, refs[k]!, `GHM-R n=${n}`);
        }
        expectExactlyEqual(ghmr.accSum, single.accSum);
      }
    }
  });
});

describe('validation: the single-thread messages, before any work', () => {
  const x = makeLogits(10, 1);
  const t = binaryTargets(10, 2);
  const bad: Array<[string, () => unknown[]]> = [
    ['logits type', () => [Array.from(x), t]],
    ['targets length', () => [x, new Uint8Array(9)]],
    ['targets type', () => [x, new Int8Array(10)]],
    ['alpha range', () => [x, t, { alpha: 2 }]],
    ['gamma', () => [x, t, { gamma: -1 }]],
    ['reduction', () => [x, t, { reduction: 'avg' }]],
    ['unknown option', () => [x, t, { gama: 2 }]],
    ['avgFactor with sum', () => [x, t, { reduction: 'sum', avgFactor: 2 }]],
    ['weight length', () => [x, t, { weight: new Float32Array(3) }]],
    ['labels range', () => [new Float32Array(6), { labels: new Int32Array([0, 4]), numClasses: 3 }]],
    ['soft targets out of [0, 1]', () => [x, Float32Array.from({ length: 10 }, (_, i) => i / 5)]],
    ['binary targets out of {0, 1}', () => [x, new Uint8Array(10).fill(2)]],
    ['out.loss without none', () => [x, t, { out: { loss: new Float32Array(10) } }]],
  ];
  for (const [name, args] of bad) {
    it(`sigmoidFocalLoss: ${name}`, async () => {
      let expected: Error | undefined;
      try {
        (lib.sigmoidFocalLoss as (...a: unknown[]) => unknown)(...args());
      } catch (e) {
        expected = e as Error;
      }
      expect(expected, 'the single-thread call must throw').toBeDefined();
      for (const p of pools) {
        const before = p.memoryInUse;
        const err = await (p.sigmoidFocalLoss as (...a: unknown[]) => Promise<unknown>)(...args()).then(
          () => undefined,
          (e: Error) => e,
        );
        expect(err?.constructor).toBe(expected!.constructor);
        expect(err?.message).toBe(expected!.message);
        expect(p.memoryInUse).toBe(before);
      }
    });
  }

  it('GHM-C: same messages; a rejected call leaves the EMA state untouched', async () => {
    const calls: Array<() => unknown[]> = [
      () => [x, new Uint8Array(3)],
      () => [x, t, new Float32Array(2)],
      () => [x, t, undefined, { grad: 1 }],
      () => [x, t, undefined, { grd: true }],
      () => [x, new Uint8Array(10).fill(3)],
    ];
    for (const args of calls) {
      const single = new lib.GHMC({ momentum: 0.5 });
      let expected: Error | undefined;
      try {
        (single.forward as (...a: unknown[]) => unknown).call(single, ...args());
      } catch (e) {
        expected = e as Error;
      }
      expect(expected).toBeDefined();
      for (const p of pools) {
        const ghmc = new lib.GHMC({ momentum: 0.5 });
        const err = await (p.ghmc as (...a: unknown[]) => Promise<unknown>).call(p, ghmc, ...args()).then(() => undefined, (e: Error) => e);
        expect(err?.message).toBe(expected!.message);
        expectExactlyEqual(ghmc.accSum, new Float64Array(10));
      }
    }
    await expect((pools[0]!.ghmc as (...a: unknown[]) => Promise<unknown>)({}, x, t)).rejects.toThrow('pool.ghmc: ghmc must be a GHMC, got Object');
  });

  it('createPool options', async () => {
    await expect(lib.createPool({ threads: 0 })).rejects.toThrow('createPool: options.threads must be an integer in [1, 256], got 0');
    await expect(lib.createPool({ treads: 2 } as never)).rejects.toThrow("createPool: unknown option 'treads'");
  });
});

describe('failures never hang', () => {
  const big = makeLogits(1 << 21, 100);
  const bigT = binaryTargets(1 << 21, 101);

  it('a worker terminated mid-call rejects the call with a clear error and closes the pool', async () => {
    const p = await lib.createPool({ threads: 2 });
    const call = p.sigmoidFocalLoss(big, bigT, { grad: true });
    p._killWorker(1, 'terminate');
    await expect(call).rejects.toThrow('pool.sigmoidFocalLoss: the pool was closed during the call (worker 2 of 2 was terminated)');
    expect(p.closed).toBe(true);
    await expect(p.sigmoidFocalLoss(big, bigT)).rejects.toThrow('pool.sigmoidFocalLoss: the pool is closed (worker 2 of 2 was terminated); create a new one with createPool()');
    await p.close();
  });

  it('a worker that throws an uncaught error fails the pending call', async () => {
    const p = await lib.createPool({ threads: 2 });
    p._killWorker(0, 'throw'); // queued before the job: the worker dies with the job pending
    const call = p.ghmc(new lib.GHMC(), big, bigT, undefined, { grad: true });
    await expect(call).rejects.toThrow(/pool\.ghmc: the pool was closed during the call \(worker 1 of 2 threw an uncaught error: .*worker crash requested by a test\)/);
    expect(p.closed).toBe(true);
    await expect(p.ghmc(new lib.GHMC(), big, bigT)).rejects.toThrow('pool.ghmc: the pool is closed');
  });

  it('a worker that exits fails the pending call', async () => {
    const p = await lib.createPool({ threads: 3 });
    p._killWorker(2, 'exit');
    const calls = [p.sigmoidFocalLoss(big, bigT), p.sigmoidFocalLoss(big, bigT, { alpha: 'auto' })];
    for (const c of calls) await expect(c).rejects.toThrow('worker 3 of 3 exited unexpectedly (exit code 7)');
    expect(p.closed).toBe(true);
  });

  it('close(): running calls reject, later calls reject, close is idempotent', async () => {
    const p = await lib.createPool({ threads: 2 });
    expect(p.closed).toBe(false);
    const call = p.sigmoidFocalLoss(big, bigT);
    await p.close();
    await expect(call).rejects.toThrow('pool.sigmoidFocalLoss: the pool was closed during the call (close() was called)');
    expect(p.closed).toBe(true);
    await expect(p.sigmoidFocalLoss(big, bigT)).rejects.toThrow('pool.sigmoidFocalLoss: the pool is closed (close() was called)');
    await expect(p.ghmc(new lib.GHMC(), big, bigT)).rejects.toThrow('pool.ghmc: the pool is closed (close() was called)');
    expect(() => p.createBatch({ length: 4 })).toThrow('pool.createBatch: the pool is closed');
    await p.close();
  });
});

describe('Node processes that evaluate code as ES modules', () => {
  // Workers inherit execArgv: with --input-type=module the pool's eval worker is an ES module,
  // where `require` does not exist (the worker failed to start before).
  it('starts threads under --input-type=module', async () => {
    const index = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href;
    const code = `import { createPool } from '${index}';
      const pool = await createPool({ threads: 2 });
      const r = await pool.sigmoidFocalLoss(new Float32Array(1 << 18).fill(-1), new Uint8Array(1 << 18));
      console.log(JSON.stringify({ threads: pool.threads, reason: pool.reason ?? null, loss: r.loss }));
      await pool.close();`;
    const out = JSON.parse(await exec(process.execPath, ['--input-type=module', '-e', code], 60_000));
    expect(out).toMatchObject({ threads: 2, reason: null });
    // x = -1, t = 0: α_t = 0.75, p = σ(-1) = 1 / (1 + e), BCE = ln(1 + e^-1).
    expect(out.loss).toBeCloseTo(0.75 * (1 / (1 + Math.E)) ** 2 * Math.log1p(Math.exp(-1)), 6);
  });
});

describe('fallback without threads', () => {
  const x = makeLogits(70_001, 110);
  const t = binaryTargets(70_001, 111);

  it('forceFallback: threads 1, a reason, the single-thread results', async () => {
    const p = await lib.createPool({ threads: 2, forceFallback: true });
    expect(p.threads).toBe(1);
    expect(p.reason).toMatch(/forceFallback/);
    const r = await p.sigmoidFocalLoss(x, t, { grad: true, alpha: 'auto' });
    expectSameResult(r, lib.sigmoidFocalLoss(x, t, { grad: true, alpha: 'auto' }), 'fallback');
    const a = new lib.GHMC({ momentum: 0.75 });
    const b = new lib.GHMC({ momentum: 0.75 });
    expectSameResult(await p.ghmc(a, x, t, undefined, { grad: true }), b.forward(x, t, undefined, { grad: true }), 'fallback GHM-C');
    expectExactlyEqual(a.accSum, b.accSum);
    await expect(p.sigmoidFocalLoss(x, t, { gamma: -1 })).rejects.toThrow('sigmoidFocalLoss: options.gamma must be in [0, 32], got -1');
    const batch = p.createBatch({ length: 8 });
    expect(batch.logits.length).toBe(8);
    batch.free();
    await p.close();
    expect(p.closed).toBe(true);
    await expect(p.sigmoidFocalLoss(x, t)).rejects.toThrow('pool.sigmoidFocalLoss: the pool is closed (close() was called)');
  });

  it('no SharedArrayBuffer: falls back and says why', async () => {
    vi.stubGlobal('SharedArrayBuffer', undefined);
    try {
      const p = await lib.createPool({ threads: 2 });
      expect(p.threads).toBe(1);
      expect(p.reason).toMatch(/SharedArrayBuffer is not available/);
      const r = await p.sigmoidFocalLoss(x, t);
      expect(r.loss).toBe(lib.sigmoidFocalLoss(x, t).loss);
      await p.close();
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('a page that is not cross-origin isolated: falls back and says why', async () => {
    vi.stubGlobal('crossOriginIsolated', false);
    vi.stubGlobal('process', undefined); // look like a browser: Web Workers, no Node
    vi.stubGlobal('Worker', class {});
    try {
      const p = await lib.createPool({ threads: 2 });
      expect(p.threads).toBe(1);
      expect(p.reason).toMatch(/not cross-origin isolated/);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

/**
 * A Web Worker made of a Node worker, enough for the pool's browser/Deno path: a Blob-URL
 * script with `self.postMessage` / `self.onmessage`, `onerror` on the main side.
 */
class WebWorkerShim {
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onerror: ((e: { message: string; preventDefault(): void }) => void) | null = null;
  onmessageerror: (() => void) | null = null;
  private w: NodeWorker;
  private loaded: Promise<void>;
  static created = 0;

  constructor(url: string, _options?: unknown) {
    WebWorkerShim.created++;
    const bootstrap = `const { parentPort } = require('node:worker_threads');
      globalThis.self = { postMessage: (m) => parentPort.postMessage(m), onmessage: null };
      let loaded = false;
      parentPort.on('message', (m) => { if (!loaded) { loaded = true; (0, eval)(m); return; } self.onmessage && self.onmessage({ data: m }); });`;
    this.w = new NodeWorker(bootstrap, { eval: true });
    this.w.on('message', (data) => this.onmessage?.({ data }));
    this.w.on('error', (e: Error) => this.onerror?.({ message: e.message, preventDefault() {} }));
    const blob = resolveObjectURL(url);
    if (!blob) throw new Error(`not a live blob URL: ${url}`);
    this.loaded = blob.text().then((src) => this.w.postMessage(src));
  }

  postMessage(m: unknown): void {
    void this.loaded.then(() => this.w.postMessage(m));
  }

  terminate(): void {
    void this.w.terminate();
  }
}

describe('the Web Worker path (browsers, Deno), on a Node shim', () => {
  /** createPool as a runtime without Node's worker_threads would see it. */
  async function createWebPool(threads: number, Worker: unknown = WebWorkerShim): Promise<Pool> {
    const realProcess = process;
    const noNode = new Proxy(realProcess, {
      get(t, k) {
        if (k === 'versions') return { ...t.versions, node: undefined };
        const v = Reflect.get(t, k, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    vi.stubGlobal('Worker', Worker);
    vi.stubGlobal('process', noNode);
    try {
      return await lib.createPool({ threads });
    } finally {
      vi.unstubAllGlobals();
    }
  }

  it('runs, matches the worker_threads pools bitwise, and reports a crash', async () => {
    const before = WebWorkerShim.created;
    const p = await createWebPool(2);
    expect(WebWorkerShim.created - before).toBe(2);
    expect(p.reason).toBeUndefined();
    const x = makeLogits(100_003, 130);
    const t = binaryTargets(100_003, 131);
    expectSameResult(await p.sigmoidFocalLoss(x, t, { grad: true }), await pools[0]!.sigmoidFocalLoss(x, t, { grad: true }), 'web vs node workers');
    p._killWorker(1, 'throw');
    await expect(p.sigmoidFocalLoss(x, t)).rejects.toThrow(/worker 2 of 2 threw an uncaught error: .*worker crash requested by a test/);
    expect(p.closed).toBe(true);
  });

  // What Chromium does under a Content-Security-Policy without blob: in worker-src (see also
  // test/runtimes.test.ts): an error event with no message, before the worker ever ran; other
  // browsers throw a SecurityError from the constructor.
  /** A Web Worker that fails at once with an error event carrying `message`. */
  const failingWorker = (message?: string) =>
    class {
      onerror: ((e: { message?: string; preventDefault(): void }) => void) | null = null;
      constructor() {
        setTimeout(() => this.onerror?.({ message, preventDefault() {} }), 1);
      }
      postMessage(): void {}
      terminate(): void {}
    };
  class ThrowingWorker {
    constructor() {
      throw Object.assign(new Error("Failed to construct 'Worker': access to the script is denied by the document's Content Security Policy"), { name: 'SecurityError' });
    }
  }
  for (const [name, Worker] of [['an error event before it ran', failingWorker()], ['a SecurityError from the constructor', ThrowingWorker]] as const) {
    it(`a page that refuses blob: workers (${name}): one thread, and the reason`, async () => {
      const p = await createWebPool(2, Worker);
      expect(p.threads).toBe(1);
      expect(p.reason).toMatch(/workers from blob: URLs cannot start on this page \(a Content-Security-Policy without blob: in worker-src/);
      const x = makeLogits(1000, 140);
      const t = binaryTargets(1000, 141);
      expectSameResult(await p.sigmoidFocalLoss(x, t, { grad: true }), lib.sigmoidFocalLoss(x, t, { grad: true }), 'fallback');
      await p.close();
    });
  }

  it('a worker whose script fails with a message still fails createPool', async () => {
    await expect(createWebPool(2, failingWorker('SyntaxError: bad worker'))).rejects.toThrow('createPool: worker 1 of 2 threw an uncaught error: SyntaxError: bad worker while starting');
  });
});

describe('memory', () => {
  it('no shared-memory leak over 10^3 calls (successful and failing)', async () => {
    const p = pools[1]!;
    const x = makeLogits(5000, 120);
    const t = binaryTargets(5000, 121);
    const bad = new Uint8Array(5000).fill(2);
    const ghmc = new lib.GHMC({ bins: 30, momentum: 0.75 });
    await p.sigmoidFocalLoss(x, t);
    const baseline = p.memoryInUse;
    for (let i = 0; i < 1000; i++) {
      switch (i % 5) {
        case 0:
          await p.sigmoidFocalLoss(x, t, { grad: true, reduction: 'none' });
          break;
        case 1:
          await p.sigmoidFocalLoss(x, t, { alpha: 'auto' });
          break;
        case 2:
          await p.ghmc(ghmc, x, t, undefined, { grad: true });
          break;
        case 3:
          await expect(p.sigmoidFocalLoss(x, bad)).rejects.toThrow(RangeError); // fails after the kernels ran
          break;
        default: {
          const b = p.createBatch({ length: 5000, grad: true });
          b.logits.set(x);
          await p.sigmoidFocalLoss(b.logits, b.targets, { out: { grad: b.grad } });
          b.free();
        }
      }
      expect(p.memoryInUse).toBe(baseline);
    }
  });
});
