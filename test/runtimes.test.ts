// The built package (dist/) in every runtime it promises: Deno, Bun, Chromium (a cross-origin
// isolated page, and a plain one where threads are unavailable) and Cloudflare workerd. Each
// runtime runs test/support/probe.mjs over every golden case (the focal family's through the
// extras module, focal-ghm/extras, loaded by `init({ extras })` as each runtime would load it)
// plus a pool, a wasm-memory batch and a stream; the outputs come back here and are judged by the
// same checks as in Node (test/support/checks.ts).
//
// The runtimes come from devDependencies (deno, bun, workerd, playwright-core); Chromium is the
// system's (apt-get install -y chromium; .ci/run installs it). A runtime that is missing skips
// its tests locally, with a warning; with FOCAL_GHM_RUNTIMES=all (set by .ci/run) it fails.

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from './support/exec';
import { binaryTargets, logits } from './helpers/random';
import { checkCase, goldenCases, type ProbeCase } from './support/checks';
import { decode, encode } from './support/probe.mjs';
import { postToWorker, workerdMissing, type WorkerModule } from './support/workerd';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const BIN = join(ROOT, 'node_modules', '.bin');
const REQUIRE_ALL = process.env.FOCAL_GHM_RUNTIMES === 'all';

type Results = { simd: boolean | null; results: Array<{ outputs?: unknown; error?: string }>; bytesError?: string | null; isolated?: boolean };

/** The golden cases and the extras, with the pool's expected thread count for this runtime. */
function plan(pool: { expectThreads: number; expectReason?: RegExp }): Array<[string, ProbeCase]> {
  const n = (1 << 17) + 3;
  const x = logits(n, 11);
  const t = binaryTargets(n, 12, 0.05);
  return [
    ...goldenCases(),
    ['pool, 2 threads asked for', { kind: 'pool', name: 'pool', threads: 2, logits: x, targets: t, ...pool }],
    ['batch in wasm memory', { kind: 'batch', name: 'batch', logits: x.subarray(0, 70_001), targets: t.subarray(0, 70_001) }],
    ['stream in pieces of 777', { kind: 'stream', name: 'stream', logits: x.subarray(0, 50_000), targets: t.subarray(0, 50_000), chunk: 777 }],
  ];
}

/** Registers one test per case, judging the results `run` produced in the runtime. */
function describeRuntime(
  name: string,
  missing: string | undefined,
  cases: Array<[string, ProbeCase]>,
  run: () => Promise<Results>,
  extra?: (r: Results) => void,
  scalar = false,
) {
  if (missing) {
    if (REQUIRE_ALL) it(`${name} is available`, () => expect.fail(`${name}: ${missing}`));
    else {
      console.warn(`runtimes.test: skipping ${name}: ${missing}`);
      describe.skip(name, () => it('(unavailable)', () => {}));
    }
    return;
  }
  describe(name, () => {
    let r: Results;
    beforeAll(async () => {
      r = await run();
      expect(r.results.length, `${name}: one result per case`).toBe(cases.length);
    }, 300_000);
    it(`loads the ${scalar ? 'scalar build, fetched from beside the bundle' : 'SIMD build'}`, () => {
      expect(r.simd).toBe(!scalar);
      extra?.(r);
    });
    cases.forEach(([label, c], i) => {
      it(label, () => {
        const res = r.results[i]!;
        if (res.error) expect.fail(`${name}: ${label} threw ${res.error}`);
        checkCase(c, res.outputs);
      });
    });
  });
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'focal-ghm-runtimes-'));
}

const distMissing = existsSync(join(DIST, 'index.js')) ? undefined : 'dist/ is not built (npm run build)';

// --------------------------------------------------------------------------------------------
// Deno and Bun: the same command-line host.
// --------------------------------------------------------------------------------------------

for (const [name, bin, args] of [
  ['Deno', join(BIN, 'deno'), ['run', '--allow-read', '--allow-write']],
  ['Bun', join(BIN, 'bun'), []],
] as const) {
  const cases = plan({ expectThreads: 2 });
  describeRuntime(name, distMissing ?? (existsSync(bin) ? undefined : `${bin} not found (npm install)`), cases, async () => {
    const dir = tempDir();
    try {
      const planFile = join(dir, 'plan.json');
      const resultsFile = join(dir, 'results.json');
      writeFileSync(planFile, encode({ cases: cases.map(([, c]) => c), init: {} }));
      const host = join(ROOT, 'test', 'runtimes', 'cli-host.mjs');
      const url = (f: string) => pathToFileURL(join(DIST, f)).href;
      await exec(bin, [...args, host, url('index.js'), url('extras.js'), planFile, resultsFile], 240_000);
      return decode(readFileSync(resultsFile, 'utf8')) as Results;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// --------------------------------------------------------------------------------------------
// Chromium through playwright-core: an isolated page (COOP + COEP), a plain one, and an isolated
// one whose Content-Security-Policy refuses blob: workers (the pool falls back to one thread).
// --------------------------------------------------------------------------------------------

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm' };

/** Serves the page, dist/ and the probe; `/isolated/…` and `/csp/…` with the cross-origin isolation headers. */
function pageServer(plans: Record<string, string>): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const [, scope, ...rest] = url.pathname.split('/');
    const page = scope === 'isolated' || scope === 'plain' || scope === 'csp';
    const headers: Record<string, string> =
      scope === 'isolated' || scope === 'csp' ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
    if (scope === 'csp') headers['Content-Security-Policy'] = "script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; worker-src 'self'";
    let body: string | Buffer | undefined;
    let file = '';
    if (page && rest.join('/') === 'page.html') file = join(ROOT, 'test', 'runtimes', 'page.html');
    else if (page && rest.join('/') === 'plan') body = plans[scope!];
    else if (scope === 'dist' && rest.length >= 1 && !rest.includes('..')) file = join(DIST, ...rest);
    else if (url.pathname === '/test/support/probe.mjs') file = join(ROOT, 'test', 'support', 'probe.mjs');
    if (file && existsSync(file)) body = readFileSync(file);
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/json', ...headers }).end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address() as { port: number };
    resolve({ server, origin: `http://127.0.0.1:${a.port}` });
  }));
}

