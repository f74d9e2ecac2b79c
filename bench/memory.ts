import * as fs from 'fs';
import * as path from 'path';
import { saveModel } from '../src/core/formats/registry';
import { DataType } from '../src/core/ir/dtype';
import { Graph, Model, Node } from '../src/core/ir/graph';
import { Tensor } from '../src/core/ir/tensor';
import { benchDir, child, report } from './util';

/**
 * `npm run bench -- memory`: peak RSS of static int8 quantization (256 random calibration
 * samples, then the usual evaluation) against model size, for a DenseNet-121-sized concat
 * chain and a BERT-base-sized encoder. The baseline, measured in the same run, is the
 * peak RSS of opening the same file in ONNX Runtime and running one sample.
 * Target: at most 2 GiB peak RSS for each.
 */

let seed = 12345;
function weights(n: number, fanIn: number): Float32Array {
  const a = new Float32Array(n);
  const s = Math.sqrt(3 / fanIn);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    a[i] = (seed / 4294967296 - 0.5) * 2 * s;
  }
  return a;
}

class G {
  g = new Graph('bench');
  k = 0;
  init(dims: number[], data?: Float32Array | BigInt64Array, dtype = DataType.FLOAT): string {
    const name = `w${this.k++}`;
    const n = dims.reduce((a, b) => a * b, 1);
    this.g.initializers.set(name, Tensor.fromArray(name, dtype, dims, data ?? weights(n, dims.length > 1 ? n / dims[0] : n)));
    return name;
  }
  node(op: string, inputs: string[], attrs: Record<string, number | number[]> = {}): string {
    const out = `t${this.k++}`;
    const n = new Node(op, inputs, [out], `${op}_${this.k}`);
    for (const [key, v] of Object.entries(attrs)) {
      if (Array.isArray(v)) n.setInts(key, v);
      else n.setInt(key, v);
    }
    this.g.nodes.push(n);
    return out;
  }
  conv(x: string, cin: number, cout: number, k: number, stride = 1): string {
    const p = Math.floor(k / 2);
    return this.node('Conv', [x, this.init([cout, cin, k, k]), this.init([cout], new Float32Array(cout))], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p] });
  }
  model(input: string, shape: Array<number | string>, output: string): Model {
    this.g.inputs.push({ name: input, type: { kind: 'tensor', dtype: DataType.FLOAT, shape } });
    this.g.outputs.push({ name: output, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: null } });
    const m = new Model(this.g);
    m.opsetImports = [{ domain: '', version: 17 }];
    return m;
  }
}

/** DenseNet-121's topology without BatchNorm (folded, as exports often are): blocks 6-12-24-16, growth 32. */
export function densenet121Like(): Model {
  const b = new G();
  let x = b.node('Relu', [b.conv('x', 3, 64, 7, 2)]);
  x = b.node('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  let ch = 64;
  const blocks = [6, 12, 24, 16];
  for (const [bi, layers] of blocks.entries()) {
    for (let l = 0; l < layers; l++) {
      const h = b.node('Relu', [b.conv(b.node('Relu', [x]), ch, 128, 1)]);
      x = b.node('Concat', [x, b.conv(h, 128, 32, 3)], { axis: 1 });
      ch += 32;
    }
    if (bi < blocks.length - 1) {
      const t = b.conv(b.node('Relu', [x]), ch, ch / 2, 1);
      ch /= 2;
      // torchvision's transition exports a Pad with a constant `pads` input of zeros.
      const padded = b.node('Pad', [t, b.init([8], new BigInt64Array(8), DataType.INT64)]);
      x = b.node('AveragePool', [padded], { kernel_shape: [2, 2], strides: [2, 2] });
    }
  }
  const f = b.node('Flatten', [b.node('GlobalAveragePool', [b.node('Relu', [x])])]);
  const y = b.node('Gemm', [f, b.init([1000, ch]), b.init([1000], new Float32Array(1000))], { transB: 1 });
  return b.model('x', ['N', 3, 224, 224], y);
}

/** BERT-base's encoder: 12 layers, d 768, feed-forward 3072, over embeddings [N, 128, 768]. */
export function bertBaseLike(layers = 12, d = 768, ff = 3072): Model {
  const b = new G();
  let x = 'x';
  for (let l = 0; l < layers; l++) {
    const proj = (inp: string, k: number, n: number) => b.node('Add', [b.node('MatMul', [inp, b.init([k, n])]), b.init([n], new Float32Array(n))]);
    const q = proj(x, d, d);
    const k = proj(x, d, d);
    const v = proj(x, d, d);
    const scores = b.node('Mul', [b.node('MatMul', [q, b.node('Transpose', [k], { perm: [0, 2, 1] })]), b.init([], Float32Array.of(1 / Math.sqrt(64)))]);
    const att = b.node('MatMul', [b.node('Softmax', [scores], { axis: -1 }), v]);
    const ln = (inp: string) => b.node('LayerNormalization', [inp, b.init([d], new Float32Array(d).fill(1)), b.init([d], new Float32Array(d))], { axis: -1 });
    const h = ln(b.node('Add', [proj(att, d, d), x]));
    const f = proj(b.node('Relu', [proj(h, d, ff)]), ff, d);
    x = ln(b.node('Add', [f, h]));
  }
  return b.model('x', ['N', 128, d], x);
}

export function benchMemory(): void {
  const dir = benchDir();
  const rows: Array<[string, string]> = [];
  const gib = 2 ** 30;
  for (const [name, make] of [
    ['densenet121-like', densenet121Like],
    ['bert-base-like', bertBaseLike],
  ] as const) {
    const file = path.join(dir, `${name}.onnx`);
    if (!fs.existsSync(file)) saveModel(make(), file);
    const size = fs.statSync(file).size;
    const base = child<{ maxRssBytes: number }>('ort-once', [file]);
    const out = path.join(dir, `${name}.int8.onnx`);
    const q = child<{ ms: number; code: number; maxRssBytes: number; verificationMs?: { fidelity: number; layers: number } }>('cli', ['quantize', file, '--mode', 'static', '--calib', 'random:256', '--no-bench', '--json', '-o', out]);
    const v = q.verificationMs;
    rows.push([
      `${name} (${(size / 2 ** 20).toFixed(0)} MiB)`,
      `static int8, 256 samples: exit ${q.code}, ${(q.ms / 1000).toFixed(0)} s, peak RSS ${(q.maxRssBytes / gib).toFixed(2)} GiB ` +
        `(${(q.maxRssBytes / size).toFixed(1)}x the file; ${(q.maxRssBytes / base.maxRssBytes).toFixed(2)}x one ORT run at ${(base.maxRssBytes / gib).toFixed(2)} GiB; target <= 2 GiB: ${q.maxRssBytes <= 2 * gib ? 'met' : 'MISSED'})` +
        (v ? `; of which verification: fidelity on the 256 samples ${(v.fidelity / 1000).toFixed(0)} s, per-layer SQNR ${(v.layers / 1000).toFixed(0)} s` : ''),
    ]);
    fs.rmSync(out, { force: true });
  }
  report('memory: static int8 with 256 calibration samples, peak RSS against model size', rows);
}
