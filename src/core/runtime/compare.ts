import { CancelledError, UsageError } from '../errors';
import { DataType, float16ArrayToFloat32 } from '../ir/dtype';
import { batchPlan, type Dataset } from './data/dataset';
import type { HostTensor, ModelSession } from './session';

/**
 * Fidelity of a candidate model against a reference on the same data, streamed batch by
 * batch: per output max/mean absolute difference, cosine similarity and SQNR; for
 * classifier-shaped outputs ([batch, classes]) top-1/top-5 agreement and the KL divergence
 * of the softmaxes; with labels, the accuracy of each model.
 */

export interface OutputComparison {
  name: string;
  /** The candidate's output name when it differs (outputs matched by position). */
  candidateName?: string;
  elements: number;
  maxAbsDiff: number;
  meanAbsDiff: number;
  /** Over all elements, flattened. 1 when both are all-zero. */
  cosine: number;
  /** 10·log10(Σref² / Σ(ref−cand)²); null when the outputs are identical (infinite). */
  sqnrDb: number | null;
  top1Agreement?: number;
  /** Fraction of samples whose reference top-1 class is in the candidate's top 5. */
  top5Agreement?: number;
  /** Mean KL(softmax(ref) ‖ softmax(cand)) in nats; outputs that already are probabilities are used as they are. */
  klDivergence?: number;
  /**
   * Candidate values that are ±Infinity or NaN where the reference is finite. Any such value
   * is a collapse: cosine is then 0 and SQNR 0 dB, whatever the finite values say.
   */
  nonFinite?: number;
}

export interface CompareResult {
  samples: number;
  batchSize: number;
  outputs: OutputComparison[];
  accuracy?: { reference: number; candidate: number; correctReference: number; correctCandidate: number; output: string };
}

export interface CompareOptions {
  /** Requested batch; a model with a fixed batch gets exactly that instead. */
  batchSize: number;
  /** Labels, one per sample of `data` (a different count is refused). */
  labels?: Int32Array;
  /** Stop after this many samples. */
  limit?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /**
   * Inputs only the candidate has, fed the same tensor with every batch (e.g. a runtime-widths
   * model's selector); they take no part in choosing the batch.
   */
  candidateFeeds?: Record<string, HostTensor>;
}

/** Numbers of any output tensor (float16 decoded, int64 converted). */
export function hostValues(t: HostTensor): ArrayLike<number> {
  if (t.dtype === DataType.FLOAT16) return float16ArrayToFloat32(t.data as Uint16Array);
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Float64Array.from(t.data, Number);
  return t.data as ArrayLike<number>;
}

class Acc {
  n = 0;
  maxAbs = 0;
  sumAbs = 0;
  dot = 0;
  refSq = 0;
  candSq = 0;
  noiseSq = 0;
  rows = 0;
  top1 = 0;
  top5 = 0;
  kl = 0;
  nonFinite = 0;
  classifier: boolean | undefined;
  probabilities: boolean | undefined;

