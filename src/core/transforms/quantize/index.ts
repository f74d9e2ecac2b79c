import { CancelledError, UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import { compareModels, type CompareResult } from '../../runtime/compare';
import type { Dataset } from '../../runtime/data/dataset';
import { ALTERNATING, ModelSession } from '../../runtime/session';
import { rssStage } from '../../runtime/rss-log';
import { calibrate, type CalibrationMethod, type Ranges } from './calibrate';
import { clusterWeights, type ClusterForm } from './cluster';
import { quantizeDynamic, type DynamicForm } from './dynamic';
import { convertFp16 } from './fp16';
import { FLOAT16_HEADROOM, FLOAT16_MAX, findFp16Overflow } from './fp16-range';
import { MIN_BULK_SQNR_DB, quantizeTfjsWeights } from './tfjs';
import { tfjsDocument } from '../../formats/tfjs/document';
import { quantizeInt4 } from './int4';
import { int8Capability, int8Policy, type CpuFeatures } from '../../runtime/cpu';
import { kernelFidelity, kernelGapWarning } from './qdq-check';
import { onFoldedWeights } from './fold';
import { applyStatic, planStatic, type SkippedNode, type StaticOptions } from './static';

/**
 * One entry point for every quantization mode, plus accuracy-aware mixed precision:
 * measure each layer's sensitivity, then keep the most sensitive layers in float until the
 * fidelity target holds.
 */

export type QuantizeMode = 'dynamic' | 'static' | 'fp16' | 'int4' | 'cluster' | 'uint8' | 'uint16';
export const QUANTIZE_MODES: QuantizeMode[] = ['dynamic', 'static', 'fp16', 'int4', 'cluster', 'uint8', 'uint16'];
/** The modes a TF.js model takes: its manifest's own weight storage. */
export const TFJS_MODES: QuantizeMode[] = ['fp16', 'uint8', 'uint16'];

export interface QuantizeOptions {
  mode: QuantizeMode;
  perChannel?: boolean;
  method?: CalibrationMethod;
  percentile?: number;
  symmetricActivations?: boolean;
  /** 7-bit weights; undefined = the CPU's default (see runtime/cpu.ts `int8Policy`). */
  reduceRange?: boolean;
  /** The CPU whose int8 kernels the default is for (tests inject one; default: this machine's). */
  cpu?: CpuFeatures;
  exclude?: string[];
  dynamicForm?: DynamicForm;
  blockSize?: 32 | 64 | 128;
  symmetric?: boolean;
  k?: 16 | 256;
  clusterForm?: ClusterForm;
  /** Calibration data (static mode). */
  calib?: Dataset;
  calibBatch?: number;
  /** Accuracy-aware: minimum top-1 agreement (or cosine, for non-classifiers) on `eval`. */
  targetAgreement?: number;
  /** Accuracy-aware with labels: the largest accuracy drop allowed (a fraction, 0.005 = 0.5 pp). */
  maxAccuracyDrop?: number;
  eval?: Dataset;
  labels?: Int32Array;
  evalBatch?: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
}

export interface QuantizeOutcome {
  model: Model;
  mode: QuantizeMode;
  quantizedNodes: string[];
  skippedNodes: SkippedNode[];
  /** Facts the report must state (forms chosen, honest caveats). */
  notes: string[];
  /** Why this mode can be slower than float on a CPU like this one (AVX2, no VNNI). */
  slowerBecause: string;
  /** Accuracy-aware runs: the layers kept in float and each layer's measured sensitivity. */
  mixedPrecision?: { target: string; keptInFloat: string[]; sensitivity: Array<{ name: string; metric: number }>; achieved: number };
}

export async function quantizeModel(model: Model, opts: QuantizeOptions): Promise<QuantizeOutcome> {
  const exclude = new Set(opts.exclude ?? []);
  const aware = opts.targetAgreement !== undefined || opts.maxAccuracyDrop !== undefined;
  if (aware && opts.mode !== 'static' && opts.mode !== 'dynamic') {
    throw new UsageError('accuracy-aware quantization (--target-agreement / --max-accuracy-drop) works with --mode static or dynamic');
  }
  if (opts.maxAccuracyDrop !== undefined && !opts.labels) throw new UsageError('--max-accuracy-drop needs --labels');
  if (tfjsDocument(model.source)) return quantizeTfjs(model, opts.mode, exclude);
  const folded = await onFoldedWeights(model, (m) => quantizeModel(m, opts), (r) => r.notes);
  if (folded) return folded;
  if (opts.mode === 'uint8' || opts.mode === 'uint16') throw new UsageError(`--mode ${opts.mode} is TF.js weight storage; for ONNX models use static or dynamic (int8)`);
  const policy = int8Policy(opts.cpu);
  const reduceRange = opts.reduceRange ?? policy.reduceRange;
  const rangeNote = opts.reduceRange === undefined ? `int8 default: ${policy.reason}` : reduceRange ? 'int8: 7-bit weights (--reduce-range)' : 'int8: full-range weights (--full-range)';
  const capability = int8Capability(opts.cpu);
  switch (opts.mode) {
    case 'static': {
      if (!opts.calib) throw new UsageError('static quantization needs calibration data (--calib); it never falls back to random data silently');
      const sopts: StaticOptions = { perChannel: opts.perChannel, symmetricActivations: opts.symmetricActivations, reduceRange, exclude };
      const full = planStatic(model, sopts);
      opts.onProgress?.('calibrating', 0);
      const ranges = await calibrate(model, full.calibrate, opts.calib, {
        method: opts.method ?? 'minmax',
        percentile: opts.percentile,
        batchSize: opts.calibBatch ?? 8,
        signal: opts.signal,
        onProgress: (pass, done, group, groups) => opts.onProgress?.(`calibrating (pass ${pass})`, (group + done / opts.calib!.count) / groups),
      });
      rssStage('calibrated');
      const build = (ex: Set<string>) => {
        const plan = planStatic(model, { ...sopts, exclude: ex });
        return { model: applyStatic(model, plan, ranges, { ...sopts, exclude: ex }), plan };
      };
      const base = build(exclude);
      rssStage('quantized model built');
      const outcome: QuantizeOutcome = {
        model: base.model,
        mode: 'static',
        quantizedNodes: base.plan.covered.map((n) => n.label),
        skippedNodes: base.plan.skipped,
        notes: [`calibration: ${opts.method ?? 'minmax'} on ${opts.calib.count} samples`, rangeNote, ...staticNotes(ranges)],
        slowerBecause: `ONNX Runtime runs int8 fast only where it can fuse DequantizeLinear→op→QuantizeLinear into an integer kernel; ops left in float run dequantized, tiny layers gain little${/without VNNI/.test(capability) ? `, and this CPU (${capability}) has no 8-bit dot-product instruction` : ''}`,
      };
      if (aware) await mixedPrecision(model, outcome, opts, exclude, (ex) => build(ex));
      if (outcome.quantizedNodes.length) {
        opts.onProgress?.('comparing the int8 kernels with the exact QDQ arithmetic');
        const gap = kernelGapWarning(await kernelFidelity(model, outcome.model, opts.calib), reduceRange);
        if (gap) outcome.notes.push(gap);
        rssStage('kernel fidelity measured');
      }
      return outcome;
    }
    case 'dynamic': {
      const build = (ex: Set<string>) => quantizeDynamic(model, { perChannel: opts.perChannel, form: opts.dynamicForm, reduceRange, exclude: ex });
      const r = build(exclude);
      const outcome: QuantizeOutcome = {
        model: r.model,
        mode: 'dynamic',
        quantizedNodes: r.quantized,
        skippedNodes: r.skipped,
        notes: [`dynamic form: ${opts.dynamicForm ?? 'integer'} (DynamicQuantizeLinear → MatMulInteger)`, rangeNote],
        slowerBecause: `activations are quantized at run time on every call; on small matrices that overhead outweighs the integer GEMM${/without VNNI/.test(capability) ? `, and this CPU (${capability}) has no 8-bit dot-product instruction` : ''}`,
      };
      if (aware) {
        await mixedPrecision(model, outcome, opts, exclude, (ex) => {
          const x = build(ex);
          return { model: x.model, plan: { covered: x.quantized.map((label) => ({ label })) } };
        });
      }
      return outcome;
    }
    case 'fp16': {
      const data = opts.calib ?? opts.eval;
      opts.onProgress?.('measuring activation ranges against float16', 0);
      const overflow = data ? await findFp16Overflow(model, data, { signal: opts.signal }) : [];
      const wide = new Map(overflow.map((o) => [o.node, o]));
      const r = convertFp16(model, { exclude: new Set([...exclude, ...wide.keys()]) });
      const rangeNote = !data
        ? 'activation ranges were not measured (no data): a value beyond float16’s 65504 would become ±Infinity'
        : overflow.length
          ? `${overflow.length} node(s) kept in float32 because their outputs exceed float16’s range on ${data.describe()}: ${overflow.slice(0, 5).map((o) => `${o.node} (|x| up to ${o.absMax.toExponential(2)})`).join(', ')}${overflow.length > 5 ? ', …' : ''}`
          : `every activation fits float16 on ${data.describe()} (largest allowed |x| ${FLOAT16_MAX / FLOAT16_HEADROOM}, half of float16’s 65504)`;
      return {
        model: r.model,
        mode: 'fp16',
        quantizedNodes: r.converted,
        skippedNodes: r.kept.map((k) => (wide.has(k.name) ? { ...k, reason: `its output reaches |x| = ${wide.get(k.name)!.absMax.toExponential(2)}, beyond float16 (65504): kept in float32` } : k)),
        notes: [
          'float16 weights and compute; graph inputs and outputs stay float32 (Cast at the boundary)',
          rangeNote,
        ],
        slowerBecause: 'ONNX Runtime’s CPU provider has few float16 kernels: it casts back to float32 around most ops; float16 pays off on GPUs and NPUs, not on this CPU',
      };
    }
    case 'int4': {
      const r = quantizeInt4(model, { blockSize: opts.blockSize, symmetric: opts.symmetric, exclude });
      return {
        model: r.model,
        mode: 'int4',
        quantizedNodes: r.quantized,
        skippedNodes: r.skipped,
        notes: [`int4 weight-only, block size ${opts.blockSize ?? 32}, ${opts.symmetric ?? true ? 'symmetric' : 'asymmetric'} (com.microsoft MatMulNBits)`],
        slowerBecause: 'MatMulNBits unpacks 4-bit blocks on the fly; on a CPU it wins only when the matrix product is memory-bound (large weights, small batches)',
      };
    }
    case 'cluster': {
      const r = clusterWeights(model, { k: opts.k, form: opts.clusterForm, exclude });
      return {
        model: r.model,
        mode: 'cluster',
        quantizedNodes: r.clustered.map((c) => c.tensor),
        skippedNodes: [],
        notes: [
          `weight sharing: k-means with k = ${opts.k ?? 256} per tensor`,
          r.form === 'gather'
            ? 'stored as uint8 indices + codebook, decoded by Cast→Gather (ORT folds it at load: run-time speed unchanged)'
            : 'stored dequantized (float32): same file size, much smaller when zipped',
        ],
        slowerBecause: 'weight sharing changes storage, not compute: the weights are decoded to float32 at load time',
      };
    }
    default:
      throw new UsageError(`unknown quantization mode '${opts.mode as string}' (modes: ${QUANTIZE_MODES.join(', ')})`);
  }
}

function staticNotes(ranges: Ranges): string[] {
  const dead = [...ranges.entries()].filter(([, r]) => !(r.max > r.min)).map(([t]) => t);
  return dead.length ? [`${dead.length} activation(s) were constant on the calibration data (range set to [0, 1]): ${dead.slice(0, 5).join(', ')}`] : [];
}

type Builder = (exclude: Set<string>) => { model: Model; plan: { covered: Array<{ label: string }> } };

/** Fidelity metric: accuracy drop with labels, else top-1 agreement (cosine if not a classifier). */
function metricOf(r: CompareResult, opts: QuantizeOptions): number {
  if (opts.maxAccuracyDrop !== undefined) return r.accuracy!.reference - r.accuracy!.candidate;
  const o = r.outputs[0];
  return o.top1Agreement ?? o.cosine;
}

function meets(value: number, opts: QuantizeOptions): boolean {
  return opts.maxAccuracyDrop !== undefined ? value <= opts.maxAccuracyDrop : value >= opts.targetAgreement!;
}

async function mixedPrecision(model: Model, outcome: QuantizeOutcome, opts: QuantizeOptions, exclude: Set<string>, build: Builder): Promise<void> {
  const data = opts.eval ?? opts.calib;
  if (!data) throw new UsageError('accuracy-aware quantization needs evaluation data (--eval, or --calib)');
  const batchSize = opts.evalBatch ?? 32;
  const ref = await ModelSession.create(model, ALTERNATING);
  const evaluate = async (m: Model) => {
    if (opts.signal?.aborted) throw new CancelledError();
    const s = await ModelSession.create(m, ALTERNATING);
    try {
      return metricOf(await compareModels(ref, s, data, { batchSize, labels: opts.labels }), opts);
    } finally {
      await s.release();
    }
  };
  try {
    const target = opts.maxAccuracyDrop !== undefined ? `accuracy drop ≤ ${opts.maxAccuracyDrop}` : `top-1 agreement ≥ ${opts.targetAgreement}`;
    const candidates = outcome.quantizedNodes;
    let achieved = await evaluate(outcome.model);
    const result = { target, keptInFloat: [] as string[], sensitivity: [] as Array<{ name: string; metric: number }>, achieved };
    outcome.mixedPrecision = result;
    if (meets(achieved, opts)) return;
    // Sensitivity: quantize each layer alone; a worse metric means a more sensitive layer.
    for (let i = 0; i < candidates.length; i++) {
      opts.onProgress?.('measuring layer sensitivity', i / candidates.length);
      const others = new Set([...exclude, ...candidates.filter((c) => c !== candidates[i])]);
      result.sensitivity.push({ name: candidates[i], metric: await evaluate(build(others).model) });
    }
    const worse = (a: number, b: number) => (opts.maxAccuracyDrop !== undefined ? b - a : a - b);
    const order = [...result.sensitivity].sort((a, b) => worse(a.metric, b.metric)).map((s) => s.name);
    // Bisection on how many of the most sensitive layers stay in float.
    let lo = 1;
    let hi = order.length;
    let best: { model: Model; kept: string[]; metric: number; covered: string[] } | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      opts.onProgress?.('searching the float/int8 split', mid / order.length);
      const kept = order.slice(0, mid);
      const b = build(new Set([...exclude, ...kept]));
      const metric = await evaluate(b.model);
      if (meets(metric, opts)) {
        best = { model: b.model, kept, metric, covered: b.plan.covered.map((c) => c.label) };
        hi = mid - 1;
      } else lo = mid + 1;
    }
    if (!best) {
      achieved = await evaluate(model);
      outcome.notes.push(`the target (${target}) could not be met with any layer quantized; every candidate layer stays in float`);
      result.keptInFloat = order;
      return;
    }
    outcome.model = best.model;
    outcome.quantizedNodes = best.covered;
    outcome.skippedNodes = [...outcome.skippedNodes, ...best.kept.map((name) => ({ name, op: '', reason: 'kept in float by accuracy-aware search' }))];
    result.keptInFloat = best.kept;
    result.achieved = best.metric;
  } finally {
    await ref.release();
  }
}

