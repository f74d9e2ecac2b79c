import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ModelError } from '../../src/core/errors';
import { openModel, saveModel } from '../../src/core/formats/registry';
import { DataType, float16ToFloat32 } from '../../src/core/ir/dtype';
import { Tensor } from '../../src/core/ir/tensor';
import { benchmarkModels, latencyStats, percentile } from '../../src/core/runtime/bench';
import { captureActivations, collectActivations } from '../../src/core/runtime/capture';
import { compareModels, hostValues } from '../../src/core/runtime/compare';
import { Dataset, bindDataset, parseDataSpecs, readLabels } from '../../src/core/runtime/data/dataset';
import { memorySource } from '../../src/core/runtime/data/sources';
import { ModelSession } from '../../src/core/runtime/session';
import { ModelBuilder } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { assertNoStack, cli } from './cli.test';

/** y = x * k (+ c), a single-output model with a known answer. */
function scaleModel(k: number, c = 0, shape: Array<number | string> = ['n', 4]) {
  const b = new ModelBuilder(13);
  const x = b.input('x', shape);
  const [m] = b.node('Mul', [x, b.init('k', [], Float32Array.of(k))]);
  const [y] = b.node('Add', [m, b.init('c', [], Float32Array.of(c))]);
  b.markOutput(y, 'y');
  return b.build();
}

function floatData(rows: number[][]): Dataset {
  const flat = Float32Array.from(rows.flat());
  return new Dataset(new Map([['x', memorySource('mem', DataType.FLOAT, [rows.length, rows[0].length], new Uint8Array(flat.buffer))]]), rows.length);
}

describe('runtime: sessions', () => {
  it('runs an in-memory IR model and reports input/output metadata', async () => {
    const s = await ModelSession.create(scaleModel(2, 1));
    try {
      assert.deepEqual(s.inputs, [{ name: 'x', dtype: DataType.FLOAT, shape: ['n', 4] }]);
      const out = await s.run({ x: { dtype: DataType.FLOAT, dims: [1, 4], data: Float32Array.of(1, 2, 3, -1) } });
      assert.deepEqual(Array.from(out.y.data as Float32Array), [3, 5, 7, -1]);
      assert.ok(s.createMs > 0);
    } finally {
      await s.release();
    }
  });

  it('turns ORT rejections into one-line errors naming the node', async () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', [1, 3]);
    b.graph.initializers.set('w', Tensor.fromArray('w', DataType.INT64, [3], new BigInt64Array(3)));
    const [y] = b.node('Add', [x, 'w'], {}, 1, 'bad_conv'); // float + int64: a type error
    b.markOutput(y, 'y');
    await assert.rejects(ModelSession.create(b.build(), {}, 'bad.onnx'), (e: Error) => {
      assert.ok(e instanceof ModelError, String(e));
      assert.match(e.message, /^bad.onnx: ONNX Runtime rejected the model at node 'bad_conv'/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    // A feed of the wrong rank is a run-time error, also one line.
    const s = await ModelSession.create(scaleModel(1));
    await assert.rejects(s.run({ x: { dtype: DataType.FLOAT, dims: [4], data: new Float32Array(4) } }), (e: Error) => e instanceof ModelError && !e.message.includes('\n'));
    await s.release();
  });

  it('creates sessions from a path with external data', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'ext.onnx');
    saveModel(openModel(path.join(FIXTURES, 'digits_mlp.onnx')), out, { externalData: 'always' });
    const s = await ModelSession.create(openModel(out)); // in-memory IR whose tensors are external
    const r = await s.run({ input: { dtype: DataType.FLOAT, dims: [1, 1, 8, 8], data: new Float32Array(64) } });
    assert.deepEqual(r.output.dims, [1, 10]);
    await s.release();
  });
});

