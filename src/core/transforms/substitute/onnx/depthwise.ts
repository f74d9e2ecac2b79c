import { DataType } from '../../../ir/dtype';
import { Graph, Model, Node, type Dim } from '../../../ir/graph';
import { inferShapes } from '../../../ir/shape-inference';
import { Tensor } from '../../../ir/tensor';
import { captureLockstep } from '../../../runtime/capture';
import { hostValues } from '../../../runtime/compare';
import { ModelSession } from '../../../runtime/session';
import { GraphEditor, cloneModel } from '../../graph-edit';
import { onFoldedWeights } from '../../quantize/fold';
import { constantResolver } from '../../quantize/registry';
import { GramAccumulator, Matrix, solveSpd, toFloat32 } from '../linalg';
import { DEFAULT_DEPTHWISE_MAX_ERROR, channelSpectra, initFromSvd, weightError, type DepthwiseOptions } from '../separable';
import type { LayerSubstitution, SubstituteSkip } from '../types';

/**
 * Conv(k×k, group 1, I→O) → depthwise k×k Conv (group I, multiplier m) + pointwise 1×1 Conv
 * (m·I→O). Params k²·I·O become k²·I·m + m·I·O.
 *
 * Initialisation: for each input channel i, the best rank-m approximation of the O × k²
 * slice W[:, i] (SVD) gives the depthwise filters (right singular vectors) and the
 * pointwise weights (σ × left singular vectors). Refit: with calibration data, the pointwise
 * weights and bias are solved by least squares so that the pair reproduces the original
 * conv's output on real activations. Stride, padding, dilation and bias carry over.
 */

interface Candidate {
  node: Node;
  w: Float32Array;
  o: number;
  i: number;
  kh: number;
  kw: number;
  m: number;
  bias?: Float32Array;
  depthwise: Float32Array;
  pointwise: Float32Array; // O × (I·m), row-major
  outSpatial: number | null;
  report: LayerSubstitution;
  spectra: number[][];
  origBias?: Float32Array;
  /** Multipliers the refit may try, smallest first. */
  options: number[];
}

