// The focal family's `out` buffers: results written into the caller's arrays (ordinary ones, or a
// batch's in wasm memory, zero-copy), the same numbers as the arrays a call allocates; and what
// `out` refuses (a gradient buffer without grad: true, wrong lengths, outputs overlapping inputs).

import { beforeAll, describe, expect, it } from 'vitest';
import { extras } from '../ts/extras';
import { expectSameBits } from './helpers/close';
import { loadLib, type Lib } from './support/lib';

describe('focal family: options.out', () => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib('simd');
    await lib.init({ extras });
  });

  const C = 5;
  const rows = 70_001; // past a chunk of 32768 logits
  const x = Float32Array.from({ length: rows * C }, (_, i) => Math.sin(i * 12.9898) * 6);
  const labels = Int32Array.from({ length: rows }, (_, r) => (r * 7) % (C + 1));
  const scores = Float32Array.from({ length: rows }, (_, r) => ((r * 37) % 101) / 100);
  const q = Float32Array.from(x, (_, i) => (i % 9 === 0 ? ((i * 13) % 100) / 100 : 0));
  const y = Float32Array.from({ length: rows }, (_, r) => ((r * 7919) % ((C - 1) * 100)) / 100);

  type Result = { loss: number | Float32Array; grad?: Float32Array };
  const calls = (l: Lib): Record<'quality' | 'varifocal' | 'distribution', (o: object) => Result> => ({
    quality: (o) => l.qualityFocalLoss(x, { labels, scores, numClasses: C }, o),
    varifocal: (o) => l.varifocalLoss(x, q, o),
    distribution: (o) => l.distributionFocalLoss(x, y, o),
  });
  const units = { quality: rows, varifocal: rows * C, distribution: rows };

  for (const name of ['quality', 'varifocal', 'distribution'] as const) {
    it(`${name}: out.loss and out.grad, ordinary arrays and batch views, equal the allocated results`, () => {
      const call = calls(lib)[name];
      const want = call({ reduction: 'none', grad: true }) as { loss: Float32Array; grad: Float32Array };
      const loss = new Float32Array(units[name]);
      const grad = new Float32Array(x.length);
      const got = call({ reduction: 'none', grad: true, out: { loss, grad } }) as { loss: Float32Array; grad: Float32Array };
      expect(got.loss).toBe(loss);
      expect(got.grad).toBe(grad);
      expectSameBits(loss, want.loss, 'loss');
      expectSameBits(grad, want.grad, 'grad');
      const mean = call({ grad: true }) as { loss: number; grad: Float32Array };
      const b = lib.createBatch({ length: x.length, targets: 'f32', grad: true });
      const viaBatch = call({ grad: true, out: { grad: b.grad } }) as { loss: number; grad: Float32Array };
      expect(viaBatch.loss).toBe(mean.loss);
      expect(viaBatch.grad.buffer, 'the batch view, not a copy').toBe(b.grad.buffer);
      expectSameBits(b.grad, mean.grad, 'batch grad');
      b.free();
    });

    it(`${name}: out.grad without grad: true, wrong lengths and overlaps are refused`, () => {
      const call = calls(lib)[name];
      expect(() => call({ out: { grad: new Float32Array(x.length) } })).toThrow(/options\.out\.grad is written with grad: true/);
      expect(() => call({ grad: true, out: { grad: new Float32Array(x.length - 1) } })).toThrow(RangeError);
      expect(() => call({ out: { loss: new Float32Array(units[name]) } })).toThrow(/only used with reduction 'none'/);
      expect(() => call({ reduction: 'none', out: { loss: new Float32Array(units[name] + 1) } })).toThrow(/options\.out\.loss has length/);
      expect(() => call({ grad: true, out: { grad: x } })).toThrow(/options\.out\.grad/);
    });
  }
});