function quantizeTfjs(model: Model, mode: QuantizeMode, exclude: Set<string>): QuantizeOutcome {
  if (!TFJS_MODES.includes(mode)) throw new UsageError(`TF.js models take --mode ${TFJS_MODES.join(', ')} (weight storage in the manifest); got ${mode}`);
  const dtype = mode === 'fp16' ? 'float16' : (mode as 'uint8' | 'uint16');
  const r = quantizeTfjsWeights(model, dtype, { exclude });
  return {
    model: r.model,
    mode,
    quantizedNodes: r.quantized,
    skippedNodes: r.skipped.map((s) => ({ name: s.name, op: 'weight', reason: s.reason })),
    notes: [
      `TF.js manifest quantization: ${dtype}${dtype === 'float16' ? '' : ' with a per-tensor min and scale (zero kept exact)'}; TensorFlow.js dequantizes at load, compute stays float32`,
      `weight bytes ${r.bytesBefore} → ${r.bytesAfter} (${(r.bytesAfter / Math.max(1, r.bytesBefore)).toFixed(3)}x)`,
      ...(r.widened.length
        ? [`${r.widened.length} weight(s) stored wider than ${dtype} because ${dtype} keeps less than ${MIN_BULK_SQNR_DB} dB of their bulk (an outlier stretches the grid): ${r.widened.slice(0, 5).map((w) => `${w.name} → ${w.stored} (${dtype}: ${w.bulkSqnrDb.toFixed(1)} dB)`).join(', ')}`]
        : []),
    ],
    slowerBecause: 'manifest quantization changes the download, not the compute: TensorFlow.js dequantizes the weights to float32 when it loads the model',
  };
}
