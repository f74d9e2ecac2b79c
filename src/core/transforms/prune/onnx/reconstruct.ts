import { DataType } from '../../../ir/dtype';
import type { Model, Node } from '../../../ir/graph';
import { captureLockstep } from '../../../runtime/capture';
import { hostValues } from '../../../runtime/compare';
import type { Dataset } from '../../../runtime/data/dataset';
import type { HostTensor } from '../../../runtime/session';
import { GraphEditor } from '../../graph-edit';
import { constantResolver } from '../../quantize/registry';
import { inferShapes } from '../../../ir/shape-inference';
import { GramAccumulator } from '../../substitute/linalg';
import { refitWeights, type ReconstructReport } from '../refit';

export type { ReconstructReport } from '../refit';

/**
 * Recovery without training (channel pruning with reconstruction, He et al. 2017; ThiNet):
 * after channels are removed, each layer that read them gets its remaining weights (and
 * bias) refitted by least squares so that its output matches the unpruned model's on
 * calibration data. Layers are refitted in graph order, each on inputs from the model with
 * the earlier refits applied, so errors do not compound. This also corrects the bias for the
 * mean contribution of the removed channels.
 *
 * Convolutions are refitted on im2col patches (C·k·k features); rows are subsampled to at
 * most `maxRows` so memory and time stay bounded.
 */

export interface ReconstructOptions {
  calib: Dataset;
  batchSize?: number;
  maxRows?: number;
  signal?: AbortSignal;
}

/**
 * `pruned` is edited in place (it is already a copy); `original` provides the targets.
 * `keptOutputs` maps a layer's output name to the original output channels it still has
 * (when its own output channels were pruned too).
 */
export async function reconstruct(original: Model, pruned: Model, layers: string[], opts: ReconstructOptions, keptOutputs = new Map<string, number[]>()): Promise<ReconstructReport[]> {
  const reports: ReconstructReport[] = [];
  const order = pruned.graph.topoOrder();
  const targets = order.filter((n) => layers.includes(n.outputs[0]) && isRefittable(n, pruned));
  for (const node of targets) {
    const r = await refitLayer(original, pruned, node, opts, keptOutputs.get(node.outputs[0]));
    if (r) reports.push(r);
  }
  return reports;
}

function isRefittable(n: Node, m: Model): boolean {
  const w = constantResolver(m.graph)(n.inputs[1]);
  if (!w || w.dtype !== DataType.FLOAT) return false;
  if (n.opType === 'Conv') return w.dims.length === 4 && n.int('group', 1) === 1 && n.str('auto_pad', 'NOTSET') === 'NOTSET';
  if (n.opType === 'Gemm') return w.dims.length === 2 && !n.int('transA', 0) && n.float('alpha', 1) === 1 && n.float('beta', 1) === 1;
  return n.opType === 'MatMul' && w.dims.length === 2;
}

