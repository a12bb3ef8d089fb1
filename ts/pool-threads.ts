// The threads of a pool: one shared `WebAssembly.Memory`, the shared-memory kernel build
// instantiated on the main thread (for the heap layout) and in each worker, and the job
// protocol with its failure handling. ts/pool.ts builds the losses on top of `Threads.run`.
// A pool created with extras also instantiates the extras module's shared build over the same
// memory, on the main thread (its data, below the heap) and in each worker (its kernels).
//
// Portability: this module is part of the platform-neutral core (dist/index), so it never
// imports a Node built-in statically. In Node it reaches `worker_threads` and `os` through
// `nodeBuiltin` at run time; elsewhere it uses Web Workers (browsers, Deno, Bun).

import { decodeBase64, type Extras, type Kernels } from './loader';
import { g, nodeBuiltin } from './platform';
import { HEAP_START, Heap } from './memory';
import { poolWorkerMain, type FromWorker, type JobMessage, type ToWorker } from './pool-worker';

/**
 * The heap over the shared memory. Views of a shared memory never detach, and views made
 * before the memory grew (over an older, shorter SharedArrayBuffer object) still address the
 * same memory; so an array is in the heap when its buffer is any buffer this memory has handed
 * out, not only the current one (Heap.owns), and a batch view kept across a growth is still
 * read in place instead of being copied.
 */
export class SharedHeap extends Heap {
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  override get buffer(): ArrayBuffer {
    const b = super.buffer;
    this.buffers.add(b);
    return b;
  }

  override owns(a: ArrayBufferView): boolean {
    return this.buffers.has(a.buffer);
  }
}

/**
 * Thrown by {@link Threads.start} when this page cannot run workers at all, which createPool
 * takes as a reason to fall back to one thread, not as a failure.
 */
export class WorkersBlocked extends Error {}

/** Why a browser refuses the pool's workers (Chromium gives the page no more than that they failed). */
const BLOCKED =
  "workers from blob: URLs cannot start on this page (a Content-Security-Policy without blob: in worker-src, or in script-src when there is no worker-src, blocks them): allow blob: there for threads";

/** The longest timer delay; longer ones fire at once. */
const MAX_DELAY = 2 ** 31 - 1;

/** Each worker's own stack (the build's default stack is 1 MiB too; GHM kernels use ~90 KiB: per-lane histograms of (count, sum) pairs for up to 1024 bins). */
const STACK_BYTES = 1 << 20;

type Platform = 'node' | 'web';

/** Which worker API to use: Node's worker_threads, Web Workers, or none. */
function platform(): Platform | undefined {
  if (g.Deno) return typeof g.Worker === 'function' ? 'web' : undefined;
  if (g.process?.versions?.node && !g.process.versions.bun) return 'node';
  return typeof g.Worker === 'function' ? 'web' : undefined;
}

/** Logical processors, for the default pool size. */
export async function hardwareThreads(): Promise<number> {
  const hc = g.navigator?.hardwareConcurrency;
  if (typeof hc === 'number' && hc > 0) return hc;
  if (platform() === 'node') {
    const os = await nodeBuiltin<{ availableParallelism?: () => number; cpus: () => unknown[] }>('node:os');
    return os.availableParallelism?.() ?? Math.max(1, os.cpus().length);
  }
  return 4;
}

/** Why this runtime cannot run a threaded pool, or undefined when it can (cheap checks only). */
export function threadsUnavailable(): string | undefined {
  if (typeof SharedArrayBuffer === 'undefined') {
    return 'SharedArrayBuffer is not available (browsers expose it only to cross-origin isolated pages: serve them with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  }
  const p = platform();
  if (p === 'web' && !g.Deno && g.crossOriginIsolated === false) {
    return 'the page is not cross-origin isolated (crossOriginIsolated === false), so memory cannot be shared with workers: serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp';
  }
  if (typeof Atomics === 'undefined') return 'Atomics is not available in this runtime';
  if (!p) return 'this runtime has no worker threads (neither Web Workers nor Node worker_threads)';
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true } as WebAssembly.MemoryDescriptor);
  } catch {
    return 'this engine has no shared WebAssembly memory (the threads proposal)';
  }
  return undefined;
}

