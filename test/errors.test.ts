// Every bad input throws the right class — TypeError for a value of the wrong type, RangeError
// for a value of the right type out of range — with a message naming the argument. GHM calls
// that throw leave the EMA state untouched. Calling before init() throws an Error saying so.

import { beforeAll, describe, expect, it, vi } from 'vitest';
import { expectExactlyEqual } from './helpers/golden';
import { binaryTargets, logits } from './helpers/random';
import { bad, expectThrow, type Ctor } from './helpers/throws';
import { loadLib, type Lib } from './support/lib';

let lib: Lib;
beforeAll(async () => {
  lib = await loadLib('simd');
});

const X = Float32Array.of(0.5, -1, 2, 0, 3, -0.25);
const T = Uint8Array.of(1, 0, 0, 1, 0, 1);

describe('sigmoidFocalLoss', () => {
  const f = (...a: unknown[]) => () => (lib.sigmoidFocalLoss as (...args: unknown[]) => unknown)(...a);

  it('logits of the wrong type → TypeError naming logits', () => {
    for (const v of [Float64Array.from(X), Array.from(X), new Int32Array(6), new Uint8Array(6), null, undefined, 'x', new DataView(new ArrayBuffer(24))]) {
      expectThrow(f(v, T), TypeError, /logits/);
    }
  });

  it('targets of the wrong type → TypeError naming targets', () => {
    for (const v of [new Int32Array(6), Float64Array.from(T), Array.from(T), new Uint16Array(6), new Int8Array(6), null, undefined, 3, 'abc', {}]) {
      expectThrow(f(X, v), TypeError, /targets/);
    }
  });

  it('targets of the wrong length → RangeError naming targets', () => {
    expectThrow(f(X, new Uint8Array(5)), RangeError, /targets/);
    expectThrow(f(X, new Float32Array(7)), RangeError, /targets/);
    expectThrow(f(new Float32Array(0), new Uint8Array(1)), RangeError, /targets/);
  });

  it('class-index targets: labels type, numClasses, labels length, label range', () => {
    const x = new Float32Array(12);
    expectThrow(f(x, { labels: new Uint8Array(4), numClasses: 3 }), TypeError, /targets\.labels/);
    expectThrow(f(x, { labels: [0, 1, 2, 3], numClasses: 3 }), TypeError, /targets\.labels/);
    expectThrow(f(x, { labels: new Int32Array(4), numClasses: '3' }), TypeError, /numClasses/);
    expectThrow(f(x, { labels: new Int32Array(4) }), TypeError, /numClasses/);
    expectThrow(f(x, { labels: new Int32Array(4), numClasses: 0 }), RangeError, /numClasses/);
    expectThrow(f(x, { labels: new Int32Array(4), numClasses: 1.5 }), RangeError, /numClasses/);
    expectThrow(f(x, { labels: new Int32Array(4), numClasses: NaN }), RangeError, /numClasses/);
    expectThrow(f(x, { labels: new Int32Array(2), numClasses: 5 }), RangeError, /numClasses/); // 5 ∤ 12
    expectThrow(f(x, { labels: new Int32Array(3), numClasses: 3 }), RangeError, /targets\.labels/);
    expectThrow(f(x, { labels: new Int32Array(5), numClasses: 3 }), RangeError, /targets\.labels/);
    // [0, C] is allowed (C = background); -1 and C + 1 are not.
    expect(() => f(x, { labels: Int32Array.of(0, 1, 2, 3), numClasses: 3 })()).not.toThrow();
    expectThrow(f(x, { labels: Int32Array.of(0, 1, -1, 3), numClasses: 3 }), RangeError, /targets\.labels\[2\]/);
    expectThrow(f(x, { labels: Int32Array.of(0, 4, 1, 3), numClasses: 3 }), RangeError, /targets\.labels\[1\]/);
    expectThrow(f(x, { labels: Int32Array.of(0, -100, 1, 3), numClasses: 3 }), RangeError, /targets\.labels\[1\]/);
  });

  it('weight: wrong type → TypeError, wrong length → RangeError, naming options.weight', () => {
    expectThrow(f(X, T, { weight: Float64Array.from(X) }), TypeError, /options\.weight/);
    expectThrow(f(X, T, { weight: [1, 1, 1, 1, 1, 1] }), TypeError, /options\.weight/);
    expectThrow(f(X, T, { weight: new Float32Array(5) }), RangeError, /options\.weight/);
    expectThrow(f(X, T, { weight: new Float32Array(7) }), RangeError, /options\.weight/);
    // Per-row weights only with class-index targets.
    expectThrow(f(X, T, { weight: new Float32Array(2) }), RangeError, /options\.weight/);
    const lt = { labels: Int32Array.of(0, 2), numClasses: 3 };
    expect(() => f(X, lt, { weight: new Float32Array(2) })()).not.toThrow();
    expectThrow(f(X, lt, { weight: new Float32Array(3) }), RangeError, /options\.weight/);
  });

  it('alpha: outside [0, 1] or NaN → RangeError; wrong type → TypeError', () => {
    for (const a of [-0.1, 1.5, NaN, Infinity, -Infinity, 1 + 1e-12]) expectThrow(f(X, T, { alpha: a }), RangeError, /options\.alpha/);
    for (const a of ['0.5', 'AUTO', 'Auto', true, {}, [0.5], Float32Array.of(0.5)]) expectThrow(f(X, T, { alpha: a }), TypeError, /options\.alpha/);
    for (const a of [0, 1, 0.5, null, 'auto']) expect(() => f(X, T, { alpha: a })()).not.toThrow();
  });

  it('gamma: < 0, NaN, ±Infinity → RangeError; string → TypeError', () => {
    for (const g of [-1, -1e-9, NaN, Infinity, -Infinity]) expectThrow(f(X, T, { gamma: g }), RangeError, /options\.gamma/);
    for (const g of ['2', true, {}, [2]]) expectThrow(f(X, T, { gamma: g }), TypeError, /options\.gamma/);
  });

  it("reduction: unknown string → RangeError; non-string → TypeError", () => {
    for (const r of ['avg', 'MEAN', 'elementwise', '']) expectThrow(f(X, T, { reduction: r }), RangeError, /options\.reduction/);
    for (const r of [0, true, {}, ['mean']]) expectThrow(f(X, T, { reduction: r }), TypeError, /options\.reduction/);
  });

  it("avgFactor: ≤ 0, NaN, Infinity → RangeError; with 'sum' → RangeError; wrong type → TypeError", () => {
    for (const a of [0, -1, -0, NaN, Infinity]) expectThrow(f(X, T, { avgFactor: a }), RangeError, /options\.avgFactor/);
    expectThrow(f(X, T, { avgFactor: 2, reduction: 'sum' }), RangeError, /avgFactor/);
    expectThrow(f(X, T, { avgFactor: '2' }), TypeError, /options\.avgFactor/);
    expect(() => f(X, T, { avgFactor: 2, reduction: 'none' })()).not.toThrow();
  });

  it('lossWeight: non-finite → RangeError, wrong type → TypeError; grad: not boolean → TypeError', () => {
    for (const v of [NaN, Infinity]) expectThrow(f(X, T, { lossWeight: v }), RangeError, /options\.lossWeight/);
    expectThrow(f(X, T, { lossWeight: '1' }), TypeError, /options\.lossWeight/);
    for (const v of [1, 'yes', 'true', {}]) expectThrow(f(X, T, { grad: v }), TypeError, /options\.grad/);
  });

  it('unknown option keys and non-object options → TypeError naming them', () => {
    expectThrow(f(X, T, { gama: 2 }), TypeError, /gama/);
    expectThrow(f(X, T, { avg_factor: 2 }), TypeError, /avg_factor/);
    expectThrow(f(X, T, { ignoreIndex: -100 }), TypeError, /ignoreIndex/);
    expectThrow(f(X, T, { numClasses: 3 }), TypeError, /numClasses/);
    for (const o of [3, 'mean', [], null, true]) expectThrow(f(X, T, o), TypeError, /options/);
  });

  it('soft targets outside [0, 1] or NaN → RangeError naming targets', () => {
    for (const v of [1.5, -0.1, NaN, Infinity, -Infinity, 1 + 2 ** -23]) {
      const t = Float32Array.of(0, 0.5, 1, 0.25, v, 0);
      expectThrow(f(X, t), RangeError, /targets/);
    }
    // Also when the bad value is in a later chunk of a large call.
    const n = 100_000;
    const t = new Float32Array(n).fill(0.5);
    t[n - 1] = NaN;
    expectThrow(f(new Float32Array(n), t), RangeError, /targets/);
    t[n - 1] = 2;
    expectThrow(f(new Float32Array(n), t), RangeError, /targets/);
  });

  it('binary targets other than 0 and 1 → RangeError naming targets', () => {
    for (const v of [2, 255, 17]) expectThrow(f(X, Uint8Array.of(0, 1, 0, v, 1, 0)), RangeError, /targets/);
    const n = 70_000;
    const t = new Uint8Array(n);
    t[n - 2] = 2;
    expectThrow(f(new Float32Array(n), t), RangeError, /targets/);
  });
});

