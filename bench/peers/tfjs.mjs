// TF.js peer: sigmoid focal loss (SPEC §1; mean, α = 0.25, γ = 2 by default) composed from
// @tensorflow/tfjs-core ops, on the 'wasm' (@tensorflow/tfjs-backend-wasm) or 'cpu'
// (@tensorflow/tfjs-backend-cpu) backend.
//
// Fairness note: the benchmark times what a JS user holding Float32Array/Uint8Array data has to
// do — create the tensors (tf.tensor1d; the Uint8Array targets are converted to float32),
// compute, read the scalar back with dataSync() (and the gradient with dataSync() for the
// forward+gradient case), and dispose everything. See tfFocalFromArrays /
// tfFocalWithGradFromArrays. The pure-tensor functions tfSigmoidFocal / tfSigmoidFocalWithGrad
// take tensors the caller owns and never dispose them.
//
// WASM backend in Node 20, offline: the package's Node build (dist/tf-backend-wasm.node.js, its
// "main") reads the .wasm binaries itself when setWasmPaths() is given a plain *file system
// directory* with a trailing slash (no file:// URL, no fetch). We resolve
// node_modules/@tensorflow/tfjs-backend-wasm/dist/ through require.resolve so it works from any
// working directory. Node has SIMD but no cross-origin-isolated threads here, so the backend
// picks tfjs-backend-wasm-simd.wasm (single-threaded XNNPACK).
//
// Gradients: tfjs-core's bundles (the CommonJS "main" included) ship NO gradient functions; the
// union package @tensorflow/tfjs registers them by importing
// @tensorflow/tfjs-core/dist/register_all_gradients.js, an ES module tree whose relative imports
// have no file extension (fine for bundlers, rejected by Node's ESM resolver). We register a
// tiny resolve hook (node:module register, Node ≥ 18.19 / 20.6) that appends '.js' to extensionless
// relative imports made from inside tfjs-core/dist/ only, then import that file: the genuine
// TF.js gradient definitions land in tfjs-core's process-global gradient registry, which the
// CommonJS instance we compute with shares (as it shares the global engine).
//
// tf.enableProdMode() silences the Node "install tfjs-node" banner and skips debug checks, as a
// performance-minded user would do.
import { createRequire, register } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

const RESOLVE_HOOK = `
export async function resolve(specifier, context, next) {
  if (context.parentURL && context.parentURL.includes('/@tensorflow/tfjs-core/dist/') &&
      specifier.startsWith('.') && !/\\.[cm]?js$/.test(specifier)) {
    try { return await next(specifier + '.js', context); }
    catch { return next(specifier + '/index.js', context); }
  }
  return next(specifier, context);
}`;

async function registerAllGradients() {
  if (typeof register !== 'function') {
    throw new Error('TF.js gradients need node:module register() (Node >= 18.19 / 20.6)');
  }
  register('data:text/javascript,' + encodeURIComponent(RESOLVE_HOOK));
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
}

let tfPromise = null;
let wasmPathsSet = false;

async function loadTf() {
  if (!tfPromise) {
    tfPromise = (async () => {
      // CommonJS builds (the packages' "main"): one shared tfjs-core instance for both backends.
      const tf = require('@tensorflow/tfjs-core');
      require('@tensorflow/tfjs-backend-cpu');
      const wasm = require('@tensorflow/tfjs-backend-wasm');
      tf.enableProdMode();
      await registerAllGradients();
      return { tf, wasm };
    })();
  }
  return tfPromise;
}

/** Directory holding the tfjs-backend-wasm .wasm binaries (absolute path, trailing slash). */
export function tfWasmDir() {
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkg), 'dist') + path.sep;
}

/**
 * Load TF.js and switch to `backendName` ('wasm' or 'cpu'). Returns the tf namespace.
 * Safe to call repeatedly to switch back and forth.
 */
