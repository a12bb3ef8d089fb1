// Cloudflare workerd: POST an encoded plan (test/support/probe.mjs), get the results back.
// workerd cannot compile wasm from bytes, so the kernels come in as a module: the file the
// package ships (dist/focal_ghm_simd.wasm), bound as `simd.wasm` by the generated config.

import * as lib from './index.js';
import wasm from './simd.wasm';
import { decode, encode, probe } from './probe.mjs';

export default {
  async fetch(request) {
    const { cases } = decode(await request.text());
    // First the call a user without the module would make: it must fail with directions.
    let bytesError = null;
    try {
      await lib.init();
    } catch (e) {
      bytesError = e.message;
    }
    const out = await probe(lib, cases, { module: wasm });
    return new Response(encode({ ...out, bytesError }));
  },
};