describe('softmaxFocalLoss', () => {
  const f = (...a: unknown[]) => () => (lib.softmaxFocalLoss as (...args: unknown[]) => unknown)(...a);
  const L = Int32Array.of(0, 2);

  it('logits and labels of the wrong type → TypeError naming them', () => {
    expectThrow(f(Float64Array.from(X), L, { numClasses: 3 }), TypeError, /logits/);
    expectThrow(f(Array.from(X), L, { numClasses: 3 }), TypeError, /logits/);
    expectThrow(f(X, Uint8Array.of(0, 2), { numClasses: 3 }), TypeError, /labels/);
    expectThrow(f(X, [0, 2], { numClasses: 3 }), TypeError, /labels/);
    expectThrow(f(X, Float64Array.of(0, 2), { numClasses: 3 }), TypeError, /labels/);
    // A Float32Array is class-probability rows [N, C] (docs/SPEC.md §2): float labels say so.
    expectThrow(f(X, Float32Array.of(0, 2), { numClasses: 3 }), RangeError, /class-probability rows.*class labels are an Int32Array/);
  });

  it('numClasses: missing, wrong type → TypeError; ≤ 0, fractional, not dividing → RangeError', () => {
    expectThrow(f(X, L), TypeError, /numClasses/);
    expectThrow(f(X, L, {}), TypeError, /options\.numClasses/);
    expectThrow(f(X, L, { numClasses: '3' }), TypeError, /options\.numClasses/);
    for (const c of [0, -3, 1.5, NaN]) expectThrow(f(X, L, { numClasses: c }), RangeError, /options\.numClasses/);
    expectThrow(f(X, L, { numClasses: 4 }), RangeError, /numClasses/);
  });

  it('labels: wrong length → RangeError; outside [0, C) and not ignoreIndex → RangeError', () => {
    expectThrow(f(X, Int32Array.of(0), { numClasses: 3 }), RangeError, /labels/);
    expectThrow(f(X, Int32Array.of(0, 1, 2), { numClasses: 3 }), RangeError, /labels/);
    expectThrow(f(X, Int32Array.of(0, 3), { numClasses: 3 }), RangeError, /labels\[1\]/);
    expectThrow(f(X, Int32Array.of(-1, 0), { numClasses: 3 }), RangeError, /labels\[0\]/);
    expectThrow(f(X, Int32Array.of(0, -100), { numClasses: 3, ignoreIndex: 255 }), RangeError, /labels\[1\]/);
    expect(() => f(X, Int32Array.of(0, -100), { numClasses: 3 })()).not.toThrow();
    expect(() => f(X, Int32Array.of(255, 1), { numClasses: 3, ignoreIndex: 255 })()).not.toThrow();
  });

  it('ignoreIndex: not an integer → RangeError; wrong type → TypeError', () => {
    expectThrow(f(X, L, { numClasses: 3, ignoreIndex: 1.5 }), RangeError, /options\.ignoreIndex/);
    expectThrow(f(X, L, { numClasses: 3, ignoreIndex: NaN }), RangeError, /options\.ignoreIndex/);
    expectThrow(f(X, L, { numClasses: 3, ignoreIndex: '-100' }), TypeError, /options\.ignoreIndex/);
  });

  it('alpha: number outside [0, 1] / NaN → RangeError; vector of wrong length or value → RangeError; wrong type → TypeError', () => {
    for (const a of [-0.5, 2, NaN]) expectThrow(f(X, L, { numClasses: 3, alpha: a }), RangeError, /options\.alpha/);
    expectThrow(f(X, L, { numClasses: 3, alpha: Float32Array.of(0.1, 0.2) }), RangeError, /options\.alpha/);
    expectThrow(f(X, L, { numClasses: 3, alpha: Float32Array.of(0.1, 1.2, 0.3) }), RangeError, /options\.alpha\[1\]/);
    expectThrow(f(X, L, { numClasses: 3, alpha: Float32Array.of(0.1, 0.2, NaN) }), RangeError, /options\.alpha\[2\]/);
    for (const a of ['0.25', 'auto', Float64Array.of(0.1, 0.2, 0.3), [0.1, 0.2, 0.3], true]) {
      expectThrow(f(X, L, { numClasses: 3, alpha: a }), TypeError, /options\.alpha/);
    }
  });

  it('gamma, reduction, lossWeight, grad, unknown keys', () => {
    for (const g of [-1, NaN, Infinity]) expectThrow(f(X, L, { numClasses: 3, gamma: g }), RangeError, /options\.gamma/);
    expectThrow(f(X, L, { numClasses: 3, gamma: '2' }), TypeError, /options\.gamma/);
    expectThrow(f(X, L, { numClasses: 3, reduction: 'avg' }), RangeError, /options\.reduction/);
    expectThrow(f(X, L, { numClasses: 3, reduction: 1 }), TypeError, /options\.reduction/);
    expectThrow(f(X, L, { numClasses: 3, lossWeight: NaN }), RangeError, /options\.lossWeight/);
    expectThrow(f(X, L, { numClasses: 3, grad: 'yes' }), TypeError, /options\.grad/);
    // avgFactor and weight are options since issue #20: wrong types name them.
    expectThrow(f(X, L, { numClasses: 3, avgFactor: '2' }), TypeError, /options\.avgFactor/);
    expectThrow(f(X, L, { numClasses: 3, weight: new Float64Array(6) }), TypeError, /options\.weight must be a Float32Array/);
    expectThrow(f(X, L, { numClasses: 3, ignore_index: 1 }), TypeError, /ignore_index/);
    expectThrow(f(X, L, 3), TypeError, /options/);
  });
});

