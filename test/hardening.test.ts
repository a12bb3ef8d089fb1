// What an adversarial caller found (issue #17, shared/repro 01, 02, 03, 07, 11, 14, 15, 17):
// nothing a call does may brick the heap, write into another batch, free memory a view still
// shows, or pass silently; each case here failed before its fix.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadLib, type Lib } from './support/lib';

let lib: Lib;
let allocated: () => number;

beforeAll(async () => {
  lib = await loadLib('simd');
  const ws = await import('../ts/workspace');
  allocated = () => ws.workspace('hardening.test').heap.allocated;
});

const X = Float32Array.from({ length: 40_000 }, (_, i) => Math.sin(i) * 4);
const T = Uint8Array.from({ length: 40_000 }, (_, i) => (i % 7 === 0 ? 1 : 0));

describe('allocation (01)', () => {
  it('a batch too large for wasm memory is a RangeError naming options.length, and the heap is as before', () => {
    const ref = lib.sigmoidFocalLoss(X, T).loss; // (reserves the call scratch first)
    const before = allocated();
    // 2 GiB of logits + 0.5 GiB of targets + 2 GiB of gradient: past wasm32's 4 GiB at the last.
    expect(() => lib.createBatch({ length: 2 ** 29, grad: true })).toThrow(RangeError);
    expect(() => lib.createBatch({ length: 2 ** 29, grad: true })).toThrow(/options\.length/);
    expect(() => lib.createBatch({ length: 2 ** 30 })).toThrow(/options\.length 1073741824 does not fit/);
    expect(allocated()).toBe(before);
    expect(lib.sigmoidFocalLoss(X, T).loss).toBe(ref);
    const b = lib.createBatch({ length: 10, grad: true });
    expect(b.logits.length).toBe(10);
    b.free();
    expect(allocated()).toBe(before);
  });
});

describe('batch views', () => {
  it('a kept view of a freed batch is refused, whatever was allocated since (02)', () => {
    const a = lib.createBatch({ length: 1000, grad: true });
    const staleGrad = a.grad;
    const staleLogits = a.logits.subarray(10, 20);
    a.free();
    const b = lib.createBatch({ length: 4000 }); // first fit: a's memory
    b.logits.fill(3);
    expect(() => lib.sigmoidFocalLoss(new Float32Array(1000), new Uint8Array(1000), { out: { grad: staleGrad } })).toThrow(/freed batch/);
    expect(() => lib.sigmoidFocalLoss(staleLogits, new Uint8Array(10))).toThrow(/freed batch/);
    expect(b.logits.every((v) => v === 3)).toBe(true);
    b.free();
  });

  it('a view of wasm memory that no batch handed out is refused', () => {
    const b = lib.createBatch({ length: 100 });
    const foreign = new Float32Array(b.logits.buffer, b.logits.byteOffset, 100);
    expect(() => lib.sigmoidFocalLoss(foreign, new Uint8Array(100))).toThrow(/no batch handed out/);
    b.free();
  });

  it("keeping only a batch's views keeps the batch: the GC safety net frees nothing they show (03)", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const make = () => {
      const b = lib.createBatch({ length: 1000 });
      b.logits.fill(2);
      (b.targets as Uint8Array).fill(1);
      return { logits: b.logits, targets: b.targets as Uint8Array };
    };
    const { logits, targets } = make();
    const before = lib.sigmoidFocalLoss(logits, targets).loss;
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    const other = lib.createBatch({ length: 1000 });
    other.logits.fill(-9);
    expect(logits[0]).toBe(2);
    expect(lib.sigmoidFocalLoss(logits, targets).loss).toBe(before);
    other.free();
  });

  it('a returned gradient is usable when the call grew wasm memory (11)', () => {
    const n = 100_000;
    const b = lib.createBatch({ length: n, grad: true });
    // Fresh memory past the batch: the call's scratch then has to grow the memory.
    const r = lib.sigmoidFocalLoss(new Float32Array(n).fill(1), new Uint8Array(n), { out: { grad: b.grad } });
    expect(r.grad!.length).toBe(n);
    expect(r.grad![0]).toBeCloseTo(lib.sigmoidFocalLoss(Float32Array.of(1), Uint8Array.of(0), { grad: true }).grad![0]! / n, 9);
    b.free();
  });

  it('a batch view detached by growth is a TypeError saying to read it again', async () => {
    const own = await loadLib('simd'); // a memory of its own, not grown by the other tests
    const b = own.createBatch({ length: 16 });
    const kept = b.logits;
    const big = own.createBatch({ length: 1 << 24 }); // grows the memory: `kept` is detached
    expect(kept.length).toBe(0);
    expect(() => own.sigmoidFocalLoss(kept, new Uint8Array(16))).toThrow(/logits is a batch view taken before wasm memory grew/);
    expect(own.sigmoidFocalLoss(b.logits, new Uint8Array(16)).loss).toBeGreaterThan(0);
    big.free();
    b.free();
  });
});

