import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { quickQuantize } from '../../src/core/jobs/quick-int8';
import { parseRecipe } from '../../src/core/recipe';
import { onnxToBytes } from '../../src/core/formats/onnx';
import { FIXTURES, tmpDir } from './helpers/ort';
import { transformerEncoder } from './helpers/models';
import { cli } from './cli.test';

describe('recipes', () => {
  it('validates untrusted recipe JSON before any work starts', () => {
    const bad: unknown[] = [
      null,
      { steps: [] },
      { steps: [{ step: 'shrink' }] },
      { steps: [{ step: 'quantize', mode: 'int3' }] },
      { steps: [{ step: 'prune', ratio: 1.5 }] },
      { steps: [{ step: 'prune', ratio: 0.5, targetMacs: 0.3 }] },
      { steps: [{ step: 'quantize', mode: 'dynamic' }, { step: 'prune', ratio: 0.5 }] },
      { steps: [{ step: 'substitute', kind: 'magic' }] },
    ];
    for (const b of bad) assert.throws(() => parseRecipe(b, 'r.json'), (e: Error) => e instanceof UsageError && e.message.startsWith('r.json: '), JSON.stringify(b));
    const ok = parseRecipe({ steps: [{ step: 'prune', ratio: 0.3 }, { step: 'quantize', mode: 'fp16' }] });
    assert.equal(ok.steps.length, 2);
  });

  it('compress --recipe runs the bundled example: much smaller, accuracy kept', () => {
    const out = path.join(tmpDir(), 'c.onnx');
    const ex = path.resolve(FIXTURES, '../../examples');
    const r = cli(['compress', path.join(ex, 'digits_cnn.onnx'), '--recipe', path.join(ex, 'recipe.json'), '--calib', path.join(ex, 'digits_calib_x.npy'), '--eval', path.join(ex, 'digits_test_x.npy'), '--labels', path.join(ex, 'digits_test_y.npy'), '--runs', '10', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.steps.map((s: { step: string }) => s.step), ['prune', 'quantize']);
    assert.ok(j.after.sizeBytes < 0.1 * j.before.sizeBytes, `size ${j.after.sizeBytes / j.before.sizeBytes}`);
    assert.ok(j.fidelity.accuracy.reference - j.fidelity.accuracy.candidate <= 0.01);
    const missingCalib = cli(['compress', path.join(ex, 'digits_cnn.onnx'), '--recipe', path.join(ex, 'recipe.json'), '-o', out]);
    assert.equal(missingCalib.code, 2);
    const badJson = path.join(tmpDir(), 'bad.json');
    fs.writeFileSync(badJson, '{ "steps": [ ');
    const bj = cli(['compress', path.join(ex, 'digits_cnn.onnx'), '--recipe', badJson, '-o', out]);
    // A broken recipe is a usage error like every other recipe error (exit 2), in one line naming the file.
    assert.equal(bj.code, 2);
    assert.match(bj.stderr.split('\n')[0], /^error: .*bad\.json: not valid JSON/);
  });

  it('never writes over a file a recipe reads (a distill teacher), and refuses a recipe that is not a small regular file', () => {
    const dir = tmpDir();
    const teacher = path.join(dir, 'teacher.onnx');
    fs.copyFileSync(path.join(FIXTURES, 'digits_cnn.onnx'), teacher);
    const before = fs.readFileSync(teacher);
    const recipe = path.join(dir, 'r.json');
    fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'distill', epochs: 1, teacher }] }));
    const train = path.join(FIXTURES, '../../examples/digits_calib_x.npy');
    const r = cli(['compress', path.join(FIXTURES, 'digits_cnn.onnx'), '--recipe', recipe, '--train', train, '-o', teacher]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0], /refusing to overwrite the input file .*teacher\.onnx/);
    assert.ok(fs.readFileSync(teacher).equals(before), 'the teacher is unchanged');
    // A device or a huge file passed as --recipe is refused from its size and type, before reading it.
    const dev = cli(['compress', path.join(FIXTURES, 'digits_cnn.onnx'), '--recipe', '/dev/zero', '-o', path.join(dir, 'o.onnx')]);
    assert.equal(dev.code, 2);
    assert.match(dev.stderr.split('\n')[0], /\/dev\/zero: a recipe is a JSON file, and this is not a regular file/);
    const big = path.join(dir, 'big.json');
    fs.writeFileSync(big, Buffer.alloc(2 << 20, 0x20));
    const b = cli(['compress', path.join(FIXTURES, 'digits_cnn.onnx'), '--recipe', big, '-o', path.join(dir, 'o.onnx')]);
    assert.equal(b.code, 2);
    assert.match(b.stderr.split('\n')[0], /too large for a recipe/);
  });

  it("a recipe's relative file paths (a distill teacher) resolve against the recipe's folder, not the cwd", () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'models'));
    const teacher = path.join(dir, 'models', 'teacher.onnx');
    fs.copyFileSync(path.join(FIXTURES, 'digits_cnn.onnx'), teacher);
    const recipe = path.join(dir, 'models', 'distill.recipe.json');
    fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'distill', epochs: 1, teacher: 'teacher.onnx' }] }));
    // Run from another folder, which holds no teacher.onnx, with a relative --recipe path.
    const cwd = path.join(dir, 'elsewhere');
    fs.mkdirSync(cwd);
    const out = path.join(dir, 'out.onnx');
    const args = ['compress', path.join(FIXTURES, 'digits_cnn.onnx'), '--recipe', path.join('..', 'models', 'distill.recipe.json'), '--train', path.join(FIXTURES, 'digits_train_x.npy'), '--no-bench', '-o', out, '--json'];
    const r = cli(args, { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.existsSync(out));
    // The output may not overwrite the teacher named relative to the recipe.
    const clash = cli([...args.slice(0, -3), '-o', teacher], { cwd });
    assert.equal(clash.code, 2, clash.stderr);
    assert.match(clash.stderr, /refusing to overwrite the input file .*models\/teacher\.onnx/);
    // Absolute paths are kept; a recipe given as data (the panel) keeps its paths as they are.
    assert.equal(parseRecipe({ steps: [{ step: 'distill', teacher }] }, 'r', cwd).steps[0].options.teacher, teacher);
    assert.equal(parseRecipe({ steps: [{ step: 'distill', teacher: 't.onnx' }] }, 'r', cwd).steps[0].options.teacher, path.join(cwd, 't.onnx'));
    assert.equal(parseRecipe({ steps: [{ step: 'distill', teacher: 't.onnx' }] }).steps[0].options.teacher, 't.onnx');
  });

  it('--json reports carry the collapse warnings the text report prints', () => {
    const out = path.join(tmpDir(), 'p.onnx');
    const ex = path.resolve(FIXTURES, '../../examples');
    const r = cli(['prune', path.join(ex, 'digits_cnn.onnx'), '--structured', '--ratio', '0.9', '--eval', path.join(ex, 'digits_test_x.npy'), '--labels', path.join(ex, 'digits_test_y.npy'), '--no-bench', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { warnings: string[] };
    assert.equal(j.warnings.length, 1, JSON.stringify(j.warnings));
    assert.match(j.warnings[0], /^fidelity collapsed: .*What helps: /);
  });

  it('one-click INT8 picks dynamic for MatMul-heavy models and static for convolutional ones', async () => {
    const dir = tmpDir();
    const t = path.join(dir, 'transformer.onnx');
    fs.writeFileSync(t, onnxToBytes(transformerEncoder()));
    const a = await quickQuantize(t, path.join(dir, 't.int8.onnx'));
    assert.equal(a.mode, 'dynamic');
    assert.match(a.reason, /MatMul\/Gemm/);
    const b = await quickQuantize(path.join(FIXTURES, 'digits_cnn.onnx'), path.join(dir, 'c.int8.onnx'));
    assert.equal(b.mode, 'static');
    assert.match(b.reason, /generated random samples/);
    assert.ok(fs.statSync(path.join(dir, 'c.int8.onnx')).size < 0.3 * fs.statSync(path.join(FIXTURES, 'digits_cnn.onnx')).size);
  });
});
