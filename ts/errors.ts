// Argument checks shared by the public API. Every message names the argument and says what was
// wrong and what was expected, so a user can fix the call without reading our source.

import { detachedBatchView } from './views';

type Ctor = { name: string };

/** A short description of a value for error messages: its class, or the value itself. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'string') return `"${v.length > 20 ? v.slice(0, 20) + '…' : v}"`;
  return String(v);
}

/** The engine's own `length` of a typed array (%TypedArray%.prototype's getter): it throws for objects that only inherit from a typed array's prototype. */
const typedLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'length')!.get!;

/**
 * Throws a TypeError unless `v` is a real, usable instance of `ctor`: not an object that only
 * inherits from its prototype, not one whose `length` property says something else than the
 * engine (the kernels read the engine's), not a view that wasm memory growth or a transfer
 * detached.
 */
export function expectArray<T>(fn: string, name: string, v: unknown, ctor: Ctor & (new (...a: never[]) => T)): T {
  if (!(v instanceof ctor)) {
    throw new TypeError(`${fn}: ${name} must be a ${ctor.name}, got ${describeValue(v)}`);
  }
  let length: number;
  try {
    length = typedLength.call(v) as number;
  } catch {
    throw new TypeError(`${fn}: ${name} is not a real ${ctor.name} (it only inherits from its prototype)`);
  }
  const a = v as unknown as ArrayBufferView & { length: number };
  if (a.length !== length) throw new TypeError(`${fn}: ${name} reports length ${a.length}, but holds ${length} elements`);
  // A detached view reads as empty; `slice` is one of the few things a detached buffer refuses
  // (`ArrayBuffer.prototype.detached` is newer than Node 20).
  if (length === 0) {
    if (detachedBatchView(a)) {
      throw new TypeError(`${fn}: ${name} is a batch view taken before wasm memory grew, which detached it; read it from the batch again (batch.logits, …) after other library calls`);
    }
    try {
      a.buffer.slice(0, 0);
    } catch {
      throw new TypeError(`${fn}: ${name}'s ArrayBuffer is detached (transferred, or wasm memory that grew)`);
    }
  }
  return v as T;
}

export function expectLength(fn: string, name: string, actual: number, expected: number, what: string): void {
  if (actual !== expected) {
    throw new RangeError(`${fn}: ${name} has length ${actual}, expected ${expected} (${what})`);
  }
}

export function expectNumber(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: ${name} must be a number, got ${describeValue(v)}`);
  return v;
}

/** A finite number in `[lo, hi]` (or `[lo, hi)` when `hiOpen`). */
export function expectInRange(fn: string, name: string, v: unknown, lo: number, hi: number, hiOpen = false): number {
  const x = expectNumber(fn, name, v);
  if (!(x >= lo && (hiOpen ? x < hi : x <= hi))) {
    throw new RangeError(`${fn}: ${name} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${x}`);
  }
  return x;
}

export function expectFinite(fn: string, name: string, v: unknown): number {
  const x = expectNumber(fn, name, v);
  if (!Number.isFinite(x)) throw new RangeError(`${fn}: ${name} must be finite, got ${x}`);
  return x;
}

export function expectPositive(fn: string, name: string, v: unknown): number {
  const x = expectNumber(fn, name, v);
  if (!(x > 0 && Number.isFinite(x))) throw new RangeError(`${fn}: ${name} must be a finite number > 0, got ${x}`);
  return x;
}

export function expectInteger(fn: string, name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const x = expectNumber(fn, name, v);
  if (!Number.isInteger(x) || x < min || x > max) {
    throw new RangeError(`${fn}: ${name} must be an integer in [${min}, ${max}], got ${x}`);
  }
  return x;
}

export function expectOneOf<T extends string>(fn: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string') {
    throw new TypeError(`${fn}: ${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describeValue(v)}`);
  }
  if (!(allowed as readonly string[]).includes(v)) {
    throw new RangeError(`${fn}: ${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got '${v}'`);
  }
  return v as T;
}

export function expectBoolean(fn: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${fn}: ${name} must be a boolean, got ${describeValue(v)}`);
  return v;
}

/**
 * Options must be a plain object (or absent). Unknown keys are rejected: a typo should not be
 * silently ignored. `name` is the argument's name in messages (nested options: `options.out`).
 */
export function expectOptions<K extends string>(fn: string, v: unknown, known: readonly K[], name = 'options'): Partial<Record<K, unknown>> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`${fn}: ${name} must be an object, got ${describeValue(v)}`);
  }
  for (const k of Object.keys(v)) {
    if (!(known as readonly string[]).includes(k)) {
      throw new TypeError(`${fn}: unknown ${name === 'options' ? 'option' : `key in ${name}:`} '${k}' (known: ${known.join(', ')})`);
    }
  }
  return v as Partial<Record<K, unknown>>;
}

/** Whether two views share any byte of memory. */
function overlap(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength && a.byteLength > 0 && b.byteLength > 0;
}

/**
 * Throws a RangeError if an output shares memory with another output or with an input: the
 * kernels write outputs while they still read inputs, chunk by chunk, so the results would be
 * wrong. `arrays` are `[name, array]` pairs, outputs flagged.
 */
export function expectDisjoint(fn: string, outputs: Array<[string, ArrayBufferView | undefined]>, inputs: Array<[string, ArrayBufferView | undefined]>): void {
  for (let i = 0; i < outputs.length; i++) {
    const [name, a] = outputs[i]!;
    if (!a) continue;
    for (const [other, b] of [...outputs.slice(i + 1), ...inputs]) {
      if (b && overlap(a, b)) throw new RangeError(`${fn}: ${name} shares memory with ${other}; outputs must not overlap each other or the inputs`);
    }
  }
}