describe('runtime: compare', () => {
  it('reads float16 host values through the table exactly as bit by bit, for all 65536 patterns', () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const v = hostValues({ dtype: DataType.FLOAT16, dims: [65536], data: bits });
    for (let i = 0; i < 65536; i++) {
      const want = float16ToFloat32(i);
      assert.ok(Object.is(v[i], Math.fround(want)) || (Number.isNaN(want) && Number.isNaN(v[i])), `bits ${i.toString(16)}: ${v[i]} != ${want}`);
    }
  });
  it('computes difference, cosine and SQNR exactly as defined', async () => {
    const ref = await ModelSession.create(scaleModel(2));
    const cand = await ModelSession.create(scaleModel(2, 0.5));
    const rows = [[1, 2, 3, 4], [-1, 0, 1, 2], [0.5, 0.5, -2, 3]];
    const r = await compareModels(ref, cand, floatData(rows), { batchSize: 2 });
    const a = rows.flat().map((v) => 2 * v);
    const b = a.map((v) => v + 0.5);
    const dot = a.reduce((s, v, i) => s + v * b[i], 0);
    const cos = dot / Math.sqrt(a.reduce((s, v) => s + v * v, 0) * b.reduce((s, v) => s + v * v, 0));
    const sqnr = 10 * Math.log10(a.reduce((s, v) => s + v * v, 0) / (a.length * 0.25));
    const o = r.outputs[0];
    assert.equal(r.samples, 3);
    assert.equal(o.elements, 12);
    assert.ok(Math.abs(o.maxAbsDiff - 0.5) < 1e-6);
    assert.ok(Math.abs(o.meanAbsDiff - 0.5) < 1e-6);
    assert.ok(Math.abs(o.cosine - cos) < 1e-9, `${o.cosine} vs ${cos}`);
    assert.ok(Math.abs(o.sqnrDb! - sqnr) < 1e-6, `${o.sqnrDb} vs ${sqnr}`);
    // [batch, 4] is classifier-shaped: adding a constant changes neither the argmax nor the softmax.
    assert.equal(o.top1Agreement, 1);
    assert.ok(o.klDivergence! < 1e-12);
    await ref.release();
    await cand.release();
  });

  it('measures top-1/top-5 agreement and KL on logits that change rank', async () => {
    const ref = await ModelSession.create(scaleModel(1));
    const cand = await ModelSession.create(scaleModel(-1));
    const rows = [[1, 2, 3, 4]];
    const r = await compareModels(ref, cand, floatData(rows), { batchSize: 1 });
    const o = r.outputs[0];
    assert.equal(o.top1Agreement, 0); // argmax flips from 3 to 0
    assert.equal(o.top5Agreement, 1); // only 4 classes: every class is in the top 5
    const p = [1, 2, 3, 4].map(Math.exp);
    const q = [-1, -2, -3, -4].map(Math.exp);
    const ps = p.reduce((x, y) => x + y);
    const qs = q.reduce((x, y) => x + y);
    const kl = p.reduce((s, v, i) => s + (v / ps) * Math.log(v / ps / (q[i] / qs)), 0);
    assert.ok(Math.abs(o.klDivergence! - kl) < 1e-6, `${o.klDivergence} vs ${kl}`);
    assert.equal(o.cosine < 0, true);
    await ref.release();
    await cand.release();
  });

  it('reports 0.9916 accuracy (592/597), agreement 1 and zero difference for the digits CNN against itself', async () => {
    const file = path.join(FIXTURES, 'digits_cnn.onnx');
    const ref = await ModelSession.create(file);
    const cand = await ModelSession.create(file);
    const data = bindDataset(ref.inputs, parseDataSpecs([path.join(FIXTURES, 'digits_test_x.npy')]));
    const r = await compareModels(ref, cand, data, { batchSize: 64, labels: readLabels(path.join(FIXTURES, 'digits_test_y.npy')) });
    assert.equal(r.samples, 597);
    assert.equal(r.accuracy!.correctReference, 592);
    assert.equal(r.accuracy!.reference.toFixed(4), '0.9916');
    assert.equal(r.accuracy!.candidate, r.accuracy!.reference);
    assert.equal(r.outputs[0].top1Agreement, 1);
    assert.equal(r.outputs[0].maxAbsDiff, 0);
    assert.equal(r.outputs[0].sqnrDb, null);
    await ref.release();
    await cand.release();
  });

  it('handles multi-input, multi-output models and matches outputs by name', async () => {
    const build = (k: number) => {
      const b = new ModelBuilder(13);
      const a = b.input('a', ['n', 3]);
      const c = b.input('c', ['n', 3]);
      const [s] = b.node('Add', [a, c]);
      const [p] = b.node('Mul', [a, b.init('k', [], Float32Array.of(k))]);
      b.markOutput(p, 'prod');
      b.markOutput(s, 'sum');
      return b.build();
    };
    const ref = await ModelSession.create(build(2));
    const cand = await ModelSession.create(build(3));
    const data = bindDataset(ref.inputs, [], { randomSamples: 10, seed: 1 });
    const r = await compareModels(ref, cand, data, { batchSize: 4 });
    const sum = r.outputs.find((o) => o.name === 'sum')!;
    const prod = r.outputs.find((o) => o.name === 'prod')!;
    assert.equal(sum.maxAbsDiff, 0);
    assert.ok(prod.maxAbsDiff > 0);
    assert.ok(Math.abs(prod.cosine - 1) < 1e-6); // 2a and 3a point the same way
    assert.ok(Math.abs(prod.sqnrDb! - 10 * Math.log10(4)) < 1e-4); // Σ(2a)² / Σ(a)² = 4
    await ref.release();
    await cand.release();
  });
});

