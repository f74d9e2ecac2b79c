import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import type { Model } from '../../src/core/ir/graph';
import { ModelSession } from '../../src/core/runtime/session';
import { DataType } from '../../src/core/ir/dtype';
import { Dataset } from '../../src/core/runtime/data/dataset';
import { memorySource } from '../../src/core/runtime/data/sources';
import { buildTrainingGraph, TrainingSession, withWeights } from '../../src/core/train';
import { quantizeModel } from '../../src/core/transforms/quantize';
import { fakeQuantModel, quantizationAwareTraining } from '../../src/core/transforms/quantize/qat';
import { groupSparsityTrain, sparsityTrain, withGroupLasso } from '../../src/core/transforms/sparsity';
import { scoreModels } from '../../src/core/transforms/distill/common';
import { pruneModel } from '../../src/core/transforms/prune';
import { pruneWithRecovery, retrain } from '../../src/core/transforms/prune/recover';
import { substituteLowRank } from '../../src/core/transforms/substitute';
import { buildDependencyGraph } from '../../src/core/transforms/prune/onnx/dependency';
import { scheduleTargets, scheduledTarget } from '../../src/core/transforms/prune/schedule';
import { TaylorAccumulator, taylorChannelSums, taylorScores } from '../../src/core/transforms/prune/taylor';
import { digitsData } from './helpers/digits';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { assertNoStack, cli } from './cli.test';
import { readNpy, writeNpy } from '../../src/core/runtime/data/npy';

const fx = (f: string) => path.join(FIXTURES, f);

describe('prune schedules (Zhu & Gupta cubic)', () => {
  it('reaches the final target exactly at the last step, monotonically', () => {
    for (const schedule of ['linear', 'cubic'] as const) {
      const t = scheduleTargets(0.7, 5, schedule);
      assert.equal(t.length, 5);
      assert.ok(Math.abs(t[4] - 0.7) < 1e-12);
      for (let i = 1; i < t.length; i++) assert.ok(t[i] > t[i - 1]);
    }
  });

  it('cubic follows s_f·(1 − (1 − t/n)³): front-loaded compared with linear', () => {
    // n = 4, s_f = 0.8: step 1 → 0.8·(1 − 0.75³) = 0.4625, step 2 → 0.8·(1 − 0.125) = 0.7.
    assert.ok(Math.abs(scheduledTarget(0.8, 1, 4, 'cubic') - 0.4625) < 1e-12);
    assert.ok(Math.abs(scheduledTarget(0.8, 2, 4, 'cubic') - 0.7) < 1e-12);
    assert.ok(scheduledTarget(0.8, 1, 4, 'cubic') > scheduledTarget(0.8, 1, 4, 'linear'));
  });

  it('refuses bad steps and targets with a UsageError', () => {
    assert.throws(() => scheduledTarget(0.5, 0, 3), UsageError);
    assert.throws(() => scheduledTarget(0.5, 4, 3), UsageError);
    assert.throws(() => scheduledTarget(1.2, 1, 3), UsageError);
    assert.throws(() => scheduledTarget(0.5, 1, 2.5), UsageError);
  });
});

