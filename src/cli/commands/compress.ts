import { assertRecipeOutput, preflightRecipe, readRecipe, recipeNeedsCalib, recipeNeedsEval, recipeNeedsTrain, runRecipe, type StepSummary } from '../../core/recipe';
import { UsageError } from '../../core/errors';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { fmtCount, table } from '../format';
import { JOB_FLAGS, finishJob, openJob, stepContext, trainingCurves } from '../job';
import { renderReport } from '../report';

/** The steps of a recipe run, one row each; the detail comes last and is never cut (its figures matter). */
export function stepsTable(steps: readonly StepSummary[]): string {
  return table(['#', 'step', 'params after', 'MACs after', 'what'], steps.map((s, i) => [String(i + 1), s.step, fmtCount(s.params), fmtCount(s.macs), s.detail]), Infinity);
}

export const compressCommand: Command = {
  name: 'compress',
  summary: 'run a recipe of steps (prune, substitute, train, distill, quantize, early-exit) and prove the result',
  usage: 'model-compressor compress <model> --recipe recipe.json [options]',
  flags: { ...JOB_FLAGS, recipe: { type: 'string', placeholder: 'file', help: 'The recipe: {"steps": [...]} (JSON Schema: schemas/recipe.schema.json).' } },
  example: 'compress model.onnx --recipe model.recipe.json --calib calib.npy --train train_x.npy --train-labels train_y.npy --eval test_x.npy --labels test_y.npy',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (!flags.recipe) throw new UsageError('compress needs --recipe recipe.json');
    const recipe = readRecipe(flags.recipe as string);
    const why = recipeNeedsCalib(recipe);
    if (why && !flags.calib) throw new UsageError(`the recipe needs calibration data (${why}): give --calib data (or, explicitly, --calib random:N)`);
    const trains = recipeNeedsTrain(recipe);
    if (trains && !flags.train) throw new UsageError(`the recipe trains (${trains}): give training inputs (--train x.npy, and --train-labels y.npy for labelled training)`);
    preflightRecipe(recipe);
    const job = await openJob(positional, flags, 'compress', 'compressed');
    const evals = recipeNeedsEval(recipe);
    // Without --eval the evaluation data is the calibration data, else random samples.
    if (evals && job.evalData.random) throw new UsageError(`the recipe's ${evals} needs real evaluation data: give --eval ex.npy (held-out inputs${flags.eval ? ', not random' : ''})`);
    assertRecipeOutput(recipe, job.output);
    const r = await runRecipe(job.model, recipe, { ...stepContext(job), onTrainProgress: (p, i, id) => job.progress.onTrainProgress(p, `${i + 1}:${id}`) });
    const report = await finishJob(job, r.model, flags, { step: 'compress' });
    if (flags.json) {
      io.out(JSON.stringify({ output: job.output, steps: r.steps, before: report.before, after: report.after, fidelity: report.fidelity ?? null, latencyMs: report.latencyMs ?? null, warnings: report.warnings ?? [], curves: trainingCurves(job) }));
      return 0;
    }
    const notes = r.steps.flatMap((s, i) => (s.notes ?? []).map((n) => `step ${i + 1} (${s.step}): ${n}`));
    const text = renderReport('compress', job.input, job.output, report, notes, r.steps.length, []);
    io.out(`${text}\n\nsteps:\n${stepsTable(r.steps)}`);
    return 0;
  },
};
