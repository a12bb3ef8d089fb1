/**
 * Typed loaders for the golden vectors in `test/fixtures/golden/` (format: that folder's
 * README.md; definitions: docs/SPEC.md) and the comparison helpers implementing SPEC §5.
 *
 * The loaders resolve every option the files leave out to the SPEC default, so a test never
 * has to know which options a case happened to spell out. Each call decodes afresh: callers
 * get their own arrays and may mutate them.
 */
import { readFileSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------
// Case types
// ---------------------------------------------------------------------------------------------

export type Reduction = 'mean' | 'sum' | 'none';

/** What every non-batched case expects: the loss (array for reduction `none`) and d loss/d x. */
export interface Expected {
  loss: number | Float64Array;
  grad: Float64Array;
}

export interface SigmoidFocalCase {
  kind: 'sigmoid_focal';
  name: string;
  options: {
    alpha: number | null | 'auto';
    gamma: number;
    reduction: Reduction;
    avgFactor: number | null;
    lossWeight: number;
  };
  /** The α the reference resolved (`'auto'` → a number; `null` when alpha is disabled). */
  alphaUsed: number | null;
  logits: Float32Array;
  /** uint8 0/1 (binary) or float32 in [0, 1] (soft). */
  targets: Uint8Array | Float32Array;
  /** Per-element weight, or null for all ones. */
  weight: Float32Array | null;
  expected: Expected;
}

export interface SigmoidFocalLabelsCase {
  kind: 'sigmoid_focal_labels';
  name: string;
  options: {
    alpha: number | null | 'auto';
    gamma: number;
    reduction: Reduction;
    avgFactor: number | null;
    lossWeight: number;
    numClasses: number;
  };
  /** Row-major [N, C]. */
  logits: Float32Array;
  /** Length N, each in [0, C]; C is background. */
  labels: Int32Array;
  /** Per-row weight (length N), or null for all ones. */
  rowWeight: Float32Array | null;
  expected: Expected;
}

export type SigmoidCase = SigmoidFocalCase | SigmoidFocalLabelsCase;

export interface SoftmaxFocalCase {
  kind: 'softmax_focal';
  name: string;
  options: {
    numClasses: number;
    /** One α for all classes, a per-class vector (length C), or null (no α factor). */
    alpha: number | Float32Array | null;
    gamma: number;
    reduction: Reduction;
    ignoreIndex: number;
  };
  /** Row-major [N, C]. */
  logits: Float32Array;
  /** Length N, each in [0, C) or ignoreIndex. */
  labels: Int32Array;
  /** For reduction `none` the loss has one entry per row (0 for ignored rows). */
  expected: Expected;
}

export interface GhmExpected {
  loss: number;
  grad: Float64Array;
  /** The EMA state after the call; null when momentum is 0 (no state is kept). */
  accSum: Float64Array | null;
}

export interface GhmcBatch {
  logits: Float32Array;
  targets: Uint8Array;
  labelWeight: Float32Array | null;
  expected: GhmExpected;
}

export interface GhmcCase {
  kind: 'ghmc';
  name: string;
  options: { bins: number; momentum: number; lossWeight: number };
  /** Forward calls on ONE loss object, in order (the EMA state carries over). */
  batches: GhmcBatch[];
}

export interface GhmcLabelsCase {
  kind: 'ghmc_labels';
  name: string;
  options: { bins: number; momentum: number; lossWeight: number; numClasses: number };
  /** Row-major [N, C]. */
  logits: Float32Array;
  /** Length N, each in [0, C]; C is background. */
  labels: Int32Array;
  /** Per-row label weight (length N), or null for all ones. */
  rowLabelWeight: Float32Array | null;
  expected: Expected & { loss: number };
}

export type GhmcAnyCase = GhmcCase | GhmcLabelsCase;

export interface GhmrBatch {
  pred: Float32Array;
  target: Float32Array;
  labelWeight: Float32Array | null;
  expected: GhmExpected;
}

export interface GhmrCase {
  kind: 'ghmr';
  name: string;
  options: { mu: number; bins: number; momentum: number; lossWeight: number };
  batches: GhmrBatch[];
}

/** `focal_family.json` (SPEC §6–9): Poly-1 sigmoid focal loss, 0/1 or soft targets. */
export interface Poly1SigmoidCase {
  kind: 'poly1_sigmoid';
  name: string;
  options: {
    poly1: number;
    alpha: number | null;
    gamma: number;
    reduction: Reduction;
    avgFactor: number | null;
    lossWeight: number;
  };
  logits: Float32Array;
  targets: Uint8Array | Float32Array;
  /** Per element, or null for all ones. */
  weight: Float32Array | null;
  expected: Expected;
}

/** Poly-1 softmax focal loss. */
export interface Poly1SoftmaxCase {
  kind: 'poly1_softmax';
  name: string;
  options: {
    numClasses: number;
    poly1: number;
    alpha: number | Float32Array | null;
    gamma: number;
    reduction: Reduction;
    ignoreIndex: number;
  };
  /** Row-major [N, C]. */
  logits: Float32Array;
  labels: Int32Array;
  expected: Expected;
}

/** Quality Focal Loss (§7). */
export interface QualityFocalCase {
  kind: 'quality_focal';
  name: string;
  options: { numClasses: number; beta: number; reduction: Reduction; avgFactor: number | null; lossWeight: number };
  /** Row-major [N, C]. */
  logits: Float32Array;
  /** Length N, each in [0, C]; C is background. */
  labels: Int32Array;
  /** Length N, in [0, 1]. */
  scores: Float32Array;
  /** Per row, or null. */
  weight: Float32Array | null;
  /** For reduction `none` the loss has one entry per row. */
  expected: Expected;
}

/** Varifocal Loss (§8). */
export interface VarifocalCase {
  kind: 'varifocal';
  name: string;
  options: { alpha: number; gamma: number; iouWeighted: boolean; reduction: Reduction; avgFactor: number | null; lossWeight: number };
  logits: Float32Array;
  /** In [0, 1]; 0 marks a negative. */
  targets: Float32Array;
  /** Per element, or null. */
  weight: Float32Array | null;
  expected: Expected;
}

/** Distribution Focal Loss (§9). */
export interface DistributionFocalCase {
  kind: 'distribution_focal';
  name: string;
  options: { bins: number; reduction: Reduction; avgFactor: number | null; lossWeight: number };
  /** Row-major [N, bins + 1]. */
  logits: Float32Array;
  /** Length N, in [0, bins). */
  targets: Float32Array;
  /** Per row, or null. */
  weight: Float32Array | null;
  expected: Expected;
}

export type FamilyCase = Poly1SigmoidCase | Poly1SoftmaxCase | QualityFocalCase | VarifocalCase | DistributionFocalCase;

// ---------------------------------------------------------------------------------------------
// Raw JSON shapes and decoding
// ---------------------------------------------------------------------------------------------

type Dtype = 'float32' | 'float64' | 'uint8' | 'int32';

interface RawArray {
  dtype: Dtype;
  shape: number[];
  data: string;
}

/** A case as it sits in the JSON: arrays still base64, options possibly partial. */
type RawCase = Record<string, unknown> & { kind: string; name: string };

interface DtypeMap {
  float32: Float32Array;
  float64: Float64Array;
  uint8: Uint8Array;
  int32: Int32Array;
}

export const GOLDEN_DIR: URL = new URL('../fixtures/golden/', import.meta.url);

function readGoldenFile(file: string): RawCase[] {
  const text = readFileSync(new URL(file, GOLDEN_DIR), 'utf8');
  const parsed = JSON.parse(text) as { format?: unknown; spec?: unknown; cases?: unknown };
  // focal_family.json names the SPEC sections it follows instead of a format number; its cases
  // have the same shape.
  const known = parsed.format === 1 || (parsed.format === undefined && typeof parsed.spec === 'string');
  if (!known || !Array.isArray(parsed.cases)) {
    throw new Error(`${file}: expected {"format": 1, "cases": [...]} or {"spec": "...", "cases": [...]}`);
  }
  return parsed.cases as RawCase[];
}

function isRawArray(v: unknown): v is RawArray {
  return (
    typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v
  );
}

const BYTES_PER_ELEMENT: Record<Dtype, number> = { float32: 4, float64: 8, uint8: 1, int32: 4 };

/**
 * Decodes one `{dtype, shape, data}` array into a fresh, aligned typed array. Reading through a
 * DataView with explicit little-endian loads keeps this independent of the host's byte order and
 * of where Node's Buffer pool happened to place the bytes.
 */
export function decodeArray<D extends Dtype>(raw: unknown, dtype: D, what: string): DtypeMap[D] {
  if (!isRawArray(raw)) throw new Error(`${what}: not a {dtype, shape, data} array`);
  if (raw.dtype !== dtype) throw new Error(`${what}: dtype ${raw.dtype}, expected ${dtype}`);
  const bytes = Buffer.from(raw.data, 'base64');
  const size = BYTES_PER_ELEMENT[dtype];
  const n = bytes.byteLength / size;
  const shapeCount = raw.shape.reduce((a, b) => a * b, 1);
  if (!Number.isInteger(n) || n !== shapeCount) {
    throw new Error(
      `${what}: ${bytes.byteLength} bytes do not hold shape [${raw.shape}] of ${dtype}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'float32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      return out as DtypeMap[D];
    }
    case 'float64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return out as DtypeMap[D];
    }
    case 'int32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      return out as DtypeMap[D];
    }
    default: {
      return new Uint8Array(bytes) as DtypeMap[D]; // copies
    }
  }
}

/** Decodes an array whose dtype the file chooses among `allowed` (binary vs soft targets). */
function decodeOneOf<D extends Dtype>(raw: unknown, allowed: D[], what: string): DtypeMap[D] {
  if (!isRawArray(raw) || !(allowed as Dtype[]).includes(raw.dtype)) {
    throw new Error(`${what}: expected one of ${allowed.join(', ')}`);
  }
  return decodeArray(raw, raw.dtype as D, what);
}

function decodeOptional<D extends Dtype>(raw: unknown, dtype: D, what: string): DtypeMap[D] | null {
  return raw === null || raw === undefined ? null : decodeArray(raw, dtype, what);
}

/** A scalar loss, or (reduction `none`) a float64 array of losses. */
function decodeLoss(raw: unknown, what: string): number | Float64Array {
  return typeof raw === 'number' ? raw : decodeArray(raw, 'float64', what);
}

function decodeScalarLoss(raw: unknown, what: string): number {
  if (typeof raw !== 'number') throw new Error(`${what}: expected a number`);
  return raw;
}

function decodeExpected(raw: unknown, what: string): Expected {
  const e = raw as { loss: unknown; grad: unknown };
  return {
    loss: decodeLoss(e.loss, `${what}.loss`),
    grad: decodeArray(e.grad, 'float64', `${what}.grad`),
  };
}

function decodeGhmExpected(raw: unknown, what: string): GhmExpected {
  const e = raw as { loss: unknown; grad: unknown; accSum: unknown };
  return {
    loss: decodeScalarLoss(e.loss, `${what}.loss`),
    grad: decodeArray(e.grad, 'float64', `${what}.grad`),
    accSum: decodeOptional(e.accSum, 'float64', `${what}.accSum`),
  };
}

/**
 * `options[key]` if the file spells it out (even as null, which means "disabled" for alpha),
 * otherwise the SPEC default. Missing and null differ, so test presence, not truthiness.
 */
function opt<T>(options: Record<string, unknown>, key: string, fallback: T): T {
  return key in options ? (options[key] as T) : fallback;
}

/** An option SPEC gives no default for (numClasses): the file must spell it out. */
function required(options: Record<string, unknown>, key: string, what: string): number {
  const v = options[key];
  if (typeof v !== 'number') throw new Error(`${what}: options.${key} missing`);
  return v;
}

function optionsOf(c: RawCase): Record<string, unknown> {
  return (c.options ?? {}) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Per-kind decoding
// ---------------------------------------------------------------------------------------------

function decodeSigmoidCase(c: RawCase): SigmoidCase {
  const o = optionsOf(c);
  const what = c.name;
  const common = {
    alpha: opt<number | null | 'auto'>(o, 'alpha', 0.25),
    gamma: opt(o, 'gamma', 2),
    reduction: opt<Reduction>(o, 'reduction', 'mean'),
    avgFactor: opt<number | null>(o, 'avgFactor', null),
    lossWeight: opt(o, 'lossWeight', 1),
  };
  if (c.kind === 'sigmoid_focal') {
    return {
      kind: 'sigmoid_focal',
      name: c.name,
      options: common,
      alphaUsed: (c.alphaUsed ?? null) as number | null,
      logits: decodeArray(c.logits, 'float32', `${what}.logits`),
      targets: decodeOneOf(c.targets, ['uint8', 'float32'], `${what}.targets`),
      weight: decodeOptional(c.weight, 'float32', `${what}.weight`),
      expected: decodeExpected(c.expected, `${what}.expected`),
    };
  }
  if (c.kind === 'sigmoid_focal_labels') {
    return {
      kind: 'sigmoid_focal_labels',
      name: c.name,
      options: { ...common, numClasses: required(o, 'numClasses', what) },
      logits: decodeArray(c.logits, 'float32', `${what}.logits`),
      labels: decodeArray(c.labels, 'int32', `${what}.labels`),
      rowWeight: decodeOptional(c.rowWeight, 'float32', `${what}.rowWeight`),
      expected: decodeExpected(c.expected, `${what}.expected`),
    };
  }
  throw new Error(`sigmoid_focal.json: unknown case kind ${c.kind} (${c.name})`);
}

function decodeSoftmaxCase(c: RawCase): SoftmaxFocalCase {
  if (c.kind !== 'softmax_focal') throw new Error(`softmax_focal.json: unknown kind ${c.kind}`);
  const o = optionsOf(c);
  const rawAlpha = opt<unknown>(o, 'alpha', 0.25);
  const alpha =
    rawAlpha === null || typeof rawAlpha === 'number'
      ? rawAlpha
      : decodeArray(rawAlpha, 'float32', `${c.name}.options.alpha`);
  return {
    kind: 'softmax_focal',
    name: c.name,
    options: {
      numClasses: required(o, 'numClasses', c.name),
      alpha,
      gamma: opt(o, 'gamma', 2),
      reduction: opt<Reduction>(o, 'reduction', 'mean'),
      ignoreIndex: opt(o, 'ignoreIndex', -100),
    },
    logits: decodeArray(c.logits, 'float32', `${c.name}.logits`),
    labels: decodeArray(c.labels, 'int32', `${c.name}.labels`),
    expected: decodeExpected(c.expected, `${c.name}.expected`),
  };
}

function decodeGhmcCase(c: RawCase): GhmcAnyCase {
  const o = optionsOf(c);
  const common = {
    bins: opt(o, 'bins', 10),
    momentum: opt(o, 'momentum', 0),
    lossWeight: opt(o, 'lossWeight', 1),
  };
  if (c.kind === 'ghmc') {
    const batches = (c.batches as Record<string, unknown>[]).map((b, i): GhmcBatch => {
      const what = `${c.name}.batches[${i}]`;
      return {
        logits: decodeArray(b.logits, 'float32', `${what}.logits`),
        targets: decodeArray(b.targets, 'uint8', `${what}.targets`),
        labelWeight: decodeOptional(b.labelWeight, 'float32', `${what}.labelWeight`),
        expected: decodeGhmExpected(b.expected, `${what}.expected`),
      };
    });
    return { kind: 'ghmc', name: c.name, options: common, batches };
  }
  if (c.kind === 'ghmc_labels') {
    const e = c.expected as { loss: unknown; grad: unknown };
    return {
      kind: 'ghmc_labels',
      name: c.name,
      options: { ...common, numClasses: required(o, 'numClasses', c.name) },
      logits: decodeArray(c.logits, 'float32', `${c.name}.logits`),
      labels: decodeArray(c.labels, 'int32', `${c.name}.labels`),
      rowLabelWeight: decodeOptional(c.rowLabelWeight, 'float32', `${c.name}.rowLabelWeight`),
      expected: {
        loss: decodeScalarLoss(e.loss, `${c.name}.expected.loss`),
        grad: decodeArray(e.grad, 'float64', `${c.name}.expected.grad`),
      },
    };
  }
  throw new Error(`ghmc.json: unknown case kind ${c.kind} (${c.name})`);
}

function decodeGhmrCase(c: RawCase): GhmrCase {
  if (c.kind !== 'ghmr') throw new Error(`ghmr.json: unknown kind ${c.kind}`);
  const o = optionsOf(c);
  const batches = (c.batches as Record<string, unknown>[]).map((b, i): GhmrBatch => {
    const what = `${c.name}.batches[${i}]`;
    return {
      pred: decodeArray(b.pred, 'float32', `${what}.pred`),
      target: decodeArray(b.target, 'float32', `${what}.target`),
      labelWeight: decodeOptional(b.labelWeight, 'float32', `${what}.labelWeight`),
      expected: decodeGhmExpected(b.expected, `${what}.expected`),
    };
  });
  return {
    kind: 'ghmr',
    name: c.name,
    options: {
      mu: opt(o, 'mu', 0.02),
      bins: opt(o, 'bins', 10),
      momentum: opt(o, 'momentum', 0),
      lossWeight: opt(o, 'lossWeight', 1),
    },
    batches,
  };
}

/** softmax_focal.json's alpha: a number, null, or a float32 array. */
function decodeAlpha(o: Record<string, unknown>, what: string): number | Float32Array | null {
  const raw = opt<unknown>(o, 'alpha', 0.25);
  return raw === null || typeof raw === 'number' ? raw : decodeArray(raw, 'float32', `${what}.options.alpha`);
}

function decodeFamilyCase(c: RawCase): FamilyCase {
  const o = optionsOf(c);
  const what = c.name;
  const reduction = opt<Reduction>(o, 'reduction', 'mean');
  const avgFactor = opt<number | null>(o, 'avgFactor', null);
  const lossWeight = opt(o, 'lossWeight', 1);
  const logits = decodeArray(c.logits, 'float32', `${what}.logits`);
  const expected = decodeExpected(c.expected, `${what}.expected`);
  switch (c.kind) {
    case 'poly1_sigmoid':
      return {
        kind: c.kind,
        name: what,
        options: { poly1: opt(o, 'poly1', 0), alpha: opt<number | null>(o, 'alpha', 0.25), gamma: opt(o, 'gamma', 2), reduction, avgFactor, lossWeight },
        logits,
        targets: decodeOneOf(c.targets, ['uint8', 'float32'], `${what}.targets`),
        weight: decodeOptional(c.weight, 'float32', `${what}.weight`),
        expected,
      };
    case 'poly1_softmax':
      return {
        kind: c.kind,
        name: what,
        options: {
          numClasses: required(o, 'numClasses', what),
          poly1: opt(o, 'poly1', 0),
          alpha: decodeAlpha(o, what),
          gamma: opt(o, 'gamma', 2),
          reduction,
          ignoreIndex: opt(o, 'ignoreIndex', -100),
        },
        logits,
        labels: decodeArray(c.labels, 'int32', `${what}.labels`),
        expected,
      };
    case 'quality_focal':
      return {
        kind: c.kind,
        name: what,
        options: { numClasses: required(o, 'numClasses', what), beta: opt(o, 'beta', 2), reduction, avgFactor, lossWeight },
        logits,
        labels: decodeArray(c.labels, 'int32', `${what}.labels`),
        scores: decodeArray(c.scores, 'float32', `${what}.scores`),
        weight: decodeOptional(c.weight, 'float32', `${what}.weight`),
        expected,
      };
    case 'varifocal':
      return {
        kind: c.kind,
        name: what,
        options: { alpha: opt(o, 'alpha', 0.75), gamma: opt(o, 'gamma', 2), iouWeighted: opt(o, 'iouWeighted', true), reduction, avgFactor, lossWeight },
        logits,
        targets: decodeArray(c.targets, 'float32', `${what}.targets`),
        weight: decodeOptional(c.weight, 'float32', `${what}.weight`),
        expected,
      };
    case 'distribution_focal': {
      const targets = decodeArray(c.targets, 'float32', `${what}.targets`);
      return {
        kind: c.kind,
        name: what,
        options: { bins: opt(o, 'bins', logits.length / targets.length - 1), reduction, avgFactor, lossWeight },
        logits,
        targets,
        weight: decodeOptional(c.weight, 'float32', `${what}.weight`),
        expected,
      };
    }
    default:
      throw new Error(`focal_family.json: unknown case kind ${c.kind} (${what})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Public loaders
// ---------------------------------------------------------------------------------------------

/** `sigmoid_focal.json`: both `sigmoid_focal` and `sigmoid_focal_labels` cases. */
export function loadSigmoidCases(): SigmoidCase[] {
  return readGoldenFile('sigmoid_focal.json').map(decodeSigmoidCase);
}

export function loadSoftmaxCases(): SoftmaxFocalCase[] {
  return readGoldenFile('softmax_focal.json').map(decodeSoftmaxCase);
}

/** `ghmc.json`: both `ghmc` (batch sequences) and `ghmc_labels` cases. */
export function loadGhmcCases(): GhmcAnyCase[] {
  return readGoldenFile('ghmc.json').map(decodeGhmcCase);
}

export function loadGhmrCases(): GhmrCase[] {
  return readGoldenFile('ghmr.json').map(decodeGhmrCase);
}

/** `focal_family.json` (SPEC §6–9): Poly-1 (sigmoid and softmax), QFL, VFL and DFL cases. */
export function loadFamilyCases(): FamilyCase[] {
  return readGoldenFile('focal_family.json').map(decodeFamilyCase);
}

// ---------------------------------------------------------------------------------------------
// Comparisons (SPEC §5)
// ---------------------------------------------------------------------------------------------

/** Same non-finite value (NaN matches NaN, ±Infinity matches itself). */
function sameNonFinite(actual: number, expected: number): boolean {
  return Number.isNaN(expected) ? Number.isNaN(actual) : actual === expected;
}

function prefix(label: string | undefined): string {
  return label ? `${label}: ` : '';
}

/**
 * A reduced loss: |actual - expected| ≤ rel·|expected|. Purely relative, as SPEC §5 states, so
 * an expected 0 (e.g. a GHM call with no valid element) demands exactly 0.
 */
export function expectReducedClose(
  actual: number,
  expected: number,
  rel = 1e-5,
  label?: string,
): void {
  if (typeof actual !== 'number') {
    throw new Error(`${prefix(label)}expected a number, got ${typeof actual}`);
  }
  if (!Number.isFinite(expected) || !Number.isFinite(actual)) {
    if (sameNonFinite(actual, expected)) return;
    throw new Error(`${prefix(label)}reduced loss ${actual}, expected ${expected}`);
  }
  const err = Math.abs(actual - expected);
  const bound = rel * Math.abs(expected);
  if (err <= bound) return;
  const relErr = expected === 0 ? Infinity : err / Math.abs(expected);
  throw new Error(
    `${prefix(label)}reduced loss ${actual}, expected ${expected}: ` +
      `relative error ${relErr.toExponential(3)} > ${rel}`,
  );
}

/**
 * Elementwise: |actual[i] - expected[i]| ≤ tol·max(1, |expected[i]|) for every i. On failure the
 * message names the first bad index, the worst one (by error / bound) and how many failed.
 */
export function expectElementsClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-5,
  label?: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${prefix(label)}length ${actual.length}, expected ${expected.length}`);
  }
  let failures = 0;
  let first = -1;
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    let ratio: number; // error in units of the allowed bound; > 1 fails
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      ratio = sameNonFinite(a, e) ? 0 : Infinity;
    } else {
      ratio = Math.abs(a - e) / (tol * Math.max(1, Math.abs(e)));
    }
    if (ratio > 1) {
      failures++;
      if (first < 0) first = i;
    }
    if (ratio > worstRatio || (worst < 0 && ratio > 1)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (failures === 0) return;
  const describe = (i: number) => {
    const err = Math.abs(actual[i]! - expected[i]!);
    return `[${i}] actual ${actual[i]}, expected ${expected[i]}, |err| ${err.toExponential(3)}`;
  };
  throw new Error(
    `${prefix(label)}${failures} of ${expected.length} elements outside ` +
      `tol·max(1,|ref|) with tol ${tol}; first ${describe(first)}; ` +
      `worst ${describe(worst)} (${worstRatio.toExponential(3)}× the bound)`,
  );
}

/** Bit-for-bit equality (GHM bin counts and EMA state, SPEC §5), reporting the first mismatch. */
export function expectExactlyEqual(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  label?: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${prefix(label)}length ${actual.length}, expected ${expected.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(a === e || (Number.isNaN(a) && Number.isNaN(e)))) {
      throw new Error(
        `${prefix(label)}[${i}] actual ${a}, expected ${e} (must match exactly)`,
      );
    }
  }
}
