import { UsageError } from '../../../errors';
import { layerConfig, tfjsDocument } from '../../../formats/tfjs/document';
import { inferKerasShapes, kerasAttrs } from '../../../formats/tfjs/layers';
import { DataType } from '../../../ir/dtype';
import type { Model } from '../../../ir/graph';
import { Tensor } from '../../../ir/tensor';
import { cloneModel } from '../../graph-edit';
import { initFromSvd, type DepthwiseOptions } from '../separable';
import type { LayerSubstitution, SubstituteSkip } from '../types';

/**
 * Depthwise-separable substitution on TF.js layers models: a Keras Conv2D (k×k, I→O)
 * becomes a SeparableConv2D with depth_multiplier m, initialised from the same per-channel
 * rank-m SVD as the ONNX substitution. Weights are converted between Keras' HWIO layout and
 * the factorisation's; the layer keeps its name, strides, padding, dilation, activation
 * and bias, so the result is a valid layers model that TensorFlow.js loads.
 */
export function substituteKerasDepthwise(model: Model, opts: DepthwiseOptions = {}): { model: Model; layers: LayerSubstitution[]; skipped: SubstituteSkip[] } {
  if (!tfjsDocument(model.source)) throw new UsageError('Keras substitution works on TF.js layers models');
  if (opts.calib || opts.maxError !== undefined) throw new UsageError('the calibration refit and --max-error use ONNX Runtime; for TF.js models run without --calib/--max-error');
  const out = cloneModel(model);
  const doc = tfjsDocument(out.source)!;
  const g = out.graph;
  const layers: LayerSubstitution[] = [];
  const skipped: SubstituteSkip[] = [];
  const want = opts.layers ? new Set(opts.layers) : undefined;
  for (const n of g.nodes) {
    if (n.opType !== 'Conv2D') continue;
    const skip = (reason: string) => skipped.push({ name: n.name, op: n.opType, reason });
    if (want && !want.has(n.name)) {
      skip('not in --layers');
      continue;
    }
    const a = kerasAttrs(n);
    const kernelName = n.inputs.find((i) => i.endsWith('/kernel'));
    const kernel = kernelName ? g.initializers.get(kernelName) : undefined;
    if (!kernelName || !kernel || kernel.dtype !== DataType.FLOAT || kernel.dims.length !== 4) {
      skip('no float HWIO kernel');
      continue;
    }
    if (a.data_format === 'channels_first') {
      skip('channels_first layout');
      continue;
    }
    if (Number(a.groups ?? 1) !== 1) {
      skip('grouped convolution');
      continue;
    }
    const [kh, kw, i, o] = kernel.dims;
    const kk = kh * kw;
    if (kk === 1) {
      skip('a 1×1 convolution has no spatial kernel to separate');
      continue;
    }
    const m = Math.max(1, Math.min(opts.multiplier ?? 1, kk, o));
    const before = kk * i * o;
    const after = kk * i * m + m * i * o;
    if (after >= before) {
      skip(`would not save parameters: k²·I·m + m·I·O = ${after} ≥ k²·I·O = ${before}`);
      continue;
    }
    // HWIO → O·I·k² (the factorisation's layout), factorise, then back to Keras layouts.
    const hwio = kernel.toFloat32();
    const oik = new Float32Array(o * i * kk);
    for (let k = 0; k < kk; k++) for (let c = 0; c < i; c++) for (let oo = 0; oo < o; oo++) oik[(oo * i + c) * kk + k] = hwio[(k * i + c) * o + oo];
    const { depthwise, pointwise } = initFromSvd(oik, o, i, kk, m);
    const dk = new Float32Array(kk * i * m); // [kh, kw, I, m]
    for (let c = 0; c < i; c++) for (let j = 0; j < m; j++) for (let k = 0; k < kk; k++) dk[(k * i + c) * m + j] = depthwise[(c * m + j) * kk + k];
    const pk = new Float32Array(i * m * o); // [1, 1, I·m, O]
    for (let oo = 0; oo < o; oo++) for (let r = 0; r < i * m; r++) pk[r * o + oo] = pointwise[oo * i * m + r];
    const prefix = kernelName.slice(0, kernelName.lastIndexOf('/'));
    const dName = `${prefix}/depthwise_kernel`;
    const pName = `${prefix}/pointwise_kernel`;
    g.initializers.delete(kernelName);
    g.initializers.set(dName, Tensor.fromArray(dName, DataType.FLOAT, [kh, kw, i, m], dk));
    g.initializers.set(pName, Tensor.fromArray(pName, DataType.FLOAT, [1, 1, i * m, o], pk));
    const q = doc.quantization.get(kernelName);
    doc.quantization.delete(kernelName);
    if (q) {
      doc.quantization.set(dName, q);
      doc.quantization.set(pName, q);
    }
    const at = n.inputs.indexOf(kernelName);
    n.inputs.splice(at, 1, dName, pName);
    n.opType = 'SeparableConv2D';
    n.setInt('depth_multiplier', m);
    const layer = doc.layerByName(n.name);
    if (layer) {
      layer.class_name = 'SeparableConv2D';
      const c = layerConfig(layer);
      c.depth_multiplier = m;
      for (const part of ['initializer', 'regularizer', 'constraint']) {
        const v = c[`kernel_${part}`] ?? null;
        delete c[`kernel_${part}`];
        c[`depthwise_${part}`] = v;
        c[`pointwise_${part}`] = v;
      }
      delete c.groups;
    }
    const spatial = (() => {
      const t = g.valueInfo.get(n.outputs[0])?.type;
      const s = t?.kind === 'tensor' ? t.shape : null;
      return s && typeof s[1] === 'number' && typeof s[2] === 'number' ? s[1] * s[2] : null;
    })();
    const bias = n.inputs.some((x) => x.endsWith('/bias')) ? o : 0;
    layers.push({
      name: n.name,
      kind: 'depthwise',
      detail: `multiplier ${m}`,
      paramsBefore: before + bias,
      paramsAfter: after + bias,
      macsBefore: spatial === null ? null : spatial * before,
      macsAfter: spatial === null ? null : spatial * after,
      errorInit: null,
      errorRefit: null,
    });
  }
  inferKerasShapes(g);
  return { model: out, layers, skipped };
}
