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
    // the pool's shared-memory build another, loaded only when a pool starts. dist/extras.js and
    // dist/extras-workerd.js (`focal-ghm/extras`) hold only the extras module's builds: data, no
    // state, so a page that imports them twice (ESM and CJS) still has one runtime.
    entry: { index: 'ts/index.ts', workerd: 'ts/workerd.ts', extras: 'ts/extras.ts', 'extras-workerd': 'ts/extras-workerd.ts' },
    format: ['esm'],
    splitting: true,
    clean: true,
  },
  {
    ...common,
    // dist/index.cjs for require(); no import.meta there, so the scalar build's URL comes from
    // __dirname (ts/index.ts).
    entry: { index: 'ts/index.ts', extras: 'ts/extras.ts' },
    format: ['cjs'],
    define: { __FOCAL_GHM_CJS__: 'true' },
  },
  {
    ...common,
    // dist/tfjs.{js,cjs}, the TensorFlow.js adapter (`focal-ghm/tfjs`). It imports the core by
    // the package's name, kept external, so that it shares the instance `init()` loaded (a bundled
    // copy would hold its own, uninitialized runtime); @tensorflow/tfjs-core, a peer dependency,
    // stays external too. Its tsconfig maps the name to the sources, for the declarations.
    entry: { tfjs: 'ts/tfjs.ts' },
    tsconfig: 'tsconfig.tfjs.json',
    format: ['esm', 'cjs'],
    external: [...(common.external ?? []), /^focal-ghm$/, /^@tensorflow\/tfjs-core$/],
  },
]);
