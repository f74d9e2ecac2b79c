import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { parseRecipe, recipeNeedsEval, recipeNeedsTrain, runRecipe } from '../../src/core/recipe';
import { stepsTable } from '../../src/cli/commands/compress';
import { fidelityWarnings } from '../../src/core/runtime/fidelity-warnings';
import type { EvaluationReport } from '../../src/core/runtime/evaluate';
import type { TrainProgress } from '../../src/core/train/api';
import { distillStep } from '../../src/core/transforms/distill/step';
import { pruneModel } from '../../src/core/transforms/prune';
import { pruneStep } from '../../src/core/transforms/prune/step';
import { validateOptions } from '../../src/core/transforms/step';
import { cliProgress } from '../../src/cli/progress';
import { assertNoStack, cli } from './cli.test';
import { digitsData } from './helpers/digits';
import { FIXTURES, tmpDir } from './helpers/ort';

const fx = (f: string) => path.join(FIXTURES, f);
const DIGITS = ['--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy')];
const TRAIN = ['--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy')];

/** Notes without the one saying no epoch beat the original weights (fine-tuning an already trained model may not). */
const withoutEpoch0 = (notes: string[]) => notes.filter((n) => !/^no epoch beat the original weights on validation/.test(n));

/** Training events: each run's epochs count up from 1 (or from a resumed epoch), losses are finite. */
function assertTrainingEvents(events: TrainProgress[], runs: number, epochsPerRun: number) {
  const epochs = events.filter((e) => e.phase === 'epoch');
  assert.equal(epochs.length, runs * epochsPerRun, `epoch events: ${epochs.map((e) => e.epoch).join(',')}`);
  epochs.forEach((e, i) => assert.equal(e.epoch, (i % epochsPerRun) + 1));
  const steps = events.filter((e) => e.phase === 'step');
  assert.ok(steps.length >= epochs.length, 'per-step events');
  let last = { epoch: 0, step: 0 };
  let run = 0;
  for (const e of events) {
    assert.ok(Number.isFinite(e.loss) && e.loss >= 0, `loss ${e.loss}`);
    assert.ok(e.epochs === epochsPerRun && e.epoch >= 1 && e.epoch <= e.epochs);
    if (e.phase !== 'step') continue;
    if (e.epoch === 1 && e.step === 1) run++;
    else assert.ok(e.epoch > last.epoch || (e.epoch === last.epoch && e.step === last.step + 1), `monotone: ${JSON.stringify(last)} → ${e.epoch}/${e.step}`);
    last = { epoch: e.epoch, step: e.step };
  }
  assert.equal(run, runs);
}

describe('CLI progress of training', () => {
  const feed = (p: ReturnType<typeof cliProgress>) => {
    p.onProgress?.('step 2/3 (distill): distilling');
    for (let e = 1; e <= 2; e++) {
      for (let s = 1; s <= 3; s++) p.onTrainProgress({ phase: 'step', epoch: e, epochs: 2, step: s, steps: 3, loss: 1 / (e * s), lr: 1e-3, samplesPerSecond: 100, etaSeconds: 9 - e * s });
      p.onTrainProgress({ phase: 'epoch', epoch: e, epochs: 2, step: 3, steps: 3, loss: 0.5 / e, lr: 1e-3, samplesPerSecond: 100, etaSeconds: 6 - 3 * e, metric: 0.9 + e / 100 }, '2:distill');
    }
    p.done();
  };
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    const stream = { isTTY, columns: 120, write: (t: string) => chunks.push(t) > 0, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => stream, removeListener: () => stream };
    return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
  };

  it('a terminal bar shows epoch, loss, the last validation metric and the ETA; each epoch gets a line and a JSON point', () => {
    const tty = sink(true);
    const p = cliProgress({}, tty.stream);
    feed(p);
    assert.match(tty.text(), /distilling \[=+-*\] \d+% epoch 1\/2 loss 0\.3333 ETA \d+s/);
    assert.match(tty.text(), /epoch 2\/2 loss 0\.1667 val 0\.9100 ETA/);
    assert.match(tty.text(), /2:distill: epoch 2\/2: loss 0\.2500, validation accuracy 0\.9200, lr 1\.00e-3, 100 samples\/s\n/);
    assert.deepEqual(p.epochs.map((e) => [e.step, e.run, e.epoch, e.metric]), [['2:distill', 1, 1, 0.91], ['2:distill', 1, 2, 0.92]]);
  });

  it('plain lines off a terminal; with --json nothing is printed but the epochs are kept', () => {
    const plain = sink(false);
    feed(cliProgress({}, plain.stream));
    assert.deepEqual(plain.text().split('\n').filter((l) => /epoch/.test(l)).map((l) => l.replace(/ \(ETA.*/, '')), [
      '2:distill: epoch 1/2: loss 0.5000, validation accuracy 0.9100, lr 1.00e-3, 100 samples/s',
      '2:distill: epoch 2/2: loss 0.2500, validation accuracy 0.9200, lr 1.00e-3, 100 samples/s',
    ]);
    const quiet = sink(false);
    const q = cliProgress({ json: true }, quiet.stream);
    feed(q);
    assert.equal(quiet.text(), '');
    assert.equal(q.epochs.length, 2);
  });
});

