// Closeness checks against float64 references, at docs/SPEC.md §5's bounds by default.

import { expect } from 'vitest';

/** |got − want| ≤ rel · max(1, |want|) per element (SPEC §5). */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rel = 1e-5): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const tol = rel * Math.max(1, Math.abs(w));
    if (!(Math.abs(got[i]! - w) <= tol)) throw new Error(`${what}[${i}]: ${got[i]} vs ${w}`);
  }
}

/** |got − want| ≤ rel · |want| (SPEC §5 for reduced losses). */
export function expectRel(got: number, want: number, what: string, rel = 1e-5): void {
  if (!(Math.abs(got - want) <= rel * Math.abs(want))) throw new Error(`${what}: ${got} vs ${want}`);
}

/**
 * The same results bit for bit: numbers and array elements by their bit patterns (so -0 is not
 * +0), except that any NaN equals any NaN. WebAssembly leaves a NaN result's sign and payload to
 * the engine, and V8's baseline and optimizing compilers pick different ones (which tier runs a
 * call depends on timing), so NaN bits are not part of a result.
 */
export function expectSameBits(a: number | Float32Array | undefined, b: number | Float32Array | undefined, label: string): void {
  if (typeof a === 'number' || a === undefined || typeof b === 'number' || b === undefined) {
    expect(Object.is(a, b), `${label}: ${String(a)} vs ${String(b)}`).toBe(true);
    return;
  }
  expect(a.length, `${label}: length`).toBe(b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) throw new Error(`${label}[${i}]: ${a[i]} vs ${b[i]} (bits differ)`);
  }
}
