// Cloudflare workerd: POST an encoded plan (test/support/probe.mjs), get the results back.
// The library is dist/workerd.js, what the `workerd` export condition resolves to: it imports the
// SIMD build as a wasm module, so `init()` needs no options there. The extras are
// dist/extras-workerd.js (focal-ghm/extras under the same condition), which imports the extras'
// SIMD build as a wasm module likewise.

import * as core from './index.js';
import * as lib from './workerd.js';
import { extras } from './extras-workerd.js';
import { decode, encode, probe } from './probe.mjs';

export default {
  async fetch(request) {
    const { cases } = decode(await request.text());
    // First the call a user of the core entry would make (a bundler without the workerd
    // condition): it must fail with directions.
    let coreError = null;
    try {
      await core.init();
    } catch (e) {
      coreError = e.message;
    }
    const out = await probe(lib, cases, { extras });
    return new Response(encode({ ...out, coreError }));
  },
};
