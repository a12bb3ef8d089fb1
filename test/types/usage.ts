// The public API as a user's strict project sees it (issue #16): compiled, never run, by
// `npx tsc -p test/types` after a build (and in CI against the packed tarball, with TypeScript
// 5.0 and the current release). Its tsconfig has no DOM or Node typings, so a global of theirs
// in dist/index.d.ts fails here; the checks below pin the result types that follow the options.
// Only what a user imports: 'focal-ghm' and its subpaths; nothing newer than TypeScript 5.0.

import wasm from 'focal-ghm/simd.wasm';
import extrasWasm from 'focal-ghm/extras-simd.wasm';
import { extras, threadedExtras, type Extras } from 'focal-ghm/extras';
import {
  Batch,
  createBatch,
  createPool,
  distributionFocalLoss,
  qualityFocalLoss,
  varifocalLoss,
  type FamilyStream,
  type QualityTargets,
  GHMC,
  GHMR,
  GHMStats,
  init,
  isInitialized,
  MAX_BINS,
  Pool,
  scoreStream,
  sigmoidFocalLoss,
  sigmoidFocalStream,
  simdSupported,
  softmaxFocalLoss,
  type ClassTargets,
  type GHMForwardOptions,
  type GHMState,
  type GHMStep,
  type GHMStream,
  type GHMStreamResult,
  type InitOptions,
  type InitResult,
  type LossFor,
  type LossResult,
  type OutputBuffers,
  type ReadableStreamLike,
  type Reduction,
  type ScoreResult,
  type ScoreSpec,
  type SigmoidFocalOptions,
  type SigmoidFocalResult,
  type SigmoidFocalStream,
  type SigmoidFocalStreamResult,
  type SoftmaxFocalOptions,
  type StreamChunk,
  type Targets,
  type WasmModule,
} from 'focal-ghm';

// ---- Exact type checks: `expectType(value).toBe<T>()` compiles only when the type of `value`
// is exactly T (mutually assignable is not enough: `number` is not `number | Float32Array`).
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
declare function expectType<V>(value: V): {
  toBe<T>(...typesDiffer: Equal<V, T> extends true ? [] : [actualType: V]): void;
};

const logits = new Float32Array(6);
const binary = new Uint8Array(6);
const soft = new Float32Array(6);
const classes: ClassTargets = { labels: new Int32Array([0, 3]), numClasses: 3 };
const weight = new Float32Array(6);
declare const anyTargets: Targets;
declare const wide: SigmoidFocalOptions;
declare const someReduction: Reduction;
declare const someFlag: boolean;

// ---- Loading --------------------------------------------------------------------------------
const loaded = await init();
expectType(loaded).toBe<InitResult>();
expectType(loaded.simd).toBe<boolean | null>();
// @ts-expect-error the raw kernels are not part of the public type
loaded.kernels;
await init({ simd: false });
await init({ bytes: new Uint8Array(8) });
await init({ bytes: new ArrayBuffer(8) });
await init({ url: 'https://example.com/focal_ghm.wasm' });
await init({ url: { href: 'https://example.com/focal_ghm.wasm' } }); // a URL object
await init({ module: wasm }); // Cloudflare workerd
const someModule: WasmModule = {};
const initOptions: InitOptions = { module: someModule };
await init(initOptions);
// @ts-expect-error a number is no module
await init({ module: 1 });
expectType(isInitialized()).toBe<boolean>();
expectType(simdSupported()).toBe<boolean>();

// ---- sigmoidFocalLoss: the result follows the options ----------------------------------------
const mean = sigmoidFocalLoss(logits, binary);
expectType(mean).toBe<SigmoidFocalResult<number, false>>();
expectType(mean.loss).toBe<number>();
expectType(mean.grad).toBe<undefined>();
expectType(mean.alpha).toBe<number | null>();
// @ts-expect-error no gradient without grad: true
const noGrad: Float32Array = sigmoidFocalLoss(logits, binary).grad;

const none = sigmoidFocalLoss(logits, soft, { reduction: 'none', grad: true, alpha: 'auto', gamma: 2 });
expectType(none.loss).toBe<Float32Array>();
expectType(none.grad).toBe<Float32Array>();
const { loss: perElement, grad: dLogits } = none;
perElement.length + dLogits.length;

