import { CancelledError } from '../../../errors';
import { kerasAttrs } from '../../../formats/tfjs/layers';
import { DataType } from '../../../ir/dtype';
import type { Model, Node } from '../../../ir/graph';
import { Tensor } from '../../../ir/tensor';
import type { Dataset } from '../../../runtime/data/dataset';
import { TfjsRunner } from '../../../runtime/tfjs';
import { GramAccumulator } from '../../substitute/linalg';
import { refitWeights, type ReconstructReport } from '../refit';

/**
 * Recovery without training for TF.js layers models, the Keras counterpart of
 * `reconstruct.ts`: every Dense or Conv2D that lost input channels gets its kernel and bias
 * refitted by least squares, so that its pre-activation output on the pruned model's inputs
 * matches what the original layer computed on the original inputs. The layer inputs come
 * from TensorFlow.js (both models run on the calibration data); the targets are computed here
 * from the original kernel, so a fused activation does not get in the way. Layers are refitted
 * in graph order, each on a model that already has the earlier refits.
 */

export interface KerasRefit {
  /** Layers whose input channels were removed. */
  layers: string[];
  /** Output channels (original positions) each pruned producer kept. */
  kept: Map<string, number[]>;
}

const MAX_ROWS = 20000;

export async function reconstructKeras(original: Model, pruned: Model, refit: KerasRefit, calib: Dataset, signal?: AbortSignal): Promise<ReconstructReport[]> {
  const reports: ReconstructReport[] = [];
  const ref = await TfjsRunner.fromModel(original);
  try {
    const { producer } = pruned.graph.index();
    for (const node of pruned.graph.topoOrder()) {
      if (!refit.layers.includes(node.name) || !refittable(node)) continue;
      const inbound = producer.get(node.inputs[0]);
      if (!inbound) continue;
      // The pruned model as it stands, with the earlier refits.
      const cur = await TfjsRunner.fromModel(pruned);
      try {
        const r = await refitLayer(original, pruned, node, inbound.name, ref, cur, refit.kept.get(node.name), calib, signal);
        if (r) reports.push(r);
      } finally {
        await cur.release();
      }
    }
  } finally {
    await ref.release();
  }
  return reports;
}

function refittable(n: Node): boolean {
  const a = kerasAttrs(n);
  if (n.opType === 'Dense') return a.use_bias !== false;
  return n.opType === 'Conv2D' && a.use_bias !== false && Number(a.groups ?? 1) === 1 && (a.data_format ?? 'channels_last') === 'channels_last';
}

const weightOf = (m: Model, n: Node, suffix: string) => {
  const name = n.inputs.find((i) => i.endsWith(`/${suffix}`));
  return name ? { name, t: m.graph.initializers.get(name)! } : undefined;
};

/** Conv2D geometry (NHWC input `x`, TensorFlow's SAME/VALID padding): strides, dilations, output size, top/left padding. */
function geometry(n: Node, kernel: number[], x: number[]) {
  const a = kerasAttrs(n);
  const pair = (v: unknown) => (Array.isArray(v) ? v.map(Number) : [Number(v ?? 1), Number(v ?? 1)]);
  const [sh, sw] = pair(a.strides);
  const [dh, dw] = pair(a.dilation_rate);
  const same = a.padding === 'same';
  const size = (i: number, s: number, d: number) => (same ? Math.ceil(x[i] / s) : Math.floor((x[i] - (kernel[i - 1] - 1) * d - 1) / s) + 1);
  const [oh, ow] = [size(1, sh, dh), size(2, sw, dw)];
  const pad = (i: number, out: number, s: number, d: number) => (same ? Math.floor(Math.max((out - 1) * s + (kernel[i - 1] - 1) * d + 1 - x[i], 0) / 2) : 0);
  return { sh, sw, dh, dw, oh, ow, top: pad(1, oh, sh, dh), left: pad(2, ow, sw, dw) };
}

