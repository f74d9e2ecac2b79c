import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { DataType } from '../../src/core/ir/dtype';
import { Graph, Node } from '../../src/core/ir/graph';
import { openModel } from '../../src/core/formats/registry';
import { readNpy } from '../../src/core/runtime/data/npy';
import { parseRecipe, runRecipe } from '../../src/core/recipe';
import type { HostTensor } from '../../src/core/runtime/session';
import { fit, tensorSampleSet, trainingRefusal, type FitOptions } from '../../src/core/train';
import { assertNoStack, cli } from './cli.test';
import { ModelBuilder } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';

const fx = (f: string) => path.join(FIXTURES, f);
const TRAIN = ['--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy')];
const EVAL = ['--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy')];

/** One line on stderr, no stack. */
function oneLine(stderr: string): string {
  assertNoStack(stderr);
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${stderr}`);
  return lines[0];
}

describe('training refuses models it cannot train as one graph', function () {
  this.timeout(300_000);

  it('early-exit (If and multi-output forms) and runtime-widths models: train and distill say what the model is and what to do, exit 2', async () => {
    const dir = tmpDir();
    const made: Array<[string, RegExp]> = [];
    for (const [name, extra, what] of [
      ['exits.onnx', ['--threshold', '0.9', ...EVAL], /is an early-exit model .*train the backbone \(the model before early-exit\), then add the exits again/],
      ['exits-multi.onnx', ['--threshold', '0.9', '--form', 'multi-output', ...EVAL], /is an early-exit model/],
      ['widths.onnx', ['--widths', '0.5,1', '--eval', fx('digits_test_x.npy')], /is a runtime-widths model .*train the full-width model/],
    ] as const) {
      const out = path.join(dir, name);
      const r = cli(['early-exit', fx('digits_cnn.onnx'), ...TRAIN, ...extra, '--epochs', '1', '--no-bench', '-o', out]);
      assert.equal(r.code, 0, r.stderr);
      made.push([out, what]);
    }
    // compare runs an early-exit model per sample (its decisions are per batch) and says so.
    const c = cli(['compare', fx('digits_cnn.onnx'), made[0][0], '--data', fx('digits_test_x.npy')]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /\(597 samples, batch 1\)/);
    assert.match(c.stdout, /note: an early-exit model is compared per sample \(batch 1\)/);
    // As the reference (If and multi-output forms) it is compared on the plain model's outputs, as the other way round.
    const agreement = (args: string[]) => {
      const r = cli(['compare', ...args, '--data', fx('digits_test_x.npy'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { outputs: Array<{ name: string; top1Agreement: number }> };
      assert.deepEqual(j.outputs.map((o) => o.name), ['output']);
      return j.outputs[0].top1Agreement;
    };
    for (const ee of [made[0][0], made[1][0]]) assert.equal(agreement([ee, fx('digits_cnn.onnx')]), agreement([fx('digits_cnn.onnx'), ee]), ee);
    // Every compression refuses a runtime-widths model before any work: a step would change its widths unevenly
    // (fp16 left the sliced half width at SQNR ~9 dB) and be measured at one arbitrary width.
    const widthsFile = made[2][0];
    const recipe0 = path.join(dir, 'q.recipe.json');
    fs.writeFileSync(recipe0, JSON.stringify({ steps: [{ step: 'quantize', mode: 'fp16' }] }));
    for (const args of [
      ['quantize', widthsFile, '--mode', 'fp16'],
      ['prune', widthsFile, '--structured', '--ratio', '0.5'],
      ['substitute', widthsFile, '--lowrank'],
      ['compress', widthsFile, '--recipe', recipe0],
      ['early-exit', widthsFile, '--widths', '0.5', ...TRAIN, '--eval', fx('digits_test_x.npy')],
    ]) {
      const out = path.join(dir, 'refused.onnx');
      const r = cli([...args, '--no-bench', '-o', out]);
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      // Each command in its own words (early-exit names its --widths form), even when given training data.
      const line = oneLine(r.stderr);
      const cmd = args[0] === 'early-exit' ? 'early-exit --widths' : args[0];
      assert.equal(line, `error: ${widthsFile} is a runtime-widths model (each width runs a slice of shared weights): ${cmd} cannot keep every width consistent; apply ${cmd} to the full-width model, then build the widths again with early-exit --widths`);
      assert.ok(!fs.existsSync(out));
    }
    await assert.rejects(runRecipe(openModel(widthsFile), parseRecipe({ steps: [{ step: 'quantize', mode: 'fp16' }] })), (e: Error) => e instanceof UsageError && /is a runtime-widths model .*: quantize cannot keep every width consistent/.test(e.message));
    for (const [file, what] of made) {
      for (const args of [
        ['train', file, ...TRAIN, '--epochs', '1', '-o', path.join(dir, 't.onnx')],
        ['distill', file, '--teacher', fx('digits_cnn.onnx'), ...TRAIN, '--epochs', '1', '-o', path.join(dir, 'd.onnx')],
      ]) {
        const r = cli(args);
        assert.equal(r.code, 2, `${args[0]} ${file}: ${r.stderr}`);
        const line = oneLine(r.stderr);
        assert.match(line, what);
        assert.ok(line.includes(file), `names the file: ${line}`);
      }
      // As a teacher (distill --teacher, or a recipe's distill step) it is refused before any data
      // is read: the training inputs named here do not exist, and the error is about the teacher.
      const missing = path.join(dir, 'missing_x.npy');
      const recipe = path.join(dir, 'teacher.recipe.json');
      fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'prune', ratio: 0.25 }, { step: 'distill', teacher: file, epochs: 1 }] }));
      for (const args of [
        ['distill', fx('digits_cnn.onnx'), '--teacher', file, '--train', missing, '--epochs', '1', '-o', path.join(dir, 'd.onnx')],
        ['compress', fx('digits_cnn.onnx'), '--recipe', recipe, '--train', missing, '-o', path.join(dir, 'c.onnx')],
      ]) {
        const r = cli(args);
        assert.equal(r.code, 2, `${args[0]} with teacher ${file}: ${r.stderr}`);
        const line = oneLine(r.stderr);
        assert.ok(line.startsWith(`error: ${args[0] === 'compress' ? 'step 2 (distill): ' : ''}${file} is a`), `names the teacher first: ${line}`);
        assert.match(line, / is an? (early-exit|runtime-widths) model: as a teacher .* as the teacher$/);
        assert.ok(!fs.existsSync(path.join(dir, 'd.onnx')) && !fs.existsSync(path.join(dir, 'c.onnx')));
      }
    }
  });

  it('a trained weight behind control flow (an If branch reads it, or reads a value it reaches) is refused naming the node; weights after it train', async () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', [2, 4]);
    const cond = b.input('cond', [], DataType.BOOL);
    const [h] = b.node('MatMul', [x, b.init('W1', [4, 3])], {}, 1, 'first');
    b.init('Wb', [3, 3]);
    const branch = (name: string, weight?: string) => {
      const g = new Graph(name);
      g.nodes.push(weight ? new Node('MatMul', [h, weight], [`${name}_y`], `${name}_matmul`) : new Node('Identity', [h], [`${name}_y`], `${name}_id`));
      g.outputs.push({ name: `${name}_y`, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [2, 3] } });
      return g;
    };
    const [y] = b.node('If', [cond], { then_branch: branch('then_branch', 'Wb'), else_branch: branch('else_branch') }, 1, 'gate');
    const [z] = b.node('MatMul', [y, b.init('W2', [3, 5])], {}, 1, 'last');
    b.markOutput(z, 'logits');
    const model = b.build();
    model.path = 'branchy.onnx';
    for (const trainable of [undefined, ['W1'], ['Wb']]) {
      assert.match(trainingRefusal(model, trainable) ?? '', /^branchy\.onnx: node 'gate' \(If\) holds subgraphs \(control flow\) that trained weights reach/, String(trainable));
    }
    assert.equal(trainingRefusal(model, ['W2']), undefined, 'the weights after the If train');
    await assert.rejects(
      fit(model, { count: 4, gather: async () => ({}) }, { losses: [{ kind: 'cross-entropy', logits: 'logits', labels: 'labels' }], epochs: 1, batchSize: 2, optimizer: { kind: 'sgd', lr: 0.1 } }),
      (e: unknown) => e instanceof UsageError && /node 'gate' \(If\)/.test(e.message),
    );
  });
});

function npyTensor(file: string): HostTensor {
  const a = readNpy(fx(file));
  const b = new Uint8Array(a.data.length);
  b.set(a.data);
  return { dtype: a.dtype, dims: a.shape, data: a.dtype === DataType.INT64 ? new BigInt64Array(b.buffer) : new Float32Array(b.buffer) };
}

describe('training: the original weights compete as epoch 0', function () {
  this.timeout(300_000);
  const data = (x: string, y: string) => tensorSampleSet({ input: npyTensor(x), labels: npyTensor(y) });
  const train = data('digits_train_x.npy', 'digits_train_y.npy');
  const validation: FitOptions['validation'] = { data: data('digits_test_x.npy', 'digits_test_y.npy'), metric: 'accuracy' };
  const base = { losses: [{ kind: 'cross-entropy' as const, logits: 'output', labels: 'labels' }], batchSize: 64, seed: 1, validation };

  it('when every epoch is worse on validation than the original weights, those are returned (bestEpoch 0), and patience counts from epoch 0', async () => {
    const model = openModel(fx('digits_mlp.onnx'));
    // A learning rate far too high: every epoch ends near chance.
    const r = await fit(model, train, { ...base, epochs: 2, optimizer: { kind: 'sgd', lr: 0.5, momentum: 0.9 } });
    assert.equal(r.history.length, 2);
    assert.ok(r.initialMetric! > 0.95, `original accuracy ${r.initialMetric}`);
    assert.ok(r.history.every((h) => h.metric! < r.initialMetric!), JSON.stringify(r.history));
    assert.equal(r.bestEpoch, 0);
    assert.equal(r.bestMetric, r.initialMetric);
    for (const name of r.trainable) assert.deepEqual(r.model.graph.initializers.get(name)!.toFloat32(), model.graph.initializers.get(name)!.toFloat32(), name);
    const stopped = await fit(model, train, { ...base, epochs: 5, optimizer: { kind: 'sgd', lr: 0.5, momentum: 0.9 }, earlyStopping: { patience: 1 } });
    assert.equal(stopped.stopped, 'early-stopped');
    assert.equal(stopped.history.length, 1, 'one epoch worse than epoch 0 exhausts patience 1');
    // A sensible rate that improves on the original keeps a trained epoch.
    const good = await fit(model, train, { ...base, epochs: 1, optimizer: { kind: 'adamw', lr: 1e-4 } });
    if (good.history[0].metric! > good.initialMetric!) assert.equal(good.bestEpoch, 1);
    else assert.equal(good.bestEpoch, 0);
  });

  it('train says so: kept the original weights, no layer changed, exit 0 (text and --json)', () => {
    const out = path.join(tmpDir(), 'worse.onnx');
    const args = ['train', fx('digits_mlp.onnx'), ...TRAIN, ...EVAL, '--epochs', '1', '--optimizer', 'sgd', '--lr', '0.5', '--no-bench', '-o', out];
    const r = cli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kept the original weights \(epoch 0\) \(validation accuracy 0\.9\d+\)/);
    assert.match(r.stdout, /note: no epoch beat the original weights on validation \(accuracy 0\.9\d+ before training, 0\.\d+ at best after an epoch\): the original weights are kept/);
    // The counts add up: every trained tensor is left as it was.
    const trained = Number(/trained (\d+) weight tensors/.exec(r.stdout)?.[1]);
    assert.ok(trained > 0, r.stdout);
    assert.match(r.stdout, new RegExp(`^weight tensors changed: 0   left as they were: ${trained} \\(kept the original weights: no epoch beat them on validation\\)$`, 'm'));
    const j = JSON.parse(cli([...args, '--json']).stdout) as { bestEpoch: number; initialValidation: number; bestValidation: number; accuracy: { before: number; after: number } };
    assert.equal(j.bestEpoch, 0);
    assert.equal(j.bestValidation, j.initialValidation);
    assert.equal(j.accuracy.after, j.accuracy.before);
  });
});
