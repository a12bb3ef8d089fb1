// The worker program of the thread pool (ts/pool.ts), and the messages it understands.
//
// Why a function that is stringified instead of a worker entry file: the worker must start from
// the built dist/ in Node (ESM and CJS), browsers, Deno and Bun, without the package having to
// locate a second file next to itself (`import.meta.url` does not exist in the CJS build, and
// bundlers that inline the library would lose the file). So `poolWorkerMain` is written to be
// self-contained: it uses no import and no module-level name, only its parameter and globals
// (WebAssembly, Atomics). ts/pool-threads.ts turns `poolWorkerMain.toString()` into a Node
// `eval` worker or a Blob-URL Web Worker. Keep it that way: any reference to an outer name
// would be undefined inside the worker.
//
// What a worker does: it instantiates the shared-memory kernel build over the pool's one
// `WebAssembly.Memory`, points its own `__stack_pointer` at the stack region the main thread
// allocated for it (every instance would otherwise start at the same default stack, [0, 1 MiB),
// and two threads would overwrite each other's frames), then runs jobs. A job is a list of
// fixed blocks of the batch; workers claim block indices with an atomic counter in shared
// memory, so block boundaries never depend on the number of threads, and each block writes its
// partial results to its own slot, which the main thread adds in block order (determinism).

/** The kernel calls a job can make; the argument words `a` of each are listed in {@link JobMessage}. */
export type PoolOp = 'count' | 'focal' | 'focalProb' | 'ghmcStats' | 'ghmcGrad' | 'ghmrStats' | 'ghmrGrad';

/** Main → worker: load the kernels. `module` where the engine can post compiled modules, else `bytes`. */
export interface InitMessage {
  type: 'init';
  module?: WebAssembly.Module;
  bytes?: Uint8Array<ArrayBuffer>;
  memory: WebAssembly.Memory;
  /** Top (highest address, 16-byte aligned) of this worker's own stack region. */
  stackTop: number;
}

/**
 * Main → worker: run blocks `0..blocks-1` of a job. Addresses are into the shared memory; an
 * absent input or output is 0. Block `b` covers units `[b·unitsPerBlock, …)` (a unit is an
 * element, or a row of `perUnit` logits with class-index targets); each stream advances by its
 * `unitBytes` per unit.
 *
 * `a` (op arguments): focal `[alphaPos, alphaNeg, gamma, lossScale, gradScale]`;
 * ghmcStats `[bins, statsLen]`; ghmcGrad `[bins, factorsPtr]`; ghmrStats `[mu, bins, statsLen]`;
 * ghmrGrad `[mu, bins, factorsPtr]`; count `[]`.
 * Slot of block `b`: `slotLen` f64 at `slots + 8·slotLen·b`: count `[pos, neg]`; focal
 * `[Σ loss, min t, max t]`; ghmcStats `[min t, max t, stats…]`; ghmrStats `[stats…]`.
 */
export interface JobMessage {
  type: 'job';
  id: number;
  op: PoolOp;
  /** Address of the i32 block counter (zeroed by the main thread). */
  counter: number;
  blocks: number;
  units: number;
  unitsPerBlock: number;
  perUnit: number;
  tkind: number;
  numClasses: number;
  wkind: number;
  /** Where unit 0 of each stream is: logits (or GHM-R pred), targets, weights, loss, gradient. */
  at: number[];
  unitBytes: number[];
  slots: number;
  slotLen: number;
  a: number[];
  /** Bytes of shared memory when the job was posted: every address above lies below this. */
  memoryBytes: number;
}

/** Main → worker (tests only): die as a crashing worker would, by an uncaught error or by exiting. */
export interface CrashMessage {
  type: 'crash';
  how: 'throw' | 'exit';
}

export type ToWorker = InitMessage | JobMessage | CrashMessage;

/** Worker → main. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-failed'; message: string }
  | { type: 'done'; id: number }
  | { type: 'failed'; id: number; message: string };

/** How the worker talks to the main thread (Node's parentPort or a Web Worker's `self`). */
export interface WorkerPort {
  post(message: FromWorker): void;
  listen(handler: (message: ToWorker) => void): void;
}

/**
 * The worker program. Self-contained on purpose (see the top of this file): it is shipped to
 * the worker as source text, `portPromise.then(${poolWorkerMain})`.
 *
 * @internal
 * @example
 * ```ts
 * // What ts/pool-threads.ts does for a Web Worker:
 * const src = `Promise.resolve({ post: (m) => self.postMessage(m), listen: (h) => { self.onmessage = (e) => h(e.data); } }).then(${poolWorkerMain.toString()})`;
 * new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
 * ```
 */
