// The figure's Vega-Lite specs: plain JSON built from per-bin statistics, rendered by the command
// (plots.ts: SVG, PNG) and embedded live by the demo page (demo/, vega-embed). Each panel's data
// is a named dataset, so a live view can replace it: view.data(name, rows).

import { sigmoidFocalLoss } from 'focal-ghm';
import type { BinStats, ScoreResult } from './score.js';

/** γ values of the focal-loss curves (Lin et al., Figure 1); the batch's γ is added and marked. */
export const CURVE_GAMMAS = [0, 0.5, 1, 2, 5];

const COLORS = { negatives: '#4c78a8', positives: '#f58518', weight: '#2f2f2f', bce: '#9d9d9d', focal: '#e45756', ghmc: '#54a24b' };
const FONT = 'DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif';
const WIDTH = 620;

export interface FigureInfo {
  /** What was scored, for the title (file names). */
  title: string;
  gamma: number;
  alpha: number | null;
}

type Spec = Record<string, unknown>;

/** The three panels, stacked: g histogram with GHM-C weights, loss share by bin, focal curves. */
export function figureSpec(r: ScoreResult, info: FigureInfo): Spec {
  // The command refuses --plot where there are no bins (distribution-focal alone).
  const ghm = r.ghm;
  if (!ghm) throw new Error('figureSpec: the result has no gradient-norm bins');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: info.title, subtitle: summaryLine(r, ghm, info), anchor: 'start', fontSize: 15, subtitleFontSize: 12, offset: 18 },
    config: {
      font: FONT,
      view: { stroke: null },
      axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eeeeee' },
      legend: { labelFontSize: 11, titleFontSize: 12, orient: 'right' },
      title: { fontSize: 13 },
    },
    spacing: 36,
    // Each panel has its own colours and legend.
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    vconcat: [histogramPanel(ghm), sharePanel(ghm, info.gamma), curvePanel(info.gamma)],
  };
}

function summaryLine(r: ScoreResult, ghm: BinStats, info: FigureInfo): string {
  const pct = r.elements > 0 ? ((100 * r.positives) / r.elements).toPrecision(2) : '0';
  const alpha = info.alpha === null ? 'no α' : `α ${info.alpha}`;
  return `${r.elements.toLocaleString('en-US')} elements, ${r.positives.toLocaleString('en-US')} positive (${pct}%); ${alpha}, γ ${info.gamma}, ${ghm.bins} bins`;
}

/** What the histogram panel shows of a {@link BinStats}. */
export type HistogramStats = Pick<BinStats, 'bins' | 'edges' | 'positives' | 'negatives' | 'weights'>;

/** Bin rows for the histogram: negatives in the left half of each bin, positives in the right. */
export function histogramData(h: HistogramStats): Spec[] {
  const { edges, positives, negatives } = h;
  const rows: Spec[] = [];
  for (let i = 0; i < h.bins; i++) {
    const g0 = Math.min(edges[i]!, 1);
    const g1 = Math.min(edges[i + 1]!, 1);
    const mid = (g0 + g1) / 2;
    if (negatives[i]! > 0) rows.push({ bin: i, series: 'negatives', g0, g1: mid, count: negatives[i] });
    if (positives[i]! > 0) rows.push({ bin: i, series: 'positives', g0: mid, g1, count: positives[i] });
  }
  return rows;
}

/** GHM-C's weight per non-empty bin, at the bin's centre. */
export function weightData(h: HistogramStats): Spec[] {
  const { edges, weights } = h;
  return weights.flatMap((w, i) => (w > 0 ? [{ bin: i, g: (Math.min(edges[i]!, 1) + Math.min(edges[i + 1]!, 1)) / 2, weight: w, series: 'GHM-C weight' }] : []));
}

/** Datasets: `histogram_bars` ({@link histogramData}) and `histogram_weights` ({@link weightData}). */
export function histogramPanel(h: HistogramStats): Spec {
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    scale: { domain: ['negatives', 'positives', 'GHM-C weight'], range: [COLORS.negatives, COLORS.positives, COLORS.weight] },
  };
  const gAxis = { field: 'g0', type: 'quantitative', title: 'gradient norm g = |p − t|', scale: { domain: [0, 1], nice: false } };
  return {
    name: 'histogram',
    title: { text: 'Where the gradients sit: elements per bin of g (log scale), and GHM-C’s weight per bin', anchor: 'start' },
    width: WIDTH,
    height: 230,
    layer: [
      {
        name: 'bars',
        data: { name: 'histogram_bars', values: histogramData(h) },
        mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          x: gAxis,
          x2: { field: 'g1' },
          y: { field: 'count', type: 'quantitative', title: 'elements (log scale)', scale: { type: 'log', domainMin: 0.5 }, axis: { format: '~s' } },
          y2: { datum: 0.5 },
          color,
          tooltip: [{ field: 'bin' }, { field: 'series' }, { field: 'count', format: ',' }],
        },
      },
      {
        name: 'weights',
        data: { name: 'histogram_weights', values: weightData(h) },
        mark: { type: 'line', point: { filled: true, size: 28 }, strokeWidth: 1.5 },
        encoding: {
          x: { field: 'g', type: 'quantitative', scale: { domain: [0, 1], nice: false } },
          y: { field: 'weight', type: 'quantitative', title: 'GHM-C weight (log scale)', scale: { type: 'log' }, axis: { orient: 'right', format: '~g' } },
          color,
          tooltip: [{ field: 'bin' }, { field: 'weight', format: '.3g' }],
        },
      },
    ],
    resolve: { scale: { y: 'independent' } },
  };
}