expectType(sigmoidFocalLoss(logits, classes, { reduction: 'sum', weight }).loss).toBe<number>();
expectType(sigmoidFocalLoss(logits, anyTargets, { reduction: 'mean', avgFactor: 3, lossWeight: 2 }).loss).toBe<number>();
expectType(sigmoidFocalLoss(logits, binary, { grad: false }).grad).toBe<undefined>();
// out: { grad } implies the gradient, even with grad: false (the buffer is written).
expectType(sigmoidFocalLoss(logits, binary, { out: { grad: new Float32Array(6) } }).grad).toBe<Float32Array>();
expectType(sigmoidFocalLoss(logits, binary, { grad: false, out: { grad: new Float32Array(6) } }).grad).toBe<Float32Array>();
// input and labelSmoothing (issue #20) leave the result's type as it is.
{
  const terms = new GHMC().forward(logits, binary, undefined, { reduction: 'none', grad: true });
  expectType(terms.loss).toBe<Float32Array>();
  expectType(terms.grad).toBe<Float32Array>();
  expectType(new GHMR().forward(logits, soft, undefined, { avgFactor: 4 }).loss).toBe<number>();
  // @ts-expect-error GHM reductions are 'mean' and 'none'
  new GHMC().forward(logits, binary, undefined, { reduction: 'sum' });
}
const probs = sigmoidFocalLoss(logits, classes, { input: 'probabilities', labelSmoothing: 0.1, reduction: 'none', grad: true });
expectType(probs.loss).toBe<Float32Array>();
expectType(probs.grad).toBe<Float32Array>();
// @ts-expect-error input is 'logits' or 'probabilities'
sigmoidFocalLoss(logits, binary, { input: 'probs' });
// @ts-expect-error labelSmoothing is a number
sigmoidFocalLoss(logits, binary, { labelSmoothing: '0.1' });
// Per-class weights, ignored rows and a class axis (issue #20): the result's type as without them.
{
  const cw = new Float32Array(3);
  const lab = new Int32Array([0, 255]);
  const seg = sigmoidFocalLoss(logits, { labels: lab, numClasses: 3, ignoreIndex: 255 }, { classWeight: cw, posWeight: cw, shape: [1, 3, 2], classAxis: 1, reduction: 'none', grad: true });
  expectType(seg.loss).toBe<Float32Array>();
  expectType(seg.grad).toBe<Float32Array>();
  expectType(sigmoidFocalLoss(logits, binary, { classWeight: cw }).loss).toBe<number>();
  // @ts-expect-error classWeight is a Float32Array
  sigmoidFocalLoss(logits, binary, { classWeight: [1, 2, 3] });
  // @ts-expect-error ignoreIndex is a number
  sigmoidFocalLoss(logits, { labels: lab, numClasses: 3, ignoreIndex: '255' });
  const w = softmaxFocalLoss(logits, lab, { numClasses: 3, weight: new Float32Array(2), avgFactor: 4, shape: [1, 3, 2], classAxis: 1, grad: true });
  expectType(w.loss).toBe<number>();
  expectType(w.grad).toBe<Float32Array>();
  // @ts-expect-error shape is an array of numbers
  softmaxFocalLoss(logits, lab, { numClasses: 3, shape: 6 });
}
const outLoss = sigmoidFocalLoss(logits, binary, { reduction: 'none', out: { loss: new Float32Array(6) } });
expectType(outLoss.loss).toBe<Float32Array>();
expectType(outLoss.grad).toBe<undefined>();

// Options only known as the general types: the general result.
const general = sigmoidFocalLoss(logits, binary, wide);
expectType(general).toBe<SigmoidFocalResult<number | Float32Array, boolean>>();
expectType(general.loss).toBe<number | Float32Array>();
expectType(general.grad).toBe<Float32Array | undefined>();
// @ts-expect-error the loss may be a Float32Array
const notSureNumber: number = general.loss;
expectType(sigmoidFocalLoss(logits, binary, { reduction: someReduction }).loss).toBe<number | Float32Array>();
expectType(sigmoidFocalLoss(logits, binary, { grad: someFlag }).grad).toBe<Float32Array | undefined>();
declare const someOut: OutputBuffers;
expectType(sigmoidFocalLoss(logits, binary, { out: someOut }).grad).toBe<Float32Array | undefined>();
const declaredNone: SigmoidFocalOptions<'none', true> = { reduction: 'none', grad: true };
expectType(sigmoidFocalLoss(logits, binary, declaredNone).loss).toBe<Float32Array>();
const constOptions = { reduction: 'none', grad: true } as const;
expectType(sigmoidFocalLoss(logits, binary, constOptions).grad).toBe<Float32Array>();

