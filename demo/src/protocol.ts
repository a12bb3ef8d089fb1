// Messages between the page (main.ts) and the training worker (train.worker.ts).

export const MODELS = ['BCE', 'focal', 'GHM-C'] as const;
export type ModelName = (typeof MODELS)[number];

export interface FocalSettings {
  gamma: number;
  alpha: number;
}

export type ToWorker = { type: 'run'; running: boolean } | ({ type: 'focal' } & FocalSettings);

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'failed'; message: string }
  | {
      type: 'step';
      step: number;
      /** Each model's training loss on this step's batch. */
      losses: Record<ModelName, number>;
      /** Examples per second through forward, loss, gradient and Adam, per model. */
      throughput: number;
      /** TF.js tensors alive after the step: constant when nothing leaks. */
      tensors: number;
    }
  | {
      type: 'eval';
      step: number;
      /** On the held-out set: average precision, and precision/recall at p ≥ 0.5. */
      metrics: Record<ModelName, { ap: number; precision: number; recall: number }>;
    }
  | {
      type: 'histogram';
      step: number;
      bins: number;
      edges: number[];
      positives: number[];
      negatives: number[];
      weights: number[];
    };
