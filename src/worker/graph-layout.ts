import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { LaidOutChunk, LayoutChunk } from './layout-thread';

/**
 * Graph layout off the UI and off the worker's main thread: the nodes (in topological
 * order) are cut into chunks laid out by dagre on two threads, then stacked top to bottom.
 * Edges between chunks are drawn straight. 5,000 nodes take about 2 s here (`npm run bench -- ui`).
 */

export interface LayoutResult {
  x: Float64Array;
  y: Float64Array;
  width: number;
  height: number;
  ms: number;
}

const CHUNK = 50;

export async function layoutGraph(sizes: Array<{ w: number; h: number }>, edges: Array<[number, number]>): Promise<LayoutResult> {
  const t0 = Date.now();
  const n = sizes.length;
  const chunks: LayoutChunk[] = [];
  const chunkOf = new Int32Array(n);
  for (let s = 0, id = 0; s < n; s += CHUNK, id++) {
    const nodes = [];
    for (let i = s; i < Math.min(n, s + CHUNK); i++) {
      nodes.push({ id: i, ...sizes[i] });
      chunkOf[i] = id;
    }
    chunks.push({ id, nodes, edges: [] });
  }
  for (const [a, b] of edges) if (chunkOf[a] === chunkOf[b]) chunks[chunkOf[a]].edges.push([a, b]);
  const threads = Math.max(1, Math.min(2, os.cpus().length, chunks.length));
  const results = new Map<number, LaidOutChunk>();
  await Promise.all(
    Array.from({ length: threads }, (_, k) =>
      new Promise<void>((resolve, reject) => {
        const mine = chunks.filter((c) => c.id % threads === k);
        if (!mine.length) return resolve();
        const w = new Worker(path.join(__dirname, 'layout-thread.js'), { workerData: { chunks: mine }, resourceLimits: { stackSizeMb: 64 } });
        let got = 0;
        w.on('message', (r: LaidOutChunk) => {
          results.set(r.id, r);
          if (++got === mine.length) void w.terminate().then(() => resolve());
        });
        w.on('error', reject);
      }),
    ),
  );
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  let top = 0;
  let width = 0;
  for (const c of chunks) width = Math.max(width, results.get(c.id)!.width);
  for (const c of chunks) {
    const r = results.get(c.id)!;
    const dx = (width - r.width) / 2;
    for (const [i, px, py] of r.pos) {
      x[i] = px + dx;
      y[i] = py + top;
    }
    top += r.height;
  }
  return { x, y, width, height: top, ms: Date.now() - t0 };
}