// Any result is a LossResult; the general one is what LossResult means without arguments.
const asGeneral: LossResult = none;
const asSigmoid: SigmoidFocalResult = mean;
expectType<LossFor<'none'>>(new Float32Array(1)).toBe<Float32Array>();
expectType<LossFor<'mean' | 'sum'>>(0).toBe<number>();

// Mistakes are caught where they are made.
// @ts-expect-error misspelt option
sigmoidFocalLoss(logits, binary, { reducton: 'none' });
// @ts-expect-error no such reduction
sigmoidFocalLoss(logits, binary, { reduction: 'avg' });
// @ts-expect-error grad is a boolean
sigmoidFocalLoss(logits, binary, { grad: 1 });
// @ts-expect-error targets of the wrong type
sigmoidFocalLoss(logits, new Int32Array(6));
// @ts-expect-error logits must be a Float32Array
sigmoidFocalLoss(new Float64Array(6), binary);

// ---- streams ----------------------------------------------------------------------------------
const stream = sigmoidFocalLoss.stream({ gamma: 2, alpha: 'auto', reduction: 'sum' });
expectType(stream).toBe<SigmoidFocalStream>();
stream.push(logits, binary, weight);
expectType(stream.length).toBe<number>();
const streamed = stream.finish();
expectType(streamed).toBe<SigmoidFocalStreamResult>();
expectType(streamed.loss).toBe<number>();
expectType(streamed.alpha).toBe<number | null>();
expectType(sigmoidFocalStream().finish().length).toBe<number>();
// @ts-expect-error a stream has no elementwise losses
sigmoidFocalLoss.stream({ reduction: 'none' });
sigmoidFocalLoss.stream({ labelSmoothing: 0.1, input: 'probabilities' });
// @ts-expect-error class weights are options of the call only (refused at run time too)
sigmoidFocalLoss.stream({ classWeight: new Float32Array(3) });
// @ts-expect-error nor a gradient
sigmoidFocalStream({ grad: true });

// ---- softmaxFocalLoss -----------------------------------------------------------------------------
const labels = new Int32Array([0, -100]);
const softmax = softmaxFocalLoss(logits, labels, { numClasses: 3 });
expectType(softmax).toBe<LossResult<number, false>>();
expectType(softmax.loss).toBe<number>();
const perRow = softmaxFocalLoss(logits, labels, { numClasses: 3, alpha: new Float32Array(3), reduction: 'none', grad: true, ignoreIndex: -1 });
expectType(perRow.loss).toBe<Float32Array>();
expectType(perRow.grad).toBe<Float32Array>();
declare const softmaxOptions: SoftmaxFocalOptions;
expectType(softmaxFocalLoss(logits, labels, softmaxOptions)).toBe<LossResult<number | Float32Array, boolean>>();
// @ts-expect-error numClasses is required
softmaxFocalLoss(logits, labels, { gamma: 2 });
// @ts-expect-error no gradient without grad: true
const noSoftmaxGrad: Float32Array = softmax.grad;

// ---- GHM-C and GHM-R ----------------------------------------------------------------------------
const ghmc = new GHMC({ bins: 30, momentum: 0.75, lossWeight: 1 });
const c1 = ghmc.forward(logits, binary);
expectType(c1).toBe<LossResult<number, false>>();
expectType(c1.grad).toBe<undefined>();
const c2 = ghmc.forward(logits, classes, weight, { grad: true });
expectType(c2.loss).toBe<number>();
expectType(c2.grad).toBe<Float32Array>();
declare const forwardOptions: GHMForwardOptions;
expectType(ghmc.forward(logits, soft, undefined, forwardOptions).grad).toBe<Float32Array | undefined>();
// @ts-expect-error no gradient without grad: true
const noGhmGrad: Float32Array = ghmc.forward(logits, binary).grad;
// @ts-expect-error misspelt option
ghmc.forward(logits, binary, undefined, { gard: true });