export async function substituteDepthwiseOnnx(model: Model, opts: DepthwiseOptions = {}): Promise<{ model: Model; layers: LayerSubstitution[]; skipped: SubstituteSkip[] }> {
  const folded = await onFoldedWeights(model, (m) => substituteDepthwiseOnnx(m, opts));
  if (folded) return folded;
  const g = model.graph;
  const constOf = constantResolver(g);
  const shapes = inferShapes(model).types;
  const skipped: SubstituteSkip[] = [];
  const cands: Candidate[] = [];
  const want = opts.layers ? new Set(opts.layers) : undefined;
  const budget = opts.maxError ?? (opts.multiplier === undefined ? DEFAULT_DEPTHWISE_MAX_ERROR : undefined);
  const readers = (t: string) => g.nodes.filter((x) => x.inputs.includes(t)).length;
  for (const n of g.nodes) {
    if (n.opType !== 'Conv' || n.domain) continue;
    const skip = (reason: string) => skipped.push({ name: n.label, op: n.opType, reason });
    if (want && !want.has(n.name) && !want.has(n.label)) {
      skip('not in --layers');
      continue;
    }
    const wt = constOf(n.inputs[1]);
    if (!wt || wt.dtype !== DataType.FLOAT || wt.dims.length !== 4) {
      skip('not a 2-D convolution with a constant float weight');
      continue;
    }
    if (n.int('group', 1) !== 1) {
      skip('already grouped or depthwise');
      continue;
    }
    const [o, i, kh, kw] = wt.dims;
    if (kh * kw === 1) {
      skip('a 1×1 convolution has no spatial kernel to separate');
      continue;
    }
    if (i === 1 && !want) {
      skip('a 1-input-channel convolution (a stem) would keep only m filters, every output a mix of them; name it in --layers to force it');
      continue;
    }
    if (readers(n.inputs[1]) > 1) {
      skip(`its weight '${n.inputs[1]}' is shared by ${readers(n.inputs[1])} layers; substituting one would untie them`);
      continue;
    }
    const w = wt.toFloat32();
    const kk = kh * kw;
    const saves = (mm: number) => kk * i * mm + mm * i * o < kk * i * o;
    const spectra = channelSpectra(w, o, i, kk);
    // Multipliers to try, smallest first: the given one; else every one that saves parameters
    // (on calibration data, the refit measures each until one is within the budget; without
    // data, the first whose weight error is within it).
    const options =
      opts.multiplier !== undefined
        ? [Math.max(1, Math.min(opts.multiplier, kk, o))]
        : [...Array(Math.min(kk, o)).keys()].map((k) => k + 1).filter((mm) => saves(mm) && (opts.calib || weightError(spectra, mm) <= budget!));
    if (!saves(1)) {
      skip(`would not save parameters: k²·I·m + m·I·O = ${kk * i + i * o} ≥ k²·I·O = ${kk * i * o} even with multiplier 1`);
      continue;
    }
    if (!options.length) {
      skip(`no multiplier keeps the weight error within ${budget} and saves parameters (multiplier 1: ${weightError(spectra, 1).toFixed(3)})`);
      continue;
    }
    const m = options[0];
    const before = kk * i * o;
    const after = kk * i * m + m * i * o;
    if (!saves(m)) {
      skip(`would not save parameters: k²·I·m + m·I·O = ${after} ≥ k²·I·O = ${before}`);
      continue;
    }
    const biasT = n.inputs[2] ? constOf(n.inputs[2]) : undefined;
    const { depthwise, pointwise } = initFromSvd(w, o, i, kh * kw, m);
    const outShape = shapes.get(n.outputs[0])?.shape;
    const outSpatial = outShape && outShape.length === 4 && typeof outShape[2] === 'number' && typeof outShape[3] === 'number' ? outShape[2] * outShape[3] : null;
    cands.push({
      node: n, w, o, i, kh, kw, m, bias: biasT?.toFloat32(), origBias: biasT?.toFloat32(), depthwise, pointwise, outSpatial, spectra, options: options.slice(0, 4),
      report: {
        name: n.label,
        kind: 'depthwise',
        detail: `multiplier ${m}${opts.multiplier === undefined ? ' (chosen)' : ''}, weight error ${weightError(spectra, m).toFixed(3)}`,
        paramsBefore: before + (biasT ? o : 0),
        paramsAfter: after + (biasT ? o : 0),
        macsBefore: outSpatial === null ? null : outSpatial * before,
        macsAfter: outSpatial === null ? null : outSpatial * after,
        errorInit: null,
        errorRefit: null,
      },
    });
  }

  if (opts.calib && cands.length) await refit(model, cands, opts, budget);

  const chosen: Candidate[] = [];
  for (const c of cands) {
    const err = c.report.errorRefit ?? c.report.errorInit;
    if (budget !== undefined && err !== null && err > budget) {
      skipped.push({ name: c.report.name, op: 'Conv', reason: `relative output error ${err.toFixed(4)} on the calibration data exceeds the budget ${budget}${opts.maxError === undefined ? ' (default --max-error)' : ''}` });
      continue;
    }
    chosen.push(c);
  }
  return { model: build(model, chosen), layers: chosen.map((c) => c.report), skipped };
}

function depthwiseModel(c: Candidate): Model {
  const g = new Graph('depthwise');
  g.inputs.push({ name: 'x', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['n', c.i, 'h', 'w'] as Dim[] } });
  g.initializers.set('wd', Tensor.fromArray('wd', DataType.FLOAT, [c.i * c.m, 1, c.kh, c.kw], c.depthwise));
  const n = new Node('Conv', ['x', 'wd'], ['d'], 'dw');
  copySpatialAttrs(c.node, n);
  n.setInt('group', c.i);
  g.nodes.push(n);
  g.outputs.push({ name: 'd' });
  const m = new Model(g);
  m.opsetImports = [{ domain: '', version: 13 }];
  return m;
}

function copySpatialAttrs(from: Node, to: Node): void {
  for (const a of ['kernel_shape', 'strides', 'pads', 'dilations', 'auto_pad']) {
    const v = from.attr(a);
    if (v) to.attributes.set(a, v);
  }
}

/**
 * Sequential refit (as in channel pruning with reconstruction): layer by layer in graph
 * order, the inputs come from the model with the earlier layers already substituted, and
 * the targets from the original model, so errors do not compound.
 */
async function refit(model: Model, cands: Candidate[], opts: DepthwiseOptions, budget: number | undefined): Promise<void> {
  const done: Candidate[] = [];
  for (const c of cands) {
    const current = build(model, done);
    for (const m of c.options) {
      setMultiplier(c, m, opts.multiplier === undefined);
      await refitOne(model, current, c, opts);
      const err = c.report.errorRefit ?? c.report.errorInit;
      if (budget === undefined || err === null || err <= budget) break;
    }
    const err = c.report.errorRefit ?? c.report.errorInit;
    if (budget === undefined || err === null || err <= budget) done.push(c);
  }
}

