// A `.wasm` import is a compiled module where the runtime provides it that way (workerd, and
// wrangler's bundling): ts/workerd.ts imports the SIMD build so.
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
