// The extras losses on the thread pool: `createPool({ extras: threadedExtras })` runs qualityFocalLoss,
// varifocalLoss, distributionFocalLoss and sigmoidFocalLoss's poly1 on its workers, bit for bit
// as the single-thread API for 1, 2 and 3 threads (sizes across several blocks and copy steps,
// 'none', gradients, weights), with arrays of pool batches read in place; the single-thread
// checks and messages, before any job; a pool without extras refuses those calls clearly; the
// single-thread fallback; close() leaves nothing behind.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rejectOutside } from '../ts/family';
import { expectSameBits } from './helpers/close';
import { binaryTargets, logits as makeLogits, rng, sigmoidLabels, softTargets, weights } from './helpers/random';
import { loadLib, type Lib } from './support/lib';
import type { Extras } from '../ts/loader';

type Pool = Awaited<ReturnType<Lib['createPool']>>;
type AnyResult = { loss: number | Float32Array; grad?: Float32Array; alpha?: number | null };
type Call = (...args: unknown[]) => unknown;

let lib: Lib;
let extras: Extras;
let threadedExtras: Extras;
/** Thread counts under test, with copy steps that make the larger batches take several steps. */
const CONFIGS = [
  { threads: 1 },
  { threads: 2, chunkElements: 1 << 16 },
  { threads: 3, chunkElements: 100_000 },
];
let pools: Pool[] = [];
/** A pool created with extras but without threads: the single-thread API. */
let fallback: Pool;

beforeAll(async () => {
  lib = await loadLib('simd');
  ({ extras, threadedExtras } = await import('../ts/extras'));
  await lib.init({ extras });
  pools = await Promise.all(CONFIGS.map((c) => lib.createPool({ ...c, extras: threadedExtras })));
  fallback = await lib.createPool({ forceFallback: true, extras: threadedExtras });
});

afterAll(async () => {
  await Promise.all([...pools, fallback].map((p) => p?.close()));
});

function expectSameResult(a: AnyResult, b: AnyResult, label: string): void {
  if (typeof b.loss === 'number') expect(Object.is(a.loss, b.loss), `${label}: loss ${String(a.loss)} vs ${b.loss}`).toBe(true);
  else expectSameBits(a.loss as Float32Array, b.loss, `${label}: loss`);
  expectSameBits(a.grad, b.grad, `${label}: grad`);
  if ('alpha' in b) expect(a.alpha, `${label}: alpha`).toBe(b.alpha);
}

/** Quality scores in [0, 1], exact 0 and 1 mixed in. */
function scores(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = r();
    return u < 0.1 ? 0 : u < 0.2 ? 1 : r();
  });
}

/** Varifocal targets: 0 for most (negatives), an IoU in (0, 1] for the rest. */
function iouTargets(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.7 ? 0 : r() < 0.1 ? 1 : 0.05 + 0.95 * r()));
}

/** DFL targets in [0, bins): exact integers mixed in. */
function sideTargets(n: number, bins: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.2 ? Math.floor(r() * bins) : Math.min(bins - 1e-3, r() * bins)));
}

type Method = 'qualityFocalLoss' | 'varifocalLoss' | 'distributionFocalLoss' | 'sigmoidFocalLoss';

/** The single-thread call and the same call on every pool (and the fallback): the same bits. */
async function expectAllSame(method: Method, args: unknown[], label: string): Promise<AnyResult> {
  const ref = (lib[method] as Call)(...args) as AnyResult;
  for (const [i, p] of [...pools, fallback].entries()) {
    const r = (await (p[method] as Call).apply(p, args)) as AnyResult;
    expectSameResult(r, ref, `${method}, ${label}, ${i < pools.length ? `${CONFIGS[i]!.threads} threads` : 'fallback'}`);
  }
  return ref;
}

