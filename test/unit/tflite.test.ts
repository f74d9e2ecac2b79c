import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as flatbuffers from 'flatbuffers';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { ModelError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { tmpDir } from './helpers/ort';
import { cli } from './cli.test';

/**
 * Builds .tflite files with the flatbuffers package, field by field as schema.fbs numbers
 * them: Model{version 0, operator_codes 1, subgraphs 2, description 3, buffers 4},
 * SubGraph{tensors 0, inputs 1, outputs 2, operators 3, name 4},
 * Tensor{shape 0, type 1, buffer 2, name 3, quantization 4, sparsity 6, shape_signature 7},
 * QuantizationParameters{scale 2, zero_point 3, quantized_dimension 6},
 * OperatorCode{deprecated_builtin_code 0, custom_code 1, version 2, builtin_code 3},
 * Operator{opcode_index 0, inputs 1, outputs 2}, Buffer{data 0}.
 */
export interface T {
  name: string;
  shape: number[];
  type: number; // TensorType: FLOAT32 0, INT32 2, INT8 9
  data?: Uint8Array;
  quant?: { scale: number[]; zeroPoint: number[]; axis?: number };
  sparse?: boolean;
  signature?: number[];
}

export function buildTflite(tensors: T[], ops: Array<{ code: number | string; inputs: number[]; outputs: number[] }>, inputs: number[], outputs: number[]): Uint8Array {
  const b = new flatbuffers.Builder(1024);
  const ints = (a: number[]) => {
    b.startVector(4, a.length, 4);
    for (let i = a.length - 1; i >= 0; i--) b.addInt32(a[i]);
    return b.endVector();
  };
  const floats = (a: number[]) => {
    b.startVector(4, a.length, 4);
    for (let i = a.length - 1; i >= 0; i--) b.addFloat32(a[i]);
    return b.endVector();
  };
  const longs = (a: number[]) => {
    b.startVector(8, a.length, 8);
    for (let i = a.length - 1; i >= 0; i--) b.addInt64(BigInt(a[i]));
    return b.endVector();
  };
  const offsets = (a: number[]) => {
    b.startVector(4, a.length, 4);
    for (let i = a.length - 1; i >= 0; i--) b.addOffset(a[i]);
    return b.endVector();
  };
  // Buffers: 0 is the empty sentinel; each constant tensor gets its own.
  const bufferIndex: number[] = [];
  const buffers: number[] = [];
  const addBuffer = (data?: Uint8Array) => {
    const vec = data ? (b.startVector(1, data.length, 16), Array.from(data).reverse().forEach((x) => b.addInt8(x)), b.endVector()) : 0;
    b.startObject(3);
    if (vec) b.addFieldOffset(0, vec, 0);
    buffers.push(b.endObject());
    return buffers.length - 1;
  };
  addBuffer();
  for (const t of tensors) bufferIndex.push(t.data ? addBuffer(t.data) : 0);
  const tensorOffs = tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = ints(t.shape);
    const sig = t.signature ? ints(t.signature) : 0;
    let q = 0;
    if (t.quant) {
      const sc = floats(t.quant.scale);
      const zp = longs(t.quant.zeroPoint);
      b.startObject(7);
      b.addFieldOffset(2, sc, 0);
      b.addFieldOffset(3, zp, 0);
      b.addFieldInt32(6, t.quant.axis ?? 0, 0);
      q = b.endObject();
    }
    let sp = 0;
    if (t.sparse) {
      const order = ints(t.shape.map((_, k) => k));
      b.startObject(3);
      b.addFieldOffset(0, order, 0);
      sp = b.endObject();
    }
    b.startObject(10);
    b.addFieldOffset(0, shape, 0);
    b.addFieldInt8(1, t.type, 0);
    b.addFieldInt32(2, bufferIndex[i], 0);
    b.addFieldOffset(3, name, 0);
    if (q) b.addFieldOffset(4, q, 0);
    if (sp) b.addFieldOffset(6, sp, 0);
    if (sig) b.addFieldOffset(7, sig, 0);
    return b.endObject();
  });
  const codes = [...new Set(ops.map((o) => o.code))];
  const codeOffs = codes.map((c) => {
    const custom = typeof c === 'string' ? b.createString(c) : 0;
    b.startObject(4);
    b.addFieldInt8(0, typeof c === 'number' ? Math.min(c, 127) : 32, 0);
    if (custom) b.addFieldOffset(1, custom, 0);
    b.addFieldInt32(2, 1, 1);
    b.addFieldInt32(3, typeof c === 'number' ? c : 32, 0);
    return b.endObject();
  });
  const opOffs = ops.map((o) => {
    const ins = ints(o.inputs);
    const outs = ints(o.outputs);
    b.startObject(13);
    b.addFieldInt32(0, codes.indexOf(o.code), 0);
    b.addFieldOffset(1, ins, 0);
    b.addFieldOffset(2, outs, 0);
    return b.endObject();
  });
  const tv = offsets(tensorOffs);
  const iv = ints(inputs);
  const ov = ints(outputs);
  const opv = offsets(opOffs);
  const sgName = b.createString('main');
  b.startObject(5);
  b.addFieldOffset(0, tv, 0);
  b.addFieldOffset(1, iv, 0);
  b.addFieldOffset(2, ov, 0);
  b.addFieldOffset(3, opv, 0);
  b.addFieldOffset(4, sgName, 0);
  const sg = b.endObject();
  const sgv = offsets([sg]);
  const cv = offsets(codeOffs);
  const bv = offsets(buffers);
  const desc = b.createString('built by the tests');
  b.startObject(8);
  b.addFieldInt32(0, 3, 0);
  b.addFieldOffset(1, cv, 0);
  b.addFieldOffset(2, sgv, 0);
  b.addFieldOffset(3, desc, 0);
  b.addFieldOffset(4, bv, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array();
}

