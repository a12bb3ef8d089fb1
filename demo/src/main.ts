// The page: starts the training worker, draws what it reports, and the focal curve for the γ and
// α sliders (computed here by focal-ghm itself, the numbers shown beside the sliders included).

import { init, sigmoidFocalLoss } from 'focal-ghm';
import { curveData, curvePanel, histogramData, histogramPanel, weightData } from '../../cli/src/specs';
import { lossSpec, metricsSpec, setRows, show } from './charts';
import { MODELS, type FromWorker, type ModelName, type ToWorker } from './protocol';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** FL at p_t = 0.1, 0.5, 0.9 for a positive (α) example: what the page shows beside the sliders. */
export function focalReadouts(gamma: number, alpha: number): number[] {
  const pt = [0.1, 0.5, 0.9];
  const x = Float32Array.from(pt, (p) => Math.log(p / (1 - p)));
  return Array.from(sigmoidFocalLoss(x, new Uint8Array(3).fill(1), { gamma, alpha, reduction: 'none' }).loss);
}

async function start(): Promise<void> {
  await init();
  const gamma = $<HTMLInputElement>('gamma');
  const alpha = $<HTMLInputElement>('alpha');
  const settings = () => ({ gamma: Number(gamma.value), alpha: Number(alpha.value) });
  const emptyBins = { bins: 10, edges: Array.from({ length: 11 }, (_, i) => i / 10), positives: new Array(10).fill(0), negatives: new Array(10).fill(0), weights: new Array(10).fill(0) };
  const [lossView, metricsView, histView, firstCurveView] = await Promise.all([
    show('#chart-loss', lossSpec()),
    show('#chart-metrics', metricsSpec()),
    show('#chart-histogram', { ...histogramPanel(emptyBins), width: 'container', title: null }),
    show('#chart-curve', { ...curvePanel(settings().gamma, settings().alpha, 'focal model'), width: 'container', title: null }),
  ]);

  let curveView = firstCurveView;
  const worker = new Worker(new URL('./train.worker.ts', import.meta.url), { type: 'module' });
  const send = (m: ToWorker) => worker.postMessage(m);
  // A worker that cannot load (no module workers: Firefox < 114; a CSP; a missing asset) says so.
  worker.addEventListener('error', (e) => ($('backend').textContent = `failed: the training worker did not start (${e.message || 'no details'})`));

  let curveAlpha = settings().alpha;
  const onSliders = async () => {
    const s = settings();
    $('gamma-value').textContent = String(s.gamma);
    $('alpha-value').textContent = String(s.alpha);
    focalReadouts(s.gamma, s.alpha).forEach((v, i) => ($(`fl-${[0.1, 0.5, 0.9][i]}`).textContent = v.toPrecision(6)));
    send({ type: 'focal', ...s });
    // γ changes the data; α also the y axis (the panel's domain follows α), so it redraws.
    if (s.alpha === curveAlpha) void setRows(curveView, 'curves', curveData(s.gamma, s.alpha, 'focal model'));
    else {
      curveAlpha = s.alpha;
      curveView.finalize();
      curveView = await show('#chart-curve', { ...curvePanel(s.gamma, s.alpha, 'focal model'), width: 'container', title: null });
    }
  };
  gamma.addEventListener('input', () => void onSliders());
  alpha.addEventListener('input', () => void onSliders());
  void onSliders();

  const toggle = $<HTMLButtonElement>('toggle');
  let running = false;
  toggle.addEventListener('click', () => {
    running = !running;
    toggle.textContent = running ? 'Pause' : 'Train';
    send({ type: 'run', running });
  });

  const lossRows: object[] = [];
  const metricRows: object[] = [];
  let dirty = false;
  worker.onmessage = (e: MessageEvent<FromWorker>) => {
    const m = e.data;
    if (m.type === 'ready') {
      $('backend').textContent = m.backend;
      toggle.disabled = false;
      toggle.textContent = 'Train';
      toggle.click(); // start right away
    } else if (m.type === 'failed') {
      $('backend').textContent = `failed: ${m.message}`;
    } else if (m.type === 'step') {
      $('step').textContent = String(m.step);
      $('throughput').textContent = `${Math.round(m.throughput).toLocaleString('en-US')} examples/s`;
      $('step').dataset.tensors = String(m.tensors);
      for (const model of MODELS) lossRows.push({ step: m.step, model, loss: m.losses[model as ModelName] });
      dirty = true;
    } else if (m.type === 'eval') {
      for (const model of MODELS) {
        const r = m.metrics[model as ModelName];
        metricRows.push({ step: m.step, model, metric: 'average precision', value: r.ap }, { step: m.step, model, metric: 'precision at 0.5', value: r.precision }, { step: m.step, model, metric: 'recall at 0.5', value: r.recall });
      }
      void setRows(metricsView, 'metrics', metricRows);
    } else if (m.type === 'histogram') {
      void histView.data('histogram_bars', histogramData(m)).data('histogram_weights', weightData(m)).runAsync();
    }
  };
  // Loss curves redraw at most a few times a second, however fast the steps come.
  setInterval(() => {
    if (dirty) void setRows(lossView, 'losses', lossRows);
    dirty = false;
  }, 250);
}

start().catch((e: unknown) => {
  $('backend').textContent = `failed: ${e instanceof Error ? e.message : String(e)}`;
});
