// The package as a user installs it: `npm pack`'s tarball, unpacked into fresh projects.
// - a page that calls only init + sigmoidFocalLoss, bundled by esbuild: within its gzip budget,
//   and it runs;
// - a Worker bundled as wrangler bundles (the `workerd` condition, .wasm imports uploaded as
//   modules): within the upload budget, and it runs in workerd;
// - the wasm builds within their budgets;
// - test/types/usage.ts type-checks in strict projects, with the oldest TypeScript we support
//   (test/typescript-5.0) and the current one;
// - publint and @arethetypeswrong/cli find nothing wrong with the tarball;
// - focal-ghm/tfjs, with @tensorflow/tfjs-core installed beside it, shares the core that
//   `import { init } from 'focal-ghm'` initializes, from ESM, CJS and an esbuild bundle, and its
//   declarations (test/types/tfjs.ts) type-check.
// Sizes are deterministic for a given build, so the budgets are tests, not benchmarks.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorker, runWorker, workerdMissing, type WorkerBundle } from './support/workerd';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/** Budgets (issue #16): bytes. */
const BUDGET = {
  pageGzip: 100_000,
  workerUpload: 400 * 1024,
  simdWasm: 270_000,
  scalarWasm: 450_000,
  // The extras module (focal-ghm/extras), loaded only by init({ extras }): issue #21's family,
  // most of it Poly-1's copy of the sigmoid kernel's variants.
  extrasSimdWasm: 310_000,
  extrasScalarWasm: 510_000,
};

/** Each TypeScript we type-check against, with an @types/node it supports. */
const TYPESCRIPTS = {
  '5.0 (oldest supported)': join(ROOT, 'test', 'typescript-5.0', 'node_modules'),
  current: join(ROOT, 'node_modules'),
};

