// Types for tfjs.mjs, for the tests that take it as the composed TF.js reference.
type TF = typeof import('@tensorflow/tfjs-core');
type Tensor = import('@tensorflow/tfjs-core').Tensor;

export function setupTf(backendName: 'wasm' | 'cpu'): Promise<TF>;
export function useBackendSync(tf: TF, backendName: 'wasm' | 'cpu'): void;
export function tfBackendInfo(tf: TF): string;
export function focalElementwiseTensor(tf: TF, x: Tensor, t: Tensor, alpha?: number | null, gamma?: number): Tensor;
export function focalLossTensor(tf: TF, x: Tensor, t: Tensor, alpha?: number | null, gamma?: number): Tensor;
export function softmaxFocalRowsTensor(tf: TF, x: Tensor, labels: Tensor, alpha?: number | Float32Array | null, gamma?: number): Tensor;