describe('runtime: activation capture', () => {
  it('returns intermediate tensors batch by batch without changing the model', async () => {
    const model = scaleModel(3, 1);
    const outputsBefore = model.graph.outputs.length;
    const mul = model.graph.nodes[0].outputs[0];
    const rows = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]];
    const seen: number[] = [];
    await captureActivations(model, [mul], floatData(rows), { batchSize: 2 }, ({ start, size, values }) => {
      seen.push(size);
      const v = Array.from(values[mul].data as Float32Array);
      assert.deepEqual(v, rows.slice(start, start + size).flat().map((x) => 3 * x));
    });
    assert.deepEqual(seen, [2, 1]);
    assert.equal(model.graph.outputs.length, outputsBefore);
    const all = await collectActivations(model, [mul], floatData(rows), { batchSize: 3 });
    assert.equal(all[mul].length, 1);
    await assert.rejects(collectActivations(model, [mul], floatData(rows), { batchSize: 1, maxBytes: 20 }), /exceed/);
    await assert.rejects(collectActivations(model, ['nope'], floatData(rows), { batchSize: 1 }), /not a value computed by the model/);
  });
});

describe('runtime: bench', () => {
  it('computes nearest-rank percentiles', () => {
    const s = latencyStats([5, 1, 4, 2, 3, 10, 6, 7, 8, 9]);
    assert.equal(s.min, 1);
    assert.equal(s.p50, 5);
    assert.equal(s.p90, 9);
    assert.equal(s.p99, 10);
    assert.equal(percentile([1, 2, 3], 50), 2);
  });

  it('interleaves two models in their own processes and reports ratios to the first', async () => {
    const cnn = path.join(FIXTURES, 'digits_cnn.onnx');
    const mlp = path.join(FIXTURES, 'digits_mlp.onnx');
    const r = await benchmarkModels([cnn, mlp], { runs: 20, warmup: 2, batch: 4 });
    assert.equal(r.models.length, 2);
    assert.equal(r.interleaved, true);
    const [a, b] = r.models;
    assert.equal(a.sizeBytes, fs.statSync(cnn).size);
    assert.equal(a.ratioP50, 1);
    assert.ok(Math.abs(b.ratioP50 - b.latencyMs.p50 / a.latencyMs.p50) < 1e-12);
    for (const m of r.models) {
      assert.ok(m.latencyMs.min <= m.latencyMs.p50 && m.latencyMs.p50 <= m.latencyMs.p90 && m.latencyMs.p90 <= m.latencyMs.p99);
      assert.ok(m.peakRssBytes > 10 * 2 ** 20);
      assert.ok(Math.abs(m.throughput - (4 * 1000) / m.latencyMs.mean) < 1e-9);
    }
  });
});

