// What `score` prints: a readable table, or one JSON object (--json), and the terminal plot
// (--plot -): sparkline bars over the bins.

import type { Inputs } from './inputs.js';
import type { LossName, ScoreOptions, ScoreResult } from './score.js';

export interface ReportContext {
  inputs: Inputs;
  options: ScoreOptions;
  seconds: number;
}

/** JSON has no NaN or Infinity: such a loss (a mean over no elements, NaN logits) is `null`. */
const num = (v: number): number | null => (Number.isFinite(v) ? v : null);

export function toJson(r: ScoreResult, c: ReportContext): Record<string, unknown> {
  const o = c.options;
  const losses: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(r.losses)) losses[k] = num(v);
  // The family's options only when one of its losses was computed: default outputs stay as they were.
  const family = {
    ...(o.poly1 !== 0 ? { poly1: o.poly1 } : {}),
    ...('quality-focal' in r.losses ? { beta: o.beta } : {}),
    ...('varifocal' in r.losses ? { vflAlpha: o.vflAlpha } : {}),
  };
  return {
    elements: r.elements,
    rows: r.rows,
    classes: r.classes,
    targets: r.mode === 'labels' ? 'class-indices' : r.mode === 'positions' ? 'per-row' : 'per-logit',
    positives: r.mode === 'positions' ? null : r.positives,
    losses,
    skipped: Object.fromEntries(r.skipped.map((s) => [s.loss, s.why])),
    options: { alpha: o.alpha, gamma: o.gamma, bins: o.bins, momentum: o.momentum, reduction: o.reduction, avgFactor: r.avgFactor ?? null, ...family },
    ghm: r.ghm
      ? {
          bins: r.ghm.bins,
          edges: r.ghm.edges,
          counts: r.ghm.counts,
          positives: r.ghm.positives,
          negatives: r.ghm.negatives,
          weights: r.ghm.weights,
          lossByBin: r.ghm.lossByBin,
          nan: r.ghm.nan,
        }
      : null,
    inputs: [c.inputs.logits, c.inputs.targets, ...(c.inputs.scores ? [c.inputs.scores] : [])].map((a) => ({ path: a.path, format: a.format, dtype: a.dtype, shape: a.shape })),
    threads: r.threads,
    seconds: c.seconds,
  };
}

const int = (v: number): string => v.toLocaleString('en-US');
const fmt = (v: number): string => (!Number.isFinite(v) ? String(v) : v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? v.toFixed(6) : v.toExponential(4));
const pct = (part: number, whole: number): string => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '–');
/** A share that may be tiny (positives among all elements): two significant digits. */
const share = (part: number, whole: number): string => (whole > 0 ? `${Number(((100 * part) / whole).toPrecision(2))}%` : '–');

/** How a focal loss was reduced: the sum, the mean, or the sum over the avgFactor. */
const reduced = (r: ScoreResult, o: ScoreOptions, over: string): string =>
  o.reduction === 'sum' ? 'sum' : r.avgFactor !== undefined ? `sum / ${o.avgFactor === 'positives' ? `${int(r.avgFactor)} positives` : r.avgFactor}` : `mean over ${over}`;

const poly = (o: ScoreOptions): string => (o.poly1 !== 0 ? `, poly-1 ε ${o.poly1}` : '');

const LOSS_NOTES: Record<LossName, (r: ScoreResult, o: ScoreOptions) => string> = {
  'sigmoid-focal': (r, o) => `${o.alpha === null ? 'no α' : `α ${o.alpha}`}, γ ${o.gamma}${poly(o)}, ${reduced(r, o, 'elements')}`,
  ghmc: (_r, o) => `${o.bins} bins, momentum ${o.momentum}, mean over elements`,
  'softmax-focal': (r, o) => `${o.alpha === null ? 'no α' : `α ${o.alpha}`}, γ ${o.gamma}${poly(o)}, ${reduced(r, o, 'rows')}`,
  'quality-focal': (r, o) => `β ${o.beta}, ${reduced(r, o, 'rows')}`,
  varifocal: (r, o) => `α ${o.vflAlpha}, γ ${o.gamma}, IoU-weighted, ${reduced(r, o, 'elements')}`,
  'distribution-focal': (r, o) => `over 0…${r.classes - 1}, ${reduced(r, o, 'rows')}`,
};

