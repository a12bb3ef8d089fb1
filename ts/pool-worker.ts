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
// `WebAssembly.Memory` (and, in a pool created with extras, the extras module's shared build over
// the same memory), points each instance's own `__stack_pointer` at the stack region the main
// thread allocated for this worker (every instance would otherwise start at its build's default
// stack, and two threads would overwrite each other's frames; calls do not nest, so one region
// serves both modules), then runs jobs. A job is a list of
// fixed blocks of the batch; workers claim block indices with an atomic counter in shared
// memory, so block boundaries never depend on the number of threads, and each block writes its
// partial results to its own slot, which the main thread adds in block order (determinism).

/**
 * The kernel calls a job can make; the streams and argument words `a` of each are listed in
 * {@link JobMessage}. The last four are the extras module's (the family ones are ts/family.ts's
 * `FamilyOp`s, with the same arguments).
 */
export type PoolOp =
  | 'count' | 'focal' | 'focalProb' | 'ghmcStats' | 'ghmcGrad' | 'ghmrStats' | 'ghmrGrad'
  | 'focalPoly' | 'qualityFocal' | 'varifocal' | 'softmaxSoft';

/** A compiled module, or its bytes where the engine cannot post compiled modules. */
export interface ModuleMessage {
  module?: WebAssembly.Module;
  bytes?: Uint8Array<ArrayBuffer>;
}

/** Main → worker: load the kernels. `module` where the engine can post compiled modules, else `bytes`. */
export interface InitMessage extends ModuleMessage {
  type: 'init';
  /** The extras module's shared build, in a pool created with extras. */
  extras?: ModuleMessage;
  memory: WebAssembly.Memory;
  /** Top (highest address, 16-byte aligned) of this worker's own stack region. */
  stackTop: number;
}

/**
 * Main → worker: run blocks `0..blocks-1` of a job. Addresses are into the shared memory; an
 * absent input or output is 0. Block `b` covers units `[b·unitsPerBlock, …)` (a unit is an
 * element, or a row of `perUnit` logits); each stream advances by its `unitBytes` per unit.
 *
 * Streams (`at`), inputs then outputs: the core ops `[logits (GHM-R: pred), targets, weights,
 * loss, gradient]` (focalPoly too); qualityFocal `[logits, labels, scores, row weights, loss,
 * gradient]`; varifocal `[logits, targets, weights, loss, gradient]`; softmaxSoft `[logits,
 * targets, row weights, loss, gradient]`. A stream past the end of `at` is absent.
 *
 * `a` (op arguments): focal, focalProb `[alphaPos, alphaNeg, gamma, lossScale, gradScale]`;
 * focalPoly the same and `ε`; ghmcStats `[bins, statsLen]`; ghmcGrad `[bins, factorsPtr]`;
 * ghmrStats `[mu, bins, statsLen]`; ghmrGrad `[mu, bins, factorsPtr]`; count `[]`; the family
 * ops their `FamilyOp` arguments (ts/family.ts), then `lossScale, gradScale`.
 * Slot of block `b`: `slotLen` f64 at `slots + 8·slotLen·b`: count `[pos, neg]`; focal and
 * focalPoly `[Σ loss, min t, max t]`; focalProb that and `[min p, max p]`; ghmcStats `[min t,
 * max t, stats…]`; ghmrStats `[stats…]`; the family ops their kernel's info words.
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
  /** Where unit 0 of each stream is (the op's streams, listed above). */
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
  /** The extras module's exports, in a pool created with extras. */
  let xk: Record<string, Fn> | undefined;
  let memory: WebAssembly.Memory | undefined;
  let sp: WebAssembly.Global | undefined;
  let xsp: WebAssembly.Global | undefined;
  let stackTop = 0;

  const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

  async function init(m: InitMessage): Promise<void> {
    try {
      const load = async (b: ModuleMessage) => {
        const module = b.module ?? (await WebAssembly.compile(b.bytes!));
        return (await WebAssembly.instantiate(module, { env: { memory: m.memory } })).exports;
      };
      const core = await load(m);
      const extras = m.extras ? await load(m.extras) : undefined;
      k = core as unknown as Record<string, Fn>;
      sp = core.__stack_pointer as WebAssembly.Global;
      if (extras) {
        xk = extras as unknown as Record<string, Fn>;
        xsp = extras.__stack_pointer as WebAssembly.Global;
      }
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
    if (xsp) xsp.value = stackTop;
    // Growth by another thread reaches this thread's view of the memory (its `buffer`, and the
    // bounds its instance checks) only when the engine gets round to it: Deno's workers were seen
    // still on the old size when the next job arrived. `grow(0)` makes the engine refresh both.
    if (memory!.buffer.byteLength < m.memoryBytes) memory!.grow(0);
    const counter = new Int32Array(memory!.buffer, m.counter, 1);
    const pu = m.perUnit;
    const a = m.a;
    const family = m.op === 'qualityFocal' || m.op === 'varifocal' || m.op === 'softmaxSoft';
    if ((family || m.op === 'focalPoly') && !xk) throw new Error(`op ${m.op} needs the extras kernels, which this worker did not load`);
    const xx = xk!;
    // The family ops' scales follow their own arguments.
    const ls = a[a.length - 2]!;
    const gs = a[a.length - 1]!;
    for (;;) {
      const b = Atomics.add(counter, 0, 1);
      if (b >= m.blocks) return;
      const u0 = b * m.unitsPerBlock;
      const u = Math.min(m.unitsPerBlock, m.units - u0);
      const n = u * pu;
      // Stream i at this block (0 when absent).
      const s = (i: number): number => {
        const p = m.at[i];
        return p ? p + u0 * m.unitBytes[i]! : 0;
      };
      const x = s(0);
      const t = s(1);
      const w = s(2);
      const loss = s(3);
      const grad = s(4);
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
        case 'focalPoly':
          xx.fg_sigmoid_focal_poly!(x, n, m.tkind, t, m.numClasses, m.wkind, w, a[0]!, a[1]!, a[2]!, a[5]!, loss, a[3]!, grad, a[4]!, slot);
          break;
        // The family ops: as familyKernel in ts/family.ts.
        case 'qualityFocal':
          // Streams: logits, labels, scores, row weights, loss, gradient.
          xx.fg_quality_focal!(x, u, a[0]!, s(1), s(2), s(3), a[1]!, s(4), ls, s(5), gs, slot);
          break;
        case 'varifocal':
          xx.fg_varifocal!(x, u, t, w, a[0]!, a[1]!, a[2]!, loss, ls, grad, gs, slot);
          break;
        case 'softmaxSoft':
          xx.fg_softmax_focal_soft!(x, u, a[0]!, a[1]!, t, a[2]!, a[3]!, 0, a[4]!, w, loss, ls, grad, gs, slot);
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