export async function setupTf(backendName) {
  const { tf, wasm } = await loadTf();
  if (backendName === 'wasm' && !wasmPathsSet) {
    wasm.setWasmPaths(tfWasmDir()); // must precede the first setBackend('wasm')
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend(backendName);
  if (!ok || tf.getBackend() !== backendName) throw new Error(`TF.js: could not set backend '${backendName}'`);
  await tf.ready();
  return tf;
}

/** Describe the active backend (for the bench header). */
export function tfBackendInfo(tf) {
  const b = tf.getBackend();
  if (b !== 'wasm') return b;
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const mt = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return `wasm (simd ${simd ? 'on' : 'off'}, threads ${mt ? 'on' : 'off'})`;
}

/**
 * Per-element focal losses as a tensor. Stable BCE: relu(x) - x·t + log1p(exp(-|x|)). `alpha`
 * null disables the α factor (SPEC §1).
 */
export function focalElementwiseTensor(tf, x, t, alpha = 0.25, gamma = 2) {
  const p = tf.sigmoid(x);
  const oneMinusT = tf.sub(1, t);
  const pt = tf.add(tf.mul(tf.sub(1, p), t), tf.mul(p, oneMinusT));
  const bce = tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
  const focal = tf.mul(tf.pow(pt, gamma), bce);
  return alpha === null ? focal : tf.mul(tf.add(tf.mul(alpha, t), tf.mul(1 - alpha, oneMinusT)), focal);
}

/**
 * Per-row softmax focal losses (SPEC §2, kornia's focal_loss) of logits x [R, C] and int32 labels
 * [R]: -α_y (1 - p_y)^γ log p_y from logSoftmax. `alpha`: a number, a per-class Float32Array, or
 * null. Labels outside [0, C) (ignored rows) give 0.
 */
export function softmaxFocalRowsTensor(tf, x, labels, alpha = 0.25, gamma = 2) {
  const c = x.shape[x.shape.length - 1];
  const oneHot = tf.cast(tf.oneHot(labels, c), 'float32');
  const logpy = tf.sum(tf.mul(tf.logSoftmax(x), oneHot), -1);
  const focal = tf.mul(tf.neg(tf.pow(tf.sub(1, tf.exp(logpy)), gamma)), logpy);
  if (alpha === null) return focal;
  const a = typeof alpha === 'number' ? alpha : tf.sum(tf.mul(oneHot, tf.tensor1d(alpha)), -1);
  return tf.mul(a, focal);
}

/**
 * The mean focal loss as a scalar tensor (no tidy, no read-back): the graph that both the
 * forward and valueAndGrad use.
 */
export function focalLossTensor(tf, x, t, alpha = 0.25, gamma = 2) {
  return tf.mean(focalElementwiseTensor(tf, x, t, alpha, gamma));
}

/** Mean sigmoid focal loss of tensors x (logits) and t (float32 targets), read back as a number. */
export function tfSigmoidFocal(tf, logitsTensor, targetsTensor, alpha = 0.25, gamma = 2) {
  const s = tf.tidy(() => focalLossTensor(tf, logitsTensor, targetsTensor, alpha, gamma));
  const v = s.dataSync()[0];
  s.dispose();
  return v;
}

/**
 * Mean focal loss and d loss/d logits via tf.valueAndGrad, read back:
 * returns { loss: number, grad: Float32Array }.
 */
export function tfSigmoidFocalWithGrad(tf, logitsTensor, targetsTensor, alpha = 0.25, gamma = 2) {
  const { value, grad } = tf.tidy(() =>
    tf.valueAndGrad((x) => focalLossTensor(tf, x, targetsTensor, alpha, gamma))(logitsTensor),
  );
  const loss = value.dataSync()[0];
  const g = grad.dataSync();
  value.dispose();
  grad.dispose();
  return { loss, grad: g };
}

/** What the benchmark times: tensors from typed arrays, compute, read back, dispose. */
export function tfFocalFromArrays(tf, logits, targets, alpha = 0.25, gamma = 2) {
  const x = tf.tensor1d(logits, 'float32');
  const t = tf.tensor1d(targets, 'float32'); // Uint8Array → float32 tensor (a copy)
  try {
    return tfSigmoidFocal(tf, x, t, alpha, gamma);
  } finally {
    x.dispose();
    t.dispose();
  }
}

/** Forward + gradient from typed arrays: { loss, grad: Float32Array }. */
export function tfFocalWithGradFromArrays(tf, logits, targets, alpha = 0.25, gamma = 2) {
  const x = tf.tensor1d(logits, 'float32');
  const t = tf.tensor1d(targets, 'float32');
  try {
    return tfSigmoidFocalWithGrad(tf, x, t, alpha, gamma);
  } finally {
    x.dispose();
    t.dispose();
  }
}

/**
 * Switch between ALREADY INITIALIZED backends synchronously (both must have gone through
 * setupTf once): tf.setBackend's promise only awaits a backend's first initialization, the
 * switch itself happens before it returns. Lets one benny suite time wasm and cpu side by side.
 */
export function useBackendSync(tf, backendName) {
  if (tf.getBackend() !== backendName) {
    tf.setBackend(backendName).catch(() => {}); // switches synchronously when initialized
    if (tf.getBackend() !== backendName || tf.engine().backendInstance == null) {
      throw new Error(`TF.js: backend '${backendName}' not initialized; call setupTf('${backendName}') first`);
    }
  }
}

/** Per-element focal losses (float32, from TF.js), for telling formula errors from reduction error. */
export function tfElementwiseFocalFromArrays(tf, logits, targets, alpha = 0.25, gamma = 2) {
  const x = tf.tensor1d(logits, 'float32');
  const t = tf.tensor1d(targets, 'float32');
  try {
    const l = tf.tidy(() => focalElementwiseTensor(tf, x, t, alpha, gamma));
    const v = l.dataSync();
    l.dispose();
    return v;
  } finally {
    x.dispose();
    t.dispose();
  }
}
