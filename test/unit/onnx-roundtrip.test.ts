import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { openModel, saveModel } from '../../src/core/formats/registry';
import { readOnnxBytes, onnxToBytes } from '../../src/core/formats/onnx';
import { readNpy, npyToFloat32 } from '../../src/core/runtime/data/npy';
import { DataType, float32ToFloat16, float32ToBfloat16 } from '../../src/core/ir/dtype';
import { Graph, Node, AttrType } from '../../src/core/ir/graph';
import { Tensor } from '../../src/core/ir/tensor';
import { ProtoWriter } from '../../src/core/formats/protobuf';
import { OutputError, UsageError } from '../../src/core/errors';
import { ModelBuilder, modelProto, randomFloats } from './helpers/builder';
import { FIXTURES, runOrt, tmpDir } from './helpers/ort';

function assertSameOutputs(a: Record<string, { data: ArrayLike<number | bigint> }>, b: Record<string, { data: ArrayLike<number | bigint> }>) {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    assert.equal(a[k].data.length, b[k].data.length);
    for (let i = 0; i < a[k].data.length; i++) assert.equal(a[k].data[i], b[k].data[i], `${k}[${i}]`);
  }
}

describe('ONNX reader and writer', () => {
  const x = npyToFloat32(readNpy(path.join(FIXTURES, 'digits_test_x.npy'))).subarray(0, 64 * 32);

  for (const name of ['digits_cnn.onnx', 'digits_mlp.onnx']) {
    it(`round-trips ${name} with ORT outputs identical to the original`, async () => {
      const src = path.join(FIXTURES, name);
      const dir = tmpDir();
      const out = path.join(dir, name);
      saveModel(openModel(src), out);
      const feeds = { input: { dims: [32, 1, 8, 8], data: x } };
      assertSameOutputs(await runOrt(src, feeds), await runOrt(out, feeds));
      // No temporary files are left beside the output.
      assert.deepEqual(fs.readdirSync(dir), [name]);
    });
  }

  it('keeps tensor data as a view onto the file bytes (no copy)', () => {
    const buf = fs.readFileSync(path.join(FIXTURES, 'digits_cnn.onnx'));
    const m = readOnnxBytes(buf, 'digits_cnn.onnx');
    for (const t of m.graph.initializers.values()) {
      assert.equal(t.sourceKind, 'bytes');
      assert.equal(t.bytes().buffer, buf.buffer, `${t.name} should view the file buffer`);
    }
  });

  it('preserves If subgraphs, doc strings, metadata and unknown fields', async () => {
    const b = new ModelBuilder(17);
    b.input('x', [2, 3]);
    b.input('cond', [], DataType.BOOL);
    const thenG = new Graph('then');
    thenG.nodes.push(new Node('Relu', ['x'], ['t_out'], 'then_relu'));
    thenG.outputs.push({ name: 't_out', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [2, 3] } });
    const elseG = new Graph('else');
    elseG.initializers.set('two', Tensor.fromArray('two', DataType.FLOAT, [], Float32Array.of(2)));
    elseG.nodes.push(new Node('Mul', ['x', 'two'], ['e_out'], 'else_mul'));
    elseG.outputs.push({ name: 'e_out', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [2, 3] } });
    const [y] = b.node('If', ['cond'], { then_branch: thenG, else_branch: elseG });
    b.markOutput(y, 'y');
    b.model.docString = 'a doc string';
    b.model.metadata.push(['author', 'tests']);
    // An unknown field (number 99, varint) must survive a round trip.
    b.model.extra.push(new ProtoWriter().varintField(99, 42).toBytes());
    const bytes = b.bytes();
    const m = readOnnxBytes(bytes, 'if.onnx');
    assert.equal(m.docString, 'a doc string');
    assert.deepEqual(m.metadata, [['author', 'tests']]);
    assert.equal(m.extra.length, 1);
    const ifNode = m.graph.nodes[0];
    const thenAttr = ifNode.attr('then_branch');
    assert.ok(thenAttr && thenAttr.type === AttrType.GRAPH);
    assert.equal(thenAttr.value.nodes[0].opType, 'Relu');
    const again = onnxToBytes(m);
    assert.deepEqual(Buffer.from(again), Buffer.from(bytes), 'a decode/encode cycle is byte-stable');
    const xv = Float32Array.of(-1, 2, -3, 4, -5, 6);
    const r1 = await runOrt(again, { x: { dims: [2, 3], data: xv }, cond: { dims: [], data: Uint8Array.of(1), type: 'bool' } });
    assert.deepEqual(Array.from(r1.y.data), [0, 2, 0, 4, 0, 6]);
    const r0 = await runOrt(again, { x: { dims: [2, 3], data: xv }, cond: { dims: [], data: Uint8Array.of(0), type: 'bool' } });
    assert.deepEqual(Array.from(r0.y.data), [-2, 4, -6, 8, -10, 12]);
  });

  it('decodes float16, bfloat16, int8, uint8, int4, uint4, bool from raw_data', () => {
    const b = new ModelBuilder();
    b.input('x', [1]);
    const f16 = Uint16Array.from([1.5, -2, 0.25].map(float32ToFloat16));
    const bf16 = Uint16Array.from([1.5, -2, 3].map(float32ToBfloat16));
    b.init('f16', [3], f16, DataType.FLOAT16);
    b.init('bf16', [3], bf16, DataType.BFLOAT16);
    b.init('i8', [3], Int8Array.of(-128, 0, 127), DataType.INT8);
    b.init('u8', [3], Uint8Array.of(0, 128, 255), DataType.UINT8);
    b.init('i4', [3], Uint8Array.of(0x87, 0x07), DataType.INT4); // nibbles low-first: 7, 8 (= -8), 7
    b.init('u4', [3], Uint8Array.of(0xf1, 0x02), DataType.UINT4);
    b.init('b', [3], Uint8Array.of(1, 0, 1), DataType.BOOL);
    b.markOutput(b.node('Identity', ['x'])[0], 'y');
    const m = readOnnxBytes(b.bytes(), 'dtypes.onnx');
    const vals = (n: string) => m.graph.initializers.get(n)!.toNumbers();
    assert.deepEqual(vals('f16'), [1.5, -2, 0.25]);
    assert.deepEqual(vals('bf16'), [1.5, -2, 3]);
    assert.deepEqual(vals('i8'), [-128, 0, 127]);
    assert.deepEqual(vals('u8'), [0, 128, 255]);
    assert.deepEqual(vals('i4'), [7, -8, 7]);
    assert.deepEqual(vals('u4'), [1, 15, 2]);
    assert.deepEqual(vals('b'), [1, 0, 1]);
  });

  it('decodes the typed data fields (float_data, int32_data, int64_data, double_data)', () => {
    const t = (fields: (w: ProtoWriter) => void) => {
      const w = new ProtoWriter();
      fields(w);
      const g = new ProtoWriter().messageField(5, w);
      const model = modelProto(g);
      return [...readOnnxBytes(model, 't.onnx').graph.initializers.values()][0];
    };
    const fl = t((w) => w.packedInt64(1, [2]).varintField(2, DataType.FLOAT).packedFloat(4, [1.25, -3]).stringField(8, 'f'));
    assert.deepEqual(fl.toNumbers(), [1.25, -3]);
    const h = t((w) => w.packedInt64(1, [2]).varintField(2, DataType.FLOAT16).packedInt64(5, [float32ToFloat16(0.5), float32ToFloat16(-4)]).stringField(8, 'h'));
    assert.deepEqual(h.toNumbers(), [0.5, -4]);
    const i4 = t((w) => w.packedInt64(1, [3]).varintField(2, DataType.INT4).packedInt64(5, [0x9f, 0x01]).stringField(8, 'q'));
    assert.deepEqual(i4.toNumbers(), [-1, -7, 1]);
    const i64 = t((w) => w.packedInt64(1, [2]).varintField(2, DataType.INT64).packedInt64(7, [-5, 2 ** 40]).stringField(8, 'l'));
    assert.deepEqual(i64.toNumbers(), [-5, 2 ** 40]);
    const dbl = t((w) => {
      const p = new ProtoWriter().double(0.1).double(-7);
      w.packedInt64(1, [2]).varintField(2, DataType.DOUBLE).messageField(10, p).stringField(8, 'd');
    });
    assert.deepEqual(dbl.toNumbers(), [0.1, -7]);
  });

  it('decodes sparse initializers', () => {
    const values = new ProtoWriter().packedInt64(1, [2]).varintField(2, DataType.FLOAT).packedFloat(4, [5, 6]).stringField(8, 'sp');
    const indices = new ProtoWriter().packedInt64(1, [2]).varintField(2, DataType.INT64).packedInt64(7, [1, 3]);
    const sp = new ProtoWriter().messageField(1, values).messageField(2, indices).packedInt64(3, [4]);
    const g = new ProtoWriter().messageField(15, sp);
    const m = readOnnxBytes(modelProto(g), 's.onnx');
    assert.equal(m.graph.sparseInitializers.length, 1);
    assert.deepEqual(m.graph.sparseInitializers[0].dims, [4]);
    assert.deepEqual(m.graph.sparseInitializers[0].values.toNumbers(), [5, 6]);
    assert.deepEqual(m.graph.sparseInitializers[0].indices.toNumbers(), [1, 3]);
  });

  it('writes external data on request, which ORT loads, and reads it back lazily', async () => {
    const dir = tmpDir();
    const src = openModel(path.join(FIXTURES, 'digits_cnn.onnx'));
    const out = path.join(dir, 'ext.onnx');
    const r = saveModel(src, out, { externalData: 'always' });
    assert.ok(r.externalBytes > 1_400_000, `external bytes ${r.externalBytes}`);
    assert.ok(fs.statSync(out).size < 10_000, 'weights left the model file');
    assert.ok(fs.existsSync(path.join(dir, 'ext.onnx.data')));
    const feeds = { input: { dims: [32, 1, 8, 8], data: x } };
    assertSameOutputs(await runOrt(path.join(FIXTURES, 'digits_cnn.onnx'), feeds), await runOrt(out, feeds));
    const back = openModel(out);
    const w = back.graph.initializers.get('c1.weight') ?? [...back.graph.initializers.values()][0];
    assert.equal(w.sourceKind, 'external');
    const orig = src.graph.initializers.get(w.name)!;
    assert.deepEqual(Array.from(w.toFloat32()), Array.from(orig.toFloat32()));
    // Saving an external-data model again (to a new place) copies the data across.
    const dir2 = tmpDir();
    saveModel(back, path.join(dir2, 'again.onnx'), { externalData: 'always', externalLocation: 'w.bin' });
    assertSameOutputs(await runOrt(out, feeds), await runOrt(path.join(dir2, 'again.onnx'), feeds));
  });

  it('goes external automatically past the size limit (models over 2 GB)', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'auto.onnx');
    // The real threshold is 1.8 GiB; a lowered one exercises the same path quickly.
    const r = saveModel(openModel(path.join(FIXTURES, 'digits_mlp.onnx')), out, { autoExternalAt: 100_000 });
    assert.ok(r.externalBytes > 200_000);
    assert.equal(openModel(out).graph.initializers.size, 6);
    const small = path.join(dir, 'small.onnx');
    assert.equal(saveModel(openModel(path.join(FIXTURES, 'digits_mlp.onnx')), small).externalBytes, 0);
  });

  it('never overwrites its input (model or external data)', () => {
    const dir = tmpDir();
    const p = path.join(dir, 'm.onnx');
    fs.copyFileSync(path.join(FIXTURES, 'digits_mlp.onnx'), p);
    const before = fs.readFileSync(p);
    const m = openModel(p);
    assert.throws(() => saveModel(m, p), UsageError);
    assert.throws(() => saveModel(m, path.join(dir, '.', 'm.onnx')), UsageError);
    assert.deepEqual(fs.readFileSync(p), before);
    saveModel(m, path.join(dir, 'e.onnx'), { externalData: 'always' });
    const e = openModel(path.join(dir, 'e.onnx'));
    assert.throws(() => saveModel(e, path.join(dir, 'other.onnx'), { externalData: 'always', externalLocation: 'e.onnx.data' }), UsageError);
  });

  it('creates a missing output folder; a file in the way is a clear usage error', () => {
    const dir = tmpDir();
    const m = openModel(path.join(FIXTURES, 'digits_mlp.onnx'));
    saveModel(m, path.join(dir, 'a', 'b', 'm.onnx'));
    assert.equal(openModel(path.join(dir, 'a', 'b', 'm.onnx')).graph.initializers.size, 6);
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    assert.throws(() => saveModel(m, path.join(dir, 'file', 'm.onnx')), (e: Error) => e instanceof OutputError && /cannot write .*file.m\.onnx: a file is in the way of its folder/.test(e.message));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['a', 'file']);
  });

  it('counts weights held in Constant nodes and round-trips them through ORT', async () => {
    const b = new ModelBuilder(13);
    b.input('x', [1, 4]);
    const w = Tensor.fromArray('cw', DataType.FLOAT, [4, 3], randomFloats(12, 9));
    const [c] = b.node('Constant', [], { value: w });
    b.markOutput(b.node('MatMul', ['x', c])[0], 'y');
    const m = readOnnxBytes(b.bytes(), 'const.onnx');
    const { analyzeModel } = await import('../../src/core/analysis/analyze');
    const a = analyzeModel(m);
    assert.equal(a.totals.params, 12);
    assert.equal(a.layers.find((l) => l.op === 'MatMul')!.params, 12);
    const xv = Float32Array.of(1, 2, 3, 4);
    const out = await runOrt(onnxToBytes(m), { x: { dims: [1, 4], data: xv } });
    const wv = w.toFloat32();
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let i = 0; i < 4; i++) s += xv[i] * wv[i * 3 + j];
      assert.ok(Math.abs(Number(out.y.data[j]) - s) < 1e-5);
    }
  });
});
