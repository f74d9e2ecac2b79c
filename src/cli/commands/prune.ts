import { allocateFromCurves, pruningSensitivity } from '../../core/transforms/prune/sensitivity';
import { UsageError } from '../../core/errors';
import { openModel } from '../../core/formats/registry';
import { modelFiles } from '../../core/runtime/bench';
import { deflatedSize } from '../../core/analysis/stats';
import { type PruneOutcome } from '../../core/transforms/prune';
import { pruneStep } from '../../core/transforms/prune/step';
import { CRITERIA, type Criterion } from '../../core/transforms/prune/importance';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { JOB_DEFAULTS } from '../../core/jobs';
import { DATA_FLAGS, labelsFlag, openData, randomData } from '../data-flags';
import { JOB_FLAGS, finishJob, openJob, probeInputs, stepContext, trainingCurves } from '../job';
import { checkCalib, checkTrain, stepFlags, stepOptionsFromFlags, withoutKeys } from '../step-flags';
import { fmtBytes, fmtCount, table } from '../format';
import { renderReport } from '../report';

function criterionFlag(flags: Record<string, unknown>): Criterion {
  const c = (flags.criterion as Criterion | undefined) ?? 'l1';
  if (!CRITERIA.includes(c)) throw new UsageError(`--criterion is one of ${CRITERIA.join(', ')}`);
  return c;
}

const fraction = (v: unknown, flag: string) => {
  if (v === undefined) return undefined;
  const x = v as number;
  if (!(x > 0 && x < 1)) throw new UsageError(`--${flag} is a fraction in (0, 1)`);
  return x;
};

const PRUNE_FLAGS = stepFlags(pruneStep);

export const pruneCommand: Command = {
  name: 'prune',
  summary: pruneStep.summary,
  usage: 'model-compressor prune <model> (--structured | --unstructured) (--ratio r | --target-macs f | --target-params f | --target-latency f | --threshold t) [options]',
  flags: { ...PRUNE_FLAGS.spec, ...withoutKeys(JOB_FLAGS, PRUNE_FLAGS.spec) },
  example: pruneStep.example,
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    const o = stepOptionsFromFlags(pruneStep, PRUNE_FLAGS, flags);
    checkCalib(pruneStep, PRUNE_FLAGS, o, flags);
    checkTrain(pruneStep, PRUNE_FLAGS, o, flags);
    const job = await openJob(positional, flags, 'prune', 'pruned');
    const { outcome } = await pruneStep.apply(job.model, o, stepContext(job));
    const report = await finishJob(job, outcome.model, flags, { step: 'prune' });
    const { input, output } = job;
    const zipAll = (f: string) => deflatedSize(modelFiles(f));
    const zipped = !o.structured ? { before: zipAll(input), after: zipAll(output) } : undefined;
    if (flags.json) {
      io.out(JSON.stringify({ output, before: report.before, after: report.after, groups: outcome.groups, skipped: outcome.skipped, reconstruction: outcome.reconstruction, sparsity: outcome.sparsity, zippedBytes: zipped, fidelity: report.fidelity ?? null, latencyMs: report.latencyMs ?? null, warnings: report.warnings ?? [], allocation: outcome.allocation ?? null, recovery: (outcome as { recovery?: unknown }).recovery ?? null, notes: outcome.notes, curves: trainingCurves(job) }));
      return 0;
    }
    const changed = o.structured ? outcome.groups.length : outcome.sparsity?.length ?? 0;
    let text = renderReport(`prune --${o.structured ? 'structured' : 'unstructured'}`, input, output, report, outcome.notes, changed, outcome.skipped.map((s) => ({ ...s, op: '' })));
    text += `\n\n${detail(outcome)}`;
    if (zipped) text += `\n\nzipped size: ${fmtBytes(zipped.before)} → ${fmtBytes(zipped.after)} (${(zipped.after / zipped.before).toFixed(3)}x)`;
    io.out(text);
    return 0;
  },
};


function detail(o: PruneOutcome): string {
  if (o.sparsity) return `sparsity per layer:\n${table(['weight', 'elements', 'zeros', 'sparsity'], o.sparsity.map((s) => [s.name, fmtCount(s.elements), fmtCount(s.zeros), `${(s.sparsity * 100).toFixed(1)}%`]))}`;
  const lines = [`groups pruned:\n${table(['group', 'coupled producers', 'channels', 'removed', 'params saved', 'MACs saved'], o.groups.map((g) => [g.name, String(g.producers.length), String(g.channels), String(g.removed), fmtCount(g.paramsSaved), fmtCount(g.macsSaved)]))}`];
  if (o.reconstruction.length) {
    lines.push(`\nreconstruction (relative output error before → after the least-squares refit):\n${table(['layer', 'before', 'after'], o.reconstruction.map((r) => [r.layer, r.errorBefore.toFixed(4), r.errorAfter.toFixed(4)]))}`);
  }
  return lines.join('\n');
}

