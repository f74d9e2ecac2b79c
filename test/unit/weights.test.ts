import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel, layerWeightStats, type LayerInfo } from '../../src/core/analysis/analyze';
import { HISTOGRAM_BINS } from '../../src/core/analysis/stats';
import { openModel } from '../../src/core/formats/registry';
import { DataType } from '../../src/core/ir/dtype';
import { AttrType, Graph, Node } from '../../src/core/ir/graph';
import { Tensor } from '../../src/core/ir/tensor';
import { runJob } from '../../src/worker/jobs';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { tmpDir } from './helpers/ort';
import { buildTflite, type T } from './tflite.test';

/** Weights that do not sit in the main graph's initializers: Constant nodes, If branches, dequantizers, narrow storage. */

const ctx = { signal: new AbortController().signal, progress: () => {} };
const layer = (ls: LayerInfo[], name: string) => ls.find((l) => l.name === name) ?? assert.fail(`no layer ${name}`);
const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

/** x[1,4] → MatMul(x, Constant W[4,3]) → If(cond): then MatMul(·, Constant Wt[3,2]), else MatMul(·, outer initializer We[3,2]). */
const wOutName = (b: ModelBuilder) => b.graph.nodes.find((n) => n.label === 'weight_const')!.outputs[0];

function constantsAndBranches() {
  const b = new ModelBuilder(17);
  const x = b.input('x', [1, 4]);
  const cond = b.input('cond', [], DataType.BOOL);
  const w = Tensor.fromArray('', DataType.FLOAT, [4, 3], randomFloats(12, 3));
  const [wOut] = b.node('Constant', [], { value: w }, 1, 'weight_const');
  const [h] = b.node('MatMul', [x, wOut], {}, 1, 'top_matmul');
  b.init('We', [3, 2], randomFloats(6, 5));
  const branch = (name: string, weight: 'Wt' | 'We') => {
    const g = new Graph(name);
    const inner: string[] = [];
    if (weight === 'Wt') {
      const c = new Node('Constant', [], ['wt_out'], 'then_const');
      c.attributes.set('value', { name: 'value', type: AttrType.TENSOR, value: Tensor.fromArray('Wt', DataType.FLOAT, [3, 2], randomFloats(6, 4)) });
      g.nodes.push(c);
      inner.push('wt_out');
    } else inner.push('We');
    g.nodes.push(new Node('MatMul', [h, inner[0]], [`${name}_y`], `${name}_matmul`));
    g.outputs.push({ name: `${name}_y`, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [1, 2] } });
    return g;
  };
  b.node('If', [cond], { then_branch: branch('then_branch', 'Wt'), else_branch: branch('else_branch', 'We') }, 1, 'gate');
  b.markOutput(b.graph.nodes[b.graph.nodes.length - 1].outputs[0], 'y');
  return { b, w };
}