describe('CLI: compare and bench', () => {
  const cnn = path.join(FIXTURES, 'digits_cnn.onnx');
  const x = path.join(FIXTURES, 'digits_test_x.npy');
  const y = path.join(FIXTURES, 'digits_test_y.npy');

  it('compare --json prints samples, outputs and accuracy', () => {
    const r = cli(['compare', cnn, cnn, '--data', x, '--labels', y, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.samples, 597);
    for (const k of ['name', 'maxAbsDiff', 'meanAbsDiff', 'cosine', 'sqnrDb', 'top1Agreement']) assert.ok(k in j.outputs[0], k);
    assert.deepEqual([j.accuracy.reference, j.accuracy.candidate].map((v: number) => v.toFixed(4)), ['0.9916', '0.9916']);
  });

  it('compare exits 3 naming the input on mismatched data, 2 on bad usage', () => {
    const r = cli(['compare', cnn, cnn, '--data', y]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /input 'input' expects float32\[batch, 1, 8, 8\], got int64/);
    assertNoStack(r.stderr);
    assert.equal(cli(['compare', cnn]).code, 2);
    const bad = cli(['compare', cnn, path.join(FIXTURES, 'nope.onnx')]);
    assert.equal(bad.code, 3);
  });

  it('compare reads a folder of PNG images, matching the accuracy from the same pixels as .npy', () => {
    const { PNG } = require('pngjs') as typeof import('pngjs');
    const { readNpy } = require('../../src/core/runtime/data/npy') as typeof import('../../src/core/runtime/data/npy');
    const { encodeNpy } = require('../../src/core/runtime/data/npy') as typeof import('../../src/core/runtime/data/npy');
    const dir = tmpDir();
    const imgs = path.join(dir, 'imgs');
    fs.mkdirSync(imgs);
    const xs = readNpy(x);
    const n = 40;
    const px = new Float32Array(new Uint8Array(xs.data.subarray(0, n * 64 * 4)).buffer);
    const quant = new Float32Array(n * 64);
    for (let i = 0; i < n; i++) {
      const png = new PNG({ width: 8, height: 8 });
      for (let p = 0; p < 64; p++) {
        const v = Math.round(Math.min(1, Math.max(0, px[i * 64 + p])) * 255);
        quant[i * 64 + p] = v / 255;
        png.data.set([v, v, v, 255], p * 4);
      }
      fs.writeFileSync(path.join(imgs, `img${String(i).padStart(3, '0')}.png`), PNG.sync.write(png));
    }
    const qx = path.join(dir, 'q.npy');
    fs.writeFileSync(qx, encodeNpy({ dtype: DataType.FLOAT, shape: [n, 1, 8, 8], data: new Uint8Array(quant.buffer) }));
    const labels = path.join(dir, 'y.npy');
    const ys = readNpy(y);
    fs.writeFileSync(labels, encodeNpy({ dtype: ys.dtype, shape: [n], data: new Uint8Array(ys.data.subarray(0, n * 8)) }));
    const fromImages = JSON.parse(cli(['compare', cnn, cnn, '--data', imgs, '--labels', labels, '--json']).stdout);
    const fromNpy = JSON.parse(cli(['compare', cnn, cnn, '--data', qx, '--labels', labels, '--json']).stdout);
    assert.equal(fromImages.samples, n);
    assert.equal(fromImages.accuracy.correctReference, fromNpy.accuracy.correctReference);
    assert.ok(fromImages.accuracy.reference > 0.9);
  });

  it('bench --json prints models with size and latency percentiles', () => {
    const r = cli(['bench', cnn, '--runs', '5', '--warmup', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.models[0].path, cnn);
    assert.equal(j.models[0].sizeBytes, fs.statSync(cnn).size);
    for (const k of ['min', 'p50', 'p90', 'p99']) assert.ok(j.models[0].latencyMs[k] > 0, k);
    assert.ok(j.models[0].throughput > 0);
    assert.equal(cli(['bench', cnn, '--runs', '0']).code, 2);
    const ep = cli(['bench', cnn, '--runs', '2', '--ep', 'no-such-provider']);
    assert.equal(ep.code, 2);
    assert.match(ep.stderr, /execution provider 'no-such-provider' is not available/);
  });
});
