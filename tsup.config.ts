import { defineConfig, type Options } from 'tsup';

// Browsers, Deno, Bun and workerd must all load the core: no Node resolution or built-in
// polyfills (scripts/build.mjs then checks that no Node built-in is reachable from dist/).
const common: Options = {
  dts: true,
  target: 'es2020',
  platform: 'neutral',
  // The wasm module files stay imports (ts/workerd.ts: wrangler and workerd load them as modules).
  external: [/\.wasm$/],
  outDir: 'dist',
};

export default defineConfig([
  {
    ...common,
    // dist/index.js, the core (SIMD build embedded), and dist/workerd.js (the `workerd` export
    // condition: the module file instead). Code splitting: the API they share is one chunk, and
    // the pool's shared-memory build another, loaded only when a pool starts.
    entry: { index: 'ts/index.ts', workerd: 'ts/workerd.ts' },
    format: ['esm'],
    splitting: true,
    clean: true,
  },
  {
    ...common,
    // dist/index.cjs for require(); no import.meta there, so the scalar build's URL comes from
    // __dirname (ts/index.ts).
    entry: { index: 'ts/index.ts' },
    format: ['cjs'],
    define: { __FOCAL_GHM_CJS__: 'true' },
  },
]);