describe('the extras losses on the pool: bit for bit the single-thread API', () => {
  it('pools with extras have threads and say so', () => {
    for (const [i, p] of pools.entries()) {
      expect(p.reason).toBeUndefined();
      expect(p.threads).toBe(CONFIGS[i]!.threads);
      expect(p.extras).toBe(true);
    }
    expect(fallback.threads).toBe(1);
    expect(fallback.extras).toBe(true);
  });

  // Rows × classes: one block; rows not aligned to blocks (10922 rows of 3 per block); 404 rows of
  // 81 per block; rows longer than a block (one row each).
  const QFL_SHAPES = [[0, 3], [1, 80], [5, 3], [40_001, 3], [3001, 81], [2, 40_000]] as const;

  it('qualityFocalLoss: mean, sum, none, avgFactor, lossWeight, grad, row weights', async () => {
    for (const [rows, c] of QFL_SHAPES) {
      const x = makeLogits(rows * c, 1);
      const t = { labels: sigmoidLabels(rows, c, 2), scores: scores(rows, 3), numClasses: c };
      const w = weights(rows, 4);
      const options = [
        { grad: true, weight: w },
        { reduction: 'none', grad: true, beta: 1.5 },
        { reduction: 'sum', lossWeight: 0.7, beta: 0 },
        { avgFactor: 12.5, grad: true, weight: w },
      ];
      for (const o of options) await expectAllSame('qualityFocalLoss', [x, t, o], `${rows}×${c}, ${JSON.stringify(o, (k, v) => (k === 'weight' ? 'w' : v))}`);
    }
  });

  const SIZES = [0, 1, 5, 32768, 32769, 100_003, 300_001];

  it('varifocalLoss: mean, sum, none, grad, weights, iouWeighted', async () => {
    for (const n of SIZES) {
      const x = makeLogits(n, 5);
      const q = iouTargets(n, 6);
      const w = weights(n, 7);
      const options = [
        { grad: true, weight: w },
        { reduction: 'none', grad: true, alpha: 0.5, gamma: 1, iouWeighted: false },
        { reduction: 'sum', lossWeight: 2 },
        { avgFactor: 99, weight: w, gamma: 0 },
      ];
      for (const o of options) await expectAllSame('varifocalLoss', [x, q, o], `n=${n}, ${JSON.stringify(o, (k, v) => (k === 'weight' ? 'w' : v))}`);
    }
  });

  it('distributionFocalLoss: bins given or inferred, none, grad, row weights', async () => {
    // 17 logits a row: 1927 rows a block.
    for (const [rows, bins] of [[0, 16], [1, 16], [5, 7], [4000, 16], [20_001, 16], [3, 50_000]] as const) {
      const c = bins + 1;
      const x = makeLogits(rows * c, 8, 'moderate');
      const y = sideTargets(rows, bins, 9);
      const w = weights(rows, 10);
      const options: object[] = [
        { bins, grad: true, weight: w },
        { bins, reduction: 'none', grad: true },
        { bins, reduction: 'sum', lossWeight: 0.25 },
      ];
      if (rows > 0) options.push({ avgFactor: 3, grad: true }); // bins from the lengths
      for (const o of options) await expectAllSame('distributionFocalLoss', [x, y, o], `${rows}×${c}, ${JSON.stringify(o, (k, v) => (k === 'weight' ? 'w' : v))}`);
    }
  });

  it('sigmoidFocalLoss with poly1: binary, soft, class labels, alpha auto, none, grad, weights', async () => {
    for (const n of SIZES) {
      const x = makeLogits(n, 11);
      const cases: Array<[unknown, object]> = [
        [binaryTargets(n, 12), { poly1: 1, grad: true }],
        [softTargets(n, 13), { poly1: -0.5, reduction: 'none', grad: true, weight: weights(n, 14), gamma: 1.5 }],
        [binaryTargets(n, 15, 0.05), { poly1: 2, alpha: 'auto', reduction: 'sum', weight: weights(n, 16) }],
        [binaryTargets(n, 17), { poly1: 0.3, alpha: null, gamma: 0, avgFactor: 7, lossWeight: 0.5, grad: true, labelSmoothing: 0.1 }],
      ];
      for (const [t, o] of cases) await expectAllSame('sigmoidFocalLoss', [x, t, o], `n=${n}, ${JSON.stringify(o, (k, v) => (k === 'weight' ? 'w' : v))}`);
    }
    for (const [rows, c] of [[40_001, 3], [3001, 81]] as const) {
      const x = makeLogits(rows * c, 18);
      const t = { labels: sigmoidLabels(rows, c, 19), numClasses: c };
      await expectAllSame('sigmoidFocalLoss', [x, t, { poly1: 1, grad: true, weight: weights(rows, 20) }], `${rows}×${c}`);
      await expectAllSame('sigmoidFocalLoss', [x, t, { poly1: 1, alpha: 'auto', reduction: 'none' }], `${rows}×${c}, none`);
    }
  });

  it('sigmoidFocalLoss with poly1: out.grad and out.loss written as the single-thread call writes them', async () => {
    const n = 70_001;
    const x = makeLogits(n, 21);
    const t = binaryTargets(n, 22);
    const ref = lib.sigmoidFocalLoss(x, t, { poly1: 1, reduction: 'none', grad: true });
    for (const p of pools) {
      const out = { loss: new Float32Array(n), grad: new Float32Array(n) };
      const r = await p.sigmoidFocalLoss(x, t, { poly1: 1, reduction: 'none', out });
      expect(r.loss).toBe(out.loss);
      expect(r.grad).toBe(out.grad);
      expectSameResult(r, ref, `${p.threads} threads, out`);
    }
  });

  it('calls of every extras loss in flight together give the results of sequential ones', async () => {
    const p = pools[2]!;
    const rows = 30_001;
    const x3 = makeLogits(rows * 3, 23);
    const qt = { labels: sigmoidLabels(rows, 3, 24), scores: scores(rows, 25), numClasses: 3 };
    const xv = makeLogits(200_001, 26);
    const q = iouTargets(200_001, 27);
    const x17 = makeLogits(9000 * 17, 28, 'moderate');
    const y = sideTargets(9000, 16, 29);
    const tb = binaryTargets(200_001, 30);
    const calls: Array<() => Promise<AnyResult>> = [
      () => p.qualityFocalLoss(x3, qt, { grad: true }),
      () => p.varifocalLoss(xv, q, { grad: true }),
      () => p.distributionFocalLoss(x17, y, { grad: true }),
      () => p.sigmoidFocalLoss(xv, tb, { poly1: 1, grad: true }),
      () => p.sigmoidFocalLoss(xv, tb, { grad: true }),
      () => p.qualityFocalLoss(x3, qt, { reduction: 'none' }),
    ];
    const sequential: AnyResult[] = [];
    for (const c of calls) sequential.push(await c());
    const parallel = await Promise.all(calls.map((c) => c()));
    parallel.forEach((r, i) => expectSameResult(r, sequential[i]!, `call ${i}`));
  });
});

