import { strict as assert } from 'assert';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { openModel } from '../../src/core/formats/registry';
import type { Model } from '../../src/core/ir/graph';
import { collectActivations } from '../../src/core/runtime/capture';
import { compareModels } from '../../src/core/runtime/compare';
import { bindDataset, parseDataSpecs, readLabels } from '../../src/core/runtime/data/dataset';
import { ModelSession } from '../../src/core/runtime/session';
import { allocateRanks, substituteDepthwise, substituteLowRank } from '../../src/core/transforms/substitute';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { FIXTURES } from './helpers/ort';
import { cli } from './cli.test';

const fx = (f: string) => path.join(FIXTURES, f);

async function accuracy(ref: Model | string, cand: Model) {
  const s0 = await ModelSession.create(ref, { allowSpinning: false });
  const s1 = await ModelSession.create(cand, { allowSpinning: false });
  try {
    const data = bindDataset(s0.inputs, parseDataSpecs([fx('digits_test_x.npy')]));
    return await compareModels(s0, s1, data, { batchSize: 128, labels: readLabels(fx('digits_test_y.npy')) });
  } finally {
    await s0.release();
    await s1.release();
  }
}

describe('depthwise-separable substitution', () => {
  it('is exact for filters that are rank 1 per input channel, keeping stride, padding, dilation and bias', async () => {
    // W[o, i, :, :] = a[o, i] · f_i : the rank-1 initialisation reproduces the conv exactly.
    const O = 16;
    const I = 4;
    const a = randomFloats(O * I, 1, 1);
    const f = randomFloats(I * 9, 2, 1);
    const w = new Float32Array(O * I * 9);
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let k = 0; k < 9; k++) w[(o * I + i) * 9 + k] = a[o * I + i] * f[i * 9 + k];
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', I, 11, 11]);
    const [y] = b.node('Conv', [x, b.init('w', [O, I, 3, 3], w), b.init('bias', [O])], { kernel_shape: [3, 3], strides: [2, 2], pads: [2, 1, 2, 1], dilations: [2, 2] }, 1, 'conv');
    b.markOutput(y, 'y');
    const model = b.build();
    const r = await substituteDepthwise(model, { multiplier: 1 });
    assert.equal(r.layers.length, 1);
    assert.equal(r.layers[0].paramsAfter, 9 * I * 1 + 1 * I * O + O);
    const ops = r.model.graph.nodes.map((n) => `${n.opType}:${n.int('group', 1)}`);
    assert.deepEqual(ops, ['Conv:4', 'Conv:1']);
    const s0 = await ModelSession.create(model);
    const s1 = await ModelSession.create(r.model);
    const c = await compareModels(s0, s1, bindDataset(s0.inputs, [], { randomSamples: 8 }), { batchSize: 8 });
    assert.ok(c.outputs[0].maxAbsDiff < 1e-4, `max diff ${c.outputs[0].maxAbsDiff}`);
    await s0.release();
    await s1.release();
  });

  it('digits CNN: every 3×3 conv is replaced, params follow the formula, refit keeps accuracy within 2 pp', async () => {
    const model = openModel(fx('digits_cnn.onnx'));
    const s = await ModelSession.create(model);
    const calib = bindDataset(s.inputs, parseDataSpecs([fx('digits_calib_x.npy')]));
    await s.release();
    // The 1-input-channel stem is skipped by default; naming it in `layers` forces it.
    const layers = ['/c1/Conv', '/c2/Conv', '/c3/Conv'];
    const refit = await substituteDepthwise(model, { multiplier: 1, calib, layers });
    const plain = await substituteDepthwise(model, { multiplier: 1, calib, refit: false, layers });
    assert.deepEqual(refit.layers.map((l) => l.name), ['/c1/Conv', '/c2/Conv', '/c3/Conv']);
    const dims: Record<string, [number, number]> = { '/c1/Conv': [1, 32], '/c2/Conv': [32, 64], '/c3/Conv': [64, 128] };
    for (const l of refit.layers) {
      const [I, O] = dims[l.name];
      assert.equal(l.paramsBefore, 9 * I * O + O);
      assert.equal(l.paramsAfter, 9 * I + I * O + O, `${l.name}: k²·I·m + m·I·O + bias`);
      assert.ok(l.errorRefit! < l.errorInit!, `${l.name}: refit lowers the error`);
    }
    const total = analyzeModel(refit.model).totals.params;
    assert.equal(total, 356234 - refit.layers.reduce((a, l) => a + l.paramsBefore - l.paramsAfter, 0));
    const withRefit = await accuracy(fx('digits_cnn.onnx'), refit.model);
    const without = await accuracy(fx('digits_cnn.onnx'), plain.model);
    const drop = withRefit.accuracy!.reference - withRefit.accuracy!.candidate;
    assert.ok(drop <= 0.02, `drop with refit ${drop}`);
    assert.ok(without.accuracy!.candidate < withRefit.accuracy!.candidate, 'the refit is what keeps the accuracy');
  });

  it('reports the measured layer error exactly as ORT sees it', async () => {
    const model = openModel(fx('digits_cnn.onnx'));
    const s = await ModelSession.create(model);
    const calib = bindDataset(s.inputs, parseDataSpecs([fx('digits_calib_x.npy')]));
    await s.release();
    const r = await substituteDepthwise(model, { multiplier: 2, calib, layers: ['/c2/Conv'] });
    const out = model.graph.nodes.find((n) => n.name === '/c2/Conv')!.outputs[0];
    const a = await collectActivations(model, [out], calib, { batchSize: 256 });
    const b = await collectActivations(r.model, [out], calib, { batchSize: 256 });
    const x = a[out][0].data as Float32Array;
    const y = b[out][0].data as Float32Array;
    let sig = 0;
    let err = 0;
    for (let i = 0; i < x.length; i++) {
      sig += x[i] * x[i];
      err += (x[i] - y[i]) ** 2;
    }
    assert.ok(Math.abs(Math.sqrt(err / sig) - r.layers[0].errorRefit!) < 1e-3);
    assert.deepEqual(r.skipped.map((x) => x.reason), ['not in --layers', 'not in --layers']);
  });

  it('skips convolutions where the formula saves nothing, and 1×1 and grouped ones', async () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 8, 6, 6]);
    const c1 = b.conv(x, 8, 2, 3); // 144 params → 72 + 16 = 88: substituted
    const c2 = b.conv(c1, 2, 1, 3); // 18 params → 18 + 2 = 20: no saving, skipped
    const c3 = b.conv(c2, 1, 4, 1); // 1×1
    const c4 = b.conv(c3, 4, 4, 3, { group: 4 }); // depthwise already
    b.markOutput(c4, 'y');
    const r = await substituteDepthwise(b.build(), { multiplier: 1 });
    const reasons = Object.fromEntries(r.skipped.map((s) => [s.reason.split(':')[0], true]));
    assert.ok(reasons['would not save parameters'], JSON.stringify(r.skipped));
    assert.ok(reasons['a 1×1 convolution has no spatial kernel to separate']);
    assert.ok(reasons['already grouped or depthwise']);
  });
});

