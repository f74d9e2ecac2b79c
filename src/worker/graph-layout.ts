import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { LayerInfo } from '../core/analysis/analyze';
import type { GraphDto, GraphNode } from '../protocol/webview';
import type { LaidOutChunk, LayoutChunk } from './layout-thread';

/**
 * The graph view's data: which layers are drawn as boxes, what each box says, and where it
 * sits. Weights are not nodes: a layer whose inputs are all constant (Constant, Identity or
 * DequantizeLinear of an initializer, a TF.js `Const`, …) is folded into the first compute
 * layer that consumes it, and the box lists its weights with their shapes, as Netron draws
 * them. A collapsed name scope (`/features/denseblock3`) is one box.
 *
 * Layout runs off the UI and off the worker's main thread: the boxes (in topological
 * order) are cut into chunks laid out by dagre on two threads, then stacked top to bottom.
 * Edges between chunks are drawn straight; chunks wrap into columns (`npm run bench -- ui` times 5,000 nodes).
 */

/** Input names by position for ops whose weights have well-known names (ONNX operator spec). */
const WEIGHT_NAMES: Record<string, string[]> = {
  BatchNormalization: ['scale', 'B', 'mean', 'var'],
  LSTM: ['W', 'R', 'B'],
  GRU: ['W', 'R', 'B'],
  LayerNormalization: ['scale', 'B'],
};
const MAX_WEIGHT_LINES = 3;
const CHAR_PX = 7.2;

/** The distinguishing tail of a path-like node name: its last two segments. */
export function shortName(name: string): string {
  const parts = name.split('/').filter(Boolean);
  return parts.length > 2 ? parts.slice(-2).join('/') : parts.join('/') || name;
}

/** Builds the graph of `layers` (in topological order, subgraph layers after) and lays it out. */
export async function buildGraph(layers: LayerInfo[], graphInputs: string[], collapse: string[] = []): Promise<GraphDto> {
  const n = layers.length;
  const producer = new Map<string, number>();
  layers.forEach((l, i) => l.outputs.forEach((o) => o && producer.set(o, i)));
  const consumers: number[][] = layers.map(() => []);
  layers.forEach((l, i) => l.inputs.forEach((inp) => {
    const p = producer.get(inp);
    if (p !== undefined && p !== i) consumers[p].push(i);
  }));
  // A layer is constant when nothing it reads comes from a graph input or a non-constant layer.
  const fed = new Set(graphInputs);
  const constant = new Array<boolean>(n).fill(false);
  const order = [...layers.keys()];
  for (let pass = 0; pass < 2; pass++) {
    // Two passes: subgraph layers (listed last) may feed nothing earlier, but outer values feed them.
    for (const i of order) {
      constant[i] = layers[i].inputs.every((inp) => {
        if (!inp) return true;
        const p = producer.get(inp);
        return p === undefined ? !fed.has(inp) : p !== i && constant[p];
      });
    }
  }
  // Each constant layer joins the first non-constant layer reached through its consumers.
  const host = new Int32Array(n).fill(-1);
  const hostOf = (i: number): number => {
    if (!constant[i]) return i;
    if (host[i] !== -1) return host[i];
    host[i] = -2; // cycle guard
    let h = -2;
    for (const c of consumers[i]) {
      const r = hostOf(c);
      if (r >= 0) {
        h = r;
        break;
      }
    }
    host[i] = h;
    return h;
  };
  const rep = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const h = hostOf(i);
    rep[i] = h >= 0 ? h : i; // a constant nothing computes from stays a box of its own
  }
  // Collapsed scopes: every member (and what it holds) joins the scope's first member.
  const scopes = collapse.map((s) => s.replace(/\/+$/, '')).filter(Boolean);
  const scopeOf = (name: string) => scopes.find((s) => name === s || name.startsWith(`${s}/`));
  const scopeRep = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const s = scopeOf(layers[rep[i]].name);
    if (s === undefined) continue;
    if (!scopeRep.has(s)) scopeRep.set(s, rep[i]);
    rep[i] = scopeRep.get(s)!;
  }
  const drawn: number[] = [];
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (rep[i] === i) drawn.push(i);
    const m = members.get(rep[i]);
    if (m) m.push(i);
    else members.set(rep[i], [i]);
  }
  const seen = new Set<number>();
  const edges: Array<[number, number]> = [];
  layers.forEach((l, i) => l.inputs.forEach((inp) => {
    const p = producer.get(inp);
    if (p === undefined) return;
    const a = rep[p];
    const b = rep[i];
    if (a === b || seen.has(a * n + b)) return;
    seen.add(a * n + b);
    edges.push([a, b]);
  }));
  const scopeName = new Map([...scopeRep].map(([s, i]) => [i, s]));
  const boxes = drawn.map((i) => box(layers, i, members.get(i)!, scopeName.get(i)));
  const index = new Map(drawn.map((i, k) => [i, k]));
  const lay = await layoutGraph(boxes, edges.map(([a, b]) => [index.get(a)!, index.get(b)!]));
  boxes.forEach((b, k) => {
    b.x = Math.round(lay.x[k]);
    b.y = Math.round(lay.y[k]);
  });
  const foldedInto: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) if (rep[i] !== i) foldedInto.push([i, rep[i]]);
  return { nodes: boxes, edges, foldedInto, collapsed: [...scopeRep.keys()], width: lay.width, height: lay.height, layoutMs: lay.ms };
}

