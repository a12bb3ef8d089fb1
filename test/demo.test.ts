// The demo page (issue #19): built with Vite, opened in headless Chromium (playwright-core). It
// trains in a Web Worker with focal-ghm/tfjs; the test moves the γ slider with the keyboard,
// checks the numbers the page shows against the library, waits for training steps to advance,
// and saves a screenshot (test/tmp/demo.png) for a person to look at.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLib, type Lib } from './support/lib';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEMO = join(ROOT, 'demo');
const OUT = join(DEMO, 'dist');
const SHOT = join(ROOT, 'test', 'tmp', 'demo.png');
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const REQUIRE_ALL = process.env.FOCAL_GHM_RUNTIMES === 'all';
if (!CHROMIUM && !REQUIRE_ALL) console.warn('test/demo.test.ts: no Chromium (apt-get install -y chromium, or set CHROMIUM_PATH); skipping');
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.css': 'text/css' };

type Page = import('playwright-core').Page;
type Browser = import('playwright-core').Browser;

/** Serves the built page (demo/dist) as a static site. */
function serve(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = resolve(OUT, `.${path === '/' ? '/index.html' : path}`);
    if (!file.startsWith(OUT) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done({ server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

(CHROMIUM || REQUIRE_ALL ? describe : describe.skip)('the demo page', () => {
  let lib: Lib;
  let browser: Browser | undefined;
  let served: { server: Server; origin: string } | undefined;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    expect(CHROMIUM, 'Chromium is required in CI').toBeDefined();
    lib = await loadLib('simd');
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], { cwd: DEMO, stdio: 'pipe' });
    served = await serve();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1320, height: 1300 } });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${served.origin}/`);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    served?.server.close();
  });

  const text = (id: string) => page.textContent(`[id="${id}"]`).then((t) => t ?? '');

  it('loads the kernels and a TensorFlow.js backend in the worker, and starts training', async () => {
    await page.waitForFunction(() => Number(document.getElementById('step')?.textContent) >= 1, undefined, { timeout: 60_000 });
    expect(await text('backend')).toMatch(/^(wasm|cpu)$/);
    expect(await text('throughput')).toMatch(/^[\d,]+ examples\/s$/);
  });

  it('moving the γ slider updates the focal loss the page shows, as the library computes it', async () => {
    const expected = (gamma: number, alpha: number) => {
      const pt = [0.1, 0.5, 0.9];
      const x = Float32Array.from(pt, (p) => Math.log(p / (1 - p)));
      return Array.from(lib.sigmoidFocalLoss(x, new Uint8Array(3).fill(1), { gamma, alpha, reduction: 'none' }).loss, (v) => v.toPrecision(6));
    };
    const shown = async () => [await text('fl-0.1'), await text('fl-0.5'), await text('fl-0.9')];
    expect(await shown()).toEqual(expected(2, 0.25));
    await page.focus('#gamma');
    for (let i = 0; i < 15; i++) await page.keyboard.press('ArrowRight'); // 2 → 3.5 in steps of 0.1
    expect(await text('gamma-value')).toBe('3.5');
    expect(await shown()).toEqual(expected(3.5, 0.25));
    await page.focus('#alpha');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight'); // 0.25 → 0.5
    expect(await shown()).toEqual(expected(3.5, 0.5));
    await page.waitForFunction(() => document.querySelector('#chart-curve')?.textContent?.includes('γ = 3.5 (focal model)'), undefined, { timeout: 10_000 });
    // The y axis follows α: up to 5α = 2.5 now (1.25 at α = 0.25).
    await page.waitForFunction(() => /Y-axis[^"]* to 2\.5/.test(document.querySelector('#chart-curve')?.innerHTML ?? ''), undefined, { timeout: 10_000 });
  });

  it('training steps advance; losses, held-out metrics and the histogram are drawn; a screenshot', async () => {
    const before = Number(await text('step'));
    const tensorsBefore = await page.getAttribute('#step', 'data-tensors');
    await page.waitForFunction((s) => Number(document.getElementById('step')?.textContent) >= s + 25, before, { timeout: 90_000 });
    // The worker's loop leaks no tensor: as many alive after 25 more steps.
    expect(await page.getAttribute('#step', 'data-tensors')).toBe(tensorsBefore);
    // Loss curves: one line per model; metrics after the first evaluation; histogram bars.
    expect(await page.locator('#chart-loss path[aria-roledescription="line mark"]').count()).toBe(3);
    expect(await page.locator('#chart-metrics path[aria-roledescription="line mark"]').count()).toBe(9);
    expect(await page.locator('#chart-histogram .bars_marks path').count()).toBeGreaterThan(3);
    mkdirSync(join(ROOT, 'test', 'tmp'), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
    console.log(`demo screenshot: ${SHOT}`);
    expect(errors).toEqual([]);
  });
});
