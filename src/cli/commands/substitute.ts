import { type LayerSubstitution } from '../../core/transforms/substitute';
import { substituteStep, type SubstituteRecovery } from '../../core/transforms/substitute/step';
import type { Score } from '../../core/transforms/distill/common';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { finishJob, jobFlagsFor, openJob, stepContext, trainingCurves } from '../job';
import { checkCalib, checkTrain, stepFlags, stepOptionsFromFlags, withoutKeys } from '../step-flags';
import { fmtCount, table } from '../format';
import { renderReport } from '../report';

const SUBSTITUTE_FLAGS = stepFlags(substituteStep);

export const substituteCommand: Command = {
  name: 'substitute',
  summary: substituteStep.summary,
  usage: 'model-compressor substitute <model> (--depthwise [--multiplier m] | --lowrank [--energy f | --rank r | --target-params f] [--plain]) [--recover finetune|distill --train x.npy [--train-labels y.npy] [--epochs e]] [options]',
  flags: { ...SUBSTITUTE_FLAGS.spec, ...withoutKeys(jobFlagsFor(substituteStep), SUBSTITUTE_FLAGS.spec) },
  example: substituteStep.example,
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    const o = stepOptionsFromFlags(substituteStep, SUBSTITUTE_FLAGS, flags);
    checkCalib(substituteStep, SUBSTITUTE_FLAGS, o, flags);
    checkTrain(substituteStep, SUBSTITUTE_FLAGS, o, flags);
    const job = await openJob(positional, flags, 'substitute', 'substituted');
    const { calib, input, output } = job;
    const { outcome: r } = await substituteStep.apply(job.model, o, stepContext(job));
    const report = await finishJob(job, r.model, flags, { step: 'substitute' });
    if (flags.json) {
      io.out(JSON.stringify({ output, kind: o.kind, before: report.before, after: report.after, layers: r.layers, skipped: r.skipped, recovery: r.recovery ?? null, fidelity: report.fidelity ?? null, latencyMs: report.latencyMs ?? null, warnings: report.warnings ?? [], curves: trainingCurves(job) }));
      return 0;
    }
    const text = renderReport(`substitute --${o.kind}`, input, output, report, [...(calib ? [] : ['no --calib: layers keep their SVD initialisation (no refit; the budget applies to the weight error)']), ...(r.layers.length ? [] : ['no layer was substituted within the error budget: the output is an unchanged copy (see the reasons above; raise --max-error or give --multiplier to force)']), ...recoveryNotes(r.recovery)], r.layers.length, r.skipped);
    io.out(`${text}\n\nlayers:\n${layerTable(r.layers)}`);
    return 0;
  },
};

function layerTable(layers: LayerSubstitution[]): string {
  const e = (x: number | null) => (x === null ? '' : x.toFixed(4));
  return table(
    ['layer', 'change', 'params', 'MACs', 'error (init)', 'error (refit / data-aware)'],
    layers.map((l) => [l.name, l.detail, `${fmtCount(l.paramsBefore)} → ${fmtCount(l.paramsAfter)}`, `${fmtCount(l.macsBefore)} → ${fmtCount(l.macsAfter)}`, e(l.errorInit), e(l.errorRefit)]),
  );
}

function recoveryNotes(r: SubstituteRecovery | undefined): string[] {
  if (!r) return [];
  const score = (x?: Score) => (x ? (x.accuracy !== undefined ? `accuracy ${x.accuracy.toFixed(4)}` : `agreement ${x.agreement.toFixed(4)}`) : '');
  const scores = r.afterSubstitute && r.afterRetrain ? `: ${score(r.afterSubstitute)} after the substitution, ${score(r.afterRetrain)} after retraining; kept the ${r.kept} model` : ' (no real evaluation data: --eval with --labels scores it)';
  return [`recovery: ${r.method}, ${r.epochs} epochs (${r.secondsPerEpoch.toFixed(2)} s/epoch)${scores}`];
}