describe('low-rank factorisation', () => {
  it('is exact for a weight of exactly rank r', async () => {
    const I = 20;
    const O = 12;
    const r = 3;
    const u = randomFloats(I * r, 4, 1);
    const v = randomFloats(r * O, 5, 1);
    const w = new Float32Array(I * O);
    for (let i = 0; i < I; i++) for (let o = 0; o < O; o++) for (let k = 0; k < r; k++) w[i * O + o] += u[i * r + k] * v[k * O + o];
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', I]);
    const [y] = b.node('MatMul', [x, b.init('w', [I, O], w)], {}, 1, 'mm');
    b.markOutput(y, 'y');
    const model = b.build();
    const res = await substituteLowRank(model, { rank: r });
    assert.equal(res.layers[0].paramsAfter, I * r + r * O);
    const s0 = await ModelSession.create(model);
    const s1 = await ModelSession.create(res.model);
    const c = await compareModels(s0, s1, bindDataset(s0.inputs, [], { randomSamples: 8 }), { batchSize: 8 });
    assert.ok(c.outputs[0].maxAbsDiff < 1e-4);
    await s0.release();
    await s1.release();
  });

  it('digits MLP at 50% of the dense params: data-aware SVD has lower layer error than plain SVD at the same ranks', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const s = await ModelSession.create(model);
    const calib = bindDataset(s.inputs, parseDataSpecs([fx('digits_calib_x.npy')]));
    await s.release();
    const r = await substituteLowRank(model, { targetParams: 0.5, calib });
    const dense = 64 * 256 + 256 * 128 + 128 * 10;
    const after = analyzeModel(r.model).totals.params - (256 + 128 + 10);
    assert.ok(after <= 0.5 * dense, `weights ${after} of ${dense}`);
    for (const l of r.layers) assert.ok(l.errorRefit! < l.errorInit!, `${l.name}: whitened ${l.errorRefit} vs plain ${l.errorInit}`);
    const acc = await accuracy(fx('digits_mlp.onnx'), r.model);
    assert.ok(acc.accuracy!.reference - acc.accuracy!.candidate <= 0.01);
  });

  it('allocates ranks within the params budget', () => {
    const layers = [
      { i: 64, o: 256, s: Array.from({ length: 64 }, (_, k) => Math.exp(-k / 8)) },
      { i: 128, o: 10, s: Array.from({ length: 10 }, () => 1) },
    ];
    const ranks = allocateRanks(layers, 0.5);
    const cost = ranks.reduce((a, r, k) => a + (r === 0 ? layers[k].i * layers[k].o : r * (layers[k].i + layers[k].o)), 0);
    assert.ok(cost <= 0.5 * (64 * 256 + 1280), `cost ${cost}`);
    assert.ok(ranks[0] > 0);
  });
});

describe('CLI: substitute', () => {
  it('prints layers and fidelity as JSON, and rejects contradictory options', () => {
    const r = cli(['substitute', fx('digits_mlp.onnx'), '--lowrank', '--target-params', '0.5', '--calib', fx('digits_calib_x.npy'), '--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy'), '--no-bench', '-o', path.join(require('os').tmpdir(), `lr-${process.pid}.onnx`), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(j.after.params < j.before.params);
    assert.ok(j.layers.length >= 1 && j.layers.every((l: { errorRefit: number }) => l.errorRefit >= 0));
    assert.ok(j.fidelity.accuracy.candidate > 0.95);
    assert.equal(cli(['substitute', fx('digits_mlp.onnx')]).code, 2);
    assert.equal(cli(['substitute', fx('digits_mlp.onnx'), '--lowrank', '--multiplier', '2']).code, 2);
    assert.equal(cli(['substitute', fx('digits_mlp.onnx'), '--lowrank', '--max-error', '0.1']).code, 2);
  });
});