describe('outputs that alias (07)', () => {
  it('out.loss and out.grad sharing memory, or an output overlapping an input, are RangeErrors', () => {
    const o = new Float32Array(X.length);
    expect(() => lib.sigmoidFocalLoss(X, T, { reduction: 'none', out: { loss: o, grad: o } })).toThrow(/options\.out\.loss shares memory with options\.out\.grad/);
    const buf = new Float32Array(X.length + 4);
    buf.set(X);
    expect(() => lib.sigmoidFocalLoss(buf.subarray(0, X.length), T, { out: { grad: buf.subarray(4) } })).toThrow(/options\.out\.grad shares memory with logits/);
    const b = lib.createBatch({ length: X.length + 4 });
    const L = b.logits;
    expect(() => lib.sigmoidFocalLoss(L.subarray(0, X.length), T, { out: { grad: L.subarray(4) } })).toThrow(RangeError);
    b.free();
    // Disjoint views of one buffer are fine.
    const two = new Float32Array(2 * X.length);
    two.set(X);
    const r = lib.sigmoidFocalLoss(two.subarray(0, X.length), T, { out: { grad: two.subarray(X.length) } });
    expect(r.loss).toBe(lib.sigmoidFocalLoss(X, T).loss);
  });
});

describe('arrays the engine sees differently (15, 17)', () => {
  it('a typed array whose length lies is a TypeError, not a read of stale scratch', () => {
    class F extends Float32Array {
      override get length() {
        return 8;
      }
    }
    expect(() => lib.sigmoidFocalLoss(new F(4), new Uint8Array(8), { reduction: 'none' })).toThrow(/logits reports length 8, but holds 4/);
    const t = new Uint8Array(4);
    Object.defineProperty(t, 'length', { value: 8 });
    expect(() => lib.sigmoidFocalLoss(new Float32Array(8), t)).toThrow(/targets reports length 8/);
  });

  it('an object that only inherits from Float32Array.prototype, and a detached array, are TypeErrors naming the argument', () => {
    expect(() => lib.sigmoidFocalLoss(Object.create(Float32Array.prototype), new Uint8Array(0))).toThrow(/logits is not a real Float32Array/);
    const x = new Float32Array(4);
    structuredClone(x.buffer, { transfer: [x.buffer] });
    expect(() => lib.sigmoidFocalLoss(x, new Uint8Array(0))).toThrow(/logits's ArrayBuffer is detached/);
    expect(() => lib.sigmoidFocalLoss(new Float32Array(0), new Uint8Array(0), { out: null as never })).toThrow(/options\.out must be an object, got null/);
  });
});

describe('init with a module that is not ours (14)', () => {
  it('is refused clearly, and init can be called again', async () => {
    vi.resetModules();
    const fresh = (await import('../ts/index')) as Lib;
    // (module (func (export "f")))
    const other = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 4, 1, 2, 0, 11]);
    await expect(fresh.init({ bytes: other })).rejects.toThrow(/not a focal-ghm kernel build/);
    expect(fresh.isInitialized()).toBe(false);
    await fresh.init();
    expect(fresh.sigmoidFocalLoss(Float32Array.of(1), Uint8Array.of(1)).loss).toBeGreaterThan(0);
  });
});

