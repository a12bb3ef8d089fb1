import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

// The command bundles the core from the repository's own build (dist/index.js and dist/extras.js:
// the same call path as the package, built first by scripts/build.mjs); its plotting and progress
// libraries stay dependencies, installed with it.
export default defineConfig({
  entry: { cli: 'src/cli.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  clean: true,
  noExternal: ['focal-ghm'],
  define: { __CLI_VERSION__: JSON.stringify(version) },
  esbuildOptions(o) {
    // The extras (dist/extras.js, the extras module's builds) load only when a loss needs them:
    // a dynamic import, its own chunk.
    o.alias = {
      'focal-ghm/extras': fileURLToPath(new URL('../dist/extras.js', import.meta.url)),
      'focal-ghm': fileURLToPath(new URL('../dist/index.js', import.meta.url)),
    };
  },
});
