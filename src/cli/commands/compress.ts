import { readRecipe, runRecipe } from '../../core/recipe';
import { UsageError } from '../../core/errors';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { fmtCount, table } from '../format';
import { JOB_FLAGS, finishJob, openJob } from '../job';
import { renderReport } from '../report';

export const compressCommand: Command = {
  name: 'compress',
  summary: 'run a recipe of steps (prune, substitute, quantize) and prove the result',
  usage: 'model-compressor compress <model> --recipe recipe.json [--calib data] [--eval data --labels y] [--runs N] [--no-bench] [-o out.onnx] [--json]',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, { ...JOB_FLAGS, recipe: { type: 'string' } });
    if (!flags.recipe) throw new UsageError('compress needs --recipe recipe.json');
    const recipe = readRecipe(flags.recipe as string);
    if (recipe.steps.some((s) => s.step === 'quantize' && s.mode === 'static') && !flags.calib) {
      throw new UsageError('the recipe has a static quantize step: give --calib data (or, explicitly, --calib random:N)');
    }
    const job = await openJob(positional, flags, 'compress', 'compressed');
    const r = await runRecipe(job.model, recipe, { calib: job.calib?.data });
    const report = await finishJob(job, r.model, flags, { step: 'compress' });
    if (flags.json) {
      io.out(JSON.stringify({ output: job.output, steps: r.steps, before: report.before, after: report.after, fidelity: report.fidelity ?? null, latencyMs: report.latencyMs ?? null }));
      return 0;
    }
    const text = renderReport('compress', job.input, job.output, report, [], r.steps.length, []);
    io.out(`${text}\n\nsteps:\n${table(['step', 'what', 'params after', 'MACs after'], r.steps.map((s) => [s.step, s.detail, fmtCount(s.params), fmtCount(s.macs)]))}`);
    return 0;
  },
};