/** Re-initialises a candidate with multiplier m (SVD) and updates its report. */
function setMultiplier(c: Candidate, m: number, chosen: boolean): void {
  const kk = c.kh * c.kw;
  if (m !== c.m) {
    c.m = m;
    Object.assign(c, initFromSvd(c.w, c.o, c.i, kk, m));
    c.bias = c.origBias;
    const after = kk * c.i * m + m * c.i * c.o;
    c.report.paramsAfter = after + (c.bias ? c.o : 0);
    c.report.macsAfter = c.outSpatial === null ? null : c.outSpatial * after;
  }
  c.report.detail = `multiplier ${m}${chosen ? ' (chosen)' : ''}, weight error ${weightError(c.spectra, m).toFixed(3)}`;
}

async function refitOne(model: Model, current: Model, c: Candidate, opts: DepthwiseOptions): Promise<void> {
  {
    const session = await ModelSession.create(depthwiseModel(c), { allowSpinning: false });
    const acc = new GramAccumulator(c.i * c.m, c.o);
    try {
      await captureLockstep(
        [
          { model: current, names: [c.node.inputs[0]] },
          { model, names: [c.node.outputs[0]] },
        ],
        opts.calib!,
        { batchSize: opts.batchSize ?? 16, signal: opts.signal, session: { allowSpinning: false } },
        async ({ values }) => {
          const d = (await session.run({ x: values[0][c.node.inputs[0]] }))['d'];
          const dv = hostValues(d);
          const yv = hostValues(values[1][c.node.outputs[0]]);
          const [n, ch, h, w] = d.dims;
          const hw = h * w;
          for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) acc.add(dv, b * ch * hw + p, hw, yv, b * c.o * hw + p, hw);
        },
      );
    } finally {
      await session.release();
    }
    const im = c.i * c.m;
    const init = new Matrix(c.o, im + 1);
    for (let o = 0; o < c.o; o++) {
      for (let j = 0; j < im; j++) init.set(o, j, c.pointwise[o * im + j]);
      init.set(o, im, c.bias?.[o] ?? 0);
    }
    c.report.errorInit = acc.relativeError(init);
    if (opts.refit !== false) {
      const sol = solveSpd(acc.gram(), acc.cross()).transpose(); // O × (Im + 1)
      const err = acc.relativeError(sol);
      if (err < c.report.errorInit) {
        c.report.errorRefit = err;
        const flat = toFloat32(sol);
        for (let o = 0; o < c.o; o++) for (let j = 0; j < im; j++) c.pointwise[o * im + j] = flat[o * (im + 1) + j];
        c.bias = Float32Array.from({ length: c.o }, (_, o) => flat[o * (im + 1) + im]);
      } else c.report.errorRefit = c.report.errorInit;
    }
  }
}

function build(model: Model, chosen: Candidate[]): Model {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const byOutputs = new Map(chosen.map((c) => [c.node.outputs.join('|'), c]));
  const replaced = new Map<Node, Node[]>();
  for (const n of g.nodes) {
    const c = byOutputs.get(n.outputs.join('|'));
    if (!c || n.opType !== 'Conv') continue;
    const base = (n.name || n.outputs[0]).replace(/[^\w.:/-]/g, '_');
    const wd = ed.initializer(`${base}_depthwise_weight`, DataType.FLOAT, [c.i * c.m, 1, c.kh, c.kw], c.depthwise);
    const wp = ed.initializer(`${base}_pointwise_weight`, DataType.FLOAT, [c.o, c.i * c.m, 1, 1], c.pointwise);
    const dw = ed.node('Conv', [n.inputs[0], wd], [`${base}_depthwise`]);
    dw.name = `${n.name || base}_depthwise`;
    copySpatialAttrs(n, dw);
    dw.setInt('group', c.i);
    const pwInputs = [dw.outputs[0], wp];
    if (c.bias) pwInputs.push(ed.initializer(`${base}_pointwise_bias`, DataType.FLOAT, [c.o], c.bias));
    const pw = ed.node('Conv', pwInputs, [`${base}_pointwise`]);
    pw.name = `${n.name || base}_pointwise`;
    pw.setInts('kernel_shape', [1, 1]);
    pw.outputs = [...n.outputs];
    replaced.set(n, [dw, pw]);
  }
  g.nodes = g.nodes.flatMap((n) => replaced.get(n) ?? [n]);
  ed.dropUnusedInitializers();
  ed.sort();
  return out;
}