/**
 * The limits of the module's imported memory, read from its import section (the JS API does not
 * report them). A shared memory must be created with a maximum, and the import only links when
 * ours is within the module's limits; we use exactly the module's.
 */
export function memoryImportLimits(bytes: Uint8Array): { initial: number; maximum: number } {
  let p = 8; // magic + version
  const leb = (): number => {
    let r = 0;
    let s = 0;
    let b: number;
    do {
      b = bytes[p++]!;
      r += (b & 0x7f) * 2 ** s;
      s += 7;
    } while (b & 0x80);
    return r;
  };
  const limits = () => {
    const flags = leb();
    const initial = leb();
    return { flags, initial, maximum: flags & 1 ? leb() : undefined };
  };
  while (p < bytes.length) {
    const id = bytes[p++]!;
    const size = leb();
    const end = p + size;
    if (id === 2) {
      for (let i = leb(); i > 0; i--) {
        const moduleName = leb();
        p += moduleName;
        const fieldName = leb();
        p += fieldName;
        const kind = bytes[p++]!;
        if (kind === 0) leb();
        else if (kind === 1) {
          p++;
          limits();
        } else if (kind === 2) {
          const l = limits();
          if (l.maximum === undefined || !(l.flags & 2)) throw new Error('focal-ghm pool: the threaded kernel build does not import a shared memory');
          return { initial: l.initial, maximum: l.maximum };
        } else if (kind === 3) p += 2;
        else {
          p++;
          leb();
        }
      }
    }
    p = end;
  }
  throw new Error('focal-ghm pool: the threaded kernel build imports no memory');
}

/** A compiled shared-memory build and its bytes (for its memory import, and for engines that cannot post modules). */
export interface SharedBuild {
  module: WebAssembly.Module;
  bytes: Uint8Array<ArrayBuffer>;
}

/** The compiled shared-memory build, or why it cannot be used. */
export async function loadSharedBuild(): Promise<SharedBuild | { reason: string }> {
  // A separate chunk: programs that never create a pool do not parse this build.
  const { wasmBase64 } = await import('./wasm/shared.generated');
  if (!wasmBase64) return { reason: 'this package was built without the shared-memory kernel build (its build failed; see scripts/lib/wasm.mjs)' };
  return compileShared(decodeBase64(wasmBase64), 'the threaded kernel build');
}

async function compileShared(bytes: Uint8Array<ArrayBuffer>, what: string): Promise<SharedBuild | { reason: string }> {
  try {
    return { module: await WebAssembly.compile(bytes), bytes };
  } catch (e) {
    return { reason: `this engine cannot compile ${what} (it needs SIMD, atomics and bulk memory): ${(e as Error).message}` };
  }
}

/**
 * The compiled shared-memory build of the extras module (`threadedExtras.shared()`, see ts/extras.ts), or
 * why it cannot be used: then the pool runs single-threaded, as without a shared core build.
 */
export async function loadSharedExtras(extras: Extras): Promise<SharedBuild | { reason: string }> {
  if (typeof extras.shared !== 'function') {
    return { reason: "the extras passed to createPool have no shared-memory build: pass threadedExtras from 'focal-ghm/extras' (the workerd entry's ship none)" };
  }
  const given = await extras.shared();
  if (!given || given.length === 0) {
    return { reason: "this package was built without the extras module's shared-memory build (its build failed; see scripts/lib/wasm.mjs)" };
  }
  // A copy over an ArrayBuffer: what compile and postMessage take, whatever the caller's view is over.
  return compileShared(new Uint8Array(given), "the extras module's threaded build");
}

/** The worker program as source text for `platform`. */
function workerSource(p: Platform): string {
  // In Node an `eval` worker is a CommonJS script, or an ES module when the process runs with
  // --input-type=module (workers inherit execArgv): import() works in both, require only in the
  // first. The specifier is a variable so that the bundle holds no literal import of a built-in
  // (see nodeBuiltin and the build's portability check).
  const port =
    p === 'node'
      ? `((s) => import(s))('node:worker_threads').then(({ parentPort }) => ({ post: (m) => parentPort.postMessage(m), listen: (h) => parentPort.on('message', h) }))`
      : `Promise.resolve({ post: (m) => self.postMessage(m), listen: (h) => { self.onmessage = (e) => h(e.data); } })`;
  return `"use strict";\n${port}.then(${poolWorkerMain.toString()});\n`;
}