describe('Taylor importance (Molchanov et al. 2019)', () => {
  /** x ─ Conv a (2→4, bias) ─ BatchNormalization ─ Relu ─ Conv b (4→3) → y */
  function model() {
    const b = new ModelBuilder();
    b.input('x', ['N', 2, 5, 5]);
    const a = b.conv('x', 2, 4, 3);
    const bn = b.node('BatchNormalization', [a, b.init('gamma', [4]), b.init('beta', [4]), b.init('mean', [4]), b.init('var', [4], Float32Array.from([1, 2, 3, 4]))])[0];
    const r = b.node('Relu', [bn])[0];
    b.markOutput(b.conv(r, 4, 3, 3), 'y');
    return b.build();
  }

  it('sums w·∂L/∂w over the producer filters, bias and BN γ/β of each channel, per batch, then |·|', () => {
    const m = model();
    const g = buildDependencyGraph(m).groups.find((x) => x.size === 4)!;
    assert.ok(g, 'conv a starts a group of 4 channels');
    const init = (n: string) => m.graph.initializers.get(n)!.toFloat32();
    const convA = m.graph.nodes[0];
    const [wName, bName] = [convA.inputs[1], convA.inputs[2]];
    const batches = [1, 2].map((seed) => new Map<string, Float32Array>([
      [wName, randomFloats(4 * 2 * 9, 10 + seed)],
      [bName, randomFloats(4, 20 + seed)],
      ['gamma', randomFloats(4, 30 + seed)],
      ['beta', randomFloats(4, 40 + seed)],
    ]));
    const acc = new TaylorAccumulator([g]);
    assert.deepEqual(new Set(acc.weightNames), new Set([wName, bName, 'gamma', 'beta']));
    for (const grads of batches) acc.add(grads);
    const scores = acc.scores().get(g) as Float64Array;
    const W = init(wName);
    for (let c = 0; c < 4; c++) {
      let total = 0;
      for (const grads of batches) {
        let s = 0;
        for (let k = 0; k < 18; k++) s += W[c * 18 + k] * grads.get(wName)![c * 18 + k];
        s += init(bName)[c] * grads.get(bName)![c] + init('gamma')[c] * grads.get('gamma')![c] + init('beta')[c] * grads.get('beta')![c];
        total += Math.abs(s);
      }
      assert.ok(Math.abs(scores[c] - total / 2) < 1e-9, `channel ${c}`);
    }
    // Signed per batch: opposite gradients in two batches do not cancel.
    const neg = new Map([...batches[0]].map(([k, v]) => [k, v.map((x) => -x)]));
    const acc2 = new TaylorAccumulator([g]);
    acc2.add(batches[0]);
    acc2.add(neg);
    const s1 = taylorChannelSums(g, batches[0]);
    const s2 = acc2.scores().get(g) as Float64Array;
    for (let c = 0; c < 4; c++) assert.ok(Math.abs(s2[c] - Math.abs(s1[c])) < 1e-9);
  });
});

describe('Taylor importance from the training engine', function () {
  this.timeout(120000);

  it('each channel score is |dL/dε| of scaling that channel by (1 + ε): checked by central differences in ORT', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    const group = buildDependencyGraph(model).groups.find((g) => g.members.some((m) => m.kind === 'producer' && m.weight.name === 'l1.weight'))!;
    const n = 64;
    const scores = (await taylorScores(model, [group], { calib: d.test, labels: d.testLabels, batchSize: n, limit: n })).get(group) as Float64Array;
    assert.equal(scores.length, 256);
    const feeds = d.test.batch(0, n);
    const ce = async (m: Model) => {
      const s = await ModelSession.create(m, { allowSpinning: false });
      try {
        const y = (await s.run(feeds, ['output'])).output.data as Float32Array;
        let total = 0;
        for (let r = 0; r < n; r++) {
          const row = Array.from(y.subarray(r * 10, r * 10 + 10));
          const mx = Math.max(...row);
          const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
          total += lse - row[d.testLabels[r]];
        }
        return total / n;
      } finally {
        await s.release();
      }
    };
    const W = model.graph.initializers.get('l1.weight')!.toFloat32();
    const B = model.graph.initializers.get('l1.bias')!.toFloat32();
    const scaled = (c: number, f: number) => {
      const w = Float32Array.from(W);
      const b = Float32Array.from(B);
      for (let k = 0; k < 64; k++) w[c * 64 + k] *= f;
      b[c] *= f;
      return withWeights(model, new Map([['l1.weight', w], ['l1.bias', b]]));
    };
    const order = [...scores.keys()].sort((a, b) => scores[b] - scores[a]);
    const eps = 1e-2;
    const max = scores[order[0]];
    assert.ok(max > 0);
    for (const c of [...order.slice(0, 4), order[128]]) {
      const fd = Math.abs((await ce(scaled(c, 1 + eps))) - (await ce(scaled(c, 1 - eps)))) / (2 * eps);
      assert.ok(Math.abs(fd - scores[c]) <= 0.02 * scores[c] + 1e-3 * max, `channel ${c}: taylor ${scores[c]}, finite differences ${fd}`);
    }
  });

  it('prune --criterion taylor works without labels (KL to the original after the first step, pseudo-labels on it)', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    const r = await pruneModel(model, { structured: true, ratio: 0.5, criterion: 'taylor', calib: d.train, steps: 2 });
    assert.equal(r.groups.length, 2);
    const s = await scoreModels(model, r.model, d.test, d.testLabels);
    assert.ok(s.candidate.accuracy! > 0.5, `${s.candidate.accuracy}`);
  });
});

