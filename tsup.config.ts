import { existsSync } from 'node:fs';
import { defineConfig } from 'tsup';

// ts/index.ts is the platform-neutral core; ts/node.ts (Node conveniences) and ts/worker.ts
// (thread-pool worker) are separate entry points, bundled only once they exist.
const entry = ['ts/index.ts', 'ts/node.ts', 'ts/worker.ts'].filter((file) => existsSync(file));

export default defineConfig({
  entry,
  format: ['esm', 'cjs'], // dist/*.js (package is "type": "module") and dist/*.cjs
  dts: true,
  target: 'es2020',
  // Browsers, Deno, Bun and workerd must all load the core: no Node resolution or built-in
  // polyfills. Node built-ins that node.ts/worker.ts import stay imports (scripts/build.mjs then
  // checks that none is reachable from dist/index).
  platform: 'neutral',
  external: [/^node:/],
  // Keep the `node:` prefix (tsup 8 strips it by default): Deno, Bun and workerd's nodejs_compat
  // resolve only `node:fs`-style specifiers reliably, and the portability check looks for it.
  removeNodeProtocol: false,
  clean: true,
  outDir: 'dist',
});