/** A worker, whatever the platform. */
interface Port {
  post(message: ToWorker): void;
  terminate(): void;
  /** Node: whether the worker keeps the process alive (only while a job is pending). */
  keepAlive(on: boolean): void;
}

interface Hooks {
  message(m: FromWorker): void;
  /** `blocked`: the browser reported an error with no message (a worker it would not load). */
  failure(why: string, blocked?: boolean): void;
}

interface NodeWorker {
  on(event: string, f: (arg: never) => void): void;
  postMessage(m: unknown): void;
  terminate(): Promise<number>;
  ref(): void;
  unref(): void;
}

/** Starts `count` workers; if one cannot be created, those already created are terminated. */
async function spawnAll(count: number, hooks: (i: number) => Hooks): Promise<{ ports: Port[]; cleanup: () => void }> {
  const created: Port[] = [];
  const { make, cleanup } = await workerFactory(hooks);
  try {
    for (let i = 0; i < count; i++) created.push(make(i));
  } catch (e) {
    for (const p of created) p.terminate();
    cleanup();
    const why = `could not create worker ${created.length + 1} of ${count}: ${(e as Error)?.message ?? String(e)}`;
    // A browser that refuses workers (a SecurityError under a Content-Security-Policy) leaves one thread.
    if (platform() === 'web') throw new WorkersBlocked(`${BLOCKED} (${why})`);
    throw new Error(`createPool: ${why}`);
  }
  return { ports: created, cleanup };
}

/** How to make worker `i` on this platform. */
async function workerFactory(hooks: (i: number) => Hooks): Promise<{ make: (i: number) => Port; cleanup: () => void }> {
  const p = platform();
  if (p === 'node') {
    const wt = await nodeBuiltin<{ Worker: new (src: string, o: { eval: boolean }) => NodeWorker }>('node:worker_threads');
    const src = workerSource('node');
    const make = (i: number): Port => {
      const h = hooks(i);
      const w = new wt.Worker(src, { eval: true });
      w.on('message', (m: FromWorker) => h.message(m));
      w.on('error', (e: Error) => h.failure(`threw an uncaught error: ${e?.message ?? String(e)}`));
      w.on('messageerror', () => h.failure('sent a message that could not be deserialized'));
      w.on('exit', (code: number) => h.failure(`exited unexpectedly (exit code ${code})`));
      return {
        post: (m) => w.postMessage(m),
        terminate: () => void w.terminate(),
        keepAlive: (on) => (on ? w.ref() : w.unref()),
      };
    };
    return { make, cleanup: () => {} };
  }
  const url = URL.createObjectURL(new Blob([workerSource('web')], { type: 'text/javascript' }));
  const make = (i: number): Port => {
    const h = hooks(i);
    // Deno runs only module workers; the script has no imports, so either kind works elsewhere.
    const w: Worker = new g.Worker(url, g.Deno ? { type: 'module' } : undefined);
    w.onmessage = (e) => h.message(e.data as FromWorker);
    w.onerror = (e) => {
      e.preventDefault?.();
      h.failure(`threw an uncaught error: ${e.message || 'unknown error'}`, !e.message);
    };
    w.onmessageerror = () => h.failure('sent a message that could not be deserialized');
    return { post: (m) => w.postMessage(m), terminate: () => w.terminate(), keepAlive: () => {} };
  };
  return { make, cleanup: () => URL.revokeObjectURL(url) };
}

/** A job without the fields {@link Threads.run} fills in. */
export type JobSpec = Omit<JobMessage, 'type' | 'id' | 'counter' | 'slots' | 'memoryBytes'> & {
  /** A heap region of 16 header bytes (the block counter) followed by the block slots. */
  slotRegion: number;
};

interface PendingJob {
  fn: string;
  remaining: number;
  failures: string[];
  resolve(): void;
  reject(e: Error): void;
}

export interface ThreadsOptions {
  threads: number;
  /** Milliseconds to wait for all workers to load the kernels. */
  startTimeout: number;
  /** The extras module's shared build, to load over the same memory (main thread and workers). */
  extras?: SharedBuild;
}

