import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import type { Model } from '../../src/core/ir/graph';
import { ModelSession } from '../../src/core/runtime/session';
import { distill, distillationLosses, parseMatches } from '../../src/core/transforms/distill';
import { scoreModels } from '../../src/core/transforms/distill/common';
import { pruneModel } from '../../src/core/transforms/prune';
import { digitsData } from './helpers/digits';
import { FIXTURES, tmpDir } from './helpers/ort';
import { assertNoStack, cli } from './cli.test';

const fx = (f: string) => path.join(FIXTURES, f);

function weightBytes(m: Model): string[] {
  return [...m.graph.initializers.values()].map((t) => Buffer.from(t.toFloat32().buffer).toString('base64').slice(0, 64) + t.dims.join('x'));
}

describe('knowledge distillation: losses', () => {
  it('uses T = 4 and α = 0.7 with labels: α·KL_T (T² inside the term) + (1 − α)·CE', () => {
    const { losses, alpha, temperature } = distillationLosses('y', { labels: true });
    assert.equal(alpha, 0.7);
    assert.equal(temperature, 4);
    assert.deepEqual(losses.map((l) => [l.kind, l.weight]), [['distillation', 0.7], ['cross-entropy', 0.30000000000000004]]);
  });

  it('uses α = 1 without labels, and refuses an α that weighs labels it does not have', () => {
    const { losses, alpha } = distillationLosses('y', { labels: false });
    assert.equal(alpha, 1);
    assert.deepEqual(losses.map((l) => l.kind), ['distillation']);
    assert.throws(() => distillationLosses('y', { labels: false, alpha: 0.5 }), UsageError);
    assert.throws(() => distillationLosses('y', { labels: true, temperature: 0 }), UsageError);
    assert.throws(() => distillationLosses('y', { labels: true, alpha: 1.5 }), UsageError);
  });

  it('adds one MSE term per --match pair', () => {
    const m = parseMatches(['t1=s1', 'a/b=c']);
    assert.deepEqual(m, [{ teacher: 't1', student: 's1' }, { teacher: 'a/b', student: 'c' }]);
    const { losses } = distillationLosses('y', { labels: false, match: m, matchWeight: 2 });
    assert.deepEqual(losses.map((l) => [l.kind, l.weight]), [['distillation', 1], ['mse', 2], ['mse', 2]]);
    assert.throws(() => parseMatches(['nope']), UsageError);
    assert.throws(() => parseMatches(['t=']), UsageError);
  });
});

describe('knowledge distillation: digits', function () {
  this.timeout(300000);

  it('a half-width student (structured 50%) learns the teacher from unlabeled data; neither input model changes', async () => {
    const teacher = openModel(fx('digits_cnn.onnx'));
    const d = await digitsData(teacher);
    const student = (await pruneModel(teacher, { structured: true, ratio: 0.5 })).model;
    const tBefore = weightBytes(teacher);
    const sBefore = weightBytes(student);
    const r = await distill(student, teacher, { train: d.train, epochs: 3, lr: 2e-3, eval: { data: d.test, labels: d.testLabels } });
    assert.equal(r.alpha, 1);
    assert.ok(r.teacherAccuracy! > 0.98);
    // Pruning half the channels without recovery breaks the model; distillation restores it.
    assert.ok(r.before!.accuracy! < 0.8, `before ${r.before!.accuracy}`);
    assert.ok(r.after!.accuracy! >= 0.95, `after ${r.after!.accuracy}`);
    assert.ok(r.after!.agreement >= 0.95);
    assert.ok(r.fit.history[2].trainLoss < r.fit.history[0].trainLoss);
    assert.deepEqual(weightBytes(teacher), tBefore);
    assert.deepEqual(weightBytes(student), sBefore);
    // The result is the student's inference graph: same nodes, same weight shapes.
    assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), student.graph.nodes.map((n) => n.opType));
    for (const [k, t] of student.graph.initializers) assert.deepEqual(r.model.graph.initializers.get(k)!.dims, t.dims);
  });

  it('feature distillation (--match) pulls a student layer onto the teacher layer (MSE falls)', async () => {
    const teacher = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(teacher);
    // The student: the teacher with half of each layer's weights zeroed (same shapes, so the layers match).
    const student = (await pruneModel(teacher, { structured: false, ratio: 0.5 })).model;
    const hidden = '/Relu_output_0';
    const mse = async (m: Model) => {
      const { withExtraOutputs } = await import('../../src/core/runtime/capture');
      const a = await ModelSession.create(withExtraOutputs(teacher, [hidden]), { allowSpinning: false });
      const b = await ModelSession.create(withExtraOutputs(m, [hidden]), { allowSpinning: false });
      try {
        const feeds = d.test.batch(0, 128);
        const x = (await a.run(feeds, [hidden]))[hidden].data as Float32Array;
        const y = (await b.run(feeds, [hidden]))[hidden].data as Float32Array;
        return x.reduce((s, v, i) => s + (v - y[i]) ** 2, 0) / x.length;
      } finally {
        await a.release();
        await b.release();
      }
    };
    const opts = { train: d.train, trainLabels: d.trainLabels, epochs: 2, lr: 1e-3, keepZeros: true };
    const plain = await distill(student, teacher, opts);
    const r = await distill(student, teacher, { ...opts, match: [{ teacher: hidden, student: hidden }], matchWeight: 10 });
    assert.deepEqual(r.losses.map((l) => l.kind), ['distillation', 'cross-entropy', 'mse']);
    const before = await mse(student);
    const without = await mse(plain.model);
    const after = await mse(r.model);
    assert.ok(after < 0.7 * without && after < before, `feature MSE ${before} → ${after} (${without} without --match)`);
    // keepZeros: the 50% zeros of the first layer stay zero.
    const w0 = student.graph.initializers.get('l1.weight')!.toFloat32();
    const w1 = r.model.graph.initializers.get('l1.weight')!.toFloat32();
    for (let i = 0; i < w0.length; i++) if (w0[i] === 0) assert.equal(w1[i], 0);
  });

  it('refuses labels that do not match the data, an unknown --match tensor, and a student without class outputs to score', async () => {
    const teacher = openModel(fx('digits_mlp.onnx'));
    const d = await digitsData(teacher);
    await assert.rejects(distill(teacher, teacher, { train: d.train, trainLabels: d.testLabels, epochs: 1 }), /training labels for 1200/);
    await assert.rejects(distill(teacher, teacher, { train: d.train, epochs: 1, match: [{ teacher: 'nope', student: '/Relu_output_0' }] }), UsageError);
    const s = await scoreModels(teacher, teacher, d.test, d.testLabels);
    assert.equal(s.candidate.agreement, 1);
    assert.equal(s.reference, s.candidate.accuracy);
  });
});

