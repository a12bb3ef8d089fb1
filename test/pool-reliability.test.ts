// The pool's part of issue #17: createPool accepts any finite startTimeout.

import { beforeAll, describe, expect, it } from 'vitest';
import { loadLib, type Lib } from './support/lib';

let lib: Lib;

beforeAll(async () => {
  lib = await loadLib('simd');
});

describe('createPool: startTimeout', () => {
  it('accepts timeouts beyond what one timer can wait (2^31 - 1 ms; repro 13)', async () => {
    for (const startTimeout of [2 ** 31, 3e9, Number.MAX_SAFE_INTEGER]) {
      const p = await lib.createPool({ threads: 2, startTimeout });
      expect(p.threads).toBe(2);
      await p.close();
    }
  });

  it('still rejects when the workers do not start in time', async () => {
    await expect(lib.createPool({ threads: 2, startTimeout: 1e-3 })).rejects.toThrow('createPool: the workers did not start within 0.001 ms');
  });
});
