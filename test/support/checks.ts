// What a case's outputs must satisfy (docs/SPEC.md §5), for outputs computed in this process or in
// another runtime (test/support/probe.mjs runs the cases; this file judges them).

import { expect } from 'vitest';
import {
  expectElementsClose,
  expectExactlyEqual,
  expectReducedClose,
  loadFamilyCases,
  loadGhmcCases,
  loadGhmrCases,
  loadSigmoidCases,
  loadSoftmaxCases,
  type FamilyCase,
  type GhmcAnyCase,
  type GhmrCase,
  type SigmoidCase,
  type SoftmaxFocalCase,
} from '../helpers/golden';

export type GoldenCase = SigmoidCase | SoftmaxFocalCase | GhmcAnyCase | GhmrCase | FamilyCase;

/** The probe's extra cases: the same batch through a pool, a wasm-memory batch, a stream. */
export type ExtraCase =
  | { kind: 'pool'; name: string; threads: number; logits: Float32Array; targets: Uint8Array; expectThreads: number; expectReason?: RegExp }
  | { kind: 'batch'; name: string; logits: Float32Array; targets: Uint8Array }
  | { kind: 'stream'; name: string; logits: Float32Array; targets: Uint8Array; chunk: number };

export type ProbeCase = GoldenCase | ExtraCase;

/** Every golden case, labelled as the tests name them. */
export function goldenCases(): Array<[string, GoldenCase]> {
  return [
    ...loadSigmoidCases().map((c) => [`sigmoid focal: ${c.name}`, c] as [string, GoldenCase]),
    ...loadSoftmaxCases().map((c) => [`softmax focal: ${c.name}`, c] as [string, GoldenCase]),
    ...loadGhmcCases().map((c) => [`GHM-C: ${c.name}`, c] as [string, GoldenCase]),
    ...loadGhmrCases().map((c) => [`GHM-R: ${c.name}`, c] as [string, GoldenCase]),
    ...loadFamilyCases().map((c) => [`${FAMILY_LABELS[c.kind]}: ${c.name}`, c] as [string, GoldenCase]),
  ];
}

const FAMILY_LABELS: Record<FamilyCase['kind'], string> = {
  poly1_sigmoid: 'Poly-1 sigmoid focal',
  poly1_softmax: 'Poly-1 softmax focal',
  quality_focal: 'Quality Focal',
  varifocal: 'Varifocal',
  distribution_focal: 'Distribution Focal',
};

interface Out {
  loss: number | Float32Array;
  grad: Float32Array;
  alpha?: number | null;
  accSum?: Float64Array;
  batches?: Out[];
}

function checkLoss(actual: number | Float32Array, expected: number | Float64Array, label: string): void {
  if (typeof expected === 'number') {
    expect(typeof actual, label).toBe('number');
    expectReducedClose(actual as number, expected, 1e-5, label);
  } else {
    expect(actual, label).toBeInstanceOf(Float32Array);
    expectElementsClose(actual as Float32Array, expected, 1e-5, label);
  }
}

/** The same loss and gradient from two ways of computing one thing. */
function checkSame(actual: Out, expected: Out, label: string): void {
  expectReducedClose(actual.loss as number, expected.loss as number, 1e-5, `${label} loss`);
  expectElementsClose(actual.grad, expected.grad, 1e-5, `${label} grad`);
}

/** Throws (through vitest's expect) when `outputs` are not what case `c` requires. */
export function checkCase(c: ProbeCase, outputs: unknown): void {
  const o = outputs as Out & Record<string, unknown>;
  switch (c.kind) {
    case 'sigmoid_focal':
    case 'sigmoid_focal_labels':
    case 'softmax_focal':
    case 'ghmc_labels':
    case 'poly1_sigmoid':
    case 'poly1_softmax':
    case 'quality_focal':
    case 'varifocal':
    case 'distribution_focal':
      checkLoss(o.loss, c.expected.loss, `${c.name} loss`);
      expectElementsClose(o.grad, c.expected.grad, 1e-5, `${c.name} grad`);
      if (c.kind === 'sigmoid_focal' && c.alphaUsed !== null) expect(o.alpha).toBeCloseTo(c.alphaUsed, 12);
      return;
    case 'ghmc':
    case 'ghmr':
      expect(o.batches!.length, `${c.name} batches`).toBe(c.batches.length);
      c.batches.forEach((b, i) => {
        const r = o.batches![i]!;
        expectReducedClose(r.loss as number, b.expected.loss, 1e-5, `${c.name}[${i}] loss`);
        expectElementsClose(r.grad, b.expected.grad, 1e-5, `${c.name}[${i}] grad`);
        if (b.expected.accSum) expectExactlyEqual(r.accSum!, b.expected.accSum, `${c.name}[${i}] accSum`);
      });
      return;
    case 'pool': {
      expect(o.threads, `${c.name}: pool.threads (reason: ${String(o.reason)})`).toBe(c.expectThreads);
      if (c.expectReason) expect(String(o.reason)).toMatch(c.expectReason);
      checkSame(o.small as Out, o.singleSmall as Out, `${c.name} first call (4 elements), pool vs one call`);
      checkSame(o.pooled as Out, o.single as Out, `${c.name} sigmoid focal, pool vs one call`);
      checkSame(o.pooledGhmc as Out, o.singleGhmc as Out, `${c.name} GHM-C, pool vs one call`);
      return;
    }
    case 'batch':
      checkSame(o.batch as Out, o.plain as Out, `${c.name}: batch vs plain arrays`);
      return;
    case 'stream':
      expectReducedClose(o.streamed as number, o.whole as number, 1e-5, `${c.name}: streamed vs one call`);
      return;
  }
}
