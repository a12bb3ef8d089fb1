import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The page uses the package as built (dist/, by `npm run build` at the repository root): the
// core and its TensorFlow.js adapter, which imports the core by name, so both resolve to the one
// module whose wasm the page initializes. The figure's specs come from the command (cli/src).
const dist = (file: string) => fileURLToPath(new URL(`../dist/${file}`, import.meta.url));

export default defineConfig({
  base: './',
  resolve: {
    alias: [
      { find: /^focal-ghm$/, replacement: dist('index.js') },
      { find: /^focal-ghm\/tfjs$/, replacement: dist('tfjs.js') },
    ],
  },
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  server: { fs: { allow: ['..'] } },
});
