// Runs test cases through a loaded focal-ghm and returns what it computed, without judging it.
//
// Platform-neutral on purpose (no imports, only language globals): the same file runs the
// golden cases in vitest (test/golden.test.ts) and in Deno, Bun, Chromium and workerd
// (test/runtimes.test.ts), which send the cases in and the outputs back as `encode`d text. The
// checks stay on the Node side (test/support/checks.ts), so every runtime is held to exactly the
// same comparisons.
//
// A case is a golden case (test/helpers/golden.ts; the focal family's need `init({ extras })`) or
// one of the extra kinds below:
// - `{ kind: 'pool', threads, logits, targets }`: sigmoid focal and GHM-C through a pool, beside
//   the single-thread API;
// - `{ kind: 'batch', logits, targets }`: a call on a `createBatch` batch, beside the plain call;
// - `{ kind: 'stream', logits, targets, chunk }`: `sigmoidFocalLoss.stream` in pieces of `chunk`.

const TYPED = { Float32Array, Float64Array, Uint8Array, Int32Array };

function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** JSON with typed arrays kept exact (as little-endian bytes in base64; every runtime here is little-endian). */
export function encode(value) {
  return JSON.stringify(value, (_key, v) => {
    if (ArrayBuffer.isView(v) && v.constructor.name in TYPED) {
      return { $typed: v.constructor.name, b64: toBase64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
    return v;
  });
}

/** The inverse of `encode`. */
export function decode(text) {
  return JSON.parse(text, (_key, v) => {
    if (v && typeof v === 'object' && typeof v.$typed === 'string') {
      const bin = atob(v.b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return new TYPED[v.$typed](bytes.buffer);
    }
    if (v && typeof v === 'object' && typeof v.$number === 'string') return Number(v.$number);
    return v;
  });
}

function sigmoidOptions(o) {
  return {
    alpha: o.alpha,
    gamma: o.gamma,
    reduction: o.reduction,
    lossWeight: o.lossWeight,
    grad: true,
    ...(o.avgFactor !== null ? { avgFactor: o.avgFactor } : {}),
  };
}

/** The outputs of one case (see the file header for the kinds). */
export async function runCase(lib, c) {
  switch (c.kind) {
    case 'sigmoid_focal': {
      const r = lib.sigmoidFocalLoss(c.logits, c.targets, { ...sigmoidOptions(c.options), ...(c.weight ? { weight: c.weight } : {}) });
      return { loss: r.loss, grad: r.grad, alpha: r.alpha };
    }
    case 'sigmoid_focal_labels': {
      const targets = { labels: c.labels, numClasses: c.options.numClasses };
      const r = lib.sigmoidFocalLoss(c.logits, targets, { ...sigmoidOptions(c.options), ...(c.rowWeight ? { weight: c.rowWeight } : {}) });
      return { loss: r.loss, grad: r.grad, alpha: r.alpha };
    }
    case 'softmax_focal': {
      const { numClasses, alpha, gamma, reduction, ignoreIndex } = c.options;
      const r = lib.softmaxFocalLoss(c.logits, c.labels, { numClasses, alpha, gamma, reduction, ignoreIndex, grad: true });
      return { loss: r.loss, grad: r.grad };
    }
    case 'poly1_sigmoid': {
      const { poly1, alpha, gamma, reduction, avgFactor, lossWeight } = c.options;
      const o = { poly1, alpha, gamma, reduction, lossWeight, grad: true, ...(avgFactor !== null ? { avgFactor } : {}), ...(c.weight ? { weight: c.weight } : {}) };
      const r = lib.sigmoidFocalLoss(c.logits, c.targets, o);
      return { loss: r.loss, grad: r.grad, alpha: r.alpha };
    }
    case 'poly1_softmax': {
      const { numClasses, poly1, alpha, gamma, reduction, ignoreIndex } = c.options;
      const r = lib.softmaxFocalLoss(c.logits, c.labels, { numClasses, poly1, alpha, gamma, reduction, ignoreIndex, grad: true });
      return { loss: r.loss, grad: r.grad };
    }
    case 'quality_focal': {
      const { numClasses, beta, reduction, avgFactor, lossWeight } = c.options;
      const o = { beta, reduction, lossWeight, grad: true, ...(avgFactor !== null ? { avgFactor } : {}), ...(c.weight ? { weight: c.weight } : {}) };
      const r = lib.qualityFocalLoss(c.logits, { labels: c.labels, scores: c.scores, numClasses }, o);
      return { loss: r.loss, grad: r.grad };
    }
    case 'varifocal': {
      const { alpha, gamma, iouWeighted, reduction, avgFactor, lossWeight } = c.options;
      const o = { alpha, gamma, iouWeighted, reduction, lossWeight, grad: true, ...(avgFactor !== null ? { avgFactor } : {}), ...(c.weight ? { weight: c.weight } : {}) };
      const r = lib.varifocalLoss(c.logits, c.targets, o);
      return { loss: r.loss, grad: r.grad };
    }
    case 'distribution_focal': {
      const { bins, reduction, avgFactor, lossWeight } = c.options;
      const o = { bins, reduction, lossWeight, grad: true, ...(avgFactor !== null ? { avgFactor } : {}), ...(c.weight ? { weight: c.weight } : {}) };
      const r = lib.distributionFocalLoss(c.logits, c.targets, o);
      return { loss: r.loss, grad: r.grad };
    }
    case 'ghmc_labels': {
      const { bins, momentum, lossWeight, numClasses } = c.options;
      const ghmc = new lib.GHMC({ bins, momentum, lossWeight });
      const r = ghmc.forward(c.logits, { labels: c.labels, numClasses }, c.rowLabelWeight ?? undefined, { grad: true });
      return { loss: r.loss, grad: r.grad };
    }
    case 'ghmc': {
      const { bins, momentum, lossWeight } = c.options;
      const ghmc = new lib.GHMC({ bins, momentum, lossWeight });
      return {
        batches: c.batches.map((b) => {
          const r = ghmc.forward(b.logits, b.targets, b.labelWeight ?? undefined, { grad: true });
          return { loss: r.loss, grad: r.grad, accSum: ghmc.accSum };
        }),
      };
    }
    case 'ghmr': {
      const ghmr = new lib.GHMR(c.options);
      return {
        batches: c.batches.map((b) => {
          const r = ghmr.forward(b.pred, b.target, b.labelWeight ?? undefined, { grad: true });
          return { loss: r.loss, grad: r.grad, accSum: ghmr.accSum };
        }),
      };
    }
    case 'pool': {
      const single = lib.sigmoidFocalLoss(c.logits, c.targets, { grad: true });
      const singleGhmc = new lib.GHMC({ bins: 30, momentum: 0.75 }).forward(c.logits, c.targets, undefined, { grad: true });
      const pool = await lib.createPool({ threads: c.threads });
      try {
        // A small call straight after the pool starts: the memory grows for it while the workers
        // are idle (Deno's workers once missed such a growth; see ts/pool-worker.ts).
        const small = await pool.sigmoidFocalLoss(c.logits.subarray(0, 4), c.targets.subarray(0, 4), { grad: true });
        const singleSmall = lib.sigmoidFocalLoss(c.logits.subarray(0, 4), c.targets.subarray(0, 4), { grad: true });
        const pooled = await pool.sigmoidFocalLoss(c.logits, c.targets, { grad: true });
        const pooledGhmc = await pool.ghmc(new lib.GHMC({ bins: 30, momentum: 0.75 }), c.logits, c.targets, undefined, { grad: true });
        return { threads: pool.threads, reason: pool.reason ?? null, small, singleSmall, single, pooled, singleGhmc, pooledGhmc };
      } finally {
        await pool.close();
      }
    }
    case 'batch': {
      const plain = lib.sigmoidFocalLoss(c.logits, c.targets, { grad: true });
      const b = lib.createBatch({ length: c.logits.length, targets: 'u8', grad: true });
      try {
        b.logits.set(c.logits);
        b.targets.set(c.targets);
        const r = lib.sigmoidFocalLoss(b.logits, b.targets, { out: { grad: b.grad } });
        return { plain, batch: { loss: r.loss, grad: b.grad.slice() } };
      } finally {
        b.free();
      }
    }
    case 'stream': {
      const whole = lib.sigmoidFocalLoss(c.logits, c.targets);
      const s = lib.sigmoidFocalLoss.stream({});
      for (let i = 0; i < c.logits.length; i += c.chunk) s.push(c.logits.subarray(i, i + c.chunk), c.targets.subarray(i, i + c.chunk));
      return { whole: whole.loss, streamed: s.finish().loss };
    }
    default:
      throw new Error(`probe: unknown case kind ${c.kind}`);
  }
}

/**
 * `init(initOptions)` (with `extras`, the focal-ghm/extras export, for the focal family's cases),
 * then every case of `cases`. Returns `{ simd, results }`, a result being
 * `{ outputs }` or `{ error }` (a case that throws does not stop the others).
 */
export async function probe(lib, cases, initOptions = {}) {
  const rt = await lib.init(initOptions);
  const results = [];
  for (const c of cases) {
    try {
      results.push({ outputs: await runCase(lib, c) });
    } catch (e) {
      results.push({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
  }
  return { simd: rt.simd, results };
}