export const sensitivityCommand: Command = {
  name: 'sensitivity',
  summary: 'prune each channel group alone at several ratios and measure the loss (curves as JSON)',
  usage:
    'model-compressor sensitivity <model> [--data data | --eval data] [--labels y] [--criterion l1|…] [--ratios 0.1,0.3,…] [--samples N] [--metric accuracy|agreement|cosine] [--target-macs f | --target-params f] [--json]',
  flags: {
    ...DATA_FLAGS,
    data: { type: 'string', placeholder: 'data', help: 'Samples to measure the loss on (.npy, .pb or an image folder; default: random samples).' },
    eval: { type: 'string', placeholder: 'data', help: 'Same as --data.' },
    calib: { type: 'string', placeholder: 'data', help: 'Calibration data for data-aware criteria (entropy).' },
    criterion: { type: 'string', placeholder: 'c', choices: CRITERIA, default: 'l1', help: 'Channel importance criterion.' },
    ratios: { type: 'string', placeholder: 'r1,r2', help: 'Ratios to try per group (default 0.1 … 0.9).' },
    metric: { type: 'string', placeholder: 'm', choices: ['accuracy', 'agreement', 'cosine'], help: 'Loss measured (default: accuracy with --labels, else top-1 agreement or cosine).' },
    'target-macs': { type: 'number', placeholder: 'f', help: 'Also allocate per-group ratios removing this fraction of MACs.' },
    'target-params': { type: 'number', placeholder: 'f', help: 'Also allocate per-group ratios removing this fraction of params.' },
    json: { type: 'boolean', help: 'Print JSON.' },
  },
  example: 'sensitivity model.onnx --data calib.npy --ratios 0.25,0.5,0.75 --target-macs 0.3 --json',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (positional.length !== 1) throw new UsageError('sensitivity takes exactly one model');
    const criterion = criterionFlag(flags);
    const ratios = (flags.ratios as string | undefined)?.split(',').map(Number);
    if (ratios && ratios.some((r) => !(r > 0 && r < 1))) throw new UsageError('--ratios are fractions in (0, 1), e.g. 0.1,0.3,0.5');
    const metricFlag = flags.metric as string | undefined;
    const metric = metricFlag === undefined ? undefined : ({ accuracy: 'accuracy', agreement: 'top1Agreement', cosine: 'cosine' } as const)[metricFlag as 'accuracy'];
    if (metricFlag !== undefined && !metric) throw new UsageError('--metric is accuracy, agreement or cosine');
    const input = positional[0];
    const model = openModel(input);
    const inputs = await probeInputs(input);
    const data = openData((flags.data ?? flags.eval) as string | undefined, inputs, flags, model.metadata) ?? randomData(inputs, flags, JOB_DEFAULTS.sensitivitySamples, model.metadata);
    const calib = openData(flags.calib as string | undefined, inputs, flags, model.metadata);
    const labels = labelsFlag(flags, data.data.count);
    const r = await pruningSensitivity(model, { data: data.data, labels, criterion, ratios, samples: flags.samples as number | undefined, metric, calib: calib?.data });
    const tm = fraction(flags['target-macs'], 'target-macs');
    const tp = fraction(flags['target-params'], 'target-params');
    const allocation = tm !== undefined ? allocateFromCurves(r, tm, 'macs') : tp !== undefined ? allocateFromCurves(r, tp, 'params') : undefined;
    if (flags.json) {
      io.out(JSON.stringify({ model: input, data: data.label, ...r, allocation: allocation ?? null }));
      return 0;
    }
    const header = ['group', 'ch', ...r.curves[0]?.points.map((p) => `${p.ratio}`) ?? []];
    const lines = [`${r.metric} loss on ${data.label}${/samples/.test(data.label) ? '' : ` (${r.samples} samples)`} (baseline ${r.baseline.toFixed(4)}), criterion ${criterion}${r.runtime ? `, run by ${r.runtime}` : ''}`, ''];
    lines.push(table(header, r.curves.map((c) => [c.group, String(c.channels), ...c.points.map((p) => p.drop.toFixed(3))])));
    if (r.skipped.length) lines.push('', `not prunable: ${r.skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}`);
    if (allocation) {
      lines.push('', `allocation for ${((tm ?? tp)! * 100).toFixed(0)}% of ${tm !== undefined ? 'MACs' : 'params'}: predicted loss ${allocation.predictedDrop.toFixed(4)}`);
      lines.push(table(['group', 'ratio'], Object.entries(allocation.ratios).map(([g, x]) => [g, String(x)])));
    }
    io.out(lines.join('\n'));
    return 0;
  },
};
