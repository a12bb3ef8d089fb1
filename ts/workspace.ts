// The per-runtime memory state every call uses: the heap, the chunk scratch, and a small region
// for per-call parameters and results (info words, α tables, GHM statistics and factors), and
// one for logits gathered from another class axis.

import { getRuntime, type Kernels } from './loader';
import { Heap, Region } from './memory';

export interface Workspace {
  k: Kernels;
  heap: Heap;
  scratch: Region;
  params: Region;
  /** Class-last rows of logits laid out with another class axis, and their outputs (ts/axes.ts). */
  axes: Region;
}

let ws: Workspace | undefined;

/** The workspace of the initialized runtime; throws the use-before-init error for `fn`. */
export function workspace(fn: string): Workspace {
  const rt = getRuntime(fn);
  if (!ws || ws.k !== rt.kernels) {
    const heap = new Heap(rt.kernels);
    ws = { k: rt.kernels, heap, scratch: new Region(heap), params: new Region(heap), axes: new Region(heap) };
  }
  return ws;
}
