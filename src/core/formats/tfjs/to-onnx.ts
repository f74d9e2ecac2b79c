import { UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import { Graph, Model, Node } from '../../ir/graph';
import { Tensor } from '../../ir/tensor';
import { layerConfig, tfjsDocument, type Json } from './document';

/**
 * Exports a TF.js layers model to ONNX (opset 17) so ONNX Runtime can benchmark and
 * compare it. The ONNX model takes the same NHWC inputs and gives the same outputs as the
 * Keras model. Inside, 4-D activations run NCHW (ONNX's convolution layout): each value
 * carries its layout, and a Transpose is inserted only where a layer needs the other one
 * (Flatten and Reshape flatten in NHWC order, as Keras does). Weights are converted:
 * HWIO kernels → OIHW, depthwise [kh,kw,C,m] → [C·m,1,kh,kw] (group C), pointwise
 * [1,1,C·m,F] → [F,C·m,1,1]. A layer without a rule is an error naming it, never a silent
 * approximation.
 */

type Layout = 'nhwc' | 'nchw' | 'flat';

interface Val {
  name: string;
  layout: Layout;
  rank: number;
}

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

class Builder {
  readonly g = new Graph('tfjs-export');
  private n = 0;
  private transposed = new Map<string, string>();

  fresh(base: string): string {
    return `${base.replace(/[^A-Za-z0-9_./:-]/g, '_')}__${this.n++}`;
  }

  op(type: string, inputs: string[], base: string, attrs: (n: Node) => void = () => undefined): string {
    const out = this.fresh(base);
    const node = new Node(type, inputs, [out], this.fresh(`${base}_${type}`));
    attrs(node);
    this.g.nodes.push(node);
    return out;
  }

  init(base: string, dims: number[], data: Float32Array | BigInt64Array, dtype = DataType.FLOAT): string {
    const name = this.fresh(base);
    this.g.initializers.set(name, Tensor.fromArray(name, dtype, dims, data));
    return name;
  }

  ints(base: string, values: number[]): string {
    return this.init(base, [values.length], BigInt64Array.from(values.map(BigInt)), DataType.INT64);
  }

  /** The value in the wanted layout (4-D only; others pass through). */
  as(v: Val, layout: 'nhwc' | 'nchw'): Val {
    if (v.rank !== 4 || v.layout === layout || v.layout === 'flat') return v;
    const key = `${v.name}->${layout}`;
    let name = this.transposed.get(key);
    if (!name) {
      name = this.op('Transpose', [v.name], `${v.name}_${layout}`, (n) => n.setInts('perm', layout === 'nchw' ? NHWC_TO_NCHW : NCHW_TO_NHWC));
      this.transposed.set(key, name);
    }
    return { name, layout, rank: 4 };
  }
}

function pair(v: unknown, dflt: number): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length >= 2) return [Number(v[0]), Number(v[1])];
  if (Array.isArray(v) && v.length === 1) return [Number(v[0]), Number(v[0])];
  return [dflt, dflt];
}

function activationName(c: Json): string {
  const a = c.activation;
  if (typeof a === 'string') return a;
  if (a && typeof a === 'object') return String((a as Json).class_name ?? (a as Json).config ?? 'linear');
  return 'linear';
}

/** Transposes a kernel with dims `dims` by `perm` (row-major); the source offset is stepped, not recomputed. */
function permute(data: Float32Array, fullDims: number[], fullPerm: number[]): { data: Float32Array; dims: number[] } {
  const outFull = fullPerm.map((p) => fullDims[p]);
  // Axes of size 1 do not move data: drop them (a 1x1 convolution kernel becomes a 2-D transpose).
  const keep = fullDims.map((d, i) => (d === 1 ? -1 : i)).filter((i) => i >= 0);
  const dims = keep.map((i) => fullDims[i]);
  const perm = fullPerm.filter((p) => fullDims[p] !== 1).map((p) => keep.indexOf(p));
  const n = perm.length;
  const outDims = perm.map((p) => dims[p]);
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const step = perm.map((p) => strides[p]); // source stride of each output axis
  const out = new Float32Array(data.length);
  if (n === 0 || data.length === 0) return { data: out.fill(data[0] ?? 0), dims: outFull };
  const inner = outDims[n - 1];
  const innerStep = step[n - 1];
  const idx = new Int32Array(n);
  let src = 0;
  let o = 0;
  while (o < data.length) {
    for (let j = 0, s = src; j < inner; j++, s += innerStep) out[o++] = data[s];
    for (let k = n - 2; k >= 0; k--) {
      src += step[k];
      if (++idx[k] < outDims[k]) break;
      src -= step[k] * outDims[k];
      idx[k] = 0;
    }
  }
  return { data: out, dims: outFull };
}