describe('prune → retrain → repeat', function () {
  this.timeout(300000);

  it('unstructured + finetune keeps its zeros, reports each prune and retrain, and meets the target', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    const r = await pruneWithRecovery(
      model,
      { structured: false, ratio: 0.9, steps: 2 },
      { method: 'finetune', train: d.train, trainLabels: d.trainLabels, epochsPerStep: 2, eval: { data: d.test, labels: d.testLabels } },
    );
    const rep = r.recovery;
    assert.deepEqual(rep.steps.map((s) => s.step), [1, 2]);
    assert.ok(Math.abs(rep.steps[1].target - 0.9) < 1e-12 && rep.steps[0].target > 0.45);
    for (const s of rep.steps) assert.ok(s.afterPrune && s.afterRetrain && s.trainLoss.length === 2);
    for (const s of r.sparsity!) assert.ok(s.sparsity >= 0.89, `${s.name}: ${s.sparsity}`);
    // 90% of the weights gone: retraining recovers most of the loss of pruning.
    const last = rep.steps[1];
    assert.ok(last.afterRetrain!.accuracy! > last.afterPrune!.accuracy! || rep.kept === 'pruned');
    const final = await scoreModels(model, r.model, d.test, d.testLabels);
    assert.ok(final.candidate.accuracy! >= 0.9, `${final.candidate.accuracy}`);
  });

  it('structured + distill removes 70% of MACs along the cubic schedule and recovers without labels', async () => {
    const model = openModel(fx('digits_cnn.onnx'));
    const d = await digitsData(model);
    const r = await pruneWithRecovery(model, { structured: true, targetMacs: 0.7, steps: 2 }, { method: 'distill', train: d.train, epochsPerStep: 2, lr: 2e-3, eval: { data: d.test, labels: d.testLabels } });
    assert.ok(analyzeModel(r.model).totals.macs <= 0.32 * analyzeModel(model).totals.macs);
    assert.ok(r.recovery.steps[0].target > 0.35);
    const final = await scoreModels(model, r.model, d.test, d.testLabels);
    assert.ok(final.candidate.accuracy! >= 0.97, `${final.candidate.accuracy}`);
  });

  it('the same recovery applies after substitute: a rank-4 low-rank MLP regains accuracy by distillation', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    const sub = await substituteLowRank(model, { rank: 4, plain: true });
    assert.ok(sub.layers.length >= 1);
    const before = (await scoreModels(model, sub.model, d.test, d.testLabels)).candidate.accuracy!;
    const r = await retrain(sub.model, model, { method: 'distill', train: d.train, epochs: 3, lr: 2e-3 }, false);
    const after = (await scoreModels(model, r.model, d.test, d.testLabels)).candidate.accuracy!;
    assert.ok(after > before + 0.2, `low-rank ${before} → distilled ${after}`);
    assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), sub.model.graph.nodes.map((n) => n.opType));
  });

  it('refuses finetune without labels, naming distill as the way', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    await assert.rejects(pruneWithRecovery(model, { structured: false, ratio: 0.5 }, { method: 'finetune', train: d.train }), (e: Error) => e instanceof UsageError && /--recover distill/.test(e.message));
  });
});

describe('sparsity training (L1/L2, then magnitude pruning)', function () {
  this.timeout(300000);

  it('L1 drives weights towards zero; pruning to 80% and fine-tuning keep the zeros and the accuracy', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    const common = { train: d.train, trainLabels: d.trainLabels, epochs: 3, lr: 1e-3, ratio: 0.8, eval: { data: d.test, labels: d.testLabels } };
    const plain = await sparsityTrain(model, { ...common, l1: 0 });
    const r = await sparsityTrain(model, { ...common, l1: 1e-3, l2: 1e-4, finetuneEpochs: 2 });
    assert.deepEqual(r.report.weights, ['l1.weight', 'l2.weight', 'l3.weight']);
    assert.ok(r.report.nearZero > plain.report.nearZero + 0.2, `near-zero fraction ${plain.report.nearZero} → ${r.report.nearZero}`);
    assert.ok(r.report.sparsity >= 0.79, `${r.report.sparsity}`);
    assert.ok(r.report.afterFinetune!.accuracy! >= 0.95, `${r.report.afterFinetune!.accuracy}`);
    assert.ok(r.report.original.accuracy! > 0.97);
    await assert.rejects(sparsityTrain(model, { ...common, l1: 1e-3, maxDrop: 0.01 }), UsageError);
    await assert.rejects(sparsityTrain(model, { ...common, l1: -1 }), UsageError);
  });
});