const statsA: GHMStats = ghmc.collect(logits, binary);
const merged = statsA.add(ghmc.collect(logits, soft, weight));
expectType(merged).toBe<GHMStats>();
const step: GHMStep = ghmc.step(merged);
expectType(step.loss).toBe<number>();
expectType(ghmc.gradient(step, logits, binary)).toBe<Float32Array>();
expectType(merged.valid + merged.nanCount + merged.weightSum + merged.bins).toBe<number>();
expectType(merged.counts).toBe<Float64Array>();
const json = merged.toJSON();
expectType(GHMStats.fromJSON(json)).toBe<GHMStats>();
const state: GHMState = ghmc.state();
ghmc.loadState(state);
ghmc.reset();
expectType(ghmc.accSum).toBe<Float64Array>();
const maxBins: 1024 = MAX_BINS;

const ghmStream: GHMStream = ghmc.stream();
ghmStream.push(logits, binary);
const ghmFinished = ghmStream.finish();
expectType(ghmFinished).toBe<GHMStreamResult>();
expectType(ghmFinished.gradient(logits, binary)).toBe<Float32Array>();

const ghmr = new GHMR({ mu: 0.02, bins: 10, momentum: 0.7 });
const pred = new Float32Array(6);
const target = new Float32Array(6);
expectType(ghmr.forward(pred, target).grad).toBe<undefined>();
const r2 = ghmr.forward(pred, target, weight, { grad: true });
expectType(r2.grad).toBe<Float32Array>();
expectType(ghmr.mu).toBe<number>();
expectType(ghmr.gradient(ghmr.step(ghmr.collect(pred, target)), pred, target)).toBe<Float32Array>();
// @ts-expect-error GHM-R targets are floats
ghmr.forward(pred, binary);

// ---- scoreStream -------------------------------------------------------------------------------
const chunks: StreamChunk[] = [{ logits, targets: binary }, { logits, targets: soft, weight }];
async function* pieces(): AsyncGenerator<StreamChunk> {
  for (const c of chunks) yield c;
}
const focalScore = await scoreStream(chunks, { loss: 'sigmoidFocal', options: { gamma: 2 }, onProgress: (p) => p.chunks + p.elements });
expectType(focalScore).toBe<ScoreResult<'sigmoidFocal'>>();
expectType(focalScore.loss + focalScore.elements + focalScore.chunks).toBe<number>();
expectType(focalScore.ghm).toBe<undefined>();
const ghmScore = await scoreStream(pieces(), { loss: ghmc });
expectType(ghmScore.ghm).toBe<GHMStreamResult>();
expectType(ghmScore.ghm.gradient(logits, binary)).toBe<Float32Array>();
expectType((await scoreStream(chunks, { loss: ghmr })).ghm.stats).toBe<GHMStats>();
declare const spec: ScoreSpec;
expectType((await scoreStream(chunks, spec)).ghm).toBe<GHMStreamResult | undefined>();
// A WHATWG ReadableStream fits ReadableStreamLike (no DOM typings needed to declare it).
declare const readable: ReadableStreamLike<StreamChunk>;
expectType((await scoreStream(readable, { loss: 'sigmoidFocal' })).loss).toBe<number>();
// @ts-expect-error no such loss
await scoreStream(chunks, { loss: 'softmaxFocal' });

// ---- Batches ----------------------------------------------------------------------------------
const batch = createBatch({ length: 6, targets: 'u8', weight: true, grad: true });
expectType(batch).toBe<Batch>();
batch.logits.set(logits);
expectType(batch.targets).toBe<Uint8Array | Float32Array | ClassTargets>();
(batch.targets as Uint8Array).set(binary);
const inPlace = sigmoidFocalLoss(batch.logits, batch.targets, { weight: batch.weight, out: { grad: batch.grad } });
expectType(inPlace.grad).toBe<Float32Array>();
expectType(createBatch({ length: 6, targets: { numClasses: 3 }, weight: 'rows' }).labels).toBe<Int32Array>();
expectType(batch.freed).toBe<boolean>();
batch.free();
// @ts-expect-error batches come from createBatch
new Batch();

