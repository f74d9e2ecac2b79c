import { DataType } from '../../ir/dtype';
import type { Model } from '../../ir/graph';
import { GraphEditor, cloneModel } from '../graph-edit';

/**
 * Weight sharing by 1-D k-means per tensor (k = 16 or 256). Two storage forms:
 * - 'gather': uint8 indices plus a float codebook, decoded by Cast→Gather at load time
 *   (ORT folds it back to a float constant, so run-time speed is unchanged; the file shrinks
 *   to about a quarter);
 * - 'dense': the clustered values written back as float32: the same file size, but only k
 *   distinct values per tensor, so it zips far smaller.
 * Tensors of rank ≥ 2 with at least 4k elements are clustered; biases and small tensors stay.
 */

export type ClusterForm = 'gather' | 'dense';

export interface ClusterOptions {
  k?: 16 | 256;
  form?: ClusterForm;
  iterations?: number;
  exclude?: Set<string>;
}

export interface ClusterResult {
  model: Model;
  form: ClusterForm;
  clustered: Array<{ tensor: string; elements: number; mse: number }>;
}

export function clusterWeights(model: Model, opts: ClusterOptions = {}): ClusterResult {
  const k = opts.k ?? 256;
  const form = opts.form ?? 'gather';
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const clustered: ClusterResult['clustered'] = [];
  for (const [name, t] of [...g.initializers]) {
    if (t.dtype !== DataType.FLOAT || t.dims.length < 2 || t.numel < 4 * k || opts.exclude?.has(name)) continue;
    const v = t.toFloat32();
    const { centroids, assign } = kmeans1d(v, k, opts.iterations ?? 12);
    let mse = 0;
    for (let i = 0; i < v.length; i++) mse += (v[i] - centroids[assign[i]]) ** 2;
    clustered.push({ tensor: name, elements: v.length, mse: mse / v.length });
    if (form === 'dense') {
      const d = new Float32Array(v.length);
      for (let i = 0; i < v.length; i++) d[i] = centroids[assign[i]];
      g.initializers.set(name, Object.assign(Object.create(Object.getPrototypeOf(t)), t));
      g.initializers.get(name)!.setData(DataType.FLOAT, [...t.dims], d);
      continue;
    }
    const idx = ed.initializer(`${name}_cluster_index`, DataType.UINT8, [...t.dims], assign);
    const book = ed.initializer(`${name}_codebook`, DataType.FLOAT, [centroids.length], centroids);
    const cast = ed.node('Cast', [idx], [`${name}_cluster_index_i32`]);
    cast.setInt('to', DataType.INT32);
    const gather = ed.node('Gather', [book, cast.outputs[0]], [`${name}_decoded`]);
    gather.setInt('axis', 0);
    ed.rewire(name, gather.outputs[0]);
    g.initializers.delete(name);
    g.inputs = g.inputs.filter((i) => i.name !== name);
    ed.append(cast, gather);
  }
  ed.dropUnusedInitializers();
  ed.sort();
  return { model: out, form, clustered };
}

/**
 * Exact-assignment 1-D k-means (Lloyd): centroids start at quantiles, each value goes to
 * the nearest centroid by binary search over the midpoints.
 */
export function kmeans1d(v: Float32Array, k: number, iterations: number): { centroids: Float32Array; assign: Uint8Array } {
  const sorted = Float32Array.from(v).sort();
  const centroids = new Float64Array(k);
  for (let c = 0; c < k; c++) centroids[c] = sorted[Math.min(sorted.length - 1, Math.floor(((c + 0.5) / k) * sorted.length))];
  const assign = new Uint8Array(v.length);
  const sums = new Float64Array(k);
  const counts = new Float64Array(k);
  const mids = new Float64Array(k - 1);
  for (let it = 0; it < iterations; it++) {
    centroids.sort();
    for (let c = 0; c < k - 1; c++) mids[c] = (centroids[c] + centroids[c + 1]) / 2;
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      let lo = 0;
      let hi = k - 1;
      while (lo < hi) {
        const m = (lo + hi) >> 1;
        if (x > mids[m]) lo = m + 1;
        else hi = m;
      }
      assign[i] = lo;
      sums[lo] += x;
      counts[lo]++;
    }
    let moved = 0;
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) continue; // an empty cluster keeps its centroid
      const next = sums[c] / counts[c];
      moved = Math.max(moved, Math.abs(next - centroids[c]));
      centroids[c] = next;
    }
    if (moved === 0) break;
  }
  return { centroids: Float32Array.from(centroids), assign };
}
