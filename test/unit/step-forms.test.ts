import { strict as assert } from 'assert';
import * as path from 'path';
import { parseRecipe } from '../../src/core/recipe';
import { stepForms } from '../../src/core/transforms/registry';
import type { DataNeedDto, RecipeDto, StepFormDto } from '../../src/protocol/jobs';
import { tmpDir } from './helpers/ort';

/**
 * The Compress panel's form logic (webview/step-forms.ts) against the engine's real forms:
 * bundled with esbuild as the build does, run here without a DOM (only `stepRow` draws).
 */
type StepState = { step: string; values: Record<string, string | number | boolean> };
/** The module's functions used here (webview code is outside this project's compile: it has DOM types). */
interface FormsModule {
  newStep(f: StepFormDto): StepState;
  recipeOf(steps: StepState[], forms: StepFormDto[]): RecipeDto;
  missingData(s: StepState, f: StepFormDto | undefined, filled: (slot: string) => boolean): Array<{ slot: DataNeedDto; what: string }>;
  missingMessage(m: { slot: DataNeedDto; what: string }): string;
  fitToForm(s: StepState, forms: StepFormDto[]): StepState | undefined;
  ordered(steps: StepState[], forms: StepFormDto[]): StepState[];
}

describe('Compress panel forms (webview/step-forms.ts)', () => {
  let forms: FormsModule;
  const onnx: StepFormDto[] = stepForms('onnx');

  before(async function () {
    this.timeout(30_000);
    const esbuild = (await import('esbuild')) as typeof import('esbuild');
    const out = path.join(tmpDir(), 'step-forms.cjs');
    await esbuild.build({ entryPoints: [path.resolve(__dirname, '../../../webview/step-forms.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'warning' });
    forms = require(out);
  });

  const form = (step: string) => onnx.find((f) => f.step === step)!;

  it('builds a recipe the engine accepts from every step at its initial values, nesting dotted keys and leaving out fields that do not apply', () => {
    // One step of each kind (of the steps that must run last, one recipe each).
    const middle = onnx.filter((f) => !f.last).map((f) => forms.newStep(f));
    for (const last of onnx.filter((f) => f.last)) {
      const recipe = forms.recipeOf(forms.ordered([forms.newStep(last), ...middle], onnx), onnx);
      assert.equal(recipe.steps[recipe.steps.length - 1].step, last.step);
      assert.doesNotThrow(() => parseRecipe(recipe, 'panel'), last.step);
    }
    const q = forms.newStep(form('quantize'));
    q.values.mode = 'static';
    q.values['options.method'] = 'entropy';
    q.values['options.qat'] = true;
    assert.deepEqual(forms.recipeOf([q], onnx).steps[0], { step: 'quantize', mode: 'static', options: { method: 'entropy', qat: true } });
    q.values.mode = 'dynamic';
    assert.deepEqual(forms.recipeOf([q], onnx).steps[0], { step: 'quantize', mode: 'dynamic' }, 'static-only options are left out');
  });

  it('says which data a chosen value needs until the slot is filled', () => {
    const p = forms.newStep(form('prune'));
    const none = () => false;
    assert.deepEqual(forms.missingData(p, form('prune'), none), []);
    p.values.recover = 'finetune';
    const m = forms.missingData(p, form('prune'), none);
    assert.deepEqual(m.map((x) => x.slot), ['train', 'trainLabels']);
    assert.equal(forms.missingMessage(m[0]), 'Pick training data first: recover finetune trains on it.');
    assert.deepEqual(forms.missingData(p, form('prune'), (s) => s === 'train').map((x) => x.slot), ['trainLabels']);
    p.values.recover = 'reconstruct';
    assert.equal(forms.missingMessage(forms.missingData(p, form('prune'), none)[0]), 'Pick calibration data first: recover reconstruct runs the model on it.');
  });

  it('fits steps kept from another session or format to this format, and keeps quantization last', () => {
    const tfjs = stepForms('tfjs-layers');
    const kept: StepState[] = [
      { step: 'quantize', values: { mode: 'int4' } },
      { step: 'prune', values: { ratio: 7, recover: 'finetune', criterion: 'l2' } },
      { step: 'no-such-step', values: {} },
    ];
    const fitted = forms.ordered(kept.map((s) => forms.fitToForm(s, tfjs)).filter((s): s is StepState => !!s), tfjs);
    assert.deepEqual(fitted.map((s) => s.step), ['prune', 'quantize']);
    assert.equal(fitted[0].values.ratio, 0.95, 'clamped to the form bounds');
    assert.equal(fitted[0].values.recover, 'none', 'TF.js offers no retraining');
    assert.equal(fitted[0].values.criterion, 'l2');
    assert.equal(fitted[1].values.mode, 'uint8', 'a mode the format lacks falls back to the first offered');
  });
});
