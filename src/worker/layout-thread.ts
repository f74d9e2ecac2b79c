/**
 * A layout thread: lays out chunks of the model graph with dagre (a maintained layout
 * library). dagre recurses deeply, so the thread is started with a large stack.
 */
import { parentPort, workerData } from 'worker_threads';
import * as dagre from '@dagrejs/dagre';

export interface LayoutChunk {
  id: number;
  nodes: Array<{ id: number; w: number; h: number }>;
  edges: Array<[number, number]>;
}
export interface LaidOutChunk {
  id: number;
  width: number;
  height: number;
  pos: Array<[number, number, number]>; // node id, centre x, centre y
}

const chunks = (workerData as { chunks: LayoutChunk[] }).chunks;
for (const c of chunks) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 16, ranksep: 28, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of c.nodes) g.setNode(String(n.id), { width: n.w, height: n.h });
  for (const [a, b] of c.edges) g.setEdge(String(a), String(b));
  dagre.layout(g);
  const out: LaidOutChunk = { id: c.id, width: g.graph().width ?? 0, height: g.graph().height ?? 0, pos: c.nodes.map((n) => [n.id, g.node(String(n.id)).x, g.node(String(n.id)).y]) };
  parentPort!.postMessage(out);
}
