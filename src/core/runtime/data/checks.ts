import { ModelError, UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import type { Model } from '../../ir/graph';
import type { SampleSource } from './sources';

/**
 * Checks on data read from files, before any work uses it: calibration or evaluation data
 * must hold samples and only finite values; labels must be class indices of the model's output.
 */

/** Samples read per step while scanning (bounded memory whatever the file's size). */
const SCAN_BYTES = 16 * 1024 * 1024;

/** Index of the first value that is NaN or ±Infinity, or -1 (float16 by its bit pattern). */
function firstNonFinite(dtype: DataType, data: ArrayLike<number | bigint>): number {
  if (dtype === DataType.FLOAT16 || dtype === DataType.BFLOAT16) {
    const mask = dtype === DataType.FLOAT16 ? 0x7c00 : 0x7f80;
    for (let i = 0; i < data.length; i++) if (((data[i] as number) & mask) === mask) return i;
    return -1;
  }
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i] as number)) return i;
  return -1;
}

/**
 * Refuses a data file with no samples, or with a NaN or infinite value: a ModelError naming
 * the file, the first bad sample and the data's `role` (e.g. 'training'). Float data is scanned once, in bounded steps.
 */
export function checkSamples(s: SampleSource, role = 'calibration and evaluation'): void {
  if (s.count === 0) throw new ModelError(s.label, 'holds no samples (the first axis is 0)');
  if (![DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16].includes(s.dtype)) return;
  const per = Math.max(1, s.sampleShape.reduce((a, b) => a * b, 1));
  const step = Math.max(1, Math.floor(SCAN_BYTES / (per * 4)));
  for (let start = 0; start < s.count; start += step) {
    const n = Math.min(step, s.count - start);
    const bad = firstNonFinite(s.dtype, s.read(start, n) as ArrayLike<number>);
    if (bad >= 0) {
      const sample = start + Math.floor(bad / per);
      throw new ModelError(s.label, `sample ${sample} holds a non-finite value (NaN or infinity) at element ${bad % per}; ${role} data must be finite`);
    }
  }
}

/**
 * Label values as class indices, refused (ModelError naming the file and the first bad
 * label) when negative or at least 2^31: int64 labels are checked before any narrowing, so
 * 2^62 never wraps to class 0.
 */
export function labelsFromValues(file: string, raw: ArrayLike<number | bigint>): Int32Array {
  const out = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    const ok = typeof v === 'bigint' ? v >= 0n && v < 2n ** 31n : Number.isInteger(v) && v >= 0 && v < 2 ** 31;
    if (!ok) throw new ModelError(file, `label ${String(v)} of sample ${i} is not a class index (labels are integers from 0)`);
    out[i] = Number(v);
  }
  return out;
}

/**
 * The number of classes of a classifier: the size of the last axis of the first output
 * shaped [batch, classes] (classes ≥ 2, known), as accuracy reads it; undefined otherwise.
 */
export function outputClasses(model: Model): number | undefined {
  for (const o of model.graph.outputs) {
    const s = o.type?.kind === 'tensor' ? o.type.shape : null;
    if (s && s.length === 2 && typeof s[1] === 'number' && s[1] >= 2) return s[1];
  }
  return undefined;
}

/**
 * Refuses labels that cannot be scored: fewer than the samples (UsageError naming the labels
 * file) or a class index outside the output's classes (ModelError naming the file, the sample
 * and the class count).
 */
export function checkLabels(labels: Int32Array, file: string, samples?: number, classes?: number): void {
  if (samples !== undefined && labels.length < samples) {
    throw new UsageError(`the labels file ${file} holds ${labels.length} labels for ${samples} samples`);
  }
  if (classes === undefined) return;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) throw new ModelError(file, `label ${labels[i]} of sample ${i} is outside the model's ${classes} classes (0…${classes - 1})`);
  }
}