  add(ref: HostTensor, cand: HostTensor): void {
    const a = hostValues(ref);
    const b = hostValues(cand);
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const y = b[i];
      const d = x - y;
      if (!Number.isFinite(y) && Number.isFinite(x)) this.nonFinite++;
      const ad = Math.abs(d);
      if (ad > this.maxAbs || Number.isNaN(ad)) this.maxAbs = Number.isNaN(ad) ? NaN : Math.max(this.maxAbs, ad);
      this.sumAbs += ad;
      this.dot += x * y;
      this.refSq += x * x;
      this.candSq += y * y;
      this.noiseSq += d * d;
    }
    this.n += a.length;
    this.classifier ??= ref.dims.length === 2 && ref.dims[1] >= 2;
    if (!this.classifier) return;
    const [rows, c] = ref.dims;
    this.probabilities ??= looksLikeProbabilities(a, rows, c);
    for (let r = 0; r < rows; r++) {
      const ra = rowOf(a, r, c);
      const rb = rowOf(b, r, c);
      const refTop = argmax(ra);
      if (argmax(rb) === refTop) this.top1++;
      if (topK(rb, Math.min(5, c)).includes(refTop)) this.top5++;
      this.kl += this.probabilities ? klDiv(ra, rb) : klDiv(softmax(ra), softmax(rb));
    }
    this.rows += rows;
  }

  result(name: string, candName: string): OutputComparison {
    const cosDen = Math.sqrt(this.refSq) * Math.sqrt(this.candSq);
    const out: OutputComparison = {
      name,
      elements: this.n,
      maxAbsDiff: this.maxAbs,
      meanAbsDiff: this.n ? this.sumAbs / this.n : 0,
      cosine: cosDen > 0 ? this.dot / cosDen : this.refSq === 0 && this.candSq === 0 ? 1 : 0,
      sqnrDb: this.noiseSq === 0 ? null : 10 * Math.log10(this.refSq / this.noiseSq),
    };
    if (this.nonFinite) Object.assign(out, { nonFinite: this.nonFinite, cosine: 0, sqnrDb: 0 });
    if (candName !== name) out.candidateName = candName;
    if (this.classifier && this.rows) {
      out.top1Agreement = this.top1 / this.rows;
      out.top5Agreement = this.top5 / this.rows;
      out.klDivergence = this.kl / this.rows;
    }
    return out;
  }
}

function rowOf(a: ArrayLike<number>, r: number, c: number): ArrayLike<number> {
  return a instanceof Float32Array || a instanceof Float64Array ? a.subarray(r * c, (r + 1) * c) : Array.prototype.slice.call(a, r * c, (r + 1) * c);
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function topK(a: ArrayLike<number>, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (idx.length < k) {
      idx.push(i);
      idx.sort((x, y) => a[y] - a[x]);
    } else if (a[i] > a[idx[k - 1]]) {
      idx[k - 1] = i;
      idx.sort((x, y) => a[y] - a[x]);
    }
  }
  return idx;
}

function softmax(a: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, a[i]);
  const out = new Float64Array(a.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += out[i] = Math.exp(a[i] - m);
  for (let i = 0; i < a.length; i++) out[i] /= s;
  return out;
}

function klDiv(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let kl = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) kl += p[i] * Math.log(p[i] / Math.max(q[i], 1e-12));
  return Math.max(0, kl);
}

function looksLikeProbabilities(a: ArrayLike<number>, rows: number, c: number): boolean {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < c; i++) {
      const v = a[r * c + i];
      if (v < 0 || v > 1) return false;
      s += v;
    }
    if (Math.abs(s - 1) > 1e-3) return false;
  }
  return true;
}

/** Pairs candidate outputs with reference outputs: by name, or by position when names differ. */
function matchOutputs(ref: Runner, cand: Runner): Array<[string, string]> {
  const r = ref.outputs.map((o) => o.name);
  const c = cand.outputs.map((o) => o.name);
  if (r.every((n) => c.includes(n))) return r.map((n) => [n, n]);
  if (r.length === c.length) return r.map((n, i) => [n, c[i]]);
  throw new UsageError(`the models' outputs do not correspond: reference has ${r.join(', ')}; candidate has ${c.join(', ')}`);
}

/** What comparison needs of a model: ORT sessions and TensorFlow.js runners both qualify. */
export type Runner = Pick<ModelSession, 'inputs' | 'outputs'> & { run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> };

/**
 * Runs `ref` once over the batches `compareModels` feeds it against a candidate with the same
 * inputs (`batchSize` and `limit` as given there) and keeps its outputs: each `replay()` is a
 * runner answering those batches, in order, from what was kept. `ref` may then be released, so
 * the reference and a candidate session are never in memory together. Holds `limit` samples
 * of every output.
 */