describe('a GHM forward that fails after its statistics pass', () => {
  // The passes after the EMA step allocate (the gradient, 'none' terms) and can fail; the state
  // must then be as before the call, as the pool's calls already guarantee (04).
  /** Makes a private pass of `o` throw, as a failed allocation would. */
  const breakPass = (o: object, name: string) =>
    void vi.spyOn(o as Record<string, () => unknown>, name).mockImplementation(() => {
      throw new RangeError('out of memory');
    });

  it('leaves the EMA state as it was (GHM-C and GHM-R, gradient and terms)', () => {
    const cases: [string, () => { forward: (o: object) => unknown; state: () => unknown; fail: () => void }][] = [
      ['GHMC grad', () => {
        const g = new lib.GHMC({ momentum: 0.75 });
        return { forward: (o) => g.forward(X, T, undefined, o), state: () => g.state(), fail: () => breakPass(g, 'gradInputs') };
      }],
      ['GHMC none', () => {
        const g = new lib.GHMC({ momentum: 0.75 });
        return { forward: (o) => g.forward(X, T, undefined, o), state: () => g.state(), fail: () => breakPass(g, 'terms') };
      }],
      ['GHMR grad', () => {
        const g = new lib.GHMR({ momentum: 0.75 });
        return { forward: (o) => g.forward(X, X.map((v) => v / 2), undefined, o), state: () => g.state(), fail: () => breakPass(g, 'gradInputs') };
      }],
    ];
    for (const [what, make] of cases) {
      const g = make();
      const opts = what.endsWith('none') ? { reduction: 'none' } : { grad: true };
      g.forward(opts); // a first step: the state is not all zeros
      const before = g.state();
      g.fail();
      expect(() => g.forward(opts), what).toThrow('out of memory');
      expect(g.state(), what).toEqual(before);
    }
  });
});

describe('GHM state and statistics from outside (05, 06, 15, 18)', () => {
  const z = Array(9).fill(0);
  const json = (o: object) => ({ bins: 10, counts: [5, ...z], sums: [1, ...z], nanCount: 0, nanSum: 0, weightSum: 0, ...o });

  it('loadState refuses a sparse accSum, another momentum, and leaves the state as it was', () => {
    const g = new lib.GHMC({ momentum: 0.75 });
    g.forward(X, T);
    const before = g.state();
    expect(() => g.loadState({ kind: 'ghmc', bins: 10, momentum: 0.75, accSum: new Array(10) })).toThrow(/state\.accSum\[0\] must be a number, got undefined/);
    expect(() => g.loadState({ kind: 'ghmc', bins: 10, momentum: 0.9, accSum: Array(10).fill(1) })).toThrow(/state\.momentum is 0\.9, but this GHMC has momentum 0\.75/);
    expect(() => g.loadState({ kind: 'ghmc', bins: 10, momentum: 0.75, accSum: [Infinity, ...z] })).toThrow(RangeError);
    expect(() => g.loadState({ ...before, extra: 1 } as never)).toThrow(/unknown key in state: 'extra'/);
    expect(() => g.loadState(null as never)).toThrow(/state must be an object, got null/);
    expect(g.state()).toEqual(before);
    const h = new lib.GHMC({ momentum: 0.75 });
    h.loadState(before);
    expect(h.state()).toEqual(before);
  });

  it('GHMStats.fromJSON takes only whole counts and finite sums ≥ 0, so a step keeps the state loadable', () => {
    expect(() => lib.GHMStats.fromJSON(json({ counts: [Infinity, ...z] }))).toThrow(/json\.counts\[0\] must be a finite whole number ≥ 0, got Infinity/);
    expect(() => lib.GHMStats.fromJSON(json({ counts: [5, -3, ...z.slice(1)] }))).toThrow(/json\.counts\[1\]/);
    expect(() => lib.GHMStats.fromJSON(json({ counts: [0.5, ...z] }))).toThrow(/whole number/);
    expect(() => lib.GHMStats.fromJSON(json({ nanCount: '0' }))).toThrow(/json\.nanCount must be a number, got "0"/);
    expect(() => lib.GHMStats.fromJSON(json({ sums: new Array(10) }))).toThrow(/json\.sums\[0\] must be a number, got undefined/);
    expect(() => lib.GHMStats.fromJSON(null as never)).toThrow(/json must be an object, got null/);
    // JSON's NaN (null) is a nanSum of NaN, as toJSON writes it.
    expect(lib.GHMStats.fromJSON(json({ nanCount: 1, nanSum: null })).nanSum).toBeNaN();
    const g = new lib.GHMC({ momentum: 0.75 });
    const s = g.collect(X, T);
    const back = lib.GHMStats.fromJSON(JSON.parse(JSON.stringify(s)));
    expect(g.step(back).loss).toBe(new lib.GHMC({ momentum: 0.75 }).step(s).loss);
    new lib.GHMC({ momentum: 0.75 }).loadState(g.state());
  });

  it('gradient(step) names a step that is not one', () => {
    const g = new lib.GHMC();
    expect(() => g.gradient(null as never, X, T)).toThrow(/GHMC\.gradient: step must be what step\(\) returned/);
    expect(() => new lib.GHMR().gradient({ loss: 0, factors: new Float32Array(3) }, X, X)).toThrow(/GHMR\.gradient: step\.factors has length 3, expected 12/);
  });
});

