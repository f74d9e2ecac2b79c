import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { runCli } from '../../src/cli/main';
import { UsageError } from '../../src/core/errors';
import { openModel, saveModel } from '../../src/core/formats/registry';
import type { Model } from '../../src/core/ir/graph';
import { quickQuantize } from '../../src/core/jobs/quick-int8';
import { STEPS } from '../../src/core/transforms/registry';
import { FIXTURES, tmpDir } from './helpers/ort';

/**
 * Early-exit and runtime-widths models (written by `early-exit`) have control flow fitted to
 * their weights: every step refuses them in one line before any work, whoever calls it
 * (CLI command, recipe, worker's one-click INT8). Train and distill say it in their own words.
 */

function tagged(kind: 'early_exit' | 'runtime_widths'): { model: Model; file: string } {
  const file = path.join(tmpDir(), `${kind}.onnx`);
  const m = openModel(path.join(FIXTURES, 'digits_cnn.onnx'));
  m.metadata = [...m.metadata, [kind, '{}']];
  saveModel(m, file);
  return { model: openModel(file), file };
}

async function cli(argv: string[]) {
  const err: string[] = [];
  const code = await runCli(argv, { out: () => undefined, err: (t) => err.push(t) });
  return { code, stderr: err.join('\n') };
}

describe('dynamic-computation models: every step refuses them before any work', () => {
  for (const kind of ['early_exit', 'runtime_widths'] as const) {
    const what = kind === 'early_exit' ? 'an early-exit model' : 'a runtime-widths model';
    it(`each step refuses ${what}, naming the file and what to do`, async () => {
      const { model, file } = tagged(kind);
      const guarded = STEPS.filter((s) => !s.checksDynamicModels);
      assert.deepEqual(guarded.map((s) => s.id).sort(), ['early-exit', 'prune', 'quantize', 'substitute']);
      for (const step of guarded) {
        for (const run of [step.apply, step.plan]) {
          if (!run) continue;
          await assert.rejects(
            run.call(step, model, {} as never, {}),
            (e: Error) => e instanceof UsageError && e.message.startsWith(`${file} is ${what}`) && e.message.includes(`apply ${step.id} to the`),
            `step ${step.id}`,
          );
        }
      }
      await assert.rejects(quickQuantize(file, path.join(path.dirname(file), 'q.onnx')), (e: Error) => e instanceof UsageError && e.message.startsWith(`${file} is ${what}`));
    });
  }

  it('the CLI and a recipe refuse them in one line (exit 2) and write nothing', async () => {
    const { file } = tagged('runtime_widths');
    const dir = path.dirname(file);
    const before = fs.readdirSync(dir).sort();
    for (const argv of [
      ['quantize', file, '--mode', 'fp16', '-o', path.join(dir, 'h.onnx')],
      ['prune', file, '--structured', '--ratio', '0.3', '-o', path.join(dir, 'p.onnx')],
      ['substitute', file, '--lowrank', '-o', path.join(dir, 's.onnx')],
    ]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, `${argv[0]}: ${r.stderr}`);
      assert.equal(r.stderr.split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /is a runtime-widths model/);
    }
    const quantizeRecipe = path.join(tmpDir(), 'q.recipe.json');
    fs.writeFileSync(quantizeRecipe, JSON.stringify({ steps: [{ step: 'quantize', mode: 'dynamic' }] }));
    // Given training data, a recipe that trains nothing (or early-exit itself) still gets the step's wording.
    const ee = tagged('early_exit').file;
    for (const argv of [
      ['early-exit', ee, '--threshold', '0.9', '--train', path.join(FIXTURES, 'digits_train_x.npy'), '--eval', path.join(FIXTURES, 'digits_test_x.npy'), '-o', path.join(dir, 'e.onnx')],
      ['compress', ee, '--recipe', quantizeRecipe, '--train', path.join(FIXTURES, 'digits_train_x.npy'), '-o', path.join(dir, 'e.onnx')],
    ]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`is an early-exit model .*: ${argv[0]} would change the backbone`), r.stderr);
    }
    const recipe = path.join(dir, 'r.recipe.json');
    fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'quantize', mode: 'dynamic' }] }));
    const r = await cli(['compress', file, '--recipe', recipe, '-o', path.join(dir, 'c.onnx')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /is a runtime-widths model/);
    assert.deepEqual(fs.readdirSync(dir).sort(), [...before, 'r.recipe.json'].sort());
  });
});
