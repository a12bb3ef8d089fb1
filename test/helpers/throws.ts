// Assertions on what bad input throws (test/errors.test.ts, test/tfjs.test.ts).

import { expect } from 'vitest';

export type Ctor = typeof TypeError | typeof RangeError | typeof Error;

/** `fn` throws exactly `cls` (not a subclass of Error other than it) with a message matching `re`. */
export function expectThrow(fn: () => unknown, cls: Ctor, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${cls.name} matching ${re}`).toBeDefined();
  expect((err as Error).constructor, `${String(err)}`).toBe(cls);
  expect((err as Error).message).toMatch(re);
}

/** An argument deliberately of the wrong type: the API's TypeScript types would reject it. */
export const bad = <T>(v: unknown): T => v as T;
