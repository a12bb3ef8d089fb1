// The page's charts: the training curves (specs here), and the command's histogram and focal-curve
// panels (cli/src/specs.ts), embedded with vega-embed and fed new rows through named datasets.

import embed from 'vega-embed';
import type { View } from 'vega';
import { MODELS } from './protocol';

type Spec = Record<string, unknown>;

const FONT = 'system-ui, -apple-system, Segoe UI, DejaVu Sans, sans-serif';
const LOSS_COLORS = { domain: [...MODELS], range: ['#9d9d9d', '#e45756', '#54a24b'] };

export const lossSpec = (): Spec => ({
  width: 'container',
  height: 220,
  data: { name: 'losses', values: [] },
  mark: { type: 'line', strokeWidth: 1.6, clip: true },
  encoding: {
    x: { field: 'step', type: 'quantitative', title: 'step' },
    y: { field: 'loss', type: 'quantitative', title: 'training loss (log scale)', scale: { type: 'log' }, axis: { tickCount: 5, format: '~g', labelOverlap: 'greedy' } },
    color: { field: 'model', type: 'nominal', title: null, scale: LOSS_COLORS },
  },
});

export const metricsSpec = (): Spec => ({
  width: 'container',
  height: 220,
  data: { name: 'metrics', values: [] },
  mark: { type: 'line', strokeWidth: 1.6, point: { size: 14 } },
  encoding: {
    x: { field: 'step', type: 'quantitative', title: 'step' },
    y: { field: 'value', type: 'quantitative', title: null, scale: { domain: [0, 1] } },
    color: { field: 'model', type: 'nominal', title: null, scale: LOSS_COLORS },
    strokeDash: { field: 'metric', type: 'nominal', title: null, sort: ['average precision', 'precision at 0.5', 'recall at 0.5'], legend: { symbolType: 'stroke', symbolStrokeColor: '#555', symbolStrokeWidth: 2 } },
  },
});

/** Embeds a Vega-Lite spec; returns its view. */
export async function show(el: string, spec: Spec): Promise<View> {
  // Legends below the plot: the charts fit their container's width.
  const config = { font: FONT, view: { stroke: null }, legend: { orient: 'bottom', direction: 'horizontal', columns: 4 } };
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config, autosize: { type: 'fit-x', contains: 'padding' }, ...spec };
  // Errors only: empty datasets before the first step are expected, not worth a warning.
  const { view } = await embed(el, full as never, { actions: false, renderer: 'svg', logLevel: 1 });
  return view;
}

/** Replaces a named dataset's rows and redraws. */
export function setRows(view: View, name: string, rows: object[]): Promise<View> {
  return view.data(name, rows).runAsync();
}