// ---- The thread pool: the same result types, as promises -----------------------------------------
const pool = await createPool({ threads: 2, forceFallback: false, chunkElements: 1 << 20, startTimeout: 10_000 });
expectType(pool).toBe<Pool>();
expectType(pool.threads).toBe<number>();
expectType(pool.reason).toBe<string | undefined>();
expectType(pool.closed).toBe<boolean>();
expectType(pool.memoryInUse).toBe<number>();
const pooled = pool.sigmoidFocalLoss(logits, binary, { reduction: 'none', grad: true });
expectType(pooled).toBe<Promise<SigmoidFocalResult<Float32Array, true>>>();
expectType((await pool.sigmoidFocalLoss(logits, binary)).grad).toBe<undefined>();
expectType((await pool.sigmoidFocalLoss(logits, binary, wide)).loss).toBe<number | Float32Array>();
const poolBatch = pool.createBatch({ length: 6, grad: true });
expectType((await pool.sigmoidFocalLoss(poolBatch.logits, poolBatch.targets, { out: { grad: poolBatch.grad } })).grad).toBe<Float32Array>();
poolBatch.free();
expectType(await pool.ghmc(ghmc, logits, binary)).toBe<LossResult<number, false>>();
expectType((await pool.ghmc(ghmc, logits, binary, weight, { grad: true })).grad).toBe<Float32Array>();
expectType((await pool.ghmr(ghmr, pred, target, undefined, { grad: true })).grad).toBe<Float32Array>();
expectType((await pool.ghmr(ghmr, pred, target)).loss).toBe<number>();
// @ts-expect-error no gradient without grad: true
const noPoolGrad: Float32Array = (await pool.ghmc(ghmc, logits, binary)).grad;
// @ts-expect-error pools come from createPool
new Pool();
await pool.close();

// ---- The extras module: the focal family, poly1, softmax soft targets -------------------------------
expectType(extras).toBe<Extras>();
expectType((await init({ extras })).extras).toBe<boolean>();
const custom: Extras = { simd: async () => extrasWasm };
void custom;
const qt: QualityTargets = { labels: new Int32Array(2), scores: new Float32Array(2), numClasses: 3 };
expectType(qualityFocalLoss(logits, qt)).toBe<LossResult<number, false>>();
expectType(qualityFocalLoss(logits, qt, { beta: 1, reduction: 'none', grad: true })).toBe<LossResult<Float32Array, true>>();
expectType(varifocalLoss(logits, new Float32Array(6), { alpha: 0.75, gamma: 2, iouWeighted: false }).loss).toBe<number>();
expectType(distributionFocalLoss(new Float32Array(8), Float32Array.of(1.5), { bins: 7, grad: true }).grad).toBe<Float32Array>();
const qs = qualityFocalLoss.stream({ beta: 2 });
expectType(qs).toBe<FamilyStream<QualityTargets>>();
qs.push(logits, qt);
expectType(qs.finish().loss).toBe<number>();
expectType(sigmoidFocalLoss(logits, binary, { poly1: 1 }).loss).toBe<number>();
expectType(softmaxFocalLoss(logits, new Float32Array(6), { numClasses: 3, labelSmoothing: 0, poly1: 0 }).loss).toBe<number>();
// @ts-expect-error QFL targets need scores
qualityFocalLoss(logits, { labels: new Int32Array(2), numClasses: 3 });
// On a pool created with the extras: the same result types, as promises.
const xpool = await createPool({ threads: 2, extras: threadedExtras });
expectType(xpool.extras).toBe<boolean>();
expectType(xpool.qualityFocalLoss(logits, qt)).toBe<Promise<LossResult<number, false>>>();
expectType(await xpool.qualityFocalLoss(logits, qt, { reduction: 'none', grad: true })).toBe<LossResult<Float32Array, true>>();
expectType((await xpool.varifocalLoss(logits, new Float32Array(6), { reduction: 'sum' })).loss).toBe<number>();
expectType((await xpool.distributionFocalLoss(new Float32Array(8), Float32Array.of(1.5), { bins: 7, grad: true })).grad).toBe<Float32Array>();
expectType((await xpool.sigmoidFocalLoss(logits, binary, { poly1: 1, grad: true })).grad).toBe<Float32Array>();
const sharedExtras: Promise<Uint8Array | undefined> | undefined = threadedExtras.shared?.();
void sharedExtras;
await xpool.close();

export { asGeneral, asSigmoid, initOptions, maxBins, noGhmGrad, noGrad, noPoolGrad, noSoftmaxGrad, notSureNumber };