/** Each loss's share of its own total, per bin: how much of the loss easy examples (g near 0) carry. */
export function shareData(ghm: Pick<BinStats, 'bins' | 'edges' | 'lossByBin'>, gamma: number): Spec[] {
  const { edges, lossByBin } = ghm;
  const series: [string, number[]][] = [
    ['BCE', lossByBin.bce],
    [`focal (γ ${gamma})`, lossByBin['sigmoid-focal']],
    ['GHM-C', lossByBin.ghmc],
  ];
  const rows: Spec[] = [];
  for (const [loss, sums] of series) {
    const total = sums.reduce((a, b) => a + b, 0);
    for (let i = 0; i < ghm.bins; i++) {
      const g = (Math.min(edges[i]!, 1) + Math.min(edges[i + 1]!, 1)) / 2;
      rows.push({ bin: i, g, loss, share: total > 0 ? sums[i]! / total : 0 });
    }
  }
  return rows;
}

/** Dataset: `shares` ({@link shareData}). */
export function sharePanel(ghm: Pick<BinStats, 'bins' | 'edges' | 'lossByBin'>, gamma: number): Spec {
  return {
    name: 'shares',
    title: { text: 'Where each loss comes from: its share of the total by bin of g', anchor: 'start' },
    width: WIDTH,
    height: 200,
    data: { name: 'shares', values: shareData(ghm, gamma) },
    mark: { type: 'line', point: { size: 22 }, strokeWidth: 1.8 },
    encoding: {
      x: { field: 'g', type: 'quantitative', title: 'gradient norm g = |p − t| (bin centre)', scale: { domain: [0, 1], nice: false } },
      y: { field: 'share', type: 'quantitative', title: 'share of the loss', axis: { format: '.0%' } },
      color: {
        field: 'loss',
        type: 'nominal',
        title: null,
        scale: { range: [COLORS.bce, COLORS.focal, COLORS.ghmc] },
        sort: null,
      },
      tooltip: [{ field: 'loss' }, { field: 'bin' }, { field: 'share', format: '.2%' }],
    },
  };
}

/**
 * FL(p_t) = −α·(1 − p_t)^γ · ln p_t for each γ of {@link CURVE_GAMMAS} and the given one (marked),
 * computed by the library (logit of p_t, target 1); α null: no α (Lin et al.'s Figure 1). The
 * given γ's curve is labelled `γ = … (marked)`.
 */
export function curveData(gamma: number, alpha: number | null = null, marked = 'this batch'): Spec[] {
  const n = 200;
  const pt = new Float32Array(n);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    pt[i] = 0.005 + (0.99 * i) / (n - 1);
    x[i] = Math.log(pt[i]! / (1 - pt[i]!));
  }
  const ones = new Uint8Array(n).fill(1);
  const gammas = CURVE_GAMMAS.includes(gamma) ? CURVE_GAMMAS : [...CURVE_GAMMAS, gamma].sort((a, b) => a - b);
  return gammas.flatMap((g) => {
    const loss = sigmoidFocalLoss(x, ones, { alpha, gamma: g, reduction: 'none' }).loss;
    return Array.from(loss, (l, i) => ({ pt: pt[i], loss: l, gamma: `γ = ${g}${g === gamma ? ` (${marked})` : ''}`, batch: g === gamma }));
  });
}

/** Dataset: `curves` ({@link curveData}); `marked` names the given γ's curve in the legend. */
export function curvePanel(gamma: number, alpha: number | null = null, marked = 'this batch'): Spec {
  return {
    name: 'curves',
    title: { text: 'Focal loss against the probability of the true class (Lin et al., Fig. 1)', anchor: 'start' },
    width: WIDTH,
    height: 200,
    data: { name: 'curves', values: curveData(gamma, alpha, marked) },
    mark: { type: 'line', clip: true },
    encoding: {
      x: { field: 'pt', type: 'quantitative', title: 'probability of the true class p_t', scale: { domain: [0, 1], nice: false } },
      y: { field: 'loss', type: 'quantitative', title: alpha === null ? 'loss −(1 − p_t)^γ · ln p_t' : 'loss −α (1 − p_t)^γ · ln p_t', scale: { domain: [0, alpha === null ? 5 : Math.max(0.5, 5 * alpha)] } },
      color: { field: 'gamma', type: 'nominal', title: null, sort: null, scale: { scheme: { name: 'viridis', extent: [0, 0.8] } } },
      strokeWidth: { condition: { test: 'datum.batch', value: 3.5 }, value: 1.4 },
      strokeDash: { condition: { test: 'datum.batch', value: [1, 0] }, value: [5, 3] },
    },
  };
}