{
  const isolatedCases = plan({ expectThreads: 2 });
  const plainCases = plan({ expectThreads: 1, expectReason: /cross-origin isolated/ }).filter(([, c]) => c.kind !== 'sigmoid_focal' && c.kind !== 'softmax_focal');
  const cspCases = plan({ expectThreads: 1, expectReason: /Content-Security-Policy without blob: in worker-src/ }).filter(([, c]) => c.kind === 'pool');
  const missing = distMissing ?? (CHROMIUM ? undefined : 'no Chromium (apt-get install -y chromium, or set CHROMIUM_PATH)');
  let browser: { close(): Promise<void>; newPage(): Promise<{ goto(u: string): Promise<unknown>; evaluate<T>(f: () => T): Promise<T>; on(e: string, f: (m: { text(): string }) => void): void }> } | undefined;
  let served: { server: Server; origin: string } | undefined;
  const open = async () => {
    if (browser) return;
    served = await pageServer({
      isolated: encode({ cases: isolatedCases.map(([, c]) => c), init: {} }),
      // What an engine without SIMD does: fetch the scalar build from beside dist/index.js.
      plain: encode({ cases: plainCases.map(([, c]) => c), init: { simd: false } }),
      csp: encode({ cases: cspCases.map(([, c]) => c), init: {} }),
    });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
  };
  const runPage = async (scope: string): Promise<Results> => {
    await open();
    const page = await browser!.newPage();
    const log: string[] = [];
    page.on('console', (m) => log.push(m.text()));
    page.on('pageerror', (m) => log.push(String(m)));
    await page.goto(`${served!.origin}/${scope}/page.html`);
    try {
      return decode(await page.evaluate(() => (window as unknown as { probeResults: Promise<string> }).probeResults)) as Results;
    } catch (e) {
      throw new Error(`Chromium ${scope} page failed: ${(e as Error).message}\n${log.join('\n')}`);
    }
  };
  afterAll(async () => {
    await browser?.close();
    served?.server.close();
  });
  describeRuntime('Chromium, cross-origin isolated page', missing, isolatedCases, () => runPage('isolated'), (r) => expect(r.isolated).toBe(true));
  describeRuntime('Chromium, page without cross-origin isolation, scalar build', missing, plainCases, () => runPage('plain'), (r) => expect(r.isolated).toBe(false), true);
  describeRuntime('Chromium, isolated page whose CSP refuses blob: workers', missing, cspCases, () => runPage('csp'), (r) => expect(r.isolated).toBe(true));
}

// --------------------------------------------------------------------------------------------
// Cloudflare workerd: the package's workerd entry, which imports the shipped .wasm file as a module.
// --------------------------------------------------------------------------------------------

{
  const cases = plan({ expectThreads: 1, expectReason: /no worker threads/ });
  describeRuntime('Cloudflare workerd', distMissing ?? workerdMissing, cases, async () => {
    // dist/ as wrangler uploads it: the ES modules by their file names, and the SIMD builds that
    // dist/workerd.js and dist/extras-workerd.js import as wasm modules.
    const modules: WorkerModule[] = [
      { name: 'worker.mjs', file: join(ROOT, 'test', 'runtimes', 'workerd-host.mjs'), kind: 'esModule' },
      { name: 'probe.mjs', file: join(ROOT, 'test', 'support', 'probe.mjs'), kind: 'esModule' },
      { name: 'wasm/focal_ghm_simd.wasm', file: join(DIST, 'wasm', 'focal_ghm_simd.wasm'), kind: 'wasm' },
      { name: 'wasm/focal_ghm_extras_simd.wasm', file: join(DIST, 'wasm', 'focal_ghm_extras_simd.wasm'), kind: 'wasm' },
      ...readdirSync(DIST).filter((f) => f.endsWith('.js')).map((f): WorkerModule => ({ name: f, file: join(DIST, f), kind: 'esModule' })),
    ];
    const r = decode(await postToWorker(modules, encode({ cases: cases.map(([, c]) => c) }))) as Results & { coreError: string | null };
    // The core entry cannot compile its embedded build there, and says what to do instead.
    expect(r.coreError, "the core entry's init() in workerd").toMatch(/"workerd" condition/);
    expect(r.coreError).toMatch(/import wasm from 'focal-ghm\/simd\.wasm'/);
    return r;
  });
}
