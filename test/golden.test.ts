// Every golden case of ../shared/golden (copied into test/fixtures/golden), through the public
// API, on both the SIMD and the scalar build, within SPEC.md §5.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  expectElementsClose,
  expectExactlyEqual,
  expectReducedClose,
  loadGhmcCases,
  loadGhmrCases,
  loadSigmoidCases,
  loadSoftmaxCases,
} from './helpers/golden';
import { BUILDS, loadLib, type Lib } from './support/lib';

function checkLoss(actual: number | Float32Array, expected: number | Float64Array, label: string): void {
  if (typeof expected === 'number') {
    expect(typeof actual, label).toBe('number');
    expectReducedClose(actual as number, expected, 1e-5, label);
  } else {
    expect(actual, label).toBeInstanceOf(Float32Array);
    expectElementsClose(actual as Float32Array, expected, 1e-5, label);
  }
}

describe.each(BUILDS)('golden cases, %s build', (build) => {
  let lib: Lib;
  beforeAll(async () => {
    lib = await loadLib(build);
  });

  for (const c of loadSigmoidCases()) {
    it(`sigmoid focal: ${c.name}`, () => {
      const o = c.options;
      const common = {
        alpha: o.alpha,
        gamma: o.gamma,
        reduction: o.reduction,
        lossWeight: o.lossWeight,
        grad: true,
        ...(o.avgFactor !== null ? { avgFactor: o.avgFactor } : {}),
      };
      const r =
        c.kind === 'sigmoid_focal'
          ? lib.sigmoidFocalLoss(c.logits, c.targets, { ...common, ...(c.weight ? { weight: c.weight } : {}) })
          : lib.sigmoidFocalLoss(c.logits, { labels: c.labels, numClasses: c.options.numClasses }, { ...common, ...(c.rowWeight ? { weight: c.rowWeight } : {}) });
      checkLoss(r.loss, c.expected.loss, `${c.name} loss`);
      expectElementsClose(r.grad!, c.expected.grad, 1e-5, `${c.name} grad`);
      if (c.kind === 'sigmoid_focal' && c.alphaUsed !== null) expect(r.alpha).toBeCloseTo(c.alphaUsed, 12);
    });
  }

  for (const c of loadSoftmaxCases()) {
    it(`softmax focal: ${c.name}`, () => {
      const o = c.options;
      const r = lib.softmaxFocalLoss(c.logits, c.labels, {
        numClasses: o.numClasses,
        alpha: o.alpha,
        gamma: o.gamma,
        reduction: o.reduction,
        ignoreIndex: o.ignoreIndex,
        grad: true,
      });
      checkLoss(r.loss, c.expected.loss, `${c.name} loss`);
      expectElementsClose(r.grad!, c.expected.grad, 1e-5, `${c.name} grad`);
    });
  }

  for (const c of loadGhmcCases()) {
    it(`GHM-C: ${c.name}`, () => {
      const { bins, momentum, lossWeight } = c.options;
      const ghmc = new lib.GHMC({ bins, momentum, lossWeight });
      if (c.kind === 'ghmc_labels') {
        const r = ghmc.forward(c.logits, { labels: c.labels, numClasses: c.options.numClasses }, c.rowLabelWeight ?? undefined, { grad: true });
        expectReducedClose(r.loss as number, c.expected.loss, 1e-5, `${c.name} loss`);
        expectElementsClose(r.grad!, c.expected.grad, 1e-5, `${c.name} grad`);
        return;
      }
      c.batches.forEach((b, i) => {
        const r = ghmc.forward(b.logits, b.targets, b.labelWeight ?? undefined, { grad: true });
        expectReducedClose(r.loss as number, b.expected.loss, 1e-5, `${c.name}[${i}] loss`);
        expectElementsClose(r.grad!, b.expected.grad, 1e-5, `${c.name}[${i}] grad`);
        if (b.expected.accSum) expectExactlyEqual(ghmc.accSum, b.expected.accSum, `${c.name}[${i}] accSum`);
      });
    });
  }

  for (const c of loadGhmrCases()) {
    it(`GHM-R: ${c.name}`, () => {
      const ghmr = new lib.GHMR(c.options);
      c.batches.forEach((b, i) => {
        const r = ghmr.forward(b.pred, b.target, b.labelWeight ?? undefined, { grad: true });
        expectReducedClose(r.loss as number, b.expected.loss, 1e-5, `${c.name}[${i}] loss`);
        expectElementsClose(r.grad!, b.expected.grad, 1e-5, `${c.name}[${i}] grad`);
        if (b.expected.accSum) expectExactlyEqual(ghmr.accSum, b.expected.accSum, `${c.name}[${i}] accSum`);
      });
    });
  }
});