export function toTable(r: ScoreResult, c: ReportContext): string {
  const { inputs: i, options: o } = c;
  const lines: string[] = [];
  const describe = (a: Inputs['logits']): string => `${a.path}  ${a.dtype} [${a.shape.join(', ')}] (${a.format})`;
  const timing = `${c.seconds.toFixed(2)} s on ${r.threads} thread${r.threads > 1 ? 's' : ''}`;
  lines.push(`logits   ${describe(i.logits)}`);
  lines.push(
    `targets  ${describe(i.targets)}${r.mode === 'labels' ? `, class indices (${r.classes} = background)` : r.mode === 'positions' ? `, one position in [0, ${r.classes - 1}) per row` : ''}`,
  );
  if (i.scores) lines.push(`scores   ${describe(i.scores)}`);
  if (r.mode === 'positions') lines.push(`${int(r.elements)} logits (${int(r.rows)} rows × ${r.classes}); ${timing}`);
  else lines.push(`${int(r.elements)} elements (${int(r.rows)} rows × ${r.classes}), ${int(r.positives)} positive (${share(r.positives, r.elements)}); ${timing}`);
  lines.push('');
  // The names' column: 15 wide, wider for distribution-focal.
  const w = Math.max(15, ...[...Object.keys(r.losses), ...r.skipped.map((s) => s.loss)].map((k) => k.length + 2));
  lines.push(`${'loss'.padEnd(w)}${'value'.padStart(14)}   options`);
  for (const [k, v] of Object.entries(r.losses) as [LossName, number][]) lines.push(`${k.padEnd(w)}${fmt(v).padStart(14)}   ${LOSS_NOTES[k](r, o)}`);
  for (const s of r.skipped) lines.push(`${s.loss.padEnd(w)}${'–'.padStart(14)}   skipped: ${s.why}`);
  const g = r.ghm;
  if (!g) return lines.join('\n');
  lines.push('');
  const total = (a: number[]): number => a.reduce((x, y) => x + y, 0);
  const [bce, focal, ghmc] = [g.lossByBin.bce, g.lossByBin['sigmoid-focal'], g.lossByBin.ghmc].map(total) as [number, number, number];
  lines.push(`by bin of the gradient norm g = |p − t| (GHM-C's ${g.bins} bins; share = the bin's part of each loss)`);
  lines.push(`${'g from'.padEnd(8)}${'positives'.padStart(12)}${'negatives'.padStart(14)}${'GHM weight'.padStart(12)}${'BCE'.padStart(8)}${'focal'.padStart(8)}${'GHM-C'.padStart(8)}`);
  for (let b = 0; b < g.bins; b++) {
    lines.push(
      `${g.edges[b]!.toFixed(3).padEnd(8)}${int(g.positives[b]!).padStart(12)}${int(g.negatives[b]!).padStart(14)}` +
        `${(g.weights[b]! > 0 ? g.weights[b]!.toPrecision(3) : '–').padStart(12)}` +
        `${pct(g.lossByBin.bce[b]!, bce).padStart(8)}${pct(g.lossByBin['sigmoid-focal'][b]!, focal).padStart(8)}${pct(g.lossByBin.ghmc[b]!, ghmc).padStart(8)}`,
    );
  }
  if (g.nan > 0) lines.push(`${int(g.nan)} elements with NaN logits are in no bin`);
  return lines.join('\n');
}

const BARS = '▁▂▃▄▅▆▇█';

/**
 * One character per value, heights relative to the row's maximum; blank for values ≤ 0. On a log
 * scale (counts and weights span decades) the smallest positive value gets the lowest bar.
 */
export function sparkline(values: number[], log: boolean): string {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return ' '.repeat(values.length);
  const max = Math.max(...positive);
  const min = Math.min(...positive);
  const level = (v: number): number => {
    if (!log) return v / max;
    return max === min ? 1 : (Math.log(v / min) / Math.log(max / min)) * (1 - 1 / BARS.length) + 1 / BARS.length;
  };
  return values.map((v) => (v > 0 ? BARS[Math.max(0, Math.min(BARS.length - 1, Math.ceil(level(v) * BARS.length) - 1))] : ' ')).join('');
}

/** The figure's panels as sparklines over the bins, for `--plot -`. */
export function terminalPlot(r: ScoreResult, c: ReportContext): string {
  const g = r.ghm;
  if (!g) return '';
  const rows: [string, number[], boolean, string][] = [
    ['negatives', g.negatives, true, `${int(g.negatives.reduce((a, b) => a + b, 0))} (log scale)`],
    ['positives', g.positives, true, `${int(g.positives.reduce((a, b) => a + b, 0))} (log scale)`],
    ['GHM-C weight', g.weights, true, 'log scale'],
    ['BCE share', g.lossByBin.bce, false, ''],
    [`focal share`, g.lossByBin['sigmoid-focal'], false, `γ ${c.options.gamma}`],
    ['GHM-C share', g.lossByBin.ghmc, false, ''],
  ];
  const ruler = g.bins >= 2 ? `${'0'.padEnd(g.bins - 1)}1` : '';
  const lines = [`${''.padEnd(14)}g = |p − t| in ${g.bins} bins`, `${''.padEnd(14)}${ruler}`];
  for (const [name, values, log, note] of rows) lines.push(`${name.padEnd(14)}${sparkline(values, log)}  ${note}`);
  return lines.join('\n');
}
