// Argument checks shared by the public API. Every message names the argument and says what was
// wrong and what was expected, so a user can fix the call without reading our source.

type Ctor = { name: string };

/** A short description of a value for error messages: its class, or the value itself. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'string') return `"${v.length > 20 ? v.slice(0, 20) + '…' : v}"`;
  return String(v);
}

/** Throws a TypeError unless `v` is an instance of `ctor`. */
export function expectArray<T>(fn: string, name: string, v: unknown, ctor: Ctor & (new (...a: never[]) => T)): T {
  if (!(v instanceof ctor)) {
    throw new TypeError(`${fn}: ${name} must be a ${ctor.name}, got ${describeValue(v)}`);
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

/** Options must be a plain object (or absent). Unknown keys are rejected: a typo should not be silently ignored. */
export function expectOptions<K extends string>(fn: string, v: unknown, known: readonly K[]): Partial<Record<K, unknown>> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`${fn}: options must be an object, got ${describeValue(v)}`);
  }
  for (const k of Object.keys(v)) {
    if (!(known as readonly string[]).includes(k)) {
      throw new TypeError(`${fn}: unknown option '${k}' (known: ${known.join(', ')})`);
    }
  }
  return v as Partial<Record<K, unknown>>;
}
