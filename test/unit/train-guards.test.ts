import { strict as assert } from 'assert';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { DataType } from '../../src/core/ir/dtype';
import { Graph, Node } from '../../src/core/ir/graph';
import { fit, trainingRefusal } from '../../src/core/train';
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

  it('early-exit (If and multi-output forms) and runtime-widths models: train and distill say what the model is and what to do, exit 2', () => {
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