describe('loose validation (12, 15, 18)', () => {
  const pieces = () => [{ logits: Float32Array.of(0.5, -1, 2), targets: Uint8Array.of(1, 0, 0) }];

  it('scoreStream checks its spec and its source like every other entry point', async () => {
    await expect(lib.scoreStream(pieces(), { loss: 'sigmoidFocal', option: { gamma: 0 } } as never)).rejects.toThrow(/unknown key in spec: 'option'/);
    await expect(lib.scoreStream(pieces(), { loss: 'sigmoidFocal', onprogress: () => {} } as never)).rejects.toThrow(/unknown key in spec: 'onprogress'/);
    await expect(lib.scoreStream(pieces(), { loss: new lib.GHMC(), options: { gamma: 5 } } as never)).rejects.toThrow(/spec\.options is for 'sigmoidFocal'/);
    await expect(lib.scoreStream(null as never, { loss: 'sigmoidFocal' })).rejects.toThrow(/source must be an iterable/);
    await expect(lib.scoreStream(42 as never, { loss: 'sigmoidFocal' })).rejects.toThrow(/source must be an iterable/);
    await expect(lib.scoreStream(pieces(), null as never)).rejects.toThrow(/spec must be an object, got null/);
    expect((await lib.scoreStream(pieces(), { loss: 'sigmoidFocal', options: { gamma: 0 } })).loss).toBeGreaterThan(0);
  });

  it('class-index targets with another key, createBatch with a non-boolean grad or null targets: refused', () => {
    expect(() => lib.sigmoidFocalLoss(new Float32Array(4), { labels: Int32Array.of(0, 2), numClasses: 2, ignore_index: 2 } as never)).toThrow(/unknown key in targets: 'ignore_index'/);
    // ignoreIndex is a key since issue #20, and may not name a class or the background.
    expect(() => lib.sigmoidFocalLoss(new Float32Array(4), { labels: Int32Array.of(0, 2), numClasses: 2, ignoreIndex: 2 })).toThrow(/targets.ignoreIndex is 2, a class or the background label/);
    expect(() => lib.createBatch({ length: 4, grad: 'yes' as never })).toThrow(/options\.grad must be a boolean/);
    expect(() => lib.createBatch({ length: 4, targets: null as never })).toThrow(/options\.targets must be 'u8', 'f32' or \{ numClasses \}, got null/);
    expect(() => lib.createBatch({ length: 4, targets: { numClasses: 2, x: 1 } as never })).toThrow(/unknown key in options\.targets: 'x'/);
  });
});

describe('γ (09)', () => {
  it('every accepted γ is within docs/SPEC.md §5 (the largest, 32, on a dense scan), and larger ones are RangeErrors', () => {
    const xs: number[] = [];
    const ts: number[] = [];
    for (const t of [0, 1, Math.fround(0.999), Math.fround(1e-3), Math.fround(0.3)]) for (let x = -40; x <= 40; x += 0.0173) xs.push(x), ts.push(t);
    const x = Float32Array.from(xs);
    const t = Float32Array.from(ts);
    const gamma = 32;
    const r = lib.sigmoidFocalLoss(x, t, { gamma, alpha: null, reduction: 'none', grad: true });
    for (let i = 0; i < x.length; i++) {
      const [xi, ti] = [x[i]!, t[i]!];
      const p = 1 / (1 + Math.exp(-xi));
      const bce = Math.max(xi, 0) - xi * ti + Math.log1p(Math.exp(-Math.abs(xi)));
      const pt = (1 - p) * ti + p * (1 - ti);
      const loss = pt ** gamma * bce;
      const grad = gamma * pt ** (gamma - 1) * p * (1 - p) * (1 - 2 * ti) * bce + pt ** gamma * (p - ti);
      expect(Math.abs(r.loss[i]! - loss), `loss x=${xi} t=${ti}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(loss)));
      expect(Math.abs(r.grad[i]! - grad), `grad x=${xi} t=${ti}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(grad)));
    }
    for (const g of [32.001, 300, 1e39]) {
      expect(() => lib.sigmoidFocalLoss(X, T, { gamma: g })).toThrow(/options\.gamma must be in \[0, 32\]/);
      expect(() => lib.softmaxFocalLoss(new Float32Array(4), Int32Array.of(0, 1), { numClasses: 2, gamma: g })).toThrow(/options\.gamma must be in \[0, 32\]/);
      expect(() => lib.sigmoidFocalLoss.stream({ gamma: g })).toThrow(/options\.gamma/);
    }
  });
});
