// The pass over the data: the library's losses of the whole file as one batch, and the per-bin
// statistics the report and the plots show. Every number comes from the library's calls; this
// module only reads pieces, hands them over, and adds up per bin.

import { createPool, distributionFocalLoss, GHMC, qualityFocalLoss, sigmoidFocalLoss, softmaxFocalLoss, varifocalLoss, type Pool } from 'focal-ghm';
import { readChunks, scanTargets, type Chunk, type ChunkTargets, type Inputs } from './inputs.js';

/** What `--loss` takes when not given: every one of these the inputs allow. */
export const DEFAULT_LOSSES = ['sigmoid-focal', 'ghmc', 'softmax-focal'] as const;
/** The focal family of the extras module: computed only when `--loss` names them. */
export const EXTRAS_LOSSES = ['quality-focal', 'varifocal', 'distribution-focal'] as const;
export const LOSSES = [...DEFAULT_LOSSES, ...EXTRAS_LOSSES] as const;
export type LossName = (typeof LOSSES)[number];

export interface ScoreOptions {
  /** The losses asked for; undefined: every one of {@link DEFAULT_LOSSES} these inputs allow. */
  losses: LossName[] | undefined;
  alpha: number | null;
  gamma: number;
  /** Poly-1 ε of sigmoid-focal and softmax-focal (0: the plain losses). */
  poly1: number;
  /** quality-focal's β. */
  beta: number;
  /** varifocal's α (the negatives' weight); its γ is `gamma`. */
  vflAlpha: number;
  bins: number;
  momentum: number;
  reduction: 'mean' | 'sum';
  /** The focal losses' mean divides by this instead of the count (mmdetection's avg_factor); 'positives': the number of positives (RetinaNet's normalisation). */
  avgFactor?: number | 'positives' | undefined;
  /** Worker threads for the elementwise passes (1: none). */
  threads: number;
  /** Logits per piece read from disk. */
  chunkElements: number;
  onProgress?: ((rowsDone: number, rows: number) => void) | undefined;
  /** Told when the pool runs on fewer threads than asked, and why. */
  onWarning?: ((message: string) => void) | undefined;
}

/** Per-bin statistics over g = |p − t|, GHM-C's bins (mmdetection's float32 edges). */
export interface BinStats {
  bins: number;
  /** bins + 1 edges; the last is 1 + 1e-6, as mmdetection's. */
  edges: number[];
  /** Elements per bin (the library's GHM-C statistics). */
  counts: number[];
  /** Of those, targets ≥ 0.5 ("positives") and < 0.5. */
  positives: number[];
  negatives: number[];
  /** GHM-C's weight per bin after this batch's EMA step (0 for empty bins). */
  weights: number[];
  /** Each loss's sum per bin, before the reduction: BCE, the sigmoid focal loss, GHM-C. */
  lossByBin: { bce: number[]; 'sigmoid-focal': number[]; ghmc: number[] };
  /** Elements whose g is NaN (NaN logits): in no bin. */
  nan: number;
}

export interface ScoreResult {
  elements: number;
  rows: number;
  classes: number;
  mode: Inputs['mode'];
  /** Targets ≥ 0.5, or rows not background (0 with positions). */
  positives: number;
  /** What the focal losses' mean divided by instead of the count, if anything. */
  avgFactor: number | undefined;
  losses: Partial<Record<LossName, number>>;
  /** Losses not computed, and why (only when not asked for explicitly: asking for one that is impossible is an error). */
  skipped: { loss: LossName; why: string }[];
  /** Per-bin statistics of the sigmoid losses (none with positions: distribution-focal alone). */
  ghm: BinStats | undefined;
  threads: number;
}

/** A request the inputs cannot satisfy (exit code 1, like bad data). */
export class ScoreError extends Error {
  override name = 'ScoreError';
}

/** The two elementwise passes the per-bin statistics need, on this thread or the pool's. */
interface Elementwise {
  /** Each element's focal loss (the options' α, γ), and its BCE gradient p − t. */
  run(x: Float32Array, t: ChunkTargets): Promise<{ focal: Float32Array; pMinusT: Float32Array }>;
}

function elementwise(alpha: number | null, gamma: number, poly1: number, pool: Pool | undefined): Elementwise {
  const focalOpts = { alpha, gamma, reduction: 'none', ...(poly1 !== 0 ? { poly1 } : {}) } as const;
  const bceOpts = { alpha: null, gamma: 0, reduction: 'none', grad: true } as const;
  if (pool === undefined) {
    return {
      run: async (x, t) => ({ focal: sigmoidFocalLoss(x, t, focalOpts).loss, pMinusT: sigmoidFocalLoss(x, t, bceOpts).grad }),
    };
  }
  // Poly-1 runs on this thread (the pool's workers load only the core kernels), the BCE pass on the pool's.
  if (poly1 !== 0) {
    return {
      run: async (x, t) => {
        const b = pool.sigmoidFocalLoss(x, t, bceOpts);
        b.catch(() => undefined); // awaited below unless this thread's pass throws first
        const focal = sigmoidFocalLoss(x, t, focalOpts).loss;
        return { focal, pMinusT: (await b).grad! };
      },
    };
  }
  return {
    run: async (x, t) => {
      const [f, b] = await Promise.all([pool.sigmoidFocalLoss(x, t, focalOpts), pool.sigmoidFocalLoss(x, t, bceOpts)]);
      return { focal: f.loss as Float32Array, pMinusT: b.grad! };
    },
  };
}

