import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // ts/tfjs.ts imports the core by the package's name: in tests, the sources (one instance).
  resolve: { alias: [{ find: /^focal-ghm$/, replacement: fileURLToPath(new URL('./ts/index.ts', import.meta.url)) }] },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/tmp/**', 'node_modules/**'],
    // Property tests over 10^6-element batches and the 10^5-call memory test take seconds on a
    // 2-core CI machine; correctness, not speed, is under test here.
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
