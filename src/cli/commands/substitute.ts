import { type LayerSubstitution } from '../../core/transforms/substitute';
import { substituteStep } from '../../core/transforms/substitute/step';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { JOB_FLAGS, finishJob, openJob, stepContext } from '../job';
import { checkCalib, stepFlags, stepOptionsFromFlags, withoutKeys } from '../step-flags';
import { fmtCount, table } from '../format';
import { renderReport } from '../report';

const SUBSTITUTE_FLAGS = stepFlags(substituteStep);

export const substituteCommand: Command = {
  name: 'substitute',
  summary: substituteStep.summary,
  usage: 'model-compressor substitute <model> (--depthwise [--multiplier m] | --lowrank [--energy f | --rank r | --target-params f] [--plain]) [options]',
  flags: { ...SUBSTITUTE_FLAGS.spec, ...withoutKeys(JOB_FLAGS, SUBSTITUTE_FLAGS.spec) },
  example: substituteStep.example,
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    const o = stepOptionsFromFlags(substituteStep, SUBSTITUTE_FLAGS, flags);
    checkCalib(substituteStep, SUBSTITUTE_FLAGS, o, flags);
    const job = await openJob(positional, flags, 'substitute', 'substituted');
    const { calib, input, output } = job;
    const { outcome: r } = await substituteStep.apply(job.model, o, stepContext(job));
    const report = await finishJob(job, r.model, flags, { step: 'substitute' });
    if (flags.json) {
      io.out(JSON.stringify({ output, kind: o.kind, before: report.before, after: report.after, layers: r.layers, skipped: r.skipped, fidelity: report.fidelity ?? null, latencyMs: report.latencyMs ?? null }));
      return 0;
    }
    const text = renderReport(`substitute --${o.kind}`, input, output, report, [...(calib ? [] : ['no --calib: layers keep their SVD initialisation (no refit; the budget applies to the weight error)']), ...(r.layers.length ? [] : ['no layer was substituted within the error budget: the output is an unchanged copy (see the reasons above; raise --max-error or give --multiplier to force)'])], r.layers.length, r.skipped);
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