/** mmdetection's edges: float32(i / bins), the last raised by 1e-6 (in float32). */
export function ghmEdges(bins: number): Float32Array {
  const e = new Float32Array(bins + 1);
  for (let i = 0; i <= bins; i++) e[i] = i / bins;
  e[bins] = e[bins]! + 1e-6;
  return e;
}

/** VFNet's targets from class indices and scores: each row's score at its label's column, 0 elsewhere. */
function iouTargets(labels: Int32Array, scores: Float32Array, classes: number): Float32Array {
  const q = new Float32Array(labels.length * classes);
  for (let r = 0; r < labels.length; r++) if (labels[r]! < classes) q[r * classes + labels[r]!] = scores[r]!;
  return q;
}

export async function score(inputs: Inputs, o: ScoreOptions): Promise<ScoreResult> {
  if (inputs.mode === 'positions') return scorePositions(inputs, o);
  const skipped: ScoreResult['skipped'] = [];
  const wanted = (l: LossName): boolean => (o.losses ?? (DEFAULT_LOSSES as readonly LossName[])).includes(l);
  // Class indices are checked (and background found) before the long pass; per-logit targets
  // only when the positives must be counted first.
  const scan = inputs.mode === 'labels' || o.avgFactor === 'positives' ? await scanTargets(inputs, o.chunkElements) : undefined;
  let softmax = wanted('softmax-focal');
  if (softmax) {
    const why =
      inputs.mode !== 'labels'
        ? 'needs class-index targets (one integer label per row of logits [N, C])'
        : scan!.background
          ? `the labels include background (${inputs.classes}); softmax needs a logit column for every label`
          : undefined;
    if (why !== undefined) {
      if (o.losses !== undefined) throw new ScoreError(`softmax-focal: ${why}`);
      skipped.push({ loss: 'softmax-focal', why });
      softmax = false;
    }
  }
  // The family's losses come only when asked for by name: inputs that cannot give them are an error.
  const quality = wanted('quality-focal');
  if (quality && (inputs.mode !== 'labels' || !inputs.scores)) {
    throw new ScoreError('quality-focal: needs class-index targets (one label per row of logits [N, C], C = background) and --scores');
  }
  const vfl = wanted('varifocal');
  if (vfl && inputs.mode === 'labels' && !inputs.scores) {
    throw new ScoreError('varifocal: with class-index targets it needs --scores (the IoU-aware score of each row at its label), or give a target per logit');
  }
  const avgFactor = o.avgFactor === 'positives' ? Math.max(scan!.positives, 1) : o.avgFactor;

  const poly1 = o.poly1 !== 0 ? { poly1: o.poly1 } : {};
  const focal = sigmoidFocalLoss.stream({ alpha: o.alpha, gamma: o.gamma, reduction: o.reduction, avgFactor, ...poly1 });
  const qfl = quality ? qualityFocalLoss.stream({ beta: o.beta, reduction: o.reduction, avgFactor }) : undefined;
  const vf = vfl ? varifocalLoss.stream({ alpha: o.vflAlpha, gamma: o.gamma, reduction: o.reduction, avgFactor }) : undefined;
  const ghmc = new GHMC({ bins: o.bins, momentum: o.momentum });
  const ghm = ghmc.stream();
  let softmaxSum = 0;
  const b = o.bins;
  const edges = ghmEdges(b);
  const positives = new Float64Array(b);
  const negatives = new Float64Array(b);
  const focalByBin = new Float64Array(b);
  let nan = 0;
  let pos = 0;

  const pool = o.threads > 1 ? await createPool({ threads: o.threads }) : undefined;
  if (pool?.reason) o.onWarning?.(`running on one thread: ${pool.reason}`);
  try {
    const perElement = elementwise(o.alpha, o.gamma, o.poly1, pool);
    for await (const chunk of readChunks(inputs, o.chunkElements)) {
      const { logits: x, targets: t, scores } = chunk;
      // The pool's passes run while this thread does the reductions (if those throw, the
      // rejection of the pending passes is handled here, not left unobserved).
      const pending = perElement.run(x, t);
      pending.catch(() => undefined);
      focal.push(x, t);
      ghm.push(x, t);
      if (softmax) {
        const { labels } = t as { labels: Int32Array };
        softmaxSum += softmaxFocalLoss(x, labels, { numClasses: inputs.classes, alpha: o.alpha, gamma: o.gamma, reduction: 'sum', ...poly1 }).loss;
      }
      if (qfl) qfl.push(x, { ...(t as { labels: Int32Array; numClasses: number }), scores: scores! });
      if (vf) vf.push(x, 'labels' in t ? iouTargets(t.labels, scores!, inputs.classes) : t instanceof Float32Array ? t : Float32Array.from(t));
      const { focal: f, pMinusT } = await pending;
      const counted = binElements(chunk, f, pMinusT, edges, positives, negatives, focalByBin);
      nan += counted.nan;
      pos += counted.positives;
      o.onProgress?.(chunk.row + chunk.rowCount, inputs.rows);
    }
  } finally {
    await pool?.close();
  }

  const g = ghm.finish();
  const { counts, sums } = g.stats;
  const tot = Math.max(g.stats.valid, 1);
  const losses: ScoreResult['losses'] = {};
  if (wanted('sigmoid-focal')) losses['sigmoid-focal'] = focal.finish().loss;
  if (wanted('ghmc')) losses.ghmc = g.loss;
  // The softmax loss has a term per row: its mean divides by the rows (or the avgFactor).
  if (softmax) losses['softmax-focal'] = o.reduction === 'mean' ? softmaxSum / (avgFactor ?? Math.max(inputs.rows, 1)) : softmaxSum;
  if (qfl) losses['quality-focal'] = qfl.finish().loss;
  if (vf) losses.varifocal = vf.finish().loss;
  const elements = inputs.rows * inputs.classes;
  if (nan > 0) o.onWarning?.(`${nan} logits are NaN: the losses are NaN (as PyTorch's), and those elements are in no bin`);
  return {
    elements,
    rows: inputs.rows,
    classes: inputs.classes,
    mode: inputs.mode,
    positives: pos,
    avgFactor,
    losses,
    skipped,
    threads: pool ? pool.threads : 1,
    ghm: {
      bins: b,
      edges: Array.from(edges),
      counts: Array.from(counts),
      positives: Array.from(positives),
      negatives: Array.from(negatives),
      // factors = lossWeight · weight / tot per bin (lossWeight 1 here).
      weights: Array.from(g.step.factors.subarray(0, b), (f) => f * tot),
      lossByBin: {
        bce: Array.from(sums),
        'sigmoid-focal': Array.from(focalByBin),
        ghmc: Array.from(sums, (s, i) => s * g.step.factors[i]!),
      },
      nan,
    },
  };
}