describe('training steps in recipes: validation', () => {
  const rejects = (recipe: unknown, message: RegExp) =>
    assert.throws(() => parseRecipe(recipe, 'r.json'), (e: Error) => e instanceof UsageError && message.test(e.message), `${JSON.stringify(recipe)} should fail with ${message}`);

  it('validates train, distill and early-exit like every other step, with early-exit last', () => {
    const r = parseRecipe({ steps: [{ step: 'prune', ratio: 0.5 }, { step: 'distill', epochs: 2 }, { step: 'train', epochs: 1, valSplit: 0.1 }, { step: 'early-exit', minAgreement: 0.99 }] });
    assert.deepEqual(r.steps.map((s) => s.step), ['prune', 'distill', 'train', 'early-exit']);
    assert.equal(r.steps[1].options.temperature, 4);
    assert.equal(r.steps[2].options.optimizer, 'adamw');
    assert.equal(recipeNeedsTrain(r), 'step 2 (distill)');
    assert.equal(recipeNeedsTrain(parseRecipe({ steps: [{ step: 'substitute', kind: 'depthwise', recover: 'finetune' }] })), 'step 1 (substitute): recover finetune');
    assert.equal(recipeNeedsTrain(parseRecipe({ steps: [{ step: 'prune', ratio: 0.5 }] })), undefined);
    rejects({ steps: [{ step: 'distill', temprature: 2 }] }, /unknown key 'temprature' in step 1 \(distill\); did you mean 'temperature'\?/);
    rejects({ steps: [{ step: 'train', epochs: 0 }] }, /step 1 \(train\): epochs must be ≥ 1/);
    rejects({ steps: [{ step: 'train', optimizer: 'adam', momentum: 0.9 }] }, /momentum and nesterov go with optimizer sgd/);
    rejects({ steps: [{ step: 'early-exit', threshold: 0.9 }, { step: 'prune', ratio: 0.5 }] }, /^r\.json: step 1 \(early-exit\) must be the last step: its If model/);
    rejects({ steps: [{ step: 'early-exit', threshold: 0.9 }, { step: 'quantize', mode: 'dynamic' }] }, /step 1 \(early-exit\) must be the last step/);
    rejects({ steps: [{ step: 'quantize', mode: 'dynamic' }, { step: 'early-exit', threshold: 0.9 }] }, /step 1 \(quantize\) must be the last step: the other steps need float weights/);
    rejects({ steps: [{ step: 'early-exit' }] }, /exactly one of maxAccuracyDrop, minAgreement or threshold/);
    rejects({ steps: [{ step: 'early-exit', widths: [0.5, 1], threshold: 0.9 }] }, /widths builds a width-switchable model; threshold belongs to early exits/);
    rejects({ steps: [{ step: 'substitute', kind: 'depthwise', epochs: 3 }] }, /epochs goes with recover finetune or distill/);
  });

  it('a preview (plan) of a recipe with train and distill steps trains nothing and needs no training data', async () => {
    const recipe = parseRecipe({ steps: [{ step: 'prune', ratio: 0.5 }, { step: 'distill', epochs: 2 }, { step: 'train', epochs: 1 }] });
    const r = await runRecipe(openModel(fx('digits_cnn.onnx')), recipe, { plan: true });
    assert.deepEqual(r.steps.map((x) => x.step), ['prune', 'distill', 'train']);
    assert.match(r.steps[1].detail, /same structure/);
    assert.equal(r.steps[1].params, r.steps[0].params);
    assert.equal(r.steps[2].macs, r.steps[0].macs);
  });

  it('the CLI refuses a training recipe without --train, and a broken recipe, with exit 2 in one line', () => {
    const dir = tmpDir();
    const recipe = path.join(dir, 'r.recipe.json');
    fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'prune', ratio: 0.5 }, { step: 'distill' }] }));
    const r = cli(['compress', fx('digits_cnn.onnx'), '--recipe', recipe, '-o', path.join(dir, 'o.onnx')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0], /^error: the recipe trains \(step 2 \(distill\)\): give training inputs \(--train/);
    fs.writeFileSync(recipe, '{"steps": [');
    const b = cli(['compress', fx('digits_cnn.onnx'), '--recipe', recipe, '-o', path.join(dir, 'o.onnx')]);
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr.split('\n')[0], /r\.recipe\.json: not valid JSON/);
    assertNoStack(r.stderr + b.stderr);
  });

  it('the CLI refuses an early-exit recipe without real --eval before running any step (exit 2, one line)', () => {
    const dir = tmpDir();
    const recipe = path.join(dir, 'ee.recipe.json');
    fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'prune', ratio: 0.5 }, { step: 'early-exit', minAgreement: 0.99 }] }));
    assert.equal(recipeNeedsEval(parseRecipe(JSON.parse(fs.readFileSync(recipe, 'utf8')))), 'step 2 (early-exit)');
    assert.equal(recipeNeedsEval(parseRecipe({ steps: [{ step: 'early-exit', widths: [0.5, 1] }] })), 'step 1 (early-exit): widths');
    assert.equal(recipeNeedsEval(parseRecipe({ steps: [{ step: 'prune', ratio: 0.5 }, { step: 'distill' }] })), undefined);
    const out = path.join(dir, 'o.onnx');
    for (const extra of [[], ['--eval', 'random:8']]) {
      const r = cli(['compress', fx('digits_cnn.onnx'), '--recipe', recipe, '--train', fx('digits_calib_x.npy'), '--progress', ...extra, '-o', out]);
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.match(lines[0], /^error: the recipe's step 2 \(early-exit\) needs real evaluation data: give --eval ex\.npy/);
      assert.ok(!/step 1\/2|prun/i.test(r.stderr), `no step ran: ${r.stderr}`);
      assertNoStack(r.stderr);
    }
    assert.ok(!fs.existsSync(out));
  });

  it('--calib-labels follow the data-flag conventions: checked against the calibration count', () => {
    const dir = tmpDir();
    const r = cli(['prune', fx('digits_cnn.onnx'), '--structured', '--ratio', '0.5', '--criterion', 'taylor', '--calib', fx('digits_calib_x.npy'), '--calib-labels', fx('digits_test_y.npy'), '-o', path.join(dir, 'o.onnx')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0], /digits_test_y\.npy holds 597 labels for \d+ calibration samples/);
    const n = cli(['prune', fx('digits_cnn.onnx'), '--structured', '--ratio', '0.5', '--criterion', 'taylor', '--calib-labels', fx('digits_test_y.npy'), '-o', path.join(dir, 'o.onnx')]);
    assert.equal(n.code, 2, n.stderr);
    assert.match(n.stderr.split('\n')[0], /--criterion taylor needs calibration data/);
    assertNoStack(r.stderr + n.stderr);
  });
});