describe('pool batches as inputs', () => {
  it('qualityFocalLoss, varifocalLoss, distributionFocalLoss and poly1 read batch arrays in place', async () => {
    for (const p of pools) {
      const rows = 25_001;
      const c = 5;
      const x = makeLogits(rows * c, 31);
      const labels = sigmoidLabels(rows, c, 32);
      const sc = scores(rows, 33);
      const w = weights(rows, 34);
      const a = p.createBatch({ length: rows * c, targets: { numClasses: c }, weight: 'rows' });
      const b = p.createBatch({ length: rows, targets: 'f32' });
      a.logits.set(x);
      a.labels.set(labels);
      a.weight.set(w);
      b.logits.set(sc);
      const ref = lib.qualityFocalLoss(x, { labels, scores: sc, numClasses: c }, { weight: w });
      const spies = [Float32Array, Int32Array, Uint8Array].map((T) => vi.spyOn(T.prototype, 'set'));
      let r: AnyResult;
      try {
        r = await p.qualityFocalLoss(a.logits, { labels: a.labels, scores: b.logits, numClasses: c }, { weight: a.weight });
        // Copies in or out of the shared memory (the test runner's own messages also call `set`).
        const shared = (v: unknown) => ArrayBuffer.isView(v) && v.buffer instanceof SharedArrayBuffer;
        const copies = spies.flatMap((s) => s.mock.calls.filter((args, i) => shared(s.mock.contexts[i]) || shared(args[0])));
        expect(copies, `${p.threads} threads: nothing copied`).toEqual([]);
      } finally {
        vi.restoreAllMocks();
      }
      expectSameResult(r, ref, `QFL batch, ${p.threads} threads`);
      // With a gradient (copied out of shared memory) and 'none'.
      const refGrad = lib.qualityFocalLoss(x, { labels, scores: sc, numClasses: c }, { reduction: 'none', grad: true });
      expectSameResult(await p.qualityFocalLoss(a.logits, { labels: a.labels, scores: b.logits, numClasses: c }, { reduction: 'none', grad: true }), refGrad, `QFL batch, none, ${p.threads} threads`);
      a.free();
      b.free();

      const n = 100_003;
      const xv = makeLogits(n, 35);
      const q = iouTargets(n, 36);
      const wv = weights(n, 37);
      const v = p.createBatch({ length: n, targets: 'f32', weight: true });
      v.logits.set(xv);
      (v.targets as Float32Array).set(q);
      v.weight.set(wv);
      expectSameResult(await p.varifocalLoss(v.logits, v.targets as Float32Array, { weight: v.weight, grad: true }), lib.varifocalLoss(xv, q, { weight: wv, grad: true }), `VFL batch, ${p.threads} threads`);
      v.free();

      const dr = 6001;
      const xd = makeLogits(dr * 17, 38, 'moderate');
      const yd = sideTargets(dr, 16, 39);
      const d = p.createBatch({ length: dr * 17 });
      const dy = p.createBatch({ length: dr, targets: 'f32' });
      d.logits.set(xd);
      dy.logits.set(yd);
      expectSameResult(await p.distributionFocalLoss(d.logits, dy.logits, { grad: true }), lib.distributionFocalLoss(xd, yd, { grad: true }), `DFL batch, ${p.threads} threads`);
      d.free();
      dy.free();

      const tb = binaryTargets(n, 40);
      const s = p.createBatch({ length: n, targets: 'u8', grad: true });
      s.logits.set(xv);
      (s.targets as Uint8Array).set(tb);
      const rs = await p.sigmoidFocalLoss(s.logits, s.targets, { poly1: 1, out: { grad: s.grad } });
      const refS = lib.sigmoidFocalLoss(xv, tb, { poly1: 1, grad: true });
      expect(Object.is(rs.loss, refS.loss)).toBe(true);
      expectSameBits(s.grad, refS.grad, `poly1 batch, in-place grad, ${p.threads} threads`);
      const stale = s.logits;
      s.free();
      await expect(p.sigmoidFocalLoss(stale, tb, { poly1: 1 })).rejects.toThrow(/view of a freed batch/);
      await expect(p.varifocalLoss(stale, q)).rejects.toThrow(/view of a freed batch/);
    }
  });
});