export function exportKerasToOnnx(model: Model): Model {
  const doc = tfjsDocument(model.source);
  if (model.format !== 'tfjs-layers' || !doc) throw new UsageError(`only TF.js layers models export to ONNX (this is ${model.format})`);
  const src = model.graph;
  const b = new Builder();
  const vals = new Map<string, Val>();
  for (const i of src.inputs) {
    const shape = i.type?.kind === 'tensor' ? i.type.shape : null;
    if (!shape) throw new UsageError(`input '${i.name}' has no declared shape; ONNX export needs one`);
    b.g.inputs.push({ name: i.name, type: { kind: 'tensor', dtype: i.type!.kind === 'tensor' ? i.type!.dtype : DataType.FLOAT, shape } });
    vals.set(i.name, { name: i.name, layout: shape.length === 4 ? 'nhwc' : 'flat', rank: shape.length });
  }
  const weight = (n: Node, suffix: string): Tensor | undefined => {
    const k = n.inputs.find((i) => i.endsWith(`/${suffix}`));
    return k ? src.initializers.get(k) : undefined;
  };
  const activation = (v: Val, act: string, base: string, c: Json = {}): Val => {
    const un = (op: string, f?: (n: Node) => void) => ({ ...v, name: b.op(op, [v.name], base, f) });
    switch (act) {
      case 'linear':
      case undefined:
        return v;
      case 'relu':
        return un('Relu');
      case 'relu6':
        return { ...v, name: b.op('Clip', [v.name, b.init('zero', [], Float32Array.of(0)), b.init('six', [], Float32Array.of(6))], base) };
      case 'sigmoid':
        return un('Sigmoid');
      case 'tanh':
        return un('Tanh');
      case 'elu':
        return un('Elu', (n) => n.setFloat('alpha', Number(c.alpha ?? 1)));
      case 'selu':
        return un('Selu');
      case 'softplus':
        return un('Softplus');
      case 'softsign':
        return un('Softsign');
      case 'hard_sigmoid':
        return un('HardSigmoid', (n) => n.setFloat('alpha', 0.2));
      case 'swish':
      case 'silu':
        return { ...v, name: b.op('Mul', [v.name, b.op('Sigmoid', [v.name], base)], base) };
      case 'softmax': {
        // Keras: over the last axis (channels); in NCHW that is axis 1.
        const axis = v.rank === 4 && v.layout === 'nchw' ? 1 : -1;
        return un('Softmax', (n) => n.setInt('axis', axis));
      }
      default:
        throw new UsageError(`cannot export the activation '${act}' of layer ${base} to ONNX`);
    }
  };
  for (const n of src.topoOrder()) {
    const layer = doc.layerByName(n.name);
    const c = layer ? layerConfig(layer) : {};
    const ins = n.inputs.filter((i) => !src.initializers.has(i)).map((i) => vals.get(i) ?? ((): never => {
      throw new UsageError(`layer ${n.name} reads '${i}', which the export has not produced`);
    })());
    const x = ins[0];
    const base = n.name;
    let out: Val;
    switch (n.opType) {
      case 'Dense': {
        const k = weight(n, 'kernel')!;
        const inp = x.rank === 4 ? b.as(x, 'nhwc') : x;
        let y = b.op('MatMul', [inp.name, b.init(`${base}/kernel`, [...k.dims], k.toFloat32())], base);
        const bias = weight(n, 'bias');
        if (bias) y = b.op('Add', [y, b.init(`${base}/bias`, [...bias.dims], bias.toFloat32())], base);
        out = activation({ name: y, layout: x.rank === 4 ? 'nhwc' : x.layout, rank: x.rank }, activationName(c), base, c);
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D':
      case 'SeparableConv2D': {
        if (c.data_format === 'channels_first') throw new UsageError(`cannot export ${n.name}: channels_first convolutions are not supported`);
        if (c.padding !== 'same' && c.padding !== 'valid' && c.padding !== undefined) throw new UsageError(`cannot export ${n.name}: padding '${String(c.padding)}'`);
        const inp = b.as(x, 'nchw');
        const strides = pair(c.strides, 1);
        const dil = pair(c.dilation_rate, 1);
        const conv = (input: string, w: { data: Float32Array; dims: number[] }, group: number, bias: Tensor | undefined, spatial: boolean) =>
          b.op('Conv', [input, b.init(`${base}/w`, w.dims, w.data), ...(bias ? [b.init(`${base}/b`, [...bias.dims], bias.toFloat32())] : [])], base, (node) => {
            node.setInts('kernel_shape', [w.dims[2], w.dims[3]]);
            node.setInt('group', group);
            if (spatial) {
              node.setInts('strides', strides);
              node.setInts('dilations', dil);
              if (c.padding === 'same') node.setString('auto_pad', 'SAME_UPPER');
            }
          });
        let y: string;
        if (n.opType === 'Conv2D') {
          const k = weight(n, 'kernel')!;
          if (Number(c.groups ?? 1) !== 1) throw new UsageError(`cannot export ${n.name}: grouped Conv2D`);
          y = conv(inp.name, permute(k.toFloat32(), [...k.dims], [3, 2, 0, 1]), 1, weight(n, 'bias'), true);
        } else {
          const dk = weight(n, 'depthwise_kernel')!;
          const [kh, kw, ch, m] = dk.dims;
          // [kh,kw,C,m] → [C·m, 1, kh, kw]: output channel c·m + j, as Keras orders them.
          const dw = permute(dk.toFloat32(), [kh, kw, ch, m], [2, 3, 0, 1]);
          const dwW = { data: dw.data, dims: [ch * m, 1, kh, kw] };
          if (n.opType === 'DepthwiseConv2D') y = conv(inp.name, dwW, ch, weight(n, 'bias'), true);
          else {
            const mid = conv(inp.name, dwW, ch, undefined, true);
            const pk = weight(n, 'pointwise_kernel')!;
            y = conv(mid, permute(pk.toFloat32(), [...pk.dims], [3, 2, 0, 1]), 1, weight(n, 'bias'), false);
          }
        }
        out = activation({ name: y, layout: 'nchw', rank: 4 }, activationName(c), base, c);
        break;
      }
      case 'BatchNormalization': {
        const axis = Number(c.axis ?? -1);
        if (axis !== -1 && axis !== x.rank - 1) throw new UsageError(`cannot export ${n.name}: BatchNormalization over axis ${axis}`);
        const mean = weight(n, 'moving_mean')!;
        const ch = mean.numel;
        const inp = x.rank === 4 ? b.as(x, 'nchw') : x;
        const gamma = weight(n, 'gamma')?.toFloat32() ?? new Float32Array(ch).fill(1);
        const beta = weight(n, 'beta')?.toFloat32() ?? new Float32Array(ch);
        const eps = Number(c.epsilon ?? 1e-3);
        if (x.rank === 4 || x.rank === 2) {
          const y = b.op('BatchNormalization', [inp.name, b.init(`${base}/gamma`, [ch], gamma), b.init(`${base}/beta`, [ch], beta), b.init(`${base}/mean`, [ch], mean.toFloat32()), b.init(`${base}/var`, [ch], weight(n, 'moving_variance')!.toFloat32())], base, (node) => node.setFloat('epsilon', eps));
          out = { name: y, layout: inp.layout, rank: x.rank };
        } else {
          // Other ranks: the same affine map on the last axis, y = x·s + t.
          const v = weight(n, 'moving_variance')!.toFloat32();
          const m = mean.toFloat32();
          const s = gamma.map((gv, i) => gv / Math.sqrt(v[i] + eps));
          const t = beta.map((bv, i) => bv - m[i] * s[i]);
          const y = b.op('Add', [b.op('Mul', [x.name, b.init(`${base}/scale`, [ch], s)], base), b.init(`${base}/shift`, [ch], t)], base);
          out = { ...x, name: y };
        }
        break;
      }
      case 'Activation':
        out = activation(x, activationName(c), base, c);
        break;
      case 'ReLU': {
        if (c.max_value !== undefined && c.max_value !== null) {
          out = { ...x, name: b.op('Clip', [x.name, b.init('zero', [], Float32Array.of(0)), b.init('max', [], Float32Array.of(Number(c.max_value)))], base) };
        } else out = activation(x, 'relu', base);
        break;
      }
      case 'LeakyReLU':
        out = { ...x, name: b.op('LeakyRelu', [x.name], base, (node) => node.setFloat('alpha', Number(c.alpha ?? c.negative_slope ?? 0.3))) };
        break;
      case 'ELU':
        out = activation(x, 'elu', base, c);
        break;
      case 'Softmax':
        out = activation(x, 'softmax', base);
        break;
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'SpatialDropout1D':
      case 'GaussianNoise':
      case 'GaussianDropout':
      case 'AlphaDropout':
        out = x;
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const inp = b.as(x, 'nchw');
        const k = pair(c.pool_size, 2);
        const s = pair(c.strides ?? c.pool_size, k[0]);
        const y = b.op(n.opType === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [inp.name], base, (node) => {
          node.setInts('kernel_shape', k);
          node.setInts('strides', s);
          if (c.padding === 'same') node.setString('auto_pad', 'SAME_UPPER');
        });
        out = { name: y, layout: 'nchw', rank: 4 };
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        const inp = b.as(x, 'nchw');
        const pooled = b.op(n.opType === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [inp.name], base);
        out = c.keepdims ? { name: pooled, layout: 'nchw', rank: 4 } : { name: b.op('Flatten', [pooled], base, (node) => node.setInt('axis', 1)), layout: 'flat', rank: 2 };
        break;
      }
      case 'Flatten': {
        const inp = b.as(x, 'nhwc');
        out = { name: b.op('Flatten', [inp.name], base, (node) => node.setInt('axis', 1)), layout: 'flat', rank: 2 };
        break;
      }
      case 'Reshape': {
        const inp = b.as(x, 'nhwc');
        const target = (c.target_shape as number[] | undefined) ?? [];
        const y = b.op('Reshape', [inp.name, b.ints(`${base}/shape`, [0, ...target])], base);
        out = { name: y, layout: target.length === 3 ? 'nhwc' : 'flat', rank: target.length + 1 };
        break;
      }
      case 'ZeroPadding2D': {
        const inp = b.as(x, 'nchw');
        const p = c.padding;
        const [[t, bt], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p) && Array.isArray(p[0]) ? (p as [[number, number], [number, number]]) : Array.isArray(p) ? [[Number(p[0]), Number(p[0])], [Number(p[1]), Number(p[1])]] : [[1, 1], [1, 1]];
        out = { name: b.op('Pad', [inp.name, b.ints(`${base}/pads`, [0, 0, t, l, 0, 0, bt, r])], base), layout: 'nchw', rank: 4 };
        break;
      }
      case 'UpSampling2D': {
        const inp = b.as(x, 'nchw');
        const [sh, sw] = pair(c.size, 2);
        const y = b.op('Resize', [inp.name, '', b.init(`${base}/scales`, [4], Float32Array.of(1, 1, sh, sw))], base, (node) => {
          node.setString('mode', c.interpolation === 'bilinear' ? 'linear' : 'nearest');
          if (c.interpolation !== 'bilinear') node.setString('nearest_mode', 'floor');
          node.setString('coordinate_transformation_mode', c.interpolation === 'bilinear' ? 'half_pixel' : 'asymmetric');
        });
        out = { name: y, layout: 'nchw', rank: 4 };
        break;
      }
      case 'Add':
      case 'Subtract':
      case 'Multiply':
      case 'Maximum':
      case 'Minimum':
      case 'Average': {
        const layout = x.rank === 4 ? x.layout : x.layout;
        const parts = ins.map((v) => (v.rank === 4 && layout !== 'flat' ? b.as(v, layout as 'nhwc' | 'nchw') : v));
        const op = { Add: 'Add', Subtract: 'Sub', Multiply: 'Mul', Maximum: 'Max', Minimum: 'Min', Average: 'Add' }[n.opType]!;
        let y = parts[0].name;
        if (op === 'Add' || op === 'Mul' || op === 'Sub') for (const p of parts.slice(1)) y = b.op(op, [y, p.name], base);
        else y = b.op(op, parts.map((p) => p.name), base);
        if (n.opType === 'Average') y = b.op('Div', [y, b.init(`${base}/n`, [], Float32Array.of(parts.length))], base);
        out = { name: y, layout: x.layout, rank: x.rank };
        break;
      }
      case 'Concatenate': {
        const axis = Number(c.axis ?? -1);
        const rank = x.rank;
        const kerasAxis = ((axis % rank) + rank) % rank;
        const layout: Layout = rank === 4 ? 'nchw' : 'flat';
        const parts = ins.map((v) => (rank === 4 ? b.as(v, 'nchw') : v));
        const onnxAxis = rank === 4 ? NHWC_TO_NCHW.indexOf(kerasAxis) : kerasAxis;
        out = { name: b.op('Concat', parts.map((p) => p.name), base, (node) => node.setInt('axis', onnxAxis)), layout, rank };
        break;
      }
      default:
        throw new UsageError(`cannot export layer ${n.name} (${n.opType}) to ONNX: no conversion rule for it`);
    }
    vals.set(n.outputs[0], out);
  }
  for (const o of src.outputs) {
    const v = vals.get(o.name);
    if (!v) throw new UsageError(`the model output '${o.name}' was not produced by the export`);
    const fin = v.rank === 4 ? b.as(v, 'nhwc') : v;
    b.g.nodes.push(new Node('Identity', [fin.name], [o.name], b.fresh('output')));
    b.g.outputs.push({ name: o.name });
  }
  const m = new Model(b.g, 'onnx');
  m.irVersion = 8;
  m.opsetImports = [{ domain: '', version: 17 }];
  m.producerName = 'model-compressor (from TF.js)';
  return m;
}
