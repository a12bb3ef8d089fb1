// Loads a fresh copy of the library bound to one bundled build, so that the SIMD and the scalar
// builds can be tested side by side in one process (the library keeps one runtime per module
// instance).

import { vi } from 'vitest';

export type Lib = typeof import('../../ts/index');
export type Build = 'simd' | 'scalar';
export const BUILDS: Build[] = ['simd', 'scalar'];

export async function loadLib(build: Build): Promise<Lib> {
  vi.resetModules();
  const lib = (await import('../../ts/index')) as Lib;
  await lib.init({ simd: build === 'simd' });
  return lib;
}