/** Runs `call` on every pool: it rejects as the single-thread call throws, runs no job, and leaves the pool's memory as it was. */
async function expectSameRejection(method: Method, args: () => unknown[], single: () => unknown): Promise<void> {
  let expected: Error | undefined;
  try {
    single();
  } catch (e) {
    expected = e as Error;
  }
  expect(expected, 'the single-thread call must throw').toBeDefined();
  for (const p of [...pools, fallback]) {
    const threads = (p as unknown as { pool?: { run: Call } }).pool;
    const run = threads ? vi.spyOn(threads, 'run') : undefined;
    const before = p.memoryInUse;
    try {
      const err = await ((p[method] as Call).apply(p, args()) as Promise<unknown>).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.constructor, String(err)).toBe(expected!.constructor);
      expect(err?.message).toBe(expected!.message);
      if (run) expect(run, `${expected!.message}: no job`).not.toHaveBeenCalled();
      expect(p.memoryInUse).toBe(before);
    } finally {
      run?.mockRestore();
    }
  }
}

describe('validation: the single-thread messages, before any job', () => {
  const x6 = makeLogits(6, 1);
  const qt = () => ({ labels: Int32Array.of(0, 3), scores: Float32Array.of(0.5, 0), numClasses: 3 });
  const QFL: Array<[string, () => unknown[]]> = [
    ['logits type', () => [Array.from(x6), qt()]],
    ['targets not an object', () => [x6, 3]],
    ['unknown targets key', () => [x6, { ...qt(), extra: 1 }]],
    ['numClasses does not divide', () => [x6, { ...qt(), numClasses: 4 }]],
    ['labels length', () => [x6, { ...qt(), labels: Int32Array.of(0) }]],
    ['labels range', () => [x6, { ...qt(), labels: Int32Array.of(0, 4) }]],
    ['labels type', () => [x6, { ...qt(), labels: Float32Array.of(0, 1) }]],
    ['scores range', () => [x6, { ...qt(), scores: Float32Array.of(0.5, 1.5) }]],
    ['scores NaN', () => [x6, { ...qt(), scores: Float32Array.of(NaN, 0) }]],
    ['beta', () => [x6, qt(), { beta: -1 }]],
    ['weight length', () => [x6, qt(), { weight: new Float32Array(6) }]],
    ['reduction', () => [x6, qt(), { reduction: 'avg' }]],
    ['avgFactor with sum', () => [x6, qt(), { reduction: 'sum', avgFactor: 2 }]],
    ['unknown option', () => [x6, qt(), { gamma: 2 }]],
  ];
  for (const [name, args] of QFL) {
    it(`qualityFocalLoss: ${name}`, () => expectSameRejection('qualityFocalLoss', args, () => (lib.qualityFocalLoss as Call)(...args())));
  }

  const VFL: Array<[string, () => unknown[]]> = [
    ['targets length', () => [x6, new Float32Array(5)]],
    ['targets type', () => [x6, new Uint8Array(6)]],
    ['weight length', () => [x6, new Float32Array(6), { weight: new Float32Array(2) }]],
    ['iouWeighted', () => [x6, new Float32Array(6), { iouWeighted: 1 }]],
    ['alpha', () => [x6, new Float32Array(6), { alpha: NaN }]],
    ['gamma', () => [x6, new Float32Array(6), { gamma: 40 }]],
  ];
  for (const [name, args] of VFL) {
    it(`varifocalLoss: ${name}`, () => expectSameRejection('varifocalLoss', args, () => (lib.varifocalLoss as Call)(...args())));
  }

  const x34 = makeLogits(34, 2);
  const DFL: Array<[string, () => unknown[]]> = [
    ['bins cannot be told', () => [x34, Float32Array.of(1, 2, 3)]],
    ['bins do not divide', () => [x34, Float32Array.of(1, 2), { bins: 10 }]],
    ['weight length', () => [x34, Float32Array.of(1, 2), { weight: new Float32Array(34) }]],
  ];
  for (const [name, args] of DFL) {
    it(`distributionFocalLoss: ${name}`, () => expectSameRejection('distributionFocalLoss', args, () => (lib.distributionFocalLoss as Call)(...args())));
  }

  const POLY: Array<[string, () => unknown[]]> = [
    ['poly1 not finite', () => [x6, binaryTargets(6, 3), { poly1: Infinity }]],
    ['poly1 with probabilities', () => [Float32Array.of(0.1, 0.2), Uint8Array.of(1, 0), { poly1: 1, input: 'probabilities' }]],
    ['poly1 with bad targets length', () => [x6, new Uint8Array(5), { poly1: 1 }]],
  ];
  for (const [name, args] of POLY) {
    it(`sigmoidFocalLoss: ${name}`, () => expectSameRejection('sigmoidFocalLoss', args, () => (lib.sigmoidFocalLoss as Call)(...args())));
  }

  it('varifocalLoss: targets out of [0, 1] reject with the single-thread message (checked from the kernels\' range, after the pass)', async () => {
    const n = 70_000;
    const x = makeLogits(n, 3);
    const q = iouTargets(n, 4);
    q[50_000] = 1.25;
    expect(() => lib.varifocalLoss(x, q)).toThrow('varifocalLoss: targets[50000] is 1.25, expected a number in [0, 1] (element 50000)');
    for (const p of [...pools, fallback]) {
      const before = p.memoryInUse;
      await expect(p.varifocalLoss(x, q, { grad: true })).rejects.toThrow('varifocalLoss: targets[50000] is 1.25, expected a number in [0, 1] (element 50000)');
      expect(p.memoryInUse).toBe(before);
    }
  });

  it('distributionFocalLoss: targets outside [0, bins) reject with the single-thread message (from the kernels\' range, after the pass)', async () => {
    const rows = 5_000;
    const x = makeLogits(rows * 17, 7);
    for (const [row, bad] of [[4_321, 16], [17, -0.5], [rows - 1, NaN]] as const) {
      const y = Float32Array.from({ length: rows }, (_, r) => (r * 37) % 1600 / 100);
      y[row] = bad;
      const message = `distributionFocalLoss: targets[${row}] is ${bad}, expected a number in [0, 16) (row ${row})`;
      expect(() => lib.distributionFocalLoss(x, y)).toThrow(message);
      for (const p of [...pools, fallback]) {
        const before = p.memoryInUse;
        await expect(p.distributionFocalLoss(x, y, { grad: true })).rejects.toThrow(message);
        expect(p.memoryInUse).toBe(before);
      }
    }
  });

  it('a range the kernels saw bad but the targets no longer show (changed while a pool call ran) still rejects', () => {
    expect(() => rejectOutside('distributionFocalLoss', 'targets', Float32Array.of(3, 16), 0, 16, false)).toThrow('distributionFocalLoss: targets[1] is 16, expected a number in [0, 16) (row 1)');
    expect(() => rejectOutside('distributionFocalLoss', 'targets', Float32Array.of(3, 15), 0, 16, false)).toThrow(
      'distributionFocalLoss: targets held a value outside [0, 16) during the call, and was changed before it ended',
    );
    expect(() => rejectOutside('varifocalLoss', 'targets', Float32Array.of(0.5), 0, 1, true, 'element')).toThrow(
      'varifocalLoss: targets held a value outside [0, 1] during the call, and was changed before it ended',
    );
  });

  it('createPool: options.extras must be the extras export', async () => {
    await expect(lib.createPool({ threads: 1, extras: {} as never })).rejects.toThrow(
      "createPool: options.extras must be the `extras` export of 'focal-ghm/extras' (`import { extras } from 'focal-ghm/extras'`)",
    );
    await expect(lib.createPool({ threads: 1, extras: { simd: extras.simd, shared: 1 } as never })).rejects.toThrow(TypeError);
  });
});

