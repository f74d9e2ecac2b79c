import { strict as assert } from 'assert';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import type { Model } from '../../src/core/ir/graph';
import { ModelSession } from '../../src/core/runtime/session';
import { withWeights } from '../../src/core/train';
import { scoreModels } from '../../src/core/transforms/distill/common';
import { pruneModel } from '../../src/core/transforms/prune';
import { pruneWithRecovery } from '../../src/core/transforms/prune/recover';
import { buildDependencyGraph } from '../../src/core/transforms/prune/dependency';
import { incrementalRatio, scheduleTargets, scheduledTarget } from '../../src/core/transforms/prune/schedule';
import { TaylorAccumulator, taylorChannelSums, taylorScores } from '../../src/core/transforms/prune/taylor';
import { digitsData } from './helpers/digits';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { FIXTURES } from './helpers/ort';

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

  it('incremental ratios compose to the cumulative target', () => {
    let left = 1;
    for (let s = 1; s <= 6; s++) {
      left *= 1 - incrementalRatio(0.75, s, 6, 'cubic');
      assert.ok(Math.abs(1 - left - scheduledTarget(0.75, s, 6, 'cubic')) < 1e-12);
    }
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

  it('refuses finetune without labels, naming distill as the way', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(model);
    await assert.rejects(pruneWithRecovery(model, { structured: false, ratio: 0.5 }, { method: 'finetune', train: d.train }), (e: Error) => e instanceof UsageError && /--recover distill/.test(e.message));
  });
});