describe('knowledge distillation: teacher checks before training', function () {
  this.timeout(120000);

  it('a teacher that cannot read the training data, or a --match pair of different shapes, is a usage error naming the file, tensors and shapes', async () => {
    const cnn = openModel(fx('digits_cnn.onnx'));
    const d = await digitsData(cnn);
    const wrongTeacher = openModel(fx('mobilenet_v2.onnx'));
    await assert.rejects(distill(cnn, wrongTeacher, { train: d.train, epochs: 1 }), (e: Error) => {
      assert.ok(e instanceof UsageError, e.message);
      assert.match(e.message, /mobilenet_v2\.onnx: the teacher's input 'input' expects \[n,3,224,224\], the student's training data is \[n,1,8,8\]/);
      return true;
    });
    const half = (await pruneModel(cnn, { structured: true, ratio: 0.5 })).model;
    await assert.rejects(distill(half, cnn, { train: d.train, epochs: 1, match: [{ teacher: '/Relu_output_0', student: '/Relu_output_0' }] }), (e: Error) => {
      assert.ok(e instanceof UsageError, e.message);
      assert.match(e.message, /^--match \/Relu_output_0=\/Relu_output_0: the teacher's '\/Relu_output_0' is \[1,32,8,8\] but the student's '\/Relu_output_0' is \[1,16,8,8\]/);
      return true;
    });
  });
});

describe('CLI: distill', function () {
  this.timeout(300000);

  it('distill --json reports teacher, student before/after, sizes and MACs; bad usage exits 2 in one line', () => {
    const dir = tmpDir();
    const half = path.join(dir, 'half.onnx');
    assert.equal(cli(['prune', fx('digits_cnn.onnx'), '--structured', '--ratio', '0.5', '--no-bench', '-o', half]).code, 0);
    const out = path.join(dir, 'half.distilled.onnx');
    const r = cli(['distill', half, '--teacher', fx('digits_cnn.onnx'), '--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy'),
      '--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy'), '--epochs', '3', '--lr', '0.002', '--no-bench', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.alpha, 0.7);
    assert.deepEqual(j.losses, ['distillation', 'cross-entropy']);
    assert.ok(j.teacher.accuracy > 0.98 && j.student.before.accuracy < 0.8 && j.student.after.accuracy >= 0.95, r.stdout);
    assert.ok(j.student.macs < 0.3 * j.teacher.macs && j.student.params < j.teacher.params);
    assert.equal(j.history.length, 3);
    assert.ok(fs.existsSync(out));
    for (const bad of [
      ['distill', half, '--train', fx('digits_train_x.npy')],
      ['distill', half, '--teacher', fx('digits_cnn.onnx'), '--train', fx('digits_train_x.npy'), '--alpha', '0.5'],
      ['distill', half, '--teacher', fx('digits_cnn.onnx'), '--train', fx('digits_train_x.npy'), '--match', 'nonsense'],
    ]) {
      const e = cli(bad);
      assert.equal(e.code, 2, e.stderr);
      assertNoStack(e.stderr);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
