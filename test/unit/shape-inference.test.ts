import { strict as assert } from 'assert';
import { inferShapes } from '../../src/core/ir/shape-inference';
import { onnxToBytes } from '../../src/core/formats/onnx';
import { DataType } from '../../src/core/ir/dtype';
import type { Model } from '../../src/core/ir/graph';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { runOrt } from './helpers/ort';

/**
 * Exposes every intermediate value as a graph output, runs ORT, and checks that each
 * inferred shape equals the shape ORT actually produced.
 */
async function checkAgainstOrt(model: Model, feeds: Record<string, { dims: number[]; data: Float32Array }>) {
  const info = inferShapes(model);
  const names = model.graph.nodes.flatMap((n) => n.outputs).filter((o) => o && !model.graph.outputs.some((x) => x.name === o));
  for (const n of names) model.graph.outputs.push({ name: n });
  const out = await runOrt(onnxToBytes(model), feeds);
  let checked = 0;
  for (const [name, v] of Object.entries(out)) {
    const t = info.types.get(name);
    assert.ok(t?.shape, `no shape inferred for ${name}`);
    assert.deepEqual(t.shape, [...v.dims], `shape of ${name} (${model.graph.nodes.find((n) => n.outputs.includes(name))?.opType})`);
    checked++;
  }
  assert.ok(checked >= names.length);
  return checked;
}

describe('shape inference', () => {
  it('matches ORT on a CNN with strided, dilated, depthwise and transposed convs, pooling, resize and reshape', async () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', [2, 4, 15, 15]);
    const c1 = b.conv(x, 4, 8, 3, { stride: 2, pad: 1 });
    const c2 = b.conv(c1, 8, 8, 3, { group: 8, pad: 2, dilation: 2 });
    const [p1] = b.node('MaxPool', [c2], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 });
    const [p2] = b.node('AveragePool', [c2], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1] });
    const [cat] = b.node('Concat', [p1, p2], { axis: 1 });
    const wT = b.init('wt', [16, 4, 3, 3]);
    const [ct] = b.node('ConvTranspose', [cat, wT], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] });
    const scales = b.init('scales', [4], Float32Array.of(1, 1, 2, 2));
    const [rs] = b.node('Resize', [ct, '', scales], { mode: 'nearest' });
    const [gap] = b.node('GlobalAveragePool', [rs]);
    // Reshape to [batch, -1] through a Shape→Gather→Unsqueeze→Concat subgraph, as exporters write it.
    const [shp] = b.node('Shape', [gap]);
    const [n0] = b.node('Gather', [shp, b.ints('zero', [0])], { axis: 0 });
    const [minus1] = b.node('Identity', [b.ints('m1', [-1])]);
    const [newShape] = b.node('Concat', [n0, minus1], { axis: 0 });
    const [flat] = b.node('Reshape', [gap, newShape]);
    const [tr] = b.node('Transpose', [rs], { perm: [0, 2, 3, 1] });
    const [sl] = b.node('Slice', [tr, b.ints('st', [1, 0]), b.ints('en', [100, -1]), b.ints('ax', [1, 3]), b.ints('sp', [2, 1])]);
    const [fl] = b.node('Flatten', [sl], { axis: 2 });
    const [red] = b.node('ReduceMean', [fl], { axes: [1], keepdims: 0 });
    const [us] = b.node('Unsqueeze', [flat, b.ints('uax', [1])]);
    const [sq] = b.node('Squeeze', [us, b.ints('sax', [1])]);
    const g = b.gemm(sq, 4, 5);
    const [sm] = b.node('Softmax', [g], { axis: 1 });
    const [pad] = b.node('Pad', [c1, b.ints('pads', [0, 0, 1, 2, 0, 0, 3, 4])]);
    const [s1, s2] = b.node('Split', [pad, b.ints('split', [3, 5])], { axis: 1 }, 2);
    b.markOutput(sm, 'y');
    b.markOutput(red, 'r');
    void s1;
    void s2;
    const feeds = { x: { dims: [2, 4, 15, 15], data: randomFloats(2 * 4 * 15 * 15) } };
    const n = await checkAgainstOrt(b.build(), feeds);
    assert.ok(n >= 20);
  });

  it('matches ORT on batched MatMul broadcasting, LayerNormalization, LSTM and GRU', async () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', [3, 5, 8]); // seq, batch, features
    const w3 = b.init('w3', [2, 1, 8, 6]);
    const [mm] = b.node('MatMul', [x, w3]); // [2,3,5,6]
    const [ln] = b.node('LayerNormalization', [mm, b.init('g', [6]), b.init('bb', [6])], { axis: -1 });
    const [lstmY, lstmH, lstmC] = b.node('LSTM', [x, b.init('W', [2, 4 * 7, 8]), b.init('R', [2, 4 * 7, 7])], { hidden_size: 7, direction: 'bidirectional' }, 3);
    const [gruY, gruH] = b.node('GRU', [x, b.init('GW', [1, 3 * 4, 8]), b.init('GR', [1, 3 * 4, 4])], { hidden_size: 4 }, 2);
    const [att] = b.node('MatMul', [x, b.node('Transpose', [x], { perm: [0, 2, 1] })[0]]); // [3,5,5]
    b.markOutput(ln, 'ln');
    void [lstmY, lstmH, lstmC, gruY, gruH, att];
    await checkAgainstOrt(b.build(), { x: { dims: [3, 5, 8], data: randomFloats(120) } });
  });

  it('keeps symbolic dims symbolic and reports unknowns as unknown', () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', ['N', 3, 32, 32]);
    const c = b.conv(x, 3, 8, 3, { stride: 2, pad: 1 });
    const [f] = b.node('Flatten', [c]);
    const y = b.gemm(f, 8 * 16 * 16, 10);
    const [shape] = b.node('Shape', [x]);
    const [dyn] = b.node('Reshape', [x, b.node('Abs', [shape])[0]]); // shape known only at run time
    const [custom] = b.node('MyCustomOp', [y]);
    b.markOutput(y, 'y');
    const info = inferShapes(b.build());
    assert.deepEqual(info.types.get(c)?.shape, ['N', 8, 16, 16]);
    assert.deepEqual(info.types.get(f)?.shape, ['N', 2048]);
    assert.deepEqual(info.types.get('y')?.shape, ['N', 10]);
    assert.deepEqual(info.types.get(dyn)?.shape, [null, null, null, null]);
    assert.equal(info.types.get(custom), undefined);
    assert.ok(info.unsupportedOps.has('MyCustomOp'));
  });

  it('fixes dynamic input dims when overrides are given', () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['batch', 'seq', 16]);
    const [mm] = b.node('MatMul', [x, b.init('w', [16, 4])]);
    b.markOutput(mm, 'y');
    assert.deepEqual(inferShapes(b.build()).types.get('y')?.shape, ['batch', 'seq', 4]);
    assert.deepEqual(inferShapes(b.build(), { inputShapes: { x: [2, 7, 16] } }).types.get('y')?.shape, [2, 7, 4]);
  });

  it('infers output dtypes for casts and comparisons', () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', [4]);
    const [c] = b.node('Cast', [x], { to: DataType.INT64 });
    const [e] = b.node('Equal', [x, x]);
    b.markOutput(c, 'c', DataType.INT64);
    const info = inferShapes(b.build());
    assert.equal(info.types.get('c')?.dtype, DataType.INT64);
    assert.equal(info.types.get(e)?.dtype, DataType.BOOL);
  });
});
