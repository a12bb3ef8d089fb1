// The quick start's main job: writes a detector-like batch (100k anchors × 80 classes, 1% of
// anchors positive, logits as a trained RetinaNet head gives them) as .npy files, then scores
// it with the `focal-ghm` command and writes the plots next to it.
//
//   npm run demo        (sets up and builds first; then `npx focal-ghm …` runs the command)

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../cli/bin/focal-ghm.js', import.meta.url));

function focalGhm(...args) {
  console.log(`\n$ npx focal-ghm ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

focalGhm('sample', 'sample');
// RetinaNet's normalisation (mmdetection's avg_factor): the summed loss over the positives.
focalGhm('score', '--logits', 'sample/logits.npy', '--targets', 'sample/labels.npy', '--avg-factor', 'positives', '--plot', 'sample/plots.svg', '--plot', 'sample/plots.png');
console.log('\nThe figure: sample/plots.png (and sample/plots.svg). `npx focal-ghm --help` for the options.');
