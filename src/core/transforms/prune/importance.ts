import { UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import { captureActivations } from '../../runtime/capture';
import { hostValues } from '../../runtime/compare';
import type { Dataset } from '../../runtime/data/dataset';
import type { Group } from './onnx/dependency';

/**
 * Channel importance, one score per group channel (higher = more important). Scoring is
 * kept apart from structure (dependency.ts) and policy (index.ts).
 *
 * - l1 / l2: the norm of each output filter, summed over the group's coupled producers
 *   (each producer normalised by its mean, so coupled layers count equally);
 * - bn: |γ| of the group's BatchNormalization (network slimming);
 * - entropy: the Shannon entropy of each channel's activations over calibration data
 *   (low entropy carries little information);
 * - taylor: |Σ weight × gradient| per channel over calibration batches (taylor.ts);
 * - random: the honest baseline (seeded).
 */

export type Criterion = 'l1' | 'l2' | 'bn' | 'entropy' | 'taylor' | 'random';
export const CRITERIA: Criterion[] = ['l1', 'l2', 'bn', 'entropy', 'taylor', 'random'];

export interface ImportanceOptions {
  calib?: Dataset;
  seed?: number;
  batchSize?: number;
  signal?: AbortSignal;
  /** Taylor: labels of the calibration samples (cross-entropy), else KL to `reference` (the original model). */
  labels?: Int32Array;
  reference?: Model;
}

export async function groupImportance(model: Model, groups: Group[], criterion: Criterion, opts: ImportanceOptions = {}): Promise<Map<Group, Float64Array | string>> {
  const out = new Map<Group, Float64Array | string>();
  switch (criterion) {
    case 'taylor':
      if (!opts.calib) throw new UsageError("the 'taylor' criterion needs calibration data (--calib); it scores channels by the KL divergence to the model's own outputs, so no labels are needed");
      return (await import('./taylor')).taylorScores(model, groups, { calib: opts.calib, labels: opts.labels, reference: opts.reference, batchSize: opts.batchSize, signal: opts.signal });
    case 'l1':
    case 'l2':
      for (const g of groups) out.set(g, normScores(g, criterion === 'l1' ? 1 : 2));
      return out;
    case 'bn':
      for (const g of groups) {
        const bn = g.members.find((m) => m.kind === 'params' && m.node.opType === 'BatchNormalization');
        if (!bn || bn.kind !== 'params') {
          out.set(g, 'the bn criterion needs a BatchNormalization on the group (it may have been folded into the conv)');
          continue;
        }
        out.set(g, Float64Array.from(bn.tensors[0].tensor.toFloat32(), Math.abs));
      }
      return out;
    case 'random': {
      let a = ((opts.seed ?? 0) * 2654435761 + 1) >>> 0;
      const next = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = Math.imul(a ^ (a >>> 15), a | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      for (const g of groups) out.set(g, Float64Array.from({ length: g.size }, next));
      return out;
    }
    case 'entropy':
      if (!opts.calib) throw new UsageError("the 'entropy' criterion needs calibration data (--calib)");
      return entropyScores(model, groups, opts);
    default:
      throw new UsageError(`unknown criterion '${criterion as string}' (criteria: ${CRITERIA.join(', ')})`);
  }
}

function normScores(g: Group, p: 1 | 2): Float64Array {
  const total = new Float64Array(g.size);
  for (const m of g.members) {
    if (m.kind !== 'producer') continue;
    const w = m.weight.toFloat32();
    const dims = m.weight.dims;
    const inner = dims.slice(m.axis + 1).reduce((a, b) => a * b, 1);
    const outer = dims.slice(0, m.axis).reduce((a, b) => a * b, 1);
    const s = new Float64Array(g.size);
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < g.size; c++) {
        const base = (o * g.size + c) * inner;
        for (let k = 0; k < inner; k++) s[c] += p === 1 ? Math.abs(w[base + k]) : w[base + k] * w[base + k];
      }
    }
    if (p === 2) for (let c = 0; c < g.size; c++) s[c] = Math.sqrt(s[c]);
    const mean = s.reduce((a, b) => a + b, 0) / g.size || 1;
    for (let c = 0; c < g.size; c++) total[c] += s[c] / mean;
  }
  return total;
}

export const ENTROPY_BINS = 64;

async function entropyScores(model: Model, groups: Group[], opts: ImportanceOptions): Promise<Map<Group, Float64Array | string>> {
  const names = [...new Set(groups.map((g) => g.tensor))];
  const capture = { batchSize: opts.batchSize ?? 16, signal: opts.signal, session: { allowSpinning: false } };
  const lo = new Map<string, Float64Array>();
  const hi = new Map<string, Float64Array>();
  const chans = new Map<string, number>();
  await captureActivations(model, names, opts.calib!, capture, ({ values }) => {
    for (const n of names) {
      const t = values[n];
      const c = t.dims[1];
      chans.set(n, c);
      const inner = t.dims.slice(2).reduce((a, b) => a * b, 1);
      const v = hostValues(t);
      const l = lo.get(n) ?? new Float64Array(c).fill(Infinity);
      const h = hi.get(n) ?? new Float64Array(c).fill(-Infinity);
      for (let b = 0; b < t.dims[0]; b++) for (let ch = 0; ch < c; ch++) for (let k = 0; k < inner; k++) {
        const x = v[(b * c + ch) * inner + k];
        if (x < l[ch]) l[ch] = x;
        if (x > h[ch]) h[ch] = x;
      }
      lo.set(n, l);
      hi.set(n, h);
    }
  });
  const hist = new Map(names.map((n) => [n, new Float64Array(chans.get(n)! * ENTROPY_BINS)]));
  await captureActivations(model, names, opts.calib!, capture, ({ values }) => {
    for (const n of names) {
      const t = values[n];
      const c = t.dims[1];
      const inner = t.dims.slice(2).reduce((a, b) => a * b, 1);
      const v = hostValues(t);
      const l = lo.get(n)!;
      const h = hi.get(n)!;
      const H = hist.get(n)!;
      for (let b = 0; b < t.dims[0]; b++) for (let ch = 0; ch < c; ch++) {
        const range = h[ch] - l[ch];
        if (!(range > 0)) continue;
        const sc = ENTROPY_BINS / range;
        for (let k = 0; k < inner; k++) {
          const bin = Math.min(ENTROPY_BINS - 1, Math.floor((v[(b * c + ch) * inner + k] - l[ch]) * sc));
          H[ch * ENTROPY_BINS + bin]++;
        }
      }
    }
  });
  const out = new Map<Group, Float64Array | string>();
  for (const g of groups) out.set(g, channelEntropy(hist.get(g.tensor)!, g.size));
  return out;
}

/** Shannon entropy (bits) of each channel's histogram: `channels` rows of ENTROPY_BINS counts. */
export function channelEntropy(H: Float64Array, channels: number): Float64Array {
  const s = new Float64Array(channels);
  for (let ch = 0; ch < channels; ch++) {
    let total = 0;
    for (let k = 0; k < ENTROPY_BINS; k++) total += H[ch * ENTROPY_BINS + k];
    for (let k = 0; k < ENTROPY_BINS; k++) {
      const p = H[ch * ENTROPY_BINS + k] / (total || 1);
      if (p > 0) s[ch] -= p * Math.log2(p);
    }
  }
  return s;
}
