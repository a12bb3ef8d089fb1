// Loads a fresh copy of the library bound to one bundled build, so that the SIMD and the scalar
// builds can be tested side by side in one process (the library keeps one runtime per module
// instance). The extras module (focal-ghm/extras: the focal family, Poly-1, soft-target softmax)
// is loaded too, over the same build, unless `extras: false`.

import { vi } from 'vitest';

export type Lib = typeof import('../../ts/index');
export type Build = 'simd' | 'scalar';
export const BUILDS: Build[] = ['simd', 'scalar'];

export async function loadLib(build: Build, { extras: withExtras = true }: { extras?: boolean } = {}): Promise<Lib> {
  vi.resetModules();
  const lib = (await import('../../ts/index')) as Lib;
  const { extras } = await import('../../ts/extras');
  await lib.init({ simd: build === 'simd', ...(withExtras ? { extras } : {}) });
  return lib;
}