describe('group lasso (structured sparsity training)', function () {
  this.timeout(300000);

  it('the penalty is Σ_c ‖W[c]‖₂ with gradient W[c]/‖W[c]‖₂, and training with it zeroes whole channels', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const aug = withGroupLasso(model, [{ name: 'l1.weight', axis: 0 }], 2);
    const tg = buildTrainingGraph(aug.model, { losses: aug.losses, trainable: ['l1.weight'] });
    const session = await TrainingSession.create(tg);
    const w = model.graph.initializers.get('l1.weight')!.toFloat32();
    try {
      const r = await session.step({ input: { dtype: DataType.FLOAT, dims: [1, 1, 8, 8], data: new Float32Array(64) } }, new Map([['l1.weight', w]]));
      const g = r.grads.get('l1.weight')!;
      let expected = 0;
      for (let c = 0; c < 256; c++) {
        const row = w.subarray(c * 64, c * 64 + 64);
        const norm = Math.sqrt(row.reduce((a, v) => a + v * v, 0) + 1e-8);
        expected += norm;
        for (const k of [0, 17, 63]) assert.ok(Math.abs(g[c * 64 + k] - (2 * row[k]) / norm) < 1e-4 * (1 + Math.abs((2 * row[k]) / norm)));
      }
      assert.ok(Math.abs(r.loss - 2 * expected) < 1e-4 * expected);
    } finally {
      await session.release();
    }
    const d = await digitsData(model);
    const common = { train: d.train, trainLabels: d.trainLabels, ratio: 0.5, epochs: 5, lr: 1e-2, eval: { data: d.test, labels: d.testLabels } };
    const none = await groupSparsityTrain(model, { ...common, lambda: 0 });
    const gl = await groupSparsityTrain(model, { ...common, lambda: 0.1 });
    assert.ok(gl.report.smallChannels > none.report.smallChannels + 0.05, `${none.report.smallChannels} → ${gl.report.smallChannels}`);
    assert.ok(gl.report.macsRatio < 0.5);
  });
});

describe('quantization-aware training (static int8, straight-through estimator)', function () {
  this.timeout(300000);

  it('Q→DQ passes the gradient through inside the range and stops it outside (per tensor and per channel)', async () => {
    for (const perAxis of [false, true]) {
      const b = new ModelBuilder(17);
      b.input('x', ['N', 4]);
      const W = Float32Array.from([0.31, -0.52, 20, -0.07]);
      const S = perAxis ? [0.1, 0.1, 0.1, 0.05] : [0.1, 0.1, 0.1, 0.1];
      b.init('w', [4], W);
      const s = perAxis ? b.init('s', [4], Float32Array.from(S)) : b.init('s', [], Float32Array.of(0.1));
      const z = perAxis ? b.init('z', [4], new Int8Array(4), DataType.INT8) : b.init('z', [], new Int8Array(1), DataType.INT8);
      const attrs: Record<string, number> = perAxis ? { axis: 0 } : {};
      const q = b.node('QuantizeLinear', ['w', s, z], attrs)[0];
      const dq = b.node('DequantizeLinear', [q, s, z], attrs)[0];
      b.markOutput(b.node('Mul', ['x', dq])[0], 'y');
      const tg = buildTrainingGraph(b.build(), { losses: [{ kind: 'mse', prediction: 'y', target: 't' }], trainable: ['w'] });
      const session = await TrainingSession.create(tg);
      try {
        const n = 3;
        const x = randomFloats(n * 4, 5, 1);
        const t = randomFloats(n * 4, 6, 1);
        const r = await session.step({ x: { dtype: DataType.FLOAT, dims: [n, 4], data: x }, t: { dtype: DataType.FLOAT, dims: [n, 4], data: t } }, new Map([['w', Float32Array.from(W)]]));
        const fq = W.map((w, j) => Math.max(-128, Math.min(127, Math.round(w / S[j]))) * S[j]);
        for (let j = 0; j < 4; j++) {
          let g = 0;
          for (let i = 0; i < n; i++) g += (2 * (x[i * 4 + j] * fq[j] - t[i * 4 + j]) * x[i * 4 + j]) / (n * 4);
          const inside = Math.abs(W[j] / S[j]) <= 127;
          const got = r.grads.get('w')![j];
          assert.ok(Math.abs(got - (inside ? g : 0)) < 1e-5, `perAxis ${perAxis}, w[${j}]: ${got} vs ${inside ? g : 0}`);
        }
        assert.equal(r.grads.get('w')![2], 0);
      } finally {
        await session.release();
      }
    }
  });

  it('recovers a static int8 model calibrated on un-normalised (×255) inputs, writing the same QDQ form as static mode', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    // The classic mistake: calibration images in 0..255 while the model expects 0..1.
    const raw = d.train.batch(0, 256).input.data as Float32Array;
    const scaled = raw.map((v) => v * 255);
    const calib = new Dataset(new Map([['input', memorySource('calib×255', DataType.FLOAT, [256, 1, 8, 8], new Uint8Array(scaled.buffer))]]), 256);
    const st = await quantizeModel(model, { mode: 'static', calib });
    const before = await scoreModels(model, st.model, d.test, d.testLabels);
    assert.ok(before.candidate.accuracy! < 0.8, `static int8 accuracy ${before.candidate.accuracy}`);
    const q = await quantizationAwareTraining(model, { calib, train: d.train, trainLabels: d.trainLabels, epochs: 3, lr: 3e-3 });
    const after = await scoreModels(model, q.model, d.test, d.testLabels);
    assert.ok(after.candidate.accuracy! > before.candidate.accuracy! + 0.2, `QAT: ${before.candidate.accuracy} → ${after.candidate.accuracy}`);
    const ops = (m: Model) => m.graph.nodes.map((n) => n.opType).sort();
    assert.deepEqual(ops(q.model), ops(st.model));
    // The fake-quantized training graph is what ORT runs in int8: top-1 agrees on nearly every sample.
    const sim = await scoreModels(q.model, fakeQuantModel(q.floatModel, q.plan, q.ranges), d.test, d.testLabels);
    assert.ok(sim.candidate.agreement >= 0.97, `${sim.candidate.agreement}`);
  });
});