describe('a pool without extras', () => {
  it('refuses the extras losses and poly1 clearly, threaded or not; runs poly1: 0 and the core losses', async () => {
    const plain = [await lib.createPool({ threads: 2 }), await lib.createPool({ forceFallback: true })];
    try {
      const x = makeLogits(12, 5);
      const t = binaryTargets(12, 6);
      for (const p of plain) {
        expect(p.extras).toBe(false);
        await expect(p.qualityFocalLoss(x, { labels: new Int32Array(4), scores: new Float32Array(4), numClasses: 3 })).rejects.toThrow(
          "pool.qualityFocalLoss: the pool was created without extras; createPool({ extras: threadedExtras }) with `import { threadedExtras } from 'focal-ghm/extras'`",
        );
        await expect(p.varifocalLoss(x, new Float32Array(12))).rejects.toThrow('pool.varifocalLoss: the pool was created without extras; createPool({ extras: threadedExtras })');
        await expect(p.distributionFocalLoss(x, new Float32Array(2), { bins: 5 })).rejects.toThrow('pool.distributionFocalLoss: the pool was created without extras; createPool({ extras: threadedExtras })');
        await expect(p.sigmoidFocalLoss(x, t, { poly1: 1 })).rejects.toThrow(
          'pool.sigmoidFocalLoss: options.poly1 needs the extras kernels: the pool was created without extras; createPool({ extras: threadedExtras })',
        );
        // The call's own checks come first, as on a pool with extras.
        await expect(p.sigmoidFocalLoss(x, t, { poly1: NaN })).rejects.toThrow('sigmoidFocalLoss: options.poly1');
        expectSameResult(await p.sigmoidFocalLoss(x, t, { poly1: 0, grad: true }), lib.sigmoidFocalLoss(x, t, { grad: true }), `poly1 0, ${p.threads} threads`);
      }
    } finally {
      await Promise.all(plain.map((p) => p.close()));
    }
  });

  it('extras without a shared-memory build: the pool runs single-threaded and says why', async () => {
    const p = await lib.createPool({ threads: 2, extras: { simd: extras.simd } });
    try {
      expect(p.threads).toBe(1);
      expect(p.reason).toMatch(/no shared-memory build/);
      expect(p.extras).toBe(true);
      const x = makeLogits(300, 7);
      const q = iouTargets(300, 8);
      expectSameResult(await p.varifocalLoss(x, q, { grad: true }), lib.varifocalLoss(x, q, { grad: true }), 'fallback');
    } finally {
      await p.close();
    }
  });
});