export function poolWorkerMain(port: WorkerPort): void {
  // The kernel exports, typed loosely: this function may not import the Kernels interface.
  type Fn = (...args: number[]) => void;
  let k: Record<string, Fn> | undefined;
  let memory: WebAssembly.Memory | undefined;
  let sp: WebAssembly.Global | undefined;
  let stackTop = 0;

  const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

  async function init(m: InitMessage): Promise<void> {
    try {
      const module = m.module ?? (await WebAssembly.compile(m.bytes!));
      const instance = await WebAssembly.instantiate(module, { env: { memory: m.memory } });
      k = instance.exports as unknown as Record<string, Fn>;
      sp = instance.exports.__stack_pointer as WebAssembly.Global;
      memory = m.memory;
      stackTop = m.stackTop;
      port.post({ type: 'ready' });
    } catch (e) {
      port.post({ type: 'init-failed', message: describe(e) });
    }
  }

  function runJob(m: JobMessage): void {
    const kk = k!;
    // Reset the stack on every job: a trap in an earlier one leaves the pointer mid-frame.
    sp!.value = stackTop;
    // Growth by another thread reaches this thread's view of the memory (its `buffer`, and the
    // bounds its instance checks) only when the engine gets round to it: Deno's workers were seen
    // still on the old size when the next job arrived. `grow(0)` makes the engine refresh both.
    if (memory!.buffer.byteLength < m.memoryBytes) memory!.grow(0);
    const counter = new Int32Array(memory!.buffer, m.counter, 1);
    const pu = m.perUnit;
    const a = m.a;
    for (;;) {
      const b = Atomics.add(counter, 0, 1);
      if (b >= m.blocks) return;
      const u0 = b * m.unitsPerBlock;
      const n = Math.min(m.unitsPerBlock, m.units - u0) * pu;
      const [x, t, w, loss, grad] = m.at.map((p, i) => (p ? p + u0 * m.unitBytes[i]! : 0)) as [number, number, number, number, number];
      const slot = m.slots + 8 * m.slotLen * b;
      switch (m.op) {
        case 'count':
          kk.fg_count_pos_neg!(n, m.tkind, t, m.numClasses, m.wkind, w, slot);
          break;
        case 'focal':
          kk.fg_sigmoid_focal!(x, n, m.tkind, t, m.numClasses, m.wkind, w, a[0]!, a[1]!, a[2]!, loss, a[3]!, grad, a[4]!, slot);
          break;
        case 'focalProb':
          kk.fg_sigmoid_focal_prob!(x, n, t, m.wkind, w, a[0]!, a[1]!, a[2]!, loss, a[3]!, grad, a[4]!, slot);
          break;
        case 'ghmcStats':
          // The kernel adds into the stats; this block's slot starts from zero.
          new Float64Array(memory!.buffer, slot + 16, a[1]!).fill(0);
          kk.fg_ghmc_stats!(x, n, m.tkind, t, m.numClasses, m.wkind, w, a[0]!, slot + 16, slot);
          break;
        case 'ghmcGrad':
          kk.fg_ghmc_grad!(x, n, m.tkind, t, m.numClasses, m.wkind, w, a[0]!, a[1]!, grad);
          break;
        case 'ghmrStats':
          new Float64Array(memory!.buffer, slot, a[2]!).fill(0);
          kk.fg_ghmr_stats!(x, t, n, m.wkind, w, a[0]!, a[1]!, slot);
          break;
        case 'ghmrGrad':
          kk.fg_ghmr_grad!(x, t, n, m.wkind, w, a[0]!, a[1]!, a[2]!, grad);
          break;
        default:
          throw new Error(`unknown op ${String(m.op)}`);
      }
    }
  }

  port.listen((m) => {
    if (m.type === 'init') {
      void init(m);
    } else if (m.type === 'job') {
      try {
        if (!k) throw new Error('the worker received a job before it was initialized');
        runJob(m);
        port.post({ type: 'done', id: m.id });
      } catch (e) {
        port.post({ type: 'failed', id: m.id, message: describe(e) });
      }
    } else if (m.type === 'crash') {
      // Uncaught on purpose: the main thread must see this worker die. (Node: `process.exit` in
      // a worker ends only that thread, with an 'exit' event.)
      const proc = (globalThis as { process?: { exit?: (code: number) => void } }).process;
      if (m.how === 'exit' && proc?.exit) proc.exit(7);
      throw new Error('focal-ghm pool: worker crash requested by a test');
    }
  });
}