async function refitLayer(original: Model, pruned: Model, node: Node, opts: ReconstructOptions, kept?: number[]): Promise<ReconstructReport | undefined> {
  const constOf = constantResolver(pruned.graph);
  const w = constOf(node.inputs[1])!;
  const bias = node.inputs[2] ? constOf(node.inputs[2]) : undefined;
  const isConv = node.opType === 'Conv';
  const transB = node.opType === 'Gemm' && node.int('transB', 0) === 1;
  const out = isConv || transB ? w.dims[0] : w.dims[1];
  const features = isConv ? w.dims[1] * w.dims[2] * w.dims[3] : transB ? w.dims[1] : w.dims[0];
  const acc = new GramAccumulator(features, out);
  const maxRows = opts.maxRows ?? 20000;
  const total = estimateRows(opts.calib.count, node, pruned);
  const stride = Math.max(1, Math.ceil(total / maxRows));
  let row = 0;
  await captureLockstep(
    [
      { model: pruned, names: [node.inputs[0]] },
      { model: original, names: [node.outputs[0]] },
    ],
    opts.calib,
    { batchSize: opts.batchSize ?? 16, signal: opts.signal, session: { allowSpinning: false } },
    ({ values }) => {
      const x = values[0][node.inputs[0]];
      const y = values[1][node.outputs[0]];
      if (isConv) convRows(node, w.dims, x, y, (patch, yv, yOff, yStride) => row++ % stride === 0 && acc.add(patch, 0, 1, yv, yOff, yStride, kept));
      else {
        const xv = hostValues(x);
        const yv = hostValues(y);
        const rows = xv.length / features;
        const yCols = y.dims[y.dims.length - 1];
        for (let r = 0; r < rows; r++) if (row++ % stride === 0) acc.add(xv, r * features, 1, yv, r * yCols, 1, kept);
      }
    },
  );
  if (acc.rows < features + 1) return undefined; // not enough data for a well-posed fit
  const layout = (o: number, f: number) => (isConv || transB ? o * features + f : f * out + o);
  const fit = refitWeights(acc, w.toFloat32(), bias?.toFloat32(), out, features, layout);
  const { errorBefore, errorAfter } = fit;
  if (!fit.kernel) return { layer: node.label, errorBefore, errorAfter };
  const [nw, nb] = [fit.kernel, fit.bias!];
  const ed = new GraphEditor(pruned.graph);
  node.inputs[1] = ed.initializer(`${node.inputs[1]}_refit`, DataType.FLOAT, [...w.dims], nw);
  const b = ed.initializer(`${node.label.replace(/[^\w.:/-]/g, '_')}_bias_refit`, DataType.FLOAT, [out], nb);
  if (node.opType === 'MatMul') {
    // MatMul has no bias input: add one after it.
    const add = ed.node('Add', ['', b], [`${node.outputs[0]}_unbiased`]);
    add.inputs[0] = ed.fresh(`${node.outputs[0]}_nobias`);
    const y = node.outputs[0];
    node.outputs[0] = add.inputs[0];
    add.outputs = [y];
    pruned.graph.nodes.push(add);
    ed.sort();
  } else node.inputs[2] = b;
  ed.dropUnusedInitializers();
  return { layer: node.label, errorBefore, errorAfter };
}

/** Rows the calibration data yields (conv: one per output position), for subsampling. */
function estimateRows(samples: number, node: Node, m: Model): number {
  if (node.opType !== 'Conv') return samples;
  const s = inferShapes(m).types.get(node.outputs[0])?.shape;
  const hw = s && typeof s[2] === 'number' && typeof s[3] === 'number' ? s[2] * s[3] : 4096;
  return samples * hw;
}

/** im2col: calls `emit` for each output position with its C·kh·kw patch (weight order). */
function convRows(node: Node, wDims: number[], x: HostTensor, y: HostTensor, emit: (patch: Float64Array, y: ArrayLike<number>, yOff: number, yStride: number) => void): void {
  const [, c, kh, kw] = wDims;
  const [n, , h, w] = x.dims;
  const [, o, oh, ow] = y.dims;
  const strides = node.ints('strides') ?? [1, 1];
  const dil = node.ints('dilations') ?? [1, 1];
  const pads = node.ints('pads') ?? [0, 0, 0, 0];
  const xv = hostValues(x);
  const yv = hostValues(y);
  const patch = new Float64Array(c * kh * kw);
  for (let b = 0; b < n; b++) {
    for (let py = 0; py < oh; py++) {
      for (let px = 0; px < ow; px++) {
        let k = 0;
        for (let ch = 0; ch < c; ch++) {
          const base = (b * c + ch) * h * w;
          for (let ky = 0; ky < kh; ky++) {
            const iy = py * strides[0] - pads[0] + ky * dil[0];
            for (let kx = 0; kx < kw; kx++) {
              const ix = px * strides[1] - pads[1] + kx * dil[1];
              patch[k++] = iy >= 0 && iy < h && ix >= 0 && ix < w ? xv[base + iy * w + ix] : 0;
            }
          }
        }
        emit(patch, yv, b * o * oh * ow + py * ow + px, oh * ow);
      }
    }
  }
}