export async function recordOutputs(ref: Runner, data: Dataset, opts: Pick<CompareOptions, 'batchSize' | 'limit' | 'signal'>): Promise<{ replay(): Runner }> {
  const plan = batchPlan(ref.inputs, opts.batchSize, Math.min(opts.limit ?? data.count, data.count));
  const batches: Array<{ size: number; out: Record<string, HostTensor> }> = [];
  for (const { size, feeds } of data.batches(plan.batchSize, plan.samples)) {
    if (opts.signal?.aborted) throw new CancelledError();
    batches.push({ size, out: await ref.run(feeds) });
  }
  const { inputs, outputs } = ref;
  return {
    replay() {
      let next = 0;
      return {
        inputs,
        outputs,
        run: async (feeds: Record<string, HostTensor>) => {
          const b = batches[next++];
          const size = Object.values(feeds)[0]?.dims[0];
          if (!b || (size !== undefined && size !== b.size)) throw new Error('recorded outputs replayed over other batches than they were recorded on');
          return b.out;
        },
      };
    },
  };
}

export async function compareModels(ref: Runner, cand: Runner, data: Dataset, opts: CompareOptions): Promise<CompareResult> {
  for (const i of ref.inputs) {
    if (!cand.inputs.some((c) => c.name === i.name)) {
      throw new UsageError(`the candidate model has no input '${i.name}' (its inputs: ${cand.inputs.map((c) => c.name).join(', ')})`);
    }
  }
  const pairs = matchOutputs(ref, cand);
  const accs = pairs.map(() => new Acc());
  if (opts.labels && opts.labels.length !== data.count) {
    throw new UsageError(`the labels hold ${opts.labels.length} entries but the data holds ${data.count} samples; they must match one to one`);
  }
  // Feed batches the model accepts: a fixed batch (e.g. [1, 128, 128, 3]) wins over the request.
  const extra = opts.candidateFeeds ?? {};
  const plan = batchPlan([...ref.inputs, ...cand.inputs.filter((i) => !(i.name in extra))], opts.batchSize, Math.min(opts.limit ?? data.count, data.count));
  const total = plan.samples;
  const batchSize = plan.batchSize;
  let correctRef = 0;
  let correctCand = 0;
  let labelOutput: number | undefined;
  let done = 0;
  for (const { start, size, feeds } of data.batches(batchSize, total)) {
    if (opts.signal?.aborted) throw new CancelledError();
    const ro = await ref.run(feeds);
    const co = await cand.run({ ...feeds, ...extra });
    pairs.forEach(([rn, cn], k) => {
      const a = ro[rn];
      const b = co[cn];
      if (a.dims.join('x') !== b.dims.join('x')) {
        throw new UsageError(`output '${rn}' has shape [${a.dims.join(', ')}] in the reference but [${b.dims.join(', ')}] in the candidate`);
      }
      accs[k].add(a, b);
    });
    if (opts.labels) {
      labelOutput ??= pairs.findIndex(([rn]) => ro[rn].dims.length === 2 && ro[rn].dims[1] >= 2);
      if (labelOutput < 0) throw new UsageError('labels were given, but no output is shaped [batch, classes]');
      const [rn, cn] = pairs[labelOutput];
      const c = ro[rn].dims[1];
      const a = hostValues(ro[rn]);
      const b = hostValues(co[cn]);
      for (let r = 0; r < size; r++) {
        const label = opts.labels[start + r];
        if (label < 0 || label >= c) throw new UsageError(`label ${label} of sample ${start + r} is outside the ${c} classes of output '${rn}'`);
        if (argmax(rowOf(a, r, c)) === label) correctRef++;
        if (argmax(rowOf(b, r, c)) === label) correctCand++;
      }
    }
    done += size;
    opts.onProgress?.(done, total);
  }
  const result: CompareResult = {
    samples: done,
    batchSize,
    outputs: pairs.map(([rn, cn], k) => accs[k].result(rn, cn)),
  };
  if (opts.labels && labelOutput !== undefined && labelOutput >= 0) {
    result.accuracy = {
      reference: correctRef / done,
      candidate: correctCand / done,
      correctReference: correctRef,
      correctCandidate: correctCand,
      output: pairs[labelOutput][0],
    };
  }
  return result;
}