function box(layers: LayerInfo[], i: number, members: number[], scope?: string): GraphNode {
  const l = layers[i];
  let params = 0;
  let macs = 0;
  for (const m of members) {
    params += layers[m].params;
    macs += layers[m].macs ?? 0;
  }
  if (scope !== undefined) {
    const lines = [`${members.length} layers`];
    return size({ i, label: scope, op: 'scope', short: shortName(scope), shape: '', weights: lines, params, macs, members: members.length, x: 0, y: 0, w: 0, h: 0 });
  }
  const names = WEIGHT_NAMES[l.op] ?? ['W', 'B'];
  const weights = l.weights.slice(0, MAX_WEIGHT_LINES).map((w, k) => `${names[k] ?? `w${k}`} ⟨${w.shape.join('×')}⟩`);
  if (l.weights.length > MAX_WEIGHT_LINES) weights.push(`+${l.weights.length - MAX_WEIGHT_LINES} more`);
  const s = l.outputShapes[0];
  const shape = s ? `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]` : '';
  return size({ i, label: l.name, op: l.op, short: shortName(l.name), shape, weights, params, macs, members: members.length > 1 ? members.length : undefined, x: 0, y: 0, w: 0, h: 0 });
}

/** Box size from its text lines: the op, the short name, the shape, then one line per weight. */
function size(b: GraphNode): GraphNode {
  const lines = [b.short.slice(0, 32), b.shape, ...b.weights].filter(Boolean);
  const longest = Math.max(b.op.length * 1.15, ...lines.map((t) => t.length));
  b.w = Math.round(Math.min(240, Math.max(80, 20 + CHAR_PX * longest)));
  b.h = 22 + 13 * lines.length;
  return b;
}

export interface LayoutResult {
  x: Float64Array;
  y: Float64Array;
  width: number;
  height: number;
  ms: number;
}

const CHUNK = 50;
/** Width over height the wrapped layout aims at (a typical editor view), and the gap between its columns. */
const ASPECT = 1.6;
const COLUMN_GAP = 60;

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
  // Chunks in reading order, top to bottom, wrapped into columns (like a newspaper) so the
  // whole graph has a shape near the view's, instead of one column thousands of boxes tall.
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const laid = chunks.map((c) => results.get(c.id)!);
  const total = laid.reduce((s, r) => s + r.height, 0);
  const widest = laid.reduce((s, r) => Math.max(s, r.width), 0);
  const columnHeight = Math.max(laid.reduce((s, r) => Math.max(s, r.height), 0), Math.sqrt((total * widest) / ASPECT));
  const columns: Array<{ chunks: LaidOutChunk[]; width: number; height: number }> = [];
  for (const r of laid) {
    let col = columns[columns.length - 1];
    if (!col || (col.height + r.height > columnHeight && col.chunks.length)) columns.push((col = { chunks: [], width: 0, height: 0 }));
    col.chunks.push(r);
    col.width = Math.max(col.width, r.width);
    col.height += r.height;
  }
  let left = 0;
  let height = 0;
  for (const col of columns) {
    let top = 0;
    for (const r of col.chunks) {
      const dx = left + (col.width - r.width) / 2;
      for (const [i, px, py] of r.pos) {
        x[i] = px + dx;
        y[i] = py + top;
      }
      top += r.height;
    }
    height = Math.max(height, top);
    left += col.width + COLUMN_GAP;
  }
  const width = Math.max(0, left - COLUMN_GAP);
  return { x, y, width, height, ms: Date.now() - t0 };
}