describe('GHMC / GHMR options', () => {
  const C = (o: unknown) => () => new lib.GHMC(bad(o));
  const R = (o: unknown) => () => new lib.GHMR(bad(o));

  it('bins: 0, 1.5, 2000, -1, NaN → RangeError; wrong type → TypeError', () => {
    for (const b of [0, 1.5, 2000, 1025, -1, NaN, Infinity]) {
      expectThrow(C({ bins: b }), RangeError, /options\.bins/);
      expectThrow(R({ bins: b }), RangeError, /options\.bins/);
    }
    expectThrow(C({ bins: '10' }), TypeError, /options\.bins/);
    expect(() => C({ bins: 1024 })()).not.toThrow();
    expect(() => C({ bins: 1 })()).not.toThrow();
  });

  it('momentum: -0.1, 1, NaN, 1.5 → RangeError; wrong type → TypeError', () => {
    for (const m of [-0.1, 1, NaN, 1.5, Infinity]) {
      expectThrow(C({ momentum: m }), RangeError, /options\.momentum/);
      expectThrow(R({ momentum: m }), RangeError, /options\.momentum/);
    }
    expectThrow(C({ momentum: '0.5' }), TypeError, /options\.momentum/);
    expect(() => C({ momentum: 0.999999 })()).not.toThrow();
  });

  it('mu: 0, -1, NaN, Infinity → RangeError; wrong type → TypeError', () => {
    for (const mu of [0, -1, NaN, Infinity]) expectThrow(R({ mu }), RangeError, /options\.mu/);
    expectThrow(R({ mu: '0.02' }), TypeError, /options\.mu/);
  });

  it('lossWeight, unknown keys, non-object options', () => {
    expectThrow(C({ lossWeight: NaN }), RangeError, /options\.lossWeight/);
    expectThrow(C({ mu: 0.02 }), TypeError, /mu/);
    expectThrow(C({ bin: 10 }), TypeError, /bin/);
    expectThrow(R({ gamma: 2 }), TypeError, /gamma/);
    expectThrow(C(5), TypeError, /options/);
    expectThrow(R('x'), TypeError, /options/);
  });
});

