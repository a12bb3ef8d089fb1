// A progress bar on stderr (cli-progress), only on a terminal and only once the work has taken
// a second: short runs and piped output stay clean.

import cliProgress from 'cli-progress';

export interface Progress {
  update: (done: number, total: number) => void;
  stop: () => void;
}

/** How long work runs before the bar shows: 1 s, or FOCAL_GHM_PROGRESS_AFTER_MS (0: at once). */
const DELAY_MS = Number(process.env.FOCAL_GHM_PROGRESS_AFTER_MS ?? 1000);

export function startProgress(isTTY: boolean, total: number, delayMs = DELAY_MS): Progress {
  if (!isTTY || total === 0) return { update: () => undefined, stop: () => undefined };
  const t0 = performance.now();
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done) {
      if (bar === undefined) {
        if (performance.now() - t0 < delayMs || (done >= total && delayMs > 0)) return;
        bar = new cliProgress.SingleBar(
          { format: 'scoring {bar} {percentage}% | {value}/{total} rows | {eta_formatted} left', stream: process.stderr, clearOnComplete: true, hideCursor: true, etaBuffer: 200 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      } else bar.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}
