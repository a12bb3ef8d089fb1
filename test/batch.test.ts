// Zero-copy batches: calls read and write them in place, never touch another live batch, and a
// freed batch (or a stale view of one) throws. A model-based fast-check test drives random
// sequences of create / fill / call / free / memory growth against a model of the contents.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadLib, type Lib } from './support/lib';

let lib: Lib;
beforeAll(async () => {
  lib = await loadLib('simd');
});

type Batch = ReturnType<Lib['createBatch']>;

interface Live {
  b: Batch;
  logits: Float32Array;
  targets: Uint8Array;
  grad: Float32Array;
}

interface Model {
  live: Live[];
  freed: Batch[];
}

const fill = (n: number, seed: number) => {
  const logits = new Float32Array(n);
  const targets = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    logits[i] = (s / 2 ** 32) * 16 - 8;
    targets[i] = s % 17 === 0 ? 1 : 0;
  }
  return { logits, targets };
};

function checkAllUntouched(m: Model): void {
  for (const l of m.live) {
    expect(l.b.logits).toEqual(l.logits);
    expect(l.b.targets).toEqual(l.targets);
    expect(l.b.grad).toEqual(l.grad);
  }
}

class Create implements fc.Command<Model, object> {
  constructor(readonly n: number) {}
  check = () => true;
  run(m: Model): void {
    const b = lib.createBatch({ length: this.n, targets: 'u8', grad: true });
    const n = this.n;
    expect(b.logits.every((v) => v === 0) && b.grad.every((v) => v === 0)).toBe(true);
    m.live.push({ b, logits: new Float32Array(n), targets: new Uint8Array(n), grad: new Float32Array(n) });
    checkAllUntouched(m);
  }
  toString = () => `create(${this.n})`;
}

class Fill implements fc.Command<Model, object> {
  constructor(readonly i: number, readonly seed: number) {}
  check = (m: Readonly<Model>) => m.live.length > 0;
  run(m: Model): void {
    const l = m.live[this.i % m.live.length]!;
    const { logits, targets } = fill(l.b.length, this.seed);
    l.b.logits.set(logits);
    (l.b.targets as Uint8Array).set(targets);
    l.logits = logits;
    l.targets = targets;
    checkAllUntouched(m);
  }
  toString = () => `fill(${this.i}, ${this.seed})`;
}

class Call implements fc.Command<Model, object> {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.live.length > 0;
  run(m: Model): void {
    const l = m.live[this.i % m.live.length]!;
    const r = lib.sigmoidFocalLoss(l.b.logits, l.b.targets, { reduction: 'sum', out: { grad: l.b.grad } });
    // The same call on ordinary copies: identical numbers.
    const want = lib.sigmoidFocalLoss(l.logits.slice(), l.targets.slice(), { reduction: 'sum', grad: true });
    expect(r.loss).toBe(want.loss);
    expect(l.b.grad).toEqual(want.grad);
    l.grad = want.grad!;
    // Views that start inside a batch's buffer are read in place too.
    const k = l.b.length >> 1;
    const part = lib.sigmoidFocalLoss(l.b.logits.subarray(k), (l.b.targets as Uint8Array).subarray(k), { reduction: 'sum' });
    expect(part.loss).toBe(lib.sigmoidFocalLoss(l.logits.slice(k), l.targets.slice(k), { reduction: 'sum' }).loss);
    checkAllUntouched(m);
  }
  toString = () => `call(${this.i})`;
}

class Free implements fc.Command<Model, object> {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.live.length > 0;
  run(m: Model): void {
    const [l] = m.live.splice(this.i % m.live.length, 1);
    const stale = l!.b.logits;
    l!.b.free();
    m.freed.push(l!.b);
    expect(() => l!.b.logits).toThrow(/freed/);
    // A stale view kept from before free() is refused by every call.
    if (stale.length > 0) expect(() => lib.sigmoidFocalLoss(stale, new Uint8Array(stale.length))).toThrow(/not allocated/);
    if (stale.length > 1) expect(() => lib.sigmoidFocalLoss(stale.subarray(1), new Uint8Array(stale.length - 1))).toThrow(/not allocated/);
    checkAllUntouched(m);
  }
  toString = () => `free(${this.i})`;
}

class Grow implements fc.Command<Model, object> {
  constructor(readonly n: number) {}
  check = () => true;
  run(m: Model): void {
    // A large temporary batch forces memory growth, which detaches every old view.
    const big = lib.createBatch({ length: this.n, targets: 'f32' });
    big.free();
    checkAllUntouched(m);
  }
  toString = () => `grow(${this.n})`;
}