describe('close()', () => {
  it('a pool with extras returns its memory after every call, and rejects calls once closed', async () => {
    const p = await lib.createPool({ threads: 2, extras: threadedExtras });
    const rows = 20_001;
    const x = makeLogits(rows * 4, 9);
    const qt = { labels: sigmoidLabels(rows, 4, 10), scores: scores(rows, 11), numClasses: 4 };
    const before = p.memoryInUse;
    for (let i = 0; i < 5; i++) {
      await p.qualityFocalLoss(x, qt, { grad: true, reduction: i % 2 ? 'none' : 'mean' });
      await p.varifocalLoss(x, iouTargets(x.length, 12), { grad: true });
      await p.sigmoidFocalLoss(x, binaryTargets(x.length, 13), { poly1: 1, grad: true });
      expect(p.memoryInUse).toBe(before);
    }
    const running = p.qualityFocalLoss(x, qt, { grad: true });
    await p.close();
    expect(p.closed).toBe(true);
    await expect(running).rejects.toThrow(/pool\.qualityFocalLoss: the pool (was closed during the call|is closed)/);
    await expect(p.qualityFocalLoss(x, qt)).rejects.toThrow('pool.qualityFocalLoss: the pool is closed (close() was called); create a new one with createPool()');
    await expect(p.distributionFocalLoss(x, new Float32Array(rows))).rejects.toThrow('pool.distributionFocalLoss: the pool is closed');
    await expect(p.sigmoidFocalLoss(x, binaryTargets(x.length, 13), { poly1: 1 })).rejects.toThrow('pool.sigmoidFocalLoss: the pool is closed');
    expect(p.memoryInUse).toBe(before);
    await p.close(); // idempotent
  });

  it('the fallback with extras rejects calls once closed', async () => {
    const p = await lib.createPool({ forceFallback: true, extras: threadedExtras });
    await p.close();
    await expect(p.varifocalLoss(new Float32Array(2), new Float32Array(2))).rejects.toThrow('pool.varifocalLoss: the pool is closed (close() was called)');
  });
});
