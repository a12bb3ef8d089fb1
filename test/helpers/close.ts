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
