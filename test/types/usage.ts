import { init, sigmoidFocalLoss } from 'focal-ghm';
await init();
const r = sigmoidFocalLoss(Float32Array.of(1), Uint8Array.of(1));
const n: number = r.loss as number;
console.log(n);