/**
 * The workers of one pool and their shared memory. Every failure of a worker (crash, uncaught
 * error, unexpected exit, terminated) closes the whole pool and rejects every pending job:
 * a job's blocks are spread over all workers, so a lost worker would otherwise leave it pending
 * forever.
 */
export class Threads {
  private ports: Port[] = [];
  private jobs = new Map<number, PendingJob>();
  private outstanding: number[];
  private nextId = 1;
  private closedWhy: string | undefined;

  private constructor(
    readonly size: number,
    readonly memory: WebAssembly.Memory,
    readonly heap: SharedHeap,
    /** The main thread's instance: only for queries like `fg_ghm_stats_len` (it has no stack of its own). */
    readonly kernels: Kernels,
    /** Whether the workers have the extras module's kernels. */
    readonly extras: boolean,
  ) {
    this.outstanding = new Array<number>(size).fill(0);
  }

  /** Starts `threads` workers over a new shared memory; throws if any fails to start. */
  static async start(build: SharedBuild, o: ThreadsOptions): Promise<Threads> {
    // One memory both modules link to: at least each one's minimum, at most each one's maximum.
    let { initial, maximum } = memoryImportLimits(build.bytes);
    if (o.extras) {
      const x = memoryImportLimits(o.extras.bytes);
      initial = Math.max(initial, x.initial);
      maximum = Math.min(maximum, x.maximum);
      if (initial > maximum) throw new Error("createPool: the extras module's threaded build does not fit the core build's memory (another layout?)");
    }
    const memory = new WebAssembly.Memory({ initial, maximum, shared: true } as WebAssembly.MemoryDescriptor);
    // The main thread instantiates first: its start function copies the data segments into the
    // shared memory, so no worker ever has to wait for another one to do it.
    const instance = await WebAssembly.instantiate(build.module, { env: { memory } });
    const kernels = instance.exports as unknown as Kernels;
    if (o.extras) {
      // The extras' stack top and data lie below the heap (ts/memory.ts HEAP_START), as in the
      // single-thread runtime (loadExtras in ts/loader.ts): nothing the heap hands out overlaps them.
      const x = (await WebAssembly.instantiate(o.extras.module, { env: { memory } })).exports;
      if ((x.__heap_base as WebAssembly.Global).value > HEAP_START) {
        throw new Error("createPool: the extras module's threaded build does not fit below the heap (it was linked for another layout)");
      }
    }
    const heap = new SharedHeap({ memory, __heap_base: kernels.__heap_base } as unknown as Kernels);
    const t = new Threads(o.threads, memory, heap, kernels, o.extras !== undefined);
    await t.spawn(build, o.extras, o.startTimeout);
    return t;
  }

