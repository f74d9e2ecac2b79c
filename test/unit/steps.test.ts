import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { parseRecipe } from '../../src/core/recipe';
import { recipeJsonSchema, STEPS, stepForms } from '../../src/core/transforms/registry';
import { commands, runCli } from '../../src/cli/main';

const rejects = (recipe: unknown, message: RegExp) =>
  assert.throws(() => parseRecipe(recipe, 'r.json'), (e: Error) => e instanceof UsageError && message.test(e.message), `${JSON.stringify(recipe)} should fail with ${message}`);

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}


/** The panel's choices per format, flattened from its forms (what the assertions below compare). */
function recipeChoices(format: string) {
  const forms = stepForms(format);
  const values = (step: string, key: string) => (forms.find((f) => f.step === step)?.fields.find((f) => f.key === key)?.values ?? []).map(String);
  return {
    steps: forms.map((f) => f.step),
    quantizeModes: values('quantize', 'mode'),
    substituteKinds: values('substitute', 'kind'),
    pruneCriteria: values('prune', 'criterion'),
    recover: values('prune', 'recover'),
  };
}

describe('steps: one option schema for CLI, recipes, JSON Schema and the panel', () => {
  it('rejects recipe typos with the nearest valid key', () => {
    rejects({ steps: [{ step: 'prune', structured: true, ratio: 0.5, crtierion: 'random' }] }, /^r\.json: unknown key 'crtierion' in step 1 \(prune\); did you mean 'criterion'\?$/);
    rejects({ steps: [{ step: 'quantize', mode: 'static', options: { methd: 'percentile' } }] }, /unknown key 'options\.methd' in step 1 \(quantize\); did you mean 'method'\?/);
    rejects({ steps: [{ step: 'quantize', mode: 'static', options: { method: 'minmax', perChanel: true } }] }, /did you mean 'perChannel'\?/);
    rejects({ steps: [{ step: 'prnue', ratio: 0.5 }] }, /unknown step 'prnue'; did you mean 'prune'\?/);
    rejects({ step: [{ step: 'prune', ratio: 0.5 }] }, /unknown key 'step'; did you mean 'steps'\?/);
  });

  it('range-checks every option before any work (hostile recipes)', () => {
    // The two hostile cases from issue 15, then the other ranges it lists.
    rejects({ steps: [{ step: 'quantize', mode: 'cluster', options: { k: 0 } }] }, /step 1 \(quantize\): options\.k is one of 16, 256/);
    rejects({ steps: [{ step: 'quantize', mode: 'int4', options: { blockSize: 3 } }] }, /options\.blockSize is one of 32, 64, 128/);
    rejects({ steps: [{ step: 'substitute', kind: 'lowrank', rank: -5 }] }, /rank must be ≥ 1/);
    rejects({ steps: [{ step: 'substitute', kind: 'lowrank', rank: 2.5 }] }, /rank must be a whole number|rank/);
    rejects({ steps: [{ step: 'quantize', mode: 'static', options: { method: 'bogus' } }] }, /options\.method is one of minmax, percentile, entropy/);
    rejects({ steps: [{ step: 'substitute', kind: 'depthwise', multiplier: -2 }] }, /multiplier must be ≥ 1/);
    rejects({ steps: [{ step: 'prune', ratio: 0.5, steps: 1e12 }] }, /steps must be ≤ 100/);
    rejects({ steps: [{ step: 'prune', ratio: 0.5, steps: -1 }] }, /steps must be ≥ 1/);
    rejects({ steps: [{ step: 'prune', ratio: '0.5' }] }, /ratio must be a number/);
    rejects({ steps: [{ step: 'quantize', mode: 'dynamic', options: { k: 16 } }] }, /options\.k applies to mode cluster/);
    rejects({ steps: Array.from({ length: 33 }, () => ({ step: 'prune', ratio: 0.1 })) }, /at most 32 steps/);
  });

  it('fills defaults from the schema', () => {
    const r = parseRecipe({ steps: [{ step: 'prune', ratio: 0.3 }, { step: 'quantize', mode: 'int4' }] });
    assert.deepEqual(r.steps[0].options, { structured: true, ratio: 0.3, criterion: 'l1', recover: 'none', steps: 1, allocate: 'uniform', scope: 'layer', roundTo: 8 });
    assert.equal((r.steps[1].options.options as { symmetric: boolean }).symmetric, true);
  });

  it('the checked-in JSON Schema for *.recipe.json is the one the steps generate', () => {
    const root = path.resolve(__dirname, '../../..');
    const file = JSON.parse(fs.readFileSync(path.join(root, 'schemas/recipe.schema.json'), 'utf8')) as { properties: { steps: { items: { oneOf: Array<{ properties: Record<string, { const?: string; maximum?: number; description?: string }>; additionalProperties: boolean }> } } } };
    assert.deepEqual(file, recipeJsonSchema(), 'out of date: run npm run schema');
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    assert.deepEqual(pkg.contributes.jsonValidation, [{ fileMatch: '*.recipe.json', url: './schemas/recipe.schema.json' }]);
    const ids = file.properties.steps.items.oneOf.map((s) => {
      assert.equal(s.additionalProperties, false);
      return s.properties.step.const;
    });
    assert.deepEqual(ids, STEPS.map((s) => s.id));
    const prune = file.properties.steps.items.oneOf[0].properties;
    assert.equal(prune.steps.maximum, 100);
    assert.ok((prune.criterion.description ?? '').length > 10);
  });

  it('the panel offers per format exactly what the format supports', () => {
    assert.deepEqual(recipeChoices('onnx'), { steps: ['prune', 'substitute', 'train', 'distill', 'quantize', 'early-exit'], quantizeModes: ['dynamic', 'static', 'fp16', 'int4', 'cluster'], substituteKinds: ['lowrank', 'depthwise'], pruneCriteria: ['l1', 'l2', 'entropy', 'random'], recover: ['none', 'reconstruct', 'finetune', 'distill'] });
    assert.deepEqual(recipeChoices('tfjs-layers'), { steps: ['prune', 'substitute', 'quantize'], quantizeModes: ['uint8', 'uint16', 'fp16'], substituteKinds: ['depthwise'], pruneCriteria: ['l1', 'l2', 'entropy', 'random'], recover: ['none', 'reconstruct'] });
    assert.deepEqual(recipeChoices('tfjs-graph').steps, ['quantize']);
    assert.deepEqual(recipeChoices('tflite').steps, []);
    const sub = stepForms('onnx').find((f) => f.step === 'substitute')!;
    assert.deepEqual(sub.fields.map((f) => f.key), ['kind', 'multiplier', 'targetParams', 'recover', 'epochs']);
    assert.deepEqual(sub.fields[0].values, ['lowrank', 'depthwise']);
    assert.deepEqual(sub.fields[1].when, { key: 'kind', values: ['depthwise'] });
  });

  it('the forms say which data each chosen value reads, and which step runs last', () => {
    const forms = stepForms('onnx');
    const prune = forms.find((f) => f.step === 'prune')!;
    const recover = prune.fields.find((f) => f.key === 'recover')!;
    assert.deepEqual(recover.needs, { reconstruct: ['calib'], finetune: ['train', 'trainLabels'], distill: ['train'] });
    assert.deepEqual(prune.fields.find((f) => f.key === 'epochsPerStep')!.when, { key: 'recover', values: ['finetune', 'distill'] });
    const quantize = forms.find((f) => f.step === 'quantize')!;
    assert.equal(quantize.last, true);
    assert.equal(prune.last, undefined);
    const qat = quantize.fields.find((f) => f.key === 'options.qat')!;
    assert.equal(qat.kind, 'boolean');
    assert.deepEqual(qat.needs, { true: ['train'] });
    assert.deepEqual(quantize.fields.find((f) => f.key === 'mode')!.needs, { static: ['calib'] });
    // Every field a form offers (where it applies, as the panel shows it) is a key the recipe schema accepts, with its initial value.
    for (const form of forms) {
      const step: Record<string, unknown> = { step: form.step };
      const initial = Object.fromEntries(form.fields.map((f) => [f.key, f.initial]));
      for (const f of form.fields) {
        if (f.when && !f.when.values.includes(initial[f.when.key] as string)) continue;
        const [head, ...rest] = f.key.split('.');
        if (!rest.length) step[head] = f.initial;
        else ((step[head] ??= {}) as Record<string, unknown>)[rest.join('.')] = f.initial;
      }
      assert.doesNotThrow(() => parseRecipe({ steps: [step] }, 'form'), form.step);
    }
  });

  it('every command has --help with descriptions, defaults and an example', async () => {
    for (const c of commands) {
      const r = await run([c.name, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^usage: model-compressor ${c.name} `));
      assert.match(r.stdout, /\nexample:\n {2}model-compressor \S+ /, c.name);
      for (const [flag, spec] of Object.entries(c.flags)) {
        assert.ok(spec.help && spec.help.length > 3, `${c.name} --${flag} has no description`);
        assert.ok(r.stdout.includes(`--${flag}`), `${c.name} --help lists --${flag}`);
      }
    }
    const prune = await run(['prune', '--help']);
    assert.match(prune.stdout, /--round-to <n>[\s\S]*\(default: 8\)/);
    assert.match((await run(['inspect', '--help'])).stdout, /--layers/);
    assert.match((await run(['compare', '--help'])).stdout, /--seed/);
  });

  it('a usage error is one line (no usage dump); train, distill and early-exit list and accept no calibration flags they would ignore', async () => {
    const m = path.resolve(__dirname, '../../../test/fixtures/digits_cnn.onnx');
    for (const c of commands) {
      const r = await run([c.name, m, '--bogus-flag']);
      assert.equal(r.code, 2, c.name);
      assert.equal(r.stderr.split('\n').length, 1, `${c.name}: ${r.stderr}`);
      assert.match(r.stderr, /^error: unknown option '--bogus-flag'/);
    }
    assert.deepEqual(await run(['prun', m]), { code: 2, stdout: '', stderr: "error: unknown command 'prun'; did you mean 'prune'?" });
    assert.match((await run(['frobnicate'])).stderr, /^error: unknown command 'frobnicate' \(commands: inspect, .*train\)$/);
    for (const name of ['train', 'distill', 'early-exit']) {
      const help = (await run([name, '--help'])).stdout;
      assert.doesNotMatch(help, /--calib/, `${name} --help`);
      assert.match(help, /--train <data>|--train <x\.npy>/, `${name} --help lists --train`);
      const r = await run([name, m, '--calib', 'x.npy']);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, "error: unknown option '--calib'", name);
    }
    assert.match((await run(['prune', '--help'])).stdout, /--calib <data>[\s\S]*--calib-labels <y\.npy>/, 'prune reads --calib and, for Taylor, --calib-labels');
    // quantize and substitute read calibration inputs but no calibration labels.
    for (const name of ['quantize', 'substitute']) {
      const help = (await run([name, '--help'])).stdout;
      assert.match(help, /--calib <data>/, name);
      assert.doesNotMatch(help, /--calib-labels/, name);
    }
    // early-exit reads real data only: no random-sample count.
    assert.doesNotMatch((await run(['early-exit', '--help'])).stdout, /--samples/);
  });

  it('CLI flags come from the same schema: ranges, rules and typos are usage errors', async () => {
    const m = path.resolve(__dirname, '../../../test/fixtures/digits_cnn.onnx');
    const cases: Array<[string[], RegExp]> = [
      [['prune', m, '--structured', '--ratio', '0.5', '--critrion', 'l2'], /unknown option '--critrion' \(Did you mean --criterion\?\)/],
      [['prune', m, '--structured', '--ratio', '0.5', '--steps', '1e12'], /--steps must be ≤ 100/],
      [['prune', m, '--ratio', '0.5'], /choose one of --structured or --unstructured/],
      [['quantize', m, '--mode', 'cluster', '--k', '0'], /--k is one of 16, 256/],
      [['quantize', m, '--mode', 'int4', '--block-size', '3'], /--block-size is one of 32, 64, 128/],
      [['quantize', m, '--mode', 'dynamic', '--block-size', '32'], /--block-size applies to --mode int4/],
      [['substitute', m, '--lowrank', '--rank', '-5'], /--rank must be ≥ 1/],
      [['substitute', m, '--lowrank', '--multiplier', '2'], /--multiplier goes with --depthwise/],
      [['substitute', m, '--lowrank', '--max-error', '0.1'], /--max-error with --lowrank .*needs calibration data/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.stderr.split('\n')[0], message);
    }
  });
});
