// What the core needs to know of the runtime it runs in, without importing anything from it:
// the core bundle (dist/index) must load in browsers, Deno, Bun and workerd, so Node built-ins
// are reached only at run time, by name, where a Node-compatible runtime provides them.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyGlobal = any;
export const g = globalThis as AnyGlobal;

/**
 * A Node built-in, loaded at run time. `process.getBuiltinModule` (Node ≥ 20.16) needs no import
 * at all; the `import()` fallback takes the specifier from a variable so that browser bundlers
 * (and scripts/lib/bundle.mjs's portability check) do not see a Node import in the core.
 */
export async function nodeBuiltin<T>(name: string): Promise<T> {
  if (typeof g.process?.getBuiltinModule === 'function') return g.process.getBuiltinModule(name) as T;
  const specifier = name;
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as T;
}

/** Node, Bun and Deno can read files; browsers and workerd cannot. */
function readsFiles(): boolean {
  return typeof g.Deno?.readFile === 'function' || typeof g.process?.versions?.node === 'string';
}

/**
 * The bytes at `url`: `file:` URLs read from disk where the runtime can (Node's fetch cannot
 * fetch them), anything else fetched. Errors name the URL and say why.
 */
export async function fetchBytes(url: URL, what: string): Promise<ArrayBuffer | Uint8Array<ArrayBuffer>> {
  if (url.protocol === 'file:') {
    if (!readsFiles()) throw new Error(`${what}: ${url.href} is a file: URL, and this runtime cannot read files; pass the bytes or a compiled module instead`);
    try {
      if (typeof g.Deno?.readFile === 'function') return (await g.Deno.readFile(url)) as Uint8Array<ArrayBuffer>;
      const fs = await nodeBuiltin<{ readFileSync(u: URL): Uint8Array<ArrayBuffer> }>('node:fs');
      return fs.readFileSync(url);
    } catch (e) {
      throw new Error(`${what}: reading ${url.href} failed (${(e as Error).message})`, { cause: e });
    }
  }
  let res: { ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> };
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`${what}: fetching ${url.href} failed (${(e as Error).message})`, { cause: e });
  }
  if (!res.ok) throw new Error(`${what}: fetching ${url.href} failed with HTTP ${res.status}`);
  return res.arrayBuffer();
}
