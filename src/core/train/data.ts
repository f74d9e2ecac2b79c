import { UsageError } from '../errors';
import { DataType, storageBytes } from '../ir/dtype';
import type { NumericArray } from '../ir/tensor';
import type { Dataset } from '../runtime/data/dataset';
import { allocTyped } from '../runtime/data/sources';
import type { HostTensor, ModelSession } from '../runtime/session';
import type { SampleSet } from './api';

/**
 * Training data as `SampleSet`s: in-memory tensors, a bound `Dataset` (the `.npy`, `.pb`
 * and image-folder sources of `runtime/data`), labels, and a teacher run by ORT per batch.
 */

function sampleElems(t: HostTensor): number {
  return t.dims.slice(1).reduce((a, b) => a * b, 1);
}

function gatherRows(t: HostTensor, indices: readonly number[]): HostTensor {
  const per = sampleElems(t);
  const out = allocTyped(t.dtype, per * indices.length) as NumericArray;
  indices.forEach((i, k) => (out as Float32Array).set((t.data as Float32Array).subarray(i * per, (i + 1) * per), k * per));
  return { dtype: t.dtype, dims: [indices.length, ...t.dims.slice(1)], data: out };
}

/** Samples held in memory: every tensor has the samples on axis 0. */
export function tensorSampleSet(tensors: Record<string, HostTensor>): SampleSet {
  const counts = new Set(Object.values(tensors).map((t) => t.dims[0]));
  if (counts.size !== 1) throw new UsageError(`training tensors have different sample counts: ${Object.entries(tensors).map(([k, t]) => `${k}=${t.dims[0]}`).join(', ')}`);
  const count = [...counts][0];
  return {
    count,
    gather: (indices) => {
      const out: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries(tensors)) out[k] = gatherRows(t, indices);
      return Promise.resolve(out);
    },
  };
}

/** Integer class labels as an int64 [N] tensor (the cross-entropy input). */
export function labelsTensor(labels: Int32Array | readonly number[]): HostTensor {
  return { dtype: DataType.INT64, dims: [labels.length], data: BigInt64Array.from(Array.from(labels, (v) => BigInt(v))) };
}

/** In-memory budget below which a bound dataset is read once instead of per batch. */
const PRELOAD_BYTES = 512 * 2 ** 20;

/**
 * A bound dataset (model inputs) plus extra per-sample tensors (labels, targets). Small
 * data sets are read into memory once; larger ones are read sample by sample per batch.
 */
export function datasetSampleSet(ds: Dataset, extra: Record<string, HostTensor> = {}): SampleSet {
  for (const [k, t] of Object.entries(extra)) {
    if (t.dims[0] !== ds.count) throw new UsageError(`'${k}' has ${t.dims[0]} samples but the data has ${ds.count}`);
  }
  let bytes = 0;
  for (const s of ds.sources.values()) bytes += storageBytes(s.dtype, s.sampleShape.reduce((a, b) => a * b, 1)) * s.count;
  if (bytes <= PRELOAD_BYTES) return tensorSampleSet({ ...ds.batch(0, ds.count), ...extra });
  const extraSet = tensorSampleSet(Object.keys(extra).length ? extra : { __none: { dtype: DataType.UINT8, dims: [ds.count], data: new Uint8Array(ds.count) } });
  return {
    count: ds.count,
    gather: async (indices) => {
      const out: Record<string, HostTensor> = {};
      for (const [name, s] of ds.sources) {
        const per = s.sampleShape.reduce((a, b) => a * b, 1);
        const data = allocTyped(s.dtype, per * indices.length) as Float32Array;
        indices.forEach((i, k) => data.set(s.read(i, 1) as Float32Array, k * per));
        out[name] = { dtype: s.dtype, dims: [indices.length, ...s.sampleShape], data };
      }
      const ex = await extraSet.gather(indices);
      delete ex.__none;
      return { ...out, ...ex };
    },
  };
}

/**
 * Adds a teacher's outputs to every batch (knowledge distillation): the teacher runs once per
 * batch on the batch's model inputs (`inputs` renames: teacher input → feed, default the same
 * name) and each `outputs` entry (teacher tensor → feed name) is added to the batch.
 * `teacher` must expose every named tensor as a graph output.
 */
export function withTeacherOutputs(set: SampleSet, teacher: ModelSession, outputs: Record<string, string>, inputs?: Record<string, string>): SampleSet {
  const names = Object.keys(outputs);
  for (const n of names) if (!teacher.outputs.some((o) => o.name === n)) throw new UsageError(`the teacher has no tensor '${n}'`);
  return {
    count: set.count,
    gather: async (indices) => {
      const feeds = await set.gather(indices);
      const tf: Record<string, HostTensor> = {};
      for (const i of teacher.inputs) {
        const t = feeds[inputs?.[i.name] ?? i.name];
        if (!t) throw new UsageError(`the teacher's input '${i.name}' has no data (batch feeds: ${Object.keys(feeds).join(', ')})`);
        tf[i.name] = t;
      }
      const out = await teacher.run(tf, names);
      const extra: Record<string, HostTensor> = {};
      for (const n of names) extra[outputs[n]] = out[n];
      return { ...feeds, ...extra };
    },
  };
}

/** `withTeacherOutputs` for one teacher output (default: the first), fed as `as`. */
export function withTeacher(set: SampleSet, teacher: ModelSession, as: string, opts: { output?: string; inputs?: Record<string, string> } = {}): SampleSet {
  const output = opts.output ?? teacher.outputs[0]?.name;
  if (!output) throw new UsageError('the teacher model has no output');
  return withTeacherOutputs(set, teacher, { [output]: as }, opts.inputs);
}

/** A deterministic permutation of 0..n−1 (Fisher–Yates with mulberry32 seeded by seed and epoch). */
export function shuffled(n: number, seed: number, epoch: number): number[] {
  let a = (seed * 0x9e3779b1 + epoch * 0x85ebca6b) >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