/** distribution-focal alone: logits [N, n + 1] and a position in [0, n) per row; no bins. */
async function scorePositions(inputs: Inputs, o: ScoreOptions): Promise<ScoreResult> {
  const avgFactor = typeof o.avgFactor === 'number' ? o.avgFactor : undefined;
  const dfl = distributionFocalLoss.stream({ bins: inputs.classes - 1, reduction: o.reduction, avgFactor });
  for await (const chunk of readChunks(inputs, o.chunkElements)) {
    dfl.push(chunk.logits, chunk.targets as Float32Array);
    o.onProgress?.(chunk.row + chunk.rowCount, inputs.rows);
  }
  return {
    elements: inputs.rows * inputs.classes,
    rows: inputs.rows,
    classes: inputs.classes,
    mode: inputs.mode,
    positives: 0,
    avgFactor,
    losses: { 'distribution-focal': dfl.finish().loss },
    skipped: [],
    ghm: undefined,
    threads: 1,
  };
}

/**
 * Adds this piece's elements to the per-bin tallies: bin of g = |p − t| by the float32 edges
 * (the library's GHM-C binning), positive when the target is ≥ 0.5. Returns the positives
 * (NaN-g elements included) and the NaN-g elements, which are in no bin.
 */
function binElements(
  chunk: Chunk,
  focal: Float32Array,
  pMinusT: Float32Array,
  edges: Float32Array,
  positives: Float64Array,
  negatives: Float64Array,
  focalByBin: Float64Array,
): { positives: number; nan: number } {
  const bins = edges.length - 1;
  const t = chunk.targets;
  const labels = 'labels' in t ? t.labels : undefined;
  const dense = 'labels' in t ? undefined : t;
  const classes = labels ? (t as { numClasses: number }).numClasses : 1;
  let nan = 0;
  let pos = 0;
  for (let i = 0, row = 0, c = 0; i < pMinusT.length; i++) {
    const positive = labels ? labels[row] === c : dense![i]! >= 0.5;
    if (labels && ++c === classes) {
      c = 0;
      row++;
    }
    if (positive) pos++;
    const g = Math.abs(pMinusT[i]!);
    if (g !== g) {
      nan++;
      continue;
    }
    let k = Math.min(Math.floor(g * bins), bins - 1);
    if (g < edges[k]!) k--;
    else if (g >= edges[k + 1]!) k++;
    if (positive) positives[k]!++;
    else negatives[k]!++;
    focalByBin[k]! += focal[i]!;
  }
  return { positives: pos, nan };
}
