// `focal-ghm sample DIR`: a detector-like batch to try `score` on, written as .npy. Anchors ×
// classes logits as a trained RetinaNet head gives them: RetinaNet's prior bias puts every class
// near log(0.01/0.99) ≈ −4.6 at the start; after training most negatives are easy (far below
// 0), a few percent stay hard (backgrounds that look like objects), and positives spread from
// hard (missed) to easy (confident).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { npyBytes } from './npy.js';
import { gaussian, rng } from './random.js';

export interface SampleOptions {
  anchors: number;
  classes: number;
  /** Share of anchors that hold an object. */
  positiveRate: number;
  seed: number;
}

export const SAMPLE_DEFAULTS: SampleOptions = { anchors: 100_000, classes: 80, positiveRate: 0.01, seed: 42 };

export function sampleBatch(o: SampleOptions): { logits: Float32Array; labels: BigInt64Array } {
  const rand = rng(o.seed);
  const gauss = gaussian(rand);
  const logits = new Float32Array(o.anchors * o.classes);
  const labels = new BigInt64Array(o.anchors);
  for (let a = 0; a < o.anchors; a++) {
    const label = rand() < o.positiveRate ? Math.floor(rand() * o.classes) : o.classes;
    labels[a] = BigInt(label);
    // Anchors near an object (or object-like background) have hard negatives among their classes.
    const hardAnchor = rand() < 0.04;
    for (let c = 0; c < o.classes; c++) {
      let x: number;
      if (c === label) x = 1.5 + 2 * gauss(); // the true class: mostly found, a tail missed
      else if (hardAnchor && rand() < 0.1) x = -3 + 1.5 * gauss(); // hard negatives
      else x = -6.5 + 1.3 * gauss(); // easy negatives: the bulk
      logits[a * o.classes + c] = x;
    }
  }
  return { logits, labels };
}

/** Writes DIR/logits.npy (float32 [anchors, classes]) and DIR/labels.npy (int64 [anchors]). */
export async function writeSample(dir: string, o: SampleOptions = SAMPLE_DEFAULTS): Promise<{ logits: string; labels: string }> {
  const { logits, labels } = sampleBatch(o);
  await mkdir(dir, { recursive: true });
  const paths = { logits: join(dir, 'logits.npy'), labels: join(dir, 'labels.npy') };
  await writeFile(paths.logits, npyBytes(logits, [o.anchors, o.classes]));
  await writeFile(paths.labels, npyBytes(labels, [o.anchors]));
  return paths;
}