  private async spawn(build: SharedBuild, extras: SharedBuild | undefined, timeout: number): Promise<void> {
    const ready: Array<{ resolve(): void; reject(e: Error): void }> = [];
    const readyAll = Array.from({ length: this.size }, (_, i) => new Promise<void>((resolve, reject) => (ready[i] = { resolve, reject })));
    let starting = true;
    const heard: boolean[] = [];
    const { ports, cleanup } = await spawnAll(this.size, (i) => ({
      message: (m) => {
        heard[i] = true;
        if (m.type === 'ready') ready[i]!.resolve();
        else if (m.type === 'init-failed') ready[i]!.reject(new Error(`createPool: worker ${i + 1} could not load the kernels: ${m.message}`));
        else this.onMessage(i, m);
      },
      failure: (why, blocked) => {
        // A worker that failed before it ever ran (it never said anything) was refused by the page.
        if (starting && blocked && !heard[i]) ready[i]!.reject(new WorkersBlocked(BLOCKED));
        else if (starting) ready[i]!.reject(new Error(`createPool: worker ${i + 1} of ${this.size} ${why} while starting`));
        else this.fail(`worker ${i + 1} of ${this.size} ${why}`);
      },
    }));
    this.ports = ports;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      for (const p of ports) {
        const stack = this.heap.alloc(STACK_BYTES);
        const base = { type: 'init' as const, memory: this.memory, stackTop: stack + STACK_BYTES };
        try {
          p.post({ ...base, module: build.module, extras: extras && { module: extras.module } });
        } catch {
          // An engine that cannot post compiled modules: each worker compiles the bytes.
          p.post({ ...base, bytes: build.bytes, extras: extras && { bytes: extras.bytes } });
        }
      }
      const timeoutP = new Promise<never>((_, reject) => {
        const wait = (ms: number): void => {
          timer = setTimeout(() => (ms > MAX_DELAY ? wait(ms - MAX_DELAY) : reject(new Error(`createPool: the workers did not start within ${timeout} ms`))), Math.min(ms, MAX_DELAY));
        };
        wait(timeout);
      });
      await Promise.race([Promise.all(readyAll), timeoutP]);
    } catch (e) {
      this.closedWhy = 'the pool failed to start';
      for (const p of ports) p.terminate();
      throw e;
    } finally {
      clearTimeout(timer);
      starting = false;
      cleanup();
    }
    for (const p of ports) p.keepAlive(false);
  }

  /** Why the pool is closed, or undefined while it is open. */
  get closedReason(): string | undefined {
    return this.closedWhy;
  }

  /** The error for a call made on a closed pool. */
  closedError(fn: string): Error {
    return new Error(`${fn}: the pool is closed (${this.closedWhy}); create a new one with createPool()`);
  }

  /** The error for a call that was running (or waiting its turn) when the pool closed. */
  closedDuringCall(fn: string): Error {
    return new Error(`${fn}: the pool was closed during the call (${this.closedWhy})`);
  }

  private onMessage(worker: number, m: FromWorker): void {
    if (m.type !== 'done' && m.type !== 'failed') return;
    this.outstanding[worker]!--;
    const job = this.jobs.get(m.id);
    if (!job) return;
    if (m.type === 'failed') job.failures.push(`worker ${worker + 1}: ${m.message}`);
    if (--job.remaining > 0) return;
    this.jobs.delete(m.id);
    if (this.jobs.size === 0) for (const p of this.ports) p.keepAlive(false);
    if (job.failures.length) job.reject(new Error(`${job.fn}: a kernel failed in the thread pool (${job.failures.join('; ')})`));
    else job.resolve();
  }

  /**
   * Runs a job on `workers` workers (those with the fewest pending jobs). Resolves when every
   * one of them has finished with it, so its memory may be reused; rejects when a kernel failed
   * or the pool closed meanwhile.
   */
  run(fn: string, spec: JobSpec, workers: number): Promise<void> {
    if (this.closedWhy) return Promise.reject(this.closedDuringCall(fn));
    const { slotRegion, ...rest } = spec;
    Atomics.store(new Int32Array(this.memory.buffer, slotRegion, 1), 0, 0);
    const id = this.nextId++;
    const memoryBytes = this.memory.buffer.byteLength;
    const msg: JobMessage = { ...rest, type: 'job', id, counter: slotRegion, slots: slotRegion + 16, memoryBytes };
    const n = Math.max(1, Math.min(workers, this.size));
    const order = this.outstanding.map((c, i) => [c, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return new Promise<void>((resolve, reject) => {
      if (this.jobs.size === 0) for (const p of this.ports) p.keepAlive(true);
      this.jobs.set(id, { fn, remaining: n, failures: [], resolve, reject });
      for (const [, i] of order.slice(0, n)) {
        this.outstanding[i]!++;
        this.ports[i]!.post(msg);
      }
    });
  }

  /** Closes the pool for `why`: terminates the workers and rejects every pending job. */
  fail(why: string): void {
    if (this.closedWhy) return;
    this.closedWhy = why;
    for (const p of this.ports) p.terminate();
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const j of jobs) j.reject(this.closedDuringCall(j.fn));
  }

  /**
   * Test hook: makes worker `i` die, as a crash would. `'throw'`: an uncaught error in the
   * worker; `'exit'`: the worker exits (Node; elsewhere it throws); both are queued behind the
   * worker's pending jobs. `'terminate'`: terminated from outside at once, which browsers do not
   * report, so the failure is raised here as well.
   */
  kill(i: number, how: 'throw' | 'exit' | 'terminate'): void {
    const p = this.ports[i];
    if (!p || this.closedWhy) return;
    if (how !== 'terminate') p.post({ type: 'crash', how });
    else {
      p.terminate();
      this.fail(`worker ${i + 1} of ${this.size} was terminated`);
    }
  }
}