describe('CLI: training-based options', function () {
  this.timeout(300000);

  it('prune --recover finetune reports each step; quantize --qat recovers a badly calibrated int8 model; missing --train exits 2', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'ft.onnx');
    const r = cli(['prune', fx('digits_cnn.onnx'), '--structured', '--target-macs', '0.7', '--steps', '2', '--recover', 'finetune', '--epochs-per-step', '2',
      '--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy'), '--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy'), '--no-bench', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.recovery.method, 'finetune');
    assert.equal(j.recovery.steps.length, 2);
    assert.ok(j.after.macs < 0.32 * j.before.macs);
    assert.ok(j.fidelity.accuracy.candidate >= 0.97, `${j.fidelity.accuracy.candidate}`);
    const e = cli(['prune', fx('digits_cnn.onnx'), '--structured', '--ratio', '0.5', '--recover', 'distill', '-o', out]);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /--train/);
    assertNoStack(e.stderr);

    // Calibration images in 0..255 for a model that reads 0..1 (see the QAT unit test).
    const raw = readNpy(fx('digits_calib_x.npy'));
    const f = new Float32Array(raw.data.buffer.slice(raw.data.byteOffset, raw.data.byteOffset + raw.data.byteLength)).map((v) => v * 255);
    const calib = path.join(dir, 'calib255.npy');
    writeNpy(calib, { ...raw, data: new Uint8Array(f.buffer) });
    const common = [fx('digits_mlp.onnx'), '--mode', 'static', '--calib', calib, '--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy'), '--no-bench', '--json'];
    const st = cli(['quantize', ...common, '-o', path.join(dir, 'st.onnx')]);
    assert.equal(st.code, 0, st.stderr);
    const qat = cli(['quantize', ...common, '--qat', '--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy'), '-o', path.join(dir, 'qat.onnx')]);
    assert.equal(qat.code, 0, qat.stderr);
    const a0 = JSON.parse(st.stdout).fidelity.accuracy.candidate;
    const a1 = JSON.parse(qat.stdout).fidelity.accuracy.candidate;
    assert.ok(a1 > a0 + 0.2, `static ${a0} → qat ${a1}`);
    const noTrain = cli(['quantize', ...common, '--qat', '-o', path.join(dir, 'x.onnx')]);
    assert.equal(noTrain.code, 2);
    assertNoStack(noTrain.stderr);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a recipe prune step with recover distill trains on --train (compress --recipe)', () => {
    const dir = tmpDir();
    const recipe = path.join(dir, 'r.recipe.json');
    fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'prune', structured: true, targetMacs: 0.5, recover: 'distill', epochsPerStep: 2 }] }));
    const args = ['compress', fx('digits_cnn.onnx'), '--recipe', recipe, '--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy'), '--no-bench', '-o', path.join(dir, 'c.onnx'), '--json'];
    const r = cli([...args, '--train', fx('digits_train_x.npy')]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(j.fidelity.accuracy.candidate >= 0.97 && j.after.macs < 0.55 * j.before.macs, r.stdout);
    const e = cli(args);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /--train/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