describe('training steps: Taylor with labels, progress, recipes, substitute recovery', function () {
  this.timeout(600000);

  it('Taylor importance with --calib-labels (cross-entropy) ranks channels differently from KL to the model itself', async () => {
    const model = openModel(fx('digits_cnn.onnx'));
    const d = await digitsData(model);
    const o = validateOptions(pruneStep, { ratio: 0.5, criterion: 'taylor' }, String);
    assert.ok(o.ok);
    const kl = await pruneStep.apply(model, o.value, { calib: d.test });
    const ce = await pruneStep.apply(model, o.value, { calib: d.test, calibLabels: d.testLabels });
    // The kept channels show in the pruned weights.
    const kept = (r: typeof kl) => [...r.model.graph.initializers.values()].map((t) => Array.from(t.toFloat32().subarray(0, 64)).join(',')).join('|');
    assert.equal(kl.outcome.groups.length, ce.outcome.groups.length);
    assert.notEqual(kept(kl), kept(ce), 'labels change the loss whose gradient scores the channels');
    const cli1 = cli(['prune', fx('digits_cnn.onnx'), '--structured', '--ratio', '0.5', '--criterion', 'taylor', '--calib', fx('digits_test_x.npy'), '--calib-labels', fx('digits_test_y.npy'), '--no-bench', '-o', path.join(tmpDir(), 'o.onnx')]);
    assert.equal(cli1.code, 0, cli1.stderr);
  });

  it('prune → finetune and distill report training progress per step and per epoch', async () => {
    const model = openModel(fx('digits_cnn.onnx'));
    const d = await digitsData(model);
    const events: TrainProgress[] = [];
    const ctx = { train: d.train, trainLabels: d.trainLabels, onTrainProgress: (p: TrainProgress) => events.push(p) };
    const o = validateOptions(pruneStep, { ratio: 0.5, recover: 'finetune', steps: 2, epochsPerStep: 2 }, String);
    assert.ok(o.ok);
    await pruneStep.apply(model, o.value, ctx);
    assertTrainingEvents(events, 2, 2);
    events.length = 0;
    const student = (await pruneModel(model, { structured: true, ratio: 0.5 })).model;
    const dOpts = validateOptions(distillStep, { epochs: 2 }, String);
    assert.ok(dOpts.ok);
    await distillStep.apply(student, dOpts.value, { ...ctx, original: model });
    assertTrainingEvents(events, 1, 2);
  });

  it('recipe prune 50% → distill → quantize dynamic on digits_cnn recovers the accuracy the pruning lost', () => {
    const dir = tmpDir();
    const run = (steps: unknown[], extra: string[] = []) => {
      const recipe = path.join(dir, `r${steps.length}.recipe.json`);
      fs.writeFileSync(recipe, JSON.stringify({ steps }));
      const r = cli(['compress', fx('digits_cnn.onnx'), '--recipe', recipe, ...DIGITS, ...extra, '--no-bench', '-o', path.join(dir, `o${steps.length}.onnx`), '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { steps: Array<{ step: string }>; fidelity: { accuracy: { reference: number; candidate: number } }; curves: Array<{ step: string; run: number; epoch: number; loss: number }> | null };
    };
    const prune = { step: 'prune', structured: true, ratio: 0.5 };
    const quantize = { step: 'quantize', mode: 'dynamic' };
    const plain = run([prune, quantize]);
    const recovered = run([prune, { step: 'distill', epochs: 3, lr: 0.002 }, quantize], TRAIN);
    assert.deepEqual(recovered.steps.map((s) => s.step), ['prune', 'distill', 'quantize']);
    const before = plain.fidelity.accuracy.candidate;
    const after = recovered.fidelity.accuracy.candidate;
    assert.ok(before < 0.8, `pruned without recovery: ${before}`);
    assert.ok(after >= 0.93 && after > before + 0.1, `recovered: ${after} (un-recovered ${before}, original ${recovered.fidelity.accuracy.reference})`);
    assert.equal(plain.curves, null);
    assert.deepEqual(recovered.curves!.map((e) => [e.step, e.run, e.epoch]), [['2:distill', 1, 1], ['2:distill', 1, 2], ['2:distill', 1, 3]]);
    assert.ok(recovered.curves!.every((e) => Number.isFinite(e.loss)));
  });

  it('substitute --depthwise --recover finetune: the accuracy the substitution lost comes back', () => {
    const out = path.join(tmpDir(), 'dw.onnx');
    const r = cli(['substitute', fx('digits_cnn.onnx'), '--depthwise', '--multiplier', '1', '--no-refit', '--recover', 'finetune', '--epochs', '3', ...TRAIN, ...DIGITS, '--no-bench', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { layers: unknown[]; recovery: { method: string; original: number; afterSubstitute: { accuracy: number }; afterRetrain: { accuracy: number }; kept: string }; fidelity: { accuracy: { candidate: number } }; curves: unknown[] };
    assert.ok(j.layers.length >= 1);
    assert.equal(j.recovery.method, 'finetune');
    assert.ok(j.recovery.afterSubstitute.accuracy < 0.8, `substituted: ${j.recovery.afterSubstitute.accuracy}`);
    assert.ok(j.recovery.afterRetrain.accuracy >= 0.9, `retrained: ${j.recovery.afterRetrain.accuracy}`);
    assert.equal(j.recovery.kept, 'retrained');
    assert.equal(j.fidelity.accuracy.candidate, j.recovery.afterRetrain.accuracy);
    assert.equal(j.curves.length, 3);
    const bad = cli(['substitute', fx('digits_cnn.onnx'), '--depthwise', '--recover', 'finetune', '-o', path.join(tmpDir(), 'o.onnx')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr.split('\n')[0], /^error: --recover finetune needs training inputs: --train x.npy/);
  });

  it('a cancelled train (SIGINT) writes the best weights so far, says so in one line and exits 130', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'mlp.onnx');
    const CLI = path.resolve(__dirname, '../../src/cli/main.js');
    const child = spawn(process.execPath, [CLI, 'train', fx('digits_mlp.onnx'), ...TRAIN, '--epochs', '1000', '--batch', '8', '--val-split', '0.2', '--no-bench', '-o', out], { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (!sent && /epoch 1\/1000:/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 130, stderr);
    const last = stderr.trim().split('\n').pop()!;
    assert.match(last, /^cancelled after \d+ complete epoch\(s\): wrote (the best weights \(epoch \d+\)|the original weights \(no epoch beat them on validation\)) to .*mlp\.onnx; checkpoint .*mlp\.onnx\.ckpt \(continue with --resume\)$/);
    assert.ok(fs.existsSync(out) && fs.existsSync(`${out}.ckpt`));
    assert.ok(openModel(out).graph.nodes.length > 0);
    // --resume continues from the checkpoint: one more epoch, not k + 1; success then removes the checkpoint.
    const k = Number(/after (\d+) complete epoch/.exec(last)![1]);
    const again = cli(['train', fx('digits_mlp.onnx'), ...TRAIN, '--epochs', String(k + 1), '--batch', '8', '--val-split', '0.2', '--no-bench', '--resume', '-o', out, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const j = JSON.parse(again.stdout) as { epochs: unknown[]; steps: number; checkpoint: unknown };
    assert.equal(j.epochs.length, k + 1);
    assert.equal(j.steps, (k + 1) * Math.ceil(960 / 8));
    assert.equal(j.checkpoint, null);
    assert.ok(!fs.existsSync(`${out}.ckpt`), 'the checkpoint is removed once training completes');
  });

  /** Runs `train` with --progress and sends SIGINT when stderr first matches `when`; resolves with the exit code and stderr. */
  const interrupt = async (args: string[], when: RegExp) => {
    const CLI = path.resolve(__dirname, '../../src/cli/main.js');
    const child = spawn(process.execPath, [CLI, 'train', ...args, '--progress'], { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
    let stderr = '';
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (!sent && when.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    return { code, stderr, stdout, last: stderr.trim().split('\n').pop()! };
  };

  it('train cancelled before the first epoch completes writes nothing and says so', async () => {
    const out = path.join(tmpDir(), 'cnn.onnx');
    const r = await interrupt([fx('digits_cnn.onnx'), ...TRAIN, '--epochs', '1000', '--batch', '1', '--no-bench', '-o', out], /training, epoch 1\/1000/);
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.last, 'cancelled before the first epoch completed: wrote nothing');
    assert.ok(!fs.existsSync(out));
  });

  it('train cancelled while measuring the result still says where the trained weights are', async () => {
    const out = path.join(tmpDir(), 'mlp.onnx');
    const r = await interrupt([fx('digits_mlp.onnx'), ...TRAIN, '--epochs', '1', '--batch', '64', '--runs', '100000', '-o', out], /measuring latency/);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.last, /^cancelled while measuring the result \(no report\) after 1 complete epoch\(s\): wrote the latest weights to .*mlp\.onnx; checkpoint .*mlp\.onnx\.ckpt \(continue with --resume\)$/);
    assert.equal(r.stdout, '');
    assert.ok(openModel(out).graph.nodes.length > 0);
  });

  it('train --eval chooses the best epoch on the evaluation data and says the reported accuracy is not a test accuracy', () => {
    const out = path.join(tmpDir(), 't.onnx');
    const r = cli(['train', fx('digits_mlp.onnx'), ...TRAIN, ...DIGITS, '--epochs', '1', '--batch', '64', '--lr', '1e-4', '--no-bench', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /note: the best epoch was chosen on the evaluation data \(--eval\), so the accuracy reported on it is not a test accuracy/);
    const s = cli(['train', fx('digits_mlp.onnx'), ...TRAIN, '--val-split', '0.2', '--epochs', '1', '--batch', '64', '--lr', '1e-4', '--no-bench', '-o', out, '--json']);
    assert.equal(s.code, 0, s.stderr);
    const j = JSON.parse(s.stdout) as { validation: string; notes: string[]; curves: Array<{ epoch: number; metric: number }> };
    assert.equal(j.validation, 'val-split');
    assert.deepEqual(withoutEpoch0(j.notes), []);
    assert.equal(j.curves.length, 1);
    assert.ok(j.curves[0].metric > 0.5);
  });

  it('train --val-split with --eval (the help example): best epoch chosen on the split, final accuracy on --eval', () => {
    const out = path.join(tmpDir(), 't.onnx');
    const r = cli(['train', fx('digits_mlp.onnx'), ...TRAIN, '--val-split', '0.2', ...DIGITS, '--epochs', '1', '--batch', '64', '--lr', '1e-4', '--no-bench', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { validation: string; notes: string[]; accuracy: { after: number; selectedOn: boolean; data: string } };
    assert.equal(j.validation, 'val-split');
    assert.equal(j.accuracy.selectedOn, false);
    assert.ok(j.accuracy.after > 0.5, `accuracy on --eval: ${j.accuracy.after}`);
    assert.equal(withoutEpoch0(j.notes).length, 1);
    assert.match(withoutEpoch0(j.notes)[0], /chosen on the held-out split .* the accuracy reported on the evaluation data \(--eval\) is independent/);
    const t = cli(['train', fx('digits_mlp.onnx'), ...TRAIN, '--val-split', '0.2', ...DIGITS, '--epochs', '1', '--batch', '64', '--lr', '1e-4', '--no-bench', '-o', out]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /on the held-out split/);
    assert.doesNotMatch(t.stdout, /not a test accuracy/);
  });

  it('compress with a train step that picks its best epoch on --eval shows the step note (text and --json)', () => {
    const dir = tmpDir();
    const recipe = path.join(dir, 'train.recipe.json');
    fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'train', epochs: 1, batchSize: 64, lr: 1e-4 }] }));
    const base = ['compress', fx('digits_mlp.onnx'), '--recipe', recipe, ...TRAIN, ...DIGITS, '--no-bench', '-o', path.join(dir, 'o.onnx')];
    const j = cli([...base, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const steps = (JSON.parse(j.stdout) as { steps: Array<{ step: string; notes?: string[] }> }).steps;
    assert.equal(withoutEpoch0(steps[0].notes!).length, 1);
    assert.match(withoutEpoch0(steps[0].notes!)[0], /chosen on the evaluation data \(--eval\), so the accuracy reported on it is not a test accuracy/);
    const t = cli(base);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /note: step 1 \(train\): the best epoch was chosen on the evaluation data/);
  });
});

describe('compress steps table', () => {
  it('keeps every figure of a long step detail (no cut)', () => {
    const detail = '12 epochs, α = 0.7, T = 4, accuracy 0.4439 → 0.9876, agreement with the teacher 0.9912 → 0.9954';
    const text = stepsTable([
      { step: 'prune', detail: '4 groups pruned', params: 178_000, macs: 1_200_000 },
      { step: 'distill', detail, params: 178_000, macs: 1_200_000 },
    ]);
    assert.ok(text.split('\n').some((l) => l.endsWith(detail)), text);
    assert.doesNotMatch(text, /…/);
  });
});

describe('train report: judged by accuracy, not by closeness to the untrained original', () => {
  const report = (cosine: number, top1: number, acc?: [number, number], nonFinite?: number): EvaluationReport =>
    ({
      before: {},
      after: {},
      fidelity: { samples: 32, batchSize: 32, data: '32 random samples', runtime: 'ONNX Runtime', accuracy: acc && { reference: acc[0], candidate: acc[1] }, outputs: [{ name: 'y', elements: 320, maxAbsDiff: 1, meanAbsDiff: 1, cosine, sqnrDb: 3, top1Agreement: top1, nonFinite }] },
    }) as unknown as EvaluationReport;
  it('moved outputs (low cosine and agreement) are no collapse after train; the same figures are one for prune', () => {
    assert.deepEqual(fidelityWarnings(report(0.3, 0.2), 'train'), []);
    assert.deepEqual(fidelityWarnings(report(0.3, 0.2, [0.2, 0.95]), 'train'), []);
    assert.equal(fidelityWarnings(report(0.3, 0.2), 'prune').length, 1);
  });
  it('an accuracy drop or non-finite outputs after train warn with a training remedy', () => {
    const w = fidelityWarnings(report(0.99, 0.99, [0.95, 0.8]), 'train');
    assert.equal(w.length, 1);
    assert.match(w[0], /^training made the model worse: accuracy dropped 15\.0 points\. What helps: a lower --lr/);
    assert.doesNotMatch(w[0], /pruned|float|cosine/);
    assert.match(fidelityWarnings(report(0, 0, undefined, 5), 'train')[0], /5 output value\(s\) are ±Infinity or NaN/);
  });
});