const bytesOf = (a: Int8Array | Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** input → CONV_2D (int8 per-channel filter) → RESHAPE → FULLY_CONNECTED (float) → custom op, plus a sparse weight. */
export function sampleModel() {
  const filter = Int8Array.from({ length: 3 * 3 * 3 * 2 }, (_, i) => (i % 11) - 5);
  const bias = Int32Array.from([10, -20, 30]);
  const fc = Float32Array.from({ length: 5 * 12 }, (_, i) => Math.cos(i));
  const sparse = Float32Array.from([1.5, -2, 0.25]);
  const tensors: T[] = [
    { name: 'input', shape: [1, 4, 4, 2], type: 0, signature: [-1, 4, 4, 2] },
    { name: 'conv/filter', shape: [3, 3, 3, 2], type: 9, data: bytesOf(filter), quant: { scale: [0.01, 0.02, 0.04], zeroPoint: [0, 0, 0], axis: 0 } },
    { name: 'conv/bias', shape: [3], type: 2, data: bytesOf(bias), quant: { scale: [0.001], zeroPoint: [0] } },
    { name: 'conv/out', shape: [1, 2, 2, 3], type: 0 },
    { name: 'flat', shape: [1, 12], type: 0 },
    { name: 'fc/weights', shape: [5, 12], type: 0, data: bytesOf(fc) },
    { name: 'logits', shape: [1, 5], type: 0 },
    { name: 'custom/out', shape: [1, 5], type: 0 },
    { name: 'sparse/w', shape: [4, 4], type: 0, data: bytesOf(sparse), sparse: true },
  ];
  const ops = [
    { code: 3, inputs: [0, 1, 2], outputs: [3] },
    { code: 22, inputs: [3], outputs: [4] },
    { code: 9, inputs: [4, 5, -1], outputs: [6] },
    { code: 'MyCustomOp', inputs: [6, 8], outputs: [7] },
  ];
  return { bytes: buildTflite(tensors, ops, [0], [7]), filter, fc };
}

describe('TFLite models (read-only)', () => {
  it('reads operators, tensors, dtypes, per-channel quantization, sparsity and custom ops from a file built from the schema', () => {
    const { bytes, filter, fc } = sampleModel();
    const file = path.join(tmpDir(), 'model.tflite');
    fs.writeFileSync(file, bytes);
    const m = openModel(file);
    assert.equal(m.format, 'tflite');
    assert.equal(m.docString, 'built by the tests');
    assert.deepEqual(m.graph.nodes.map((n) => [n.opType, n.domain]), [['CONV_2D', 'tflite'], ['RESHAPE', 'tflite'], ['FULLY_CONNECTED', 'tflite'], ['MyCustomOp', 'tflite.custom']]);
    assert.deepEqual(m.graph.nodes[2].inputs, ['flat', 'fc/weights', ''], 'optional input -1 stays empty');
    assert.deepEqual(m.graph.inputs.map((i) => [i.name, i.type?.kind === 'tensor' ? i.type.shape : null]), [['input', ['batch', 4, 4, 2]]]);
    assert.deepEqual(m.graph.outputs.map((o) => o.name), ['custom/out']);
    const f = m.graph.initializers.get('conv/filter')!;
    assert.equal(f.dtype, 3 /* INT8 */);
    assert.deepEqual(Array.from(f.toFloat32()), Array.from(filter));
    assert.deepEqual(Array.from(m.graph.initializers.get('fc/weights')!.toFloat32()), Array.from(fc));
    const a = analyzeModel(m);
    assert.equal(a.totals.params, 54 + 3 + 60 + 3, 'filter + bias + fc + the 3 stored sparse values');
    assert.equal(a.totals.bytes, 54 + 12 + 240 + 12);
    // MACs from the shapes in the file: conv 2·2·3 outputs × 3·3·2; fc 5 × 12.
    assert.equal(a.layers[0].macs, 12 * 18);
    assert.equal(a.layers[2].macs, 60);
    assert.equal(a.layers[3].macs, null, 'a custom op is unknown, not zero');
    const conv = a.layers[0].weights.find((w) => w.name === 'conv/filter')!;
    assert.match(conv.note!, /per channel \(axis 0, 3 scales 0\.01…0\.04, zero point 0\)/);
    assert.match(a.layers[3].weights[0].note!, /sparse \(dense shape \[4, 4\], 3 stored values/);
    const r = cli(['inspect', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).format, 'tflite');
  });

  it('rejects truncated and corrupted files with one clear line (exit 3), never a crash', () => {
    const { bytes } = sampleModel();
    const dir = tmpDir();
    let clear = 0;
    for (const cut of [9, 16, 40, 100, 200, Math.floor(bytes.length / 2), bytes.length - 30]) {
      const file = path.join(dir, `cut${cut}.tflite`);
      fs.writeFileSync(file, bytes.subarray(0, cut));
      try {
        openModel(file);
      } catch (e) {
        assert.ok(e instanceof ModelError, `cut at ${cut}: ${(e as Error).stack}`);
        assert.ok(e.message.startsWith(file));
        clear++;
      }
    }
    assert.ok(clear >= 6, `${clear} of 7 truncations detected`);
    const bad = Buffer.from(bytes);
    bad.writeUInt32LE(0x7ffffff0, 0); // root offset far past the end
    const file = path.join(dir, 'bad.tflite');
    fs.writeFileSync(file, bad);
    const r = cli(['inspect', file]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /corrupt FlatBuffer: root table at byte \d+ lies outside the file/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