async function refitLayer(original: Model, pruned: Model, node: Node, inbound: string, ref: TfjsRunner, cur: TfjsRunner, kept: number[] | undefined, calib: Dataset, signal?: AbortSignal): Promise<ReconstructReport | undefined> {
  const kNew = weightOf(pruned, node, 'kernel');
  const bNew = weightOf(pruned, node, 'bias');
  const origNode = original.graph.nodes.find((n) => n.name === node.name);
  const kOld = origNode && weightOf(original, origNode, 'kernel');
  const bOld = origNode && weightOf(original, origNode, 'bias');
  if (!kNew || !bNew || !kOld || !bOld) return undefined;
  const conv = node.opType === 'Conv2D';
  const out = kNew.t.dims[kNew.t.dims.length - 1];
  const features = kNew.t.numel / out;
  const oldOut = kOld.t.dims[kOld.t.dims.length - 1];
  const oldFeatures = kOld.t.numel / oldOut;
  const wOld = kOld.t.toFloat32();
  const bOldV = bOld.t.toFloat32();
  const acc = new GramAccumulator(features, out);
  const yRow = new Float64Array(oldOut);
  let seen = 0;
  let stride = 0;
  // Without an activation the original layer's output is the target as TensorFlow.js computed
  // it; with one, the pre-activation target is computed here from the original inputs.
  const linear = String(kerasAttrs(origNode).activation ?? 'linear') === 'linear';
  let yOut: Float32Array | undefined;
  const addRow = (xNew: ArrayLike<number>, xNewOff: number, xOld: ArrayLike<number>, xOldOff: number, row: number) => {
    if (yOut) return acc.add(xNew, xNewOff, 1, yOut, row * oldOut, 1, kept);
    for (let o = 0; o < oldOut; o++) yRow[o] = bOldV[o];
    for (let f = 0; f < oldFeatures; f++) {
      const v = xOld[xOldOff + f];
      if (v === 0) continue;
      const base = f * oldOut;
      for (let o = 0; o < oldOut; o++) yRow[o] += v * wOld[base + o];
    }
    acc.add(xNew, xNewOff, 1, yRow, 0, 1, kept);
  };
  for (const { feeds } of calib.batches(16)) {
    if (signal?.aborted) throw new CancelledError();
    const got = await ref.capture(linear ? [inbound, node.name] : [inbound], feeds);
    const xo = got[inbound];
    yOut = linear ? (got[node.name].data as Float32Array) : undefined;
    const xn = (await cur.capture([inbound], feeds))[inbound];
    const vo = xo.data as Float32Array;
    const vn = xn.data as Float32Array;
    if (!conv) {
      const rows = vn.length / features;
      stride ||= Math.max(1, Math.ceil(calib.count / MAX_ROWS));
      for (let r = 0; r < rows; r++) if (seen++ % stride === 0) addRow(vn, r * features, vo, r * oldFeatures, r);
      continue;
    }
    const kd = kNew.t.dims;
    const g = geometry(node, kd, xn.dims);
    const { oh, ow } = g;
    stride ||= Math.max(1, Math.ceil((calib.count * oh * ow) / MAX_ROWS));
    const pn = new Float64Array(features);
    const po = new Float64Array(oldFeatures);
    const [n, h, w, cn] = xn.dims;
    const co = xo.dims[3];
    for (let b = 0; b < n; b++) for (let py = 0; py < oh; py++) for (let px = 0; px < ow; px++) {
      if (seen++ % stride !== 0) continue;
      let kn = 0;
      let ko = 0;
      for (let ky = 0; ky < kd[0]; ky++) {
        const iy = py * g.sh - g.top + ky * g.dh;
        for (let kx = 0; kx < kd[1]; kx++) {
          const ix = px * g.sw - g.left + kx * g.dw;
          const inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
          const at = (b * h + iy) * w + ix;
          for (let c = 0; c < cn; c++) pn[kn++] = inside ? vn[at * cn + c] : 0;
          for (let c = 0; c < co; c++) po[ko++] = inside ? vo[at * co + c] : 0;
        }
      }
      addRow(pn, 0, po, 0, (b * oh + py) * ow + px);
    }
  }
  if (acc.rows < features + 1) return undefined; // too little data for a well-posed fit
  // Keras kernels are [..., features, out]: (o, f) sits at f·out + o.
  const fit = refitWeights(acc, kNew.t.toFloat32(), bNew.t.toFloat32(), out, features, (o, f) => f * out + o);
  const { errorBefore, errorAfter } = fit;
  if (!fit.kernel) return { layer: node.name, errorBefore, errorAfter };
  const [nw, nb] = [fit.kernel, fit.bias!];
  pruned.graph.initializers.set(kNew.name, Tensor.fromArray(kNew.name, DataType.FLOAT, [...kNew.t.dims], nw));
  pruned.graph.initializers.set(bNew.name, Tensor.fromArray(bNew.name, DataType.FLOAT, [...bNew.t.dims], nb));
  return { layer: node.name, errorBefore, errorAfter };
}