describe('weights outside initializers', () => {
  it('a Constant weight and weights inside If branches get stats and a histogram; layers without weights say why', async () => {
    const { b, w } = constantsAndBranches();
    const a = analyzeModel(b.build());
    const top = layer(a.layers, 'top_matmul');
    assert.equal(top.params, 12);
    const [s] = layerWeightStats(top);
    assert.ok('histogram' in s, 'stats for a Constant-node weight');
    const v = Array.from(w.toFloat32());
    assert.equal(s.min, Math.min(...v));
    assert.equal(s.max, Math.max(...v));
    assert.equal(sum(s.histogram.counts), 12);
    assert.equal(s.histogram.counts.length, HISTOGRAM_BINS);
    assert.equal(s.name, wOutName(b), 'a nameless Constant value is named by its output');

    for (const [name, params] of [['then_branch_matmul', 6], ['else_branch_matmul', 6]] as const) {
      const l = layer(a.layers, name);
      assert.equal(l.params, params, name);
      const [st] = layerWeightStats(l);
      assert.ok('histogram' in st && sum(st.histogram.counts) === 6, `${name} has a histogram of its 6 weights`);
    }
    assert.match(layer(a.layers, 'gate').noWeights ?? '', /branches: the layers under gate\//);
    assert.match(layer(a.layers, 'weight_const').noWeights ?? '', /constant that top_matmul uses/);
    assert.equal(top.noWeights, undefined);

    // The editor's worker gives the same stats for a saved model (found by layer, not by initializer name).
    const file = path.join(tmpDir(), 'branches.onnx');
    fs.writeFileSync(file, b.bytes());
    const d = (await runJob({ kind: 'tensor', model: file, layer: 'then_branch_matmul' } as never, ctx)) as unknown as { weights: Array<{ histogram?: { counts: number[] } }> };
    assert.equal(sum(d.weights[0].histogram?.counts ?? []), 6);
    const g = (await runJob({ kind: 'tensor', model: file, layer: 'gate' } as never, ctx)) as unknown as { weights: unknown[]; noWeights?: string };
    assert.equal(g.weights.length, 0);
    assert.match(g.noWeights ?? '', /branches/);
  });

  it('a weight shared by two layers is listed once, and the second layer says where', () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', [1, 4]);
    const w = b.init('W', [4, 4]);
    const [h] = b.node('MatMul', [x, w], {}, 1, 'first');
    const [y] = b.node('MatMul', [h, w], {}, 1, 'second');
    const [z] = b.node('Relu', [y], {}, 1, 'act');
    b.markOutput(z, 'y');
    const a = analyzeModel(b.build());
    assert.equal(layer(a.layers, 'first').params, 16);
    assert.match(layer(a.layers, 'second').noWeights ?? '', /shared with first/);
    assert.match(layer(a.layers, 'act').noWeights ?? '', /activations/);
  });

  it('TFLite: a float16 or int8 weight behind DEQUANTIZE belongs to the op that consumes it', () => {
    const f16 = new Uint16Array(3 * 3 * 3 * 2).map((_, i) => 0x3c00 + i); // float16 values from 1.0 upwards
    const q8 = Int8Array.from({ length: 4 * 12 }, (_, i) => (i % 7) - 3);
    const bytes = (a: Uint16Array | Int8Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const tensors: T[] = [
      { name: 'input', shape: [1, 4, 4, 2], type: 0 },
      { name: 'conv/filter_f16', shape: [3, 3, 3, 2], type: 1, data: bytes(f16) },
      { name: 'conv/filter', shape: [3, 3, 3, 2], type: 0 },
      { name: 'conv/bias', shape: [3], type: 0, data: bytes(Float32Array.from([0.1, 0.2, 0.3])) },
      { name: 'conv/out', shape: [1, 4, 4, 3], type: 0 },
      { name: 'flat', shape: [1, 48], type: 0 },
      { name: 'fc/w_int8', shape: [4, 12], type: 9, data: bytes(q8), quant: { scale: [0.05], zeroPoint: [0] } },
      { name: 'fc/w', shape: [4, 12], type: 0 },
      { name: 'logits', shape: [1, 4], type: 0 },
    ];
    const ops = [
      { code: 6, inputs: [1], outputs: [2] }, // DEQUANTIZE float16 → float32
      { code: 3, inputs: [0, 2, 3], outputs: [4] }, // CONV_2D
      { code: 22, inputs: [4], outputs: [5] }, // RESHAPE
      { code: 6, inputs: [6], outputs: [7] }, // DEQUANTIZE int8 → float32
      { code: 9, inputs: [5, 7, -1], outputs: [8] }, // FULLY_CONNECTED
    ];
    const file = path.join(tmpDir(), 'dequant.tflite');
    fs.writeFileSync(file, buildTflite(tensors, ops, [0], [8]));
    const a = analyzeModel(openModel(file), { weightStats: true });
    const conv = layer(a.layers, 'conv_2d_1');
    assert.equal(conv.params, 54 + 3, 'the dequantized filter and the bias');
    assert.deepEqual(conv.weights.map((w) => w.dtype), ['float16', 'float32']);
    assert.match(conv.weights[0].note ?? '', /float16 dequantized by dequantize_0/);
    assert.equal(conv.bytesByDtype.float16, 108);
    assert.equal(conv.noWeights, undefined);
    const [fs16] = layerWeightStats(conv);
    assert.ok('histogram' in fs16 && fs16.min === 1 && sum(fs16.histogram.counts) === 54);
    const fc = layer(a.layers, 'fully_connected_4');
    assert.equal(fc.params, 48);
    assert.match(fc.weights[0].note ?? '', /quantized: scale 0.05.*int8 dequantized by dequantize_3/);
    for (const d of ['dequantize_0', 'dequantize_3']) {
      const l = layer(a.layers, d);
      assert.equal(l.params, 0, d);
      assert.equal(l.macs, 0, d);
      assert.match(l.noWeights ?? '', /constant that (conv_2d_1|fully_connected_4) uses/);
    }
    assert.equal(a.totals.params, 54 + 3 + 48);
  });

  it('TF.js: uint8/uint16/float16 storage shows the stored dtype and bytes and the dequantized size', () => {
    const dir = tmpDir();
    const bin = Buffer.alloc(4 + 4 + 4);
    bin.set([0, 128, 255, 64], 0);
    bin.writeUInt16LE(0, 4);
    bin.writeUInt16LE(65535, 6);
    bin.writeUInt16LE(0x3c00, 8);
    bin.writeUInt16LE(0xc000, 10);
    fs.writeFileSync(path.join(dir, 'w.bin'), bin);
    const topo = { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 2] } }] } };
    const weights = [
      { name: 'd/kernel', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8', min: -1, scale: 0.01 } },
      { name: 'd/bias', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
      { name: 'extra', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', min: 0, scale: 0.5 } },
    ];
    // Shard order follows the manifest: uint8 kernel, float16 bias, uint16 extra.
    const bin2 = Buffer.concat([bin.subarray(0, 4), bin.subarray(8, 12), bin.subarray(4, 8)]);
    fs.writeFileSync(path.join(dir, 'w.bin'), bin2);
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: topo, weightsManifest: [{ paths: ['w.bin'], weights }] }));
    const a = analyzeModel(openModel(path.join(dir, 'model.json')));
    assert.equal(a.totals.bytes, 12, 'the summary counts what the shard holds');
    assert.equal(a.totals.dequantizedBytes, 16 + 8 + 8);
    assert.deepEqual(a.bytesByDtype, { uint8: 4, float16: 4, uint16: 4 });
    const dense = a.layers.find((l) => l.params === 6) ?? assert.fail('no dense layer');
    const kernel = dense.weights.find((w) => w.name === 'd/kernel')!;
    assert.deepEqual(kernel.stored, { dtype: 'uint8', bytes: 4 });
    assert.equal(kernel.bytes, 16);
    assert.equal(kernel.dtype, 'float32');
    assert.match(kernel.note ?? '', /stored as uint8, dequantized to float32/);
    assert.deepEqual(dense.weights.find((w) => w.name === 'd/bias')!.stored, { dtype: 'float16', bytes: 4 });
    assert.equal(dense.bytes, 8, 'a layer\'s bytes are stored bytes too');
    const [ks] = layerWeightStats(dense).filter((w) => w.name === 'd/kernel');
    assert.ok('histogram' in ks && ks.stored?.bytes === 4 && Math.abs(ks.min + 1) < 1e-6, 'stats of the dequantized values keep the stored size');
  });

  it('a float32 model has no dequantized size', () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', [1, 4]);
    b.markOutput(b.gemm(x, 4, 2), 'y');
    const a = analyzeModel(b.build());
    assert.equal(a.totals.dequantizedBytes, undefined);
    assert.equal(a.totals.bytes, (8 + 2) * 4);
  });
});
