// Runs a Worker in Cloudflare workerd (the npm devDependency) on a free loopback port, for the
// tests that hold the package to what a Worker gets (test/runtimes.test.ts, test/package.test.ts).

import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Plugin } from 'esbuild';

export const WORKERD = fileURLToPath(new URL('../../node_modules/.bin/workerd', import.meta.url));
export const workerdMissing = existsSync(WORKERD) ? undefined : `${WORKERD} not found (npm install)`;

/** A module of the Worker: its name as the Worker imports it, and the file it comes from. */
export interface WorkerModule {
  name: string;
  file: string;
  kind: 'esModule' | 'wasm';
}

/** A Worker as wrangler uploads it: one bundled script and the wasm modules it imports. */
export interface WorkerBundle {
  js: Uint8Array;
  /** The wasm modules by the name the script imports them by, with the file each comes from. */
  wasm: Array<{ name: string; file: string }>;
}

/**
 * Bundles a Worker as wrangler does: esbuild with the conditions wrangler resolves packages
 * through (`workerd`, `worker`, `browser`), and each `.wasm` import collected as a module of the
 * upload, named by its file, and left an import in the script. `entry` is esbuild's entryPoints
 * or stdin; paths resolve from `resolveDir`.
 */
export async function bundleWorker(entry: Pick<BuildOptions, 'entryPoints' | 'stdin'>, resolveDir: string): Promise<WorkerBundle> {
  const wasm = new Map<string, string>();
  const req = createRequire(join(resolveDir, 'package.json'));
  const wasmModules: Plugin = {
    name: 'wasm-modules',
    setup(b) {
      b.onResolve({ filter: /\.wasm$/ }, (a) => {
        const file = a.path.startsWith('.') || isAbsolute(a.path) ? resolve(a.resolveDir, a.path) : req.resolve(a.path);
        const name = basename(file);
        if (wasm.has(name) && wasm.get(name) !== file) throw new Error(`two wasm modules named ${name}`);
        wasm.set(name, file);
        return { path: `./${name}`, external: true };
      });
    },
  };
  const out = await build({
    ...entry,
    absWorkingDir: resolveDir,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    plugins: [wasmModules],
    write: false,
    logLevel: 'silent',
  });
  return { js: out.outputFiles[0]!.contents, wasm: [...wasm].map(([name, file]) => ({ name, file })) };
}

/** Serves a bundled Worker in workerd and POSTs `body` to it (see {@link postToWorker}). */
export async function runWorker(w: WorkerBundle, body = ''): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'focal-ghm-worker-'));
  try {
    const script = join(dir, 'worker.js');
    writeFileSync(script, w.js);
    return await postToWorker([{ name: 'worker.js', file: script, kind: 'esModule' }, ...w.wasm.map((m): WorkerModule => ({ ...m, kind: 'wasm' }))], body);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * Serves `modules` (the first is the main module) in workerd and POSTs `body` to it; resolves to
 * the response's text. Rejects with workerd's log if the Worker fails or does not start.
 */
export async function postToWorker(modules: WorkerModule[], body: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'focal-ghm-workerd-'));
  const port = await freePort();
  const entries = modules.map((m, i) => {
    const file = `m${i}`;
    copyFileSync(m.file, join(dir, file));
    return `(name = "${m.name}", ${m.kind} = embed "${file}")`;
  });
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .probe) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const probe :Workerd.Worker = (
  modules = [ ${entries.join(',\n    ')} ],
  compatibilityDate = "2025-01-01",
);
`,
  );
  const server = spawn(WORKERD, ['serve', join(dir, 'config.capnp')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  server.stdout.on('data', (d) => (log += d));
  server.stderr.on('data', (d) => (log += d));
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body });
        const text = await res.text();
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${text}`);
        return text;
      } catch (e) {
        // Connection refused while workerd starts; anything else, or a slow start, is a failure.
        const refused = (e as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
        if (!refused || attempt > 100 || server.exitCode !== null) throw new Error(`workerd: ${(e as Error).message}\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