describe('GHM calls with bad inputs throw and leave the EMA state unchanged', () => {
  /** A GHMC that has seen one good batch, so that its state is non-zero. */
  function warmGhmc() {
    const g = new lib.GHMC({ bins: 10, momentum: 0.75 });
    g.forward(logits(500, 1), binaryTargets(500, 2));
    expect(Array.from(g.accSum).some((v) => v > 0)).toBe(true);
    return g;
  }

  function unchanged(g: { accSum: Float64Array }, call: () => unknown, cls: Ctor, re: RegExp): void {
    const before = g.accSum;
    expectThrow(call, cls, re);
    expectExactlyEqual(g.accSum, before, `accSum after ${re}`);
  }

  it('GHMC.forward / collect / gradient', () => {
    const g = warmGhmc();
    const x = logits(100, 3);
    const t = binaryTargets(100, 4);
    const fw = (...a: unknown[]) => () => (g.forward as (...args: unknown[]) => unknown).apply(g, a);
    unchanged(g, fw(Float64Array.from(x), t), TypeError, /logits/);
    unchanged(g, fw(x, new Int32Array(100)), TypeError, /targets/);
    unchanged(g, fw(x, new Uint8Array(99)), RangeError, /targets/);
    unchanged(g, fw(x, t, new Float32Array(99)), RangeError, /labelWeight/);
    unchanged(g, fw(x, t, Float64Array.from(new Float32Array(100))), TypeError, /labelWeight/);
    // Found only after the statistics pass over the data: the state must still be untouched.
    const tb = t.slice();
    tb[99] = 3;
    unchanged(g, fw(x, tb), RangeError, /targets/);
    const ts = new Float32Array(100).fill(0.5);
    ts[50] = NaN;
    unchanged(g, fw(x, ts), RangeError, /targets/);
    ts[50] = 1.25;
    unchanged(g, fw(x, ts, undefined, { grad: true }), RangeError, /targets/);
    unchanged(g, fw(x, { labels: Int32Array.of(0, 1, 25, 26), numClasses: 25 }), RangeError, /targets\.labels\[3\]/);
    unchanged(g, fw(x, { labels: new Int32Array(4), numClasses: 3 }), RangeError, /numClasses/);
    unchanged(g, fw(x, t, undefined, { grad: 'yes' }), TypeError, /options\.grad/);
    unchanged(g, fw(x, t, undefined, { momentum: 0.5 }), TypeError, /momentum/);
    unchanged(g, () => g.collect(x, tb), RangeError, /targets/);
    unchanged(g, () => g.step(bad({ counts: [] })), TypeError, /stats/);
    unchanged(g, () => g.step(new lib.GHMStats(11)), RangeError, /stats/);
    const step = { loss: 0, factors: new Float32Array(5) };
    unchanged(g, () => g.gradient(step, x, t), RangeError, /factors/);
  });

  it('GHMR.forward', () => {
    const g = new lib.GHMR({ bins: 10, momentum: 0.75 });
    const p = logits(200, 5);
    g.forward(p, p.map((v) => v * 0.9));
    const fw = (...a: unknown[]) => () => (g.forward as (...args: unknown[]) => unknown).apply(g, a);
    unchanged(g, fw(Float64Array.from(p), p), TypeError, /pred/);
    unchanged(g, fw(p, Array.from(p)), TypeError, /target/);
    unchanged(g, fw(p, new Float32Array(199)), RangeError, /target/);
    unchanged(g, fw(p, p, new Float32Array(7)), RangeError, /labelWeight/);
    unchanged(g, fw(p, p, undefined, { grad: 0 }), TypeError, /options\.grad/);
  });

  it('loadState: wrong kind, bins, length, negative or non-finite values, not an object', () => {
    const g = warmGhmc();
    const good = g.state();
    const load = (s: unknown) => () => g.loadState(bad(s));
    unchanged(g, load({ ...good, kind: 'ghmr' }), RangeError, /state\.kind/);
    unchanged(g, load({ ...good, kind: undefined }), RangeError, /state\.kind/);
    unchanged(g, load({ ...good, bins: 11 }), RangeError, /state\.bins/);
    unchanged(g, load({ ...good, accSum: good.accSum.slice(1) }), RangeError, /state\.accSum/);
    unchanged(g, load({ ...good, accSum: [...good.accSum, 1] }), RangeError, /state\.accSum/);
    unchanged(g, load({ ...good, accSum: 'x' }), TypeError, /state\.accSum/);
    for (const v of [-1, -1e-300, NaN, Infinity]) {
      const accSum = good.accSum.slice();
      accSum[3] = v;
      unchanged(g, load({ ...good, accSum }), RangeError, /state\.accSum\[3\]/);
    }
    // Not numbers: wrong types (a sparse array's hole reads as undefined).
    for (const v of ['1', null, undefined]) {
      const accSum = good.accSum.slice();
      accSum[3] = v as never;
      unchanged(g, load({ ...good, accSum }), TypeError, /state\.accSum\[3\]/);
    }
    unchanged(g, load(null), TypeError, /state/);
    unchanged(g, load('{"kind":"ghmc"}'), TypeError, /state/);
    const r = new lib.GHMR({ bins: 10 });
    unchanged(r, () => r.loadState(good), RangeError, /state\.kind/);
    // A correct state still loads.
    g.loadState(JSON.parse(JSON.stringify(good)));
    expectExactlyEqual(g.accSum, good.accSum);
  });

  it('GHMStats: add with other bins or a non-GHMStats, fromJSON with short arrays', () => {
    const s = new lib.GHMStats(4);
    expectThrow(() => s.add(new lib.GHMStats(5)), RangeError, /bins/);
    expectThrow(() => s.add(bad({ bins: 4, counts: [], sums: [] })), TypeError, /other/);
    expectThrow(() => lib.GHMStats.fromJSON({ bins: 4, counts: [1, 2], sums: [0, 0, 0, 0], nanCount: 0, nanSum: 0, weightSum: 0 }), RangeError, /counts/);
    expectThrow(() => new lib.GHMStats(0), RangeError, /bins/);
  });
});

describe('use before init()', () => {
  it('a fresh module instance without init() throws an Error mentioning init()', async () => {
    vi.resetModules();
    const fresh = (await import('../ts/index')) as Lib;
    expect(fresh.isInitialized()).toBe(false);
    const calls: Array<() => unknown> = [
      () => fresh.sigmoidFocalLoss(X, T),
      () => fresh.softmaxFocalLoss(X, Int32Array.of(0, 1), { numClasses: 3 }),
      () => new fresh.GHMC().forward(X, T),
      () => new fresh.GHMR().forward(X, X),
      () => new fresh.GHMC().collect(X, T),
    ];
    for (const c of calls) {
      let err: unknown;
      try {
        c();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).constructor).toBe(Error);
      expect((err as Error).message).toMatch(/init\(\)/);
    }
    // After init() the same instance works.
    await fresh.init({ simd: false });
    expect(typeof fresh.sigmoidFocalLoss(X, T).loss).toBe('number');
  });
});