let work: string;
let tarball: string;
/** A fresh project with the tarball installed: node_modules/focal-ghm. */
let project: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'focal-ghm-package-'));
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  tarball = join(work, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  project = join(work, 'project');
  const pkg = join(project, 'node_modules', 'focal-ghm');
  mkdirSync(pkg, { recursive: true });
  await run('tar', ['xzf', tarball, '-C', pkg, '--strip-components=1']);
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Writes `text` to `name` in the project; returns its path. */
function projectFile(name: string, text: string): string {
  const file = join(project, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

const FIRST_CALL = `const r = sigmoidFocalLoss(Float32Array.of(2, -1, 0.5), Uint8Array.of(1, 0, 1), { grad: true });`;

describe('a page that calls init and sigmoidFocalLoss (esbuild, minified)', () => {
  let code: Uint8Array;
  beforeAll(async () => {
    const entry = projectFile('page.js', `import { init, sigmoidFocalLoss } from 'focal-ghm';\nconst rt = await init();\n${FIRST_CALL}\nconsole.log(JSON.stringify({ simd: rt.simd, loss: r.loss }));\n`);
    const out = await build({ entryPoints: [entry], bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
    code = out.outputFiles[0]!.contents;
  });

  it(`is at most ${BUDGET.pageGzip} bytes gzipped`, () => {
    const gz = gzipSync(code).length;
    console.log(`page bundle: ${code.length} B, ${gz} B gzip (budget ${BUDGET.pageGzip})`);
    expect(gz).toBeLessThanOrEqual(BUDGET.pageGzip);
  });

  it('holds none of the extras module (focal-ghm/extras is imported only by pages that use it)', () => {
    expect(Buffer.from(code).toString()).not.toContain('focal_ghm_extras');
  });

  it('runs (in Node, as an ES module)', async () => {
    const file = projectFile('page.bundle.mjs', Buffer.from(code).toString());
    const { stdout } = await run(process.execPath, [file]);
    const r = JSON.parse(stdout) as { simd: boolean; loss: number };
    expect(r.simd).toBe(true);
    expect(r.loss).toBeCloseTo(0.011445936, 7);
  });
});

describe('a page that loads the extras and calls qualityFocalLoss (esbuild, minified)', () => {
  it('runs (in Node, as an ES module), and says how large the extras make it', async () => {
    const entry = projectFile(
      'page-extras.js',
      `import { init, qualityFocalLoss } from 'focal-ghm';
import { extras } from 'focal-ghm/extras';
const rt = await init({ extras });
const r = qualityFocalLoss(Float32Array.of(-2, 1.5, -3, -1, -2, -4), { labels: Int32Array.of(1, 3), scores: Float32Array.of(0.8, 0), numClasses: 3 });
console.log(JSON.stringify({ extras: rt.extras, loss: r.loss }));
`,
    );
    const out = await build({ entryPoints: [entry], bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
    const code = out.outputFiles[0]!.contents;
    console.log(`page bundle with the extras: ${code.length} B, ${gzipSync(code).length} B gzip`);
    const { stdout } = await run(process.execPath, [projectFile('page-extras.bundle.mjs', Buffer.from(code).toString())]);
    const r = JSON.parse(stdout) as { extras: boolean; loss: number };
    expect(r.extras).toBe(true);
    // Σ over the 6 elements of bce(x, y)·|y − σ(x)|² (float64), over 2 rows.
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const ys = [0, 0.8, 0, 0, 0, 0];
    const ref = [-2, 1.5, -3, -1, -2, -4].reduce((s, x, i) => s + (Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))) - x * ys[i]!) * (ys[i]! - sig(x)) ** 2, 0) / 2;
    expect(r.loss).toBeCloseTo(ref, 7);
  });
});

describe('a Worker, bundled as wrangler bundles it', () => {
  let w: WorkerBundle;
  beforeAll(async () => {
    const entry = projectFile(
      'worker.js',
      `import { init, sigmoidFocalLoss } from 'focal-ghm';
export default {
  async fetch() {
    const rt = await init();
    ${FIRST_CALL}
    return Response.json({ simd: rt.simd, loss: r.loss, grad: Array.from(r.grad) });
  },
};
`,
    );
    w = await bundleWorker({ entryPoints: [entry] }, project);
  });

  it('imports the SIMD build as a module and embeds no base64 build', () => {
    expect(w.wasm.map((m) => m.name)).toEqual(['focal_ghm_simd.wasm']);
    expect(w.js.length, 'the bundle holds no embedded wasm').toBeLessThan(100_000);
  });

  it(`uploads at most ${BUDGET.workerUpload} bytes`, () => {
    const wasm = w.wasm.reduce((s, m) => s + statSync(m.file).size, 0);
    const upload = w.js.length + wasm;
    console.log(`Worker upload: ${w.js.length} B script + ${wasm} B wasm = ${upload} B (budget ${BUDGET.workerUpload})`);
    expect(upload).toBeLessThanOrEqual(BUDGET.workerUpload);
  });

  it.skipIf(workerdMissing)('runs in workerd, with init() and no options', async () => {
    const r = JSON.parse(await runWorker(w)) as { simd: boolean; loss: number; grad: number[] };
    expect(r.simd).toBe(true);
    expect(r.loss).toBeCloseTo(0.011445936, 7);
    expect(r.grad).toHaveLength(3);
  });
});

describe('a Worker with the extras (the workerd condition of focal-ghm/extras)', () => {
  let w: WorkerBundle;
  beforeAll(async () => {
    const entry = projectFile(
      'worker-extras.js',
      `import { init, varifocalLoss } from 'focal-ghm';
import { extras } from 'focal-ghm/extras';
export default {
  async fetch() {
    const rt = await init({ extras });
    const r = varifocalLoss(Float32Array.of(1.2, -0.5, -3), Float32Array.of(0.9, 0, 0), { grad: true });
    return Response.json({ extras: rt.extras, loss: r.loss, grad: Array.from(r.grad) });
  },
};
`,
    );
    w = await bundleWorker({ entryPoints: [entry] }, project);
  });

  it('imports both modules as module files and embeds no base64 build', () => {
    expect(w.wasm.map((m) => m.name).sort()).toEqual(['focal_ghm_extras_simd.wasm', 'focal_ghm_simd.wasm']);
    expect(w.js.length, 'the bundle holds no embedded wasm').toBeLessThan(100_000);
  });

  it.skipIf(workerdMissing)('runs in workerd', async () => {
    const r = JSON.parse(await runWorker(w)) as { extras: boolean; loss: number; grad: number[] };
    expect(r.extras).toBe(true);
    expect(r.loss).toBeGreaterThan(0);
    expect(r.grad).toHaveLength(3);
  });
});

describe('the wasm builds', () => {
  it.each([
    ['focal_ghm_simd.wasm', BUDGET.simdWasm],
    ['focal_ghm_scalar.wasm', BUDGET.scalarWasm],
    ['focal_ghm_extras_simd.wasm', BUDGET.extrasSimdWasm],
    ['focal_ghm_extras_scalar.wasm', BUDGET.extrasScalarWasm],
  ])('%s is at most %i bytes', (file, budget) => {
    const size = statSync(join(project, 'node_modules', 'focal-ghm', 'dist', 'wasm', file)).size;
    console.log(`${file}: ${size} B (budget ${budget})`);
    expect(size).toBeLessThanOrEqual(budget);
  });
});

describe('the declarations in a strict project', () => {
  const configs = {
    'NodeNext, with @types/node': { module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'] },
    'Bundler, no @types': { module: 'ESNext', moduleResolution: 'Bundler', types: [] },
  };
  // usage.ts: the core, with no DOM typings. tfjs.ts: the adapter with @tensorflow/tfjs-core,
  // whose declarations need the DOM library.
  const files = { 'usage.ts': { lib: ['ES2022'], tfjs: false }, 'tfjs.ts': { lib: ['ES2022', 'DOM'], tfjs: true } };
  for (const [tsName, modules] of Object.entries(TYPESCRIPTS)) {
    for (const [configName, resolution, [file, { lib, tfjs }]] of Object.entries(configs).flatMap(([c, r]) => Object.entries(files).map((f) => [c, r, f] as const))) {
      it(`test/types/${file} type-checks with TypeScript ${tsName}, ${configName}`, async () => {
        // A project of its own beside the package: its @types/node is the one of this TypeScript.
        const dir = `types-${Object.keys(TYPESCRIPTS).indexOf(tsName)}-${Object.keys(configs).indexOf(configName)}-${file.replace('.ts', '')}`;
        mkdirSync(join(project, dir, 'node_modules', '@types'), { recursive: true });
        symlinkSync(join(project, 'node_modules', 'focal-ghm'), join(project, dir, 'node_modules', 'focal-ghm'), 'dir');
        symlinkSync(join(modules, '@types', 'node'), join(project, dir, 'node_modules', '@types', 'node'), 'dir');
        // tfjs-core beside focal-ghm; its declarations use @types/long's global Long, and those of
        // its @webgpu/types dependency a DOM newer than TypeScript 5.0's: there, they go unchecked.
        if (tfjs) {
          linkTfjs(project);
          symlinkSync(join(ROOT, 'node_modules', '@types', 'long'), join(project, dir, 'node_modules', '@types', 'long'), 'dir');
        }
        const extra = tfjs ? { types: [...resolution.types, 'long'], skipLibCheck: tsName.startsWith('5.0') } : {};
        const tsc = join(modules, 'typescript', 'bin', 'tsc');
        projectFile(`${dir}/${file}`, readFileSync(join(ROOT, 'test', 'types', file), 'utf8'));
        const tsconfig = projectFile(
          `${dir}/tsconfig.json`,
          JSON.stringify({
            compilerOptions: { ...resolution, target: 'ES2022', lib, strict: true, skipLibCheck: false, noEmit: true, exactOptionalPropertyTypes: true, ...extra },
            files: [file],
          }),
        );
        projectFile(`${dir}/package.json`, '{ "type": "module" }');
        const result = await run(process.execPath, [tsc, '-p', tsconfig]).catch((e: { stdout: string; stderr: string }) => e);
        expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
      });
    }
  }
});

/** Links this repository's @tensorflow/tfjs-core and tfjs-backend-cpu into `dir`/node_modules. */
function linkTfjs(dir: string): void {
  mkdirSync(join(dir, 'node_modules', '@tensorflow'), { recursive: true });
  for (const name of ['tfjs-core', 'tfjs-backend-cpu']) {
    const to = join(dir, 'node_modules', '@tensorflow', name);
    if (!existsSync(to)) symlinkSync(join(ROOT, 'node_modules', '@tensorflow', name), to, 'dir');
  }
}

describe('focal-ghm/tfjs with @tensorflow/tfjs-core installed: one core, the one init() loads', () => {
  // Before init() the adapter must say so; after `init()` from 'focal-ghm' it must work: a
  // second copy of the core in the adapter's entry would still be uninitialized.
  const BODY = `const x = tf.tensor1d([2, -1, 0.5]);
const t = tf.tensor1d([1, 0, 1]);
let before = '';
try { sigmoidFocalLoss(t, x); } catch (e) { before = e.message; }
await init();
const { value, grad } = tf.valueAndGrad((p) => sigmoidFocalLoss(t, p))(x);
const ghm = new GHMCLoss({ bins: 10, momentum: 0.75 });
const g = ghm.loss(t, x).dataSync()[0];
console.log(JSON.stringify({ before, loss: value.dataSync()[0], grad: Array.from(grad.dataSync()), ghm: g, acc: Array.from(ghm.accSum) }));
`;
  const ESM = `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { init } from 'focal-ghm';
import { GHMCLoss, sigmoidFocalLoss } from 'focal-ghm/tfjs';
await tf.setBackend('cpu');
${BODY}`;
  const CJS = `const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const { init } = require('focal-ghm');
const { GHMCLoss, sigmoidFocalLoss } = require('focal-ghm/tfjs');
(async () => {
await tf.setBackend('cpu');
${BODY}})();`;

  beforeAll(() => linkTfjs(project));

  /** Runs `file` with Node; its last line of output, parsed (TF.js prints a banner first). */
  async function runLast(file: string): Promise<{ before: string; loss: number; grad: number[]; ghm: number; acc: number[] }> {
    const { stdout } = await run(process.execPath, [file], { cwd: project });
    return JSON.parse(stdout.trim().split('\n').pop()!) as never;
  }

  function expectWorks(r: Awaited<ReturnType<typeof runLast>>): void {
    expect(r.before).toMatch(/^sigmoidFocalLoss \(focal-ghm\/tfjs\): focal-ghm is not initialized; call `await init\(\)`/);
    expect(r.loss).toBeCloseTo(0.011445936, 6);
    expect(r.grad).toHaveLength(3);
    expect(r.ghm).toBeGreaterThan(0);
    expect(r.acc.reduce((a, b) => a + b, 0)).toBeCloseTo(0.75, 12); // (1 - momentum) · 3 elements
  }

  it('ES modules: import from focal-ghm and focal-ghm/tfjs', async () => {
    expectWorks(await runLast(projectFile('tfjs-esm.mjs', ESM)));
  });

  it('CommonJS: require focal-ghm and focal-ghm/tfjs', async () => {
    expectWorks(await runLast(projectFile('tfjs-cjs.cjs', CJS)));
  });

  it('an esbuild bundle of both (TF.js external) holds one copy of the core, and runs', async () => {
    const entry = projectFile('tfjs-page.js', ESM);
    const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', external: ['@tensorflow/*'], write: false, logLevel: 'silent' });
    const code = out.outputFiles[0]!.text;
    expect(code.split('no entry point registered its builds').length - 1, 'copies of the loader').toBe(1);
    expectWorks(await runLast(projectFile('tfjs-page.bundle.mjs', code)));
  });

  it('dist/tfjs.js and dist/tfjs.cjs import the core and TF.js, and bundle neither', () => {
    for (const f of ['tfjs.js', 'tfjs.cjs']) {
      const code = readFileSync(join(project, 'node_modules', 'focal-ghm', 'dist', f), 'utf8');
      expect(code, f).toMatch(/(from |require\()"focal-ghm"/);
      expect(code, f).toMatch(/(from |require\()"@tensorflow\/tfjs-core"/);
      expect(code, f).not.toContain('no entry point registered its builds');
      expect(code.length, f).toBeLessThan(30_000);
    }
  });
});

describe('package linters on the tarball', () => {
  it('publint --strict finds nothing', async () => {
    const r = await run(join(ROOT, 'node_modules', '.bin', 'publint'), ['run', tarball, '--strict']).catch((e: { stdout: string; code: number }) => e);
    expect((r as { code?: number }).code ?? 0, r.stdout).toBe(0);
  });

  it('@arethetypeswrong/cli finds no problem', async () => {
    const r = await run(join(ROOT, 'node_modules', '.bin', 'attw'), [tarball, '--no-definitely-typed', '--format', 'ascii', '--no-color']).catch((e: { stdout: string; code: number }) => e);
    expect((r as { code?: number }).code ?? 0, r.stdout).toBe(0);
  });
});

describe('the repository', () => {
  it('points to nothing outside itself (docs/SPEC.md, test fixtures: all in the repository)', async () => {
    const { stdout } = await run('git', ['grep', '-n', '-I', '-E', String.raw`\.\./shared|/work/shared`, '--', '.', ':!test/package.test.ts'], { cwd: ROOT }).catch(
      (e: { stdout: string; code: number }) => (e.code === 1 ? { stdout: '' } : Promise.reject(e)),
    );
    expect(stdout).toBe('');
  });
});
