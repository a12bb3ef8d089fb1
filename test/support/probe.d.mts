// Types for probe.mjs (plain JS so that every runtime can load it as it is).
export function encode(value: unknown): string;
export function decode(text: string): unknown;
export function runCase(lib: unknown, c: unknown): Promise<unknown>;
export function probe(lib: unknown, cases: unknown[], initOptions?: unknown): Promise<{ simd: boolean | null; results: Array<{ outputs?: unknown; error?: string }> }>;
