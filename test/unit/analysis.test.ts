import { strict as assert } from 'assert';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { weightStats } from '../../src/core/analysis/stats';
import { openModel } from '../../src/core/formats/registry';
import { DataType } from '../../src/core/ir/dtype';
import { Tensor } from '../../src/core/ir/tensor';
import { ModelBuilder } from './helpers/builder';
import { FIXTURES } from './helpers/ort';

describe('analysis: params and MACs', () => {
  it('counts a grouped and a depthwise Conv by hand', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [1, 16, 10, 10]);
    const g = b.conv(x, 16, 32, 3, { group: 4, pad: 1 }); // W [32, 4, 3, 3]
    const dw = b.conv(g, 32, 32, 5, { group: 32, pad: 2, stride: 2 }); // W [32, 1, 5, 5], out 5x5
    b.markOutput(dw, 'y');
    const a = analyzeModel(b.build());
    const [lg, ldw] = a.layers;
    assert.equal(lg.params, 32 * 4 * 9 + 32);
    assert.equal(lg.macs, 32 * 10 * 10 * (4 * 9)); // out elems × (Cin/g × k×k)
    assert.equal(ldw.params, 32 * 25 + 32);
    assert.equal(ldw.macs, 32 * 5 * 5 * 25);
    assert.equal(a.totals.macs, lg.macs! + ldw.macs!);
  });

  it('counts ConvTranspose, Gemm with transposes, batched MatMul and LSTM by hand', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [1, 8, 4, 4]);
    const [ct] = b.node('ConvTranspose', [x, b.init('wt', [8, 3, 2, 2])], { strides: [2, 2] });
    const v = b.input('v', [20, 6]);
    const [gm] = b.node('Gemm', [v, b.init('gw', [7, 20])], { transA: 1, transB: 1 }); // A^T [6,20] · B^T [20,7]
    const q = b.input('q', [2, 3, 5, 16]);
    const [att] = b.node('MatMul', [q, b.node('Transpose', [q], { perm: [0, 1, 3, 2] })[0]]); // [2,3,5,5], K=16
    const s = b.input('s', [10, 2, 12]);
    const [ly] = b.node('LSTM', [s, b.init('W', [1, 4 * 6, 12]), b.init('R', [1, 4 * 6, 6])], { hidden_size: 6 }, 1);
    void [ct, gm, att, ly];
    const a = analyzeModel(b.build());
    const by = (op: string) => a.layers.find((l) => l.op === op)!;
    assert.equal(by('ConvTranspose').macs, 8 * 4 * 4 * (3 * 2 * 2)); // input elems × Cout/g × k
    assert.equal(by('ConvTranspose').outputShapes[0]!.join(','), '1,3,8,8');
    assert.equal(by('Gemm').outputShapes[0]!.join(','), '6,7');
    assert.equal(by('Gemm').macs, 6 * 7 * 20); // M·N·K
    assert.equal(by('MatMul').macs, 2 * 3 * 5 * 5 * 16);
    assert.equal(by('LSTM').macs, 10 * 2 * 4 * 6 * (12 + 6));
    assert.equal(by('LSTM').params, 4 * 6 * 12 + 4 * 6 * 6);
  });

  it('matches the digits CNN fixture: 356,234 params and five weighted layers', () => {
    const a = analyzeModel(openModel(path.join(FIXTURES, 'digits_cnn.onnx')), { weightStats: true });
    assert.equal(a.totals.params, 356234);
    assert.equal(a.layers.filter((l) => l.params > 0).length, 5);
    const c2 = a.layers.find((l) => l.name === '/c2/Conv')!;
    assert.equal(c2.macs, 64 * 8 * 8 * 32 * 9);
    assert.deepEqual(a.inputs[0], { name: 'input', dtype: 'float32', shape: ['batch', 1, 8, 8] });
    assert.equal(a.topByMacs[0].macs, 1179648);
    assert.equal(a.byOpType.find((o) => o.op === 'Conv')!.count, 3);
    const w = c2.weights[0];
    assert.ok('histogram' in w && w.histogram.counts.reduce((x, y) => x + y, 0) === 64 * 32 * 9);
  });

  it('counts a weight shared by two nodes once', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [1, 4]);
    const w = b.init('w', [4, 4]);
    const [m1] = b.node('MatMul', [x, w]);
    const [m2] = b.node('MatMul', [m1, w]);
    b.markOutput(m2, 'y');
    const a = analyzeModel(b.build());
    assert.equal(a.totals.params, 16);
    assert.equal(a.totals.macs, 32);
  });
});

describe('analysis: weight statistics', () => {
  it('computes min, max, mean, std, sparsity, histogram and entropy', () => {
    const vals = Float32Array.of(0, 0, 1, 2, 3, 4, -4, 0);
    const s = weightStats(Tensor.fromArray('t', DataType.FLOAT, [8], vals))!;
    assert.equal(s.min, -4);
    assert.equal(s.max, 4);
    assert.equal(s.mean, 6 / 8);
    const mean = 6 / 8;
    const variance = Array.from(vals).reduce((a, v) => a + (v - mean) ** 2, 0) / 8;
    assert.ok(Math.abs(s.std - Math.sqrt(variance)) < 1e-12);
    assert.equal(s.sparsity, 3 / 8);
    assert.equal(s.histogram.counts.length, 256);
    assert.equal(s.histogram.counts[0], 1); // -4
    assert.equal(s.histogram.counts[255], 1); // 4 (last bin is closed)
    assert.equal(s.histogram.counts[128], 3); // the zeros
    // five singleton bins and one bin of 3: entropy = -(5·(1/8)log2(1/8) + (3/8)log2(3/8))
    const expect = -(5 * (1 / 8) * Math.log2(1 / 8) + (3 / 8) * Math.log2(3 / 8));
    assert.ok(Math.abs(s.entropyBits - expect) < 1e-12);
  });

  it('reads unaligned float32 views and int8 data', () => {
    const buf = new Uint8Array(4 * 3 + 1);
    new DataView(buf.buffer).setFloat32(1, 1.5, true);
    new DataView(buf.buffer).setFloat32(5, -2.5, true);
    new DataView(buf.buffer).setFloat32(9, 4, true);
    const t = new Tensor('u', DataType.FLOAT, [3], { kind: 'bytes', bytes: buf.subarray(1) });
    const s = weightStats(t)!;
    assert.equal(s.min, -2.5);
    assert.equal(s.max, 4);
    const q = weightStats(Tensor.fromArray('q', DataType.INT8, [4], Int8Array.of(-128, 0, 0, 127)))!;
    assert.equal(q.min, -128);
    assert.equal(q.sparsity, 0.5);
  });

  it('excludes NaN and Inf from the figures and counts them', () => {
    const s = weightStats(Tensor.fromArray('n', DataType.FLOAT, [4], Float32Array.of(NaN, 1, Infinity, 3)))!;
    assert.equal(s.nonFinite, 2);
    assert.equal(s.mean, 2);
  });
});
