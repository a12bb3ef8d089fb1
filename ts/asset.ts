// Where the wasm files shipped beside the bundle are (dist/wasm/), for the builds fetched rather
// than embedded: the scalar ones, for engines without SIMD.

// Set by tsup for the CommonJS bundles, which have no import.meta (see tsup.config.ts).
declare const __FOCAL_GHM_CJS__: boolean | undefined;
declare const __dirname: string;

/**
 * The URL of `dist/wasm/<file>`. In ESM written as `new URL('…', import.meta.url)` with a literal
 * path at each call site's bundle, so that bundlers that handle assets (Vite, webpack, Parcel)
 * copy the file and rewrite the URL; in CommonJS, from `__dirname`.
 */
export function cjsAssetUrl(file: string): URL | undefined {
  if (typeof __FOCAL_GHM_CJS__ === 'undefined' || !__FOCAL_GHM_CJS__) return undefined;
  const path = `${__dirname.replace(/\\/g, '/')}/wasm/${file}`;
  return new URL(`file://${path.startsWith('/') ? '' : '/'}${encodeURI(path).replace(/[?#]/g, encodeURIComponent)}`);
}
