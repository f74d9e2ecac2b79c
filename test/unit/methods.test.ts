import { strict as assert } from 'assert';
import { UsageError } from '../../src/core/errors';
import { buildDependencyGraph } from '../../src/core/transforms/prune/dependency';
import { incrementalRatio, scheduleTargets, scheduledTarget } from '../../src/core/transforms/prune/schedule';
import { TaylorAccumulator, taylorChannelSums } from '../../src/core/transforms/prune/taylor';
import { ModelBuilder, randomFloats } from './helpers/builder';

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
    assert.deepEqual(new Set(acc.weightNames), new Set([wName, bName, 'gamma', 'beta', 'mean', 'var']));
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