describe('zero-copy batches', () => {
  it('random create/fill/call/free/grow sequences never cross-write and refuse freed batches', () => {
    const commands = [
      fc.integer({ min: 0, max: 3000 }).map((n) => new Create(n)),
      fc.tuple(fc.nat(), fc.integer()).map(([i, s]) => new Fill(i, s)),
      fc.nat().map((i) => new Call(i)),
      fc.nat().map((i) => new Free(i)),
      fc.integer({ min: 1 << 16, max: 1 << 21 }).map((n) => new Grow(n)),
    ];
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 40 }), (cmds) => {
        const m: Model = { live: [], freed: [] };
        try {
          fc.modelRun(() => ({ model: m, real: {} }), cmds);
        } finally {
          for (const l of m.live) l.b.free();
        }
      }),
      { numRuns: 60, seed: 4 },
    );
  });

  it('class-index batches with row weights equal ordinary arrays', () => {
    const c = 80;
    const rows = 1000;
    const b = lib.createBatch({ length: rows * c, targets: { numClasses: c }, weight: 'rows', grad: true });
    const { logits } = fill(rows * c, 7);
    const labels = Int32Array.from({ length: rows }, (_, i) => (i % 13 === 0 ? i % c : c));
    const w = Float32Array.from({ length: rows }, (_, i) => 1 + (i % 3));
    b.logits.set(logits);
    b.labels.set(labels);
    b.weight.set(w);
    const r = lib.sigmoidFocalLoss(b.logits, b.targets, { weight: b.weight, out: { grad: b.grad } });
    const want = lib.sigmoidFocalLoss(logits, { labels, numClasses: c }, { weight: w, grad: true });
    expect(r.loss).toBe(want.loss);
    expect(b.grad).toEqual(want.grad);
    b.free();
    expect(b.freed).toBe(true);
    b.free(); // idempotent
  });

  it('rejects bad batch options', () => {
    expect(() => lib.createBatch({ length: -1 })).toThrow(RangeError);
    expect(() => lib.createBatch({ length: 10, targets: { numClasses: 3 } })).toThrow(/numClasses/);
    expect(() => lib.createBatch({ length: 10, weight: 'rows' })).toThrow(/rows/);
    expect(() => lib.createBatch({ length: 10, targets: 'f64' as never })).toThrow(/targets/);
  });
});

// Regression: a call on batch views taken before it, whose own first allocations (the parameter
// region, the workspace) grew wasm memory and so detached those views mid-call. The README's
// example did this (createBatch, then the first call), and threw "Cannot perform Construct on a
// detached ArrayBuffer" from the chunk runner, which no longer saw the views as wasm memory.
// Each batch fills whole 64 KiB pages (the heap starts on a page boundary), so that the call's
// first allocation has to grow the memory.
describe('batch views as the first call after init (the call grows the memory)', () => {
  it.each([
    ['sigmoid focal, out.grad', (l: Lib) => {
      const b = l.createBatch({ length: 1 << 16, targets: 'u8', grad: true });
      b.logits.fill(-2);
      (b.targets as Uint8Array).fill(1, 0, 100);
      const r = l.sigmoidFocalLoss(b.logits, b.targets, { out: { grad: b.grad } });
      return { loss: r.loss as number, grad: b.grad.slice(), plain: l.sigmoidFocalLoss(b.logits.slice(), (b.targets as Uint8Array).slice(), { grad: true }) };
    }],
    ['softmax focal', (l: Lib) => {
      // 16384 rows × (3 logits + a label + a weight) × 4 bytes = 5 pages.
      const b = l.createBatch({ length: 3 * 16384, targets: { numClasses: 3 }, weight: 'rows' });
      b.logits.set(fill(3 * 16384, 5).logits);
      b.labels.set(Int32Array.from({ length: 16384 }, (_, i) => i % 3));
      b.weight.fill(2);
      const r = l.softmaxFocalLoss(b.logits, b.labels, { numClasses: 3, weight: b.weight, grad: true });
      return { loss: r.loss as number, grad: r.grad, plain: l.softmaxFocalLoss(b.logits.slice(), b.labels.slice(), { numClasses: 3, weight: b.weight.slice(), grad: true }) };
    }],
    ['varifocal', (l: Lib) => {
      // 49152 × (logit + target + weight) × 4 bytes = 9 pages.
      const b = l.createBatch({ length: 49_152, targets: 'f32', weight: true });
      b.logits.set(fill(49_152, 6).logits);
      (b.targets as Float32Array).fill(0.5, 0, 300);
      b.weight.fill(1.5);
      const r = l.varifocalLoss(b.logits, b.targets as Float32Array, { weight: b.weight, grad: true });
      return { loss: r.loss as number, grad: r.grad, plain: l.varifocalLoss(b.logits.slice(), (b.targets as Float32Array).slice(), { weight: b.weight.slice(), grad: true }) };
    }],
  ] as const)('%s', async (_, run) => {
    const fresh = await loadLib('simd');
    const { loss, grad, plain } = run(fresh);
    expect(loss).toBe(plain.loss);
    expect(grad).toEqual(plain.grad);
  });

  it('a bad target in a batch view is named, though the call grew the memory', async () => {
    const fresh = await loadLib('simd');
    const b = fresh.createBatch({ length: 49_152, targets: 'f32' }); // 6 pages
    (b.targets as Float32Array)[33_333] = 1.5;
    expect(() => fresh.varifocalLoss(b.logits, b.targets as Float32Array)).toThrow(/targets\[33333\] is 1\.5.*element 33333/);
  });
});
