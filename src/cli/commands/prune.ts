import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { allocateFromCurves, pruningSensitivity, type SensitivityResult } from '../../core/analysis/sensitivity';
import { UsageError } from '../../core/errors';
import { openModel } from '../../core/formats/registry';
import { modelFiles } from '../../core/runtime/bench';
import { pruneModel, pruneToLatency, type PruneOutcome } from '../../core/transforms/prune';
import { CRITERIA, type Criterion } from '../../core/transforms/prune/importance';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { DATA_FLAGS, labelsFlag, openData, randomData } from '../data-flags';
import { JOB_FLAGS, finishJob, openJob, probeInputs } from '../job';
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

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'remove channels (structured, real speed) or zero weights (unstructured), then prove it',
  usage:
    'model-compressor prune <model> (--structured | --unstructured) (--ratio r | --target-macs f | --target-params f | --target-latency f | --threshold t) ' +
    '[--criterion l1|l2|bn|entropy|taylor|random] [--calib data] [--recover none|reconstruct] [--steps k] [--allocate uniform|sensitivity] ' +
    '[--scope layer|global] [--exclude g1,g2] [--round-to n] [--seed s] [--eval data --labels y] [--runs N] [--no-bench] [-o out.onnx] [--json]',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, {
      ...JOB_FLAGS,
      structured: { type: 'boolean' },
      unstructured: { type: 'boolean' },
      ratio: { type: 'number' },
      'target-macs': { type: 'number' },
      'target-params': { type: 'number' },
      'target-latency': { type: 'number' },
      threshold: { type: 'number' },
      criterion: { type: 'string' },
      recover: { type: 'string' },
      steps: { type: 'number' },
      allocate: { type: 'string' },
      scope: { type: 'string' },
      exclude: { type: 'string' },
      'round-to': { type: 'number' },
    });
    if (!!flags.structured === !!flags.unstructured) throw new UsageError('choose one of --structured or --unstructured');
    const criterion = criterionFlag(flags);
    const recover = (flags.recover as string | undefined) ?? 'none';
    if (recover !== 'none' && recover !== 'reconstruct') throw new UsageError('--recover is none or reconstruct');
    if (recover === 'reconstruct' && !flags.calib) throw new UsageError('--recover reconstruct needs --calib');
    const ratio = fraction(flags.ratio, 'ratio');
    const targetMacs = fraction(flags['target-macs'], 'target-macs');
    const targetParams = fraction(flags['target-params'], 'target-params');
    const targetLatency = fraction(flags['target-latency'], 'target-latency');
    if (targetLatency !== undefined && (!flags.structured || ratio !== undefined || targetMacs !== undefined || targetParams !== undefined)) {
      throw new UsageError('--target-latency goes with --structured alone (not with --ratio, --target-macs or --target-params)');
    }
    const allocate = (flags.allocate as string | undefined) ?? 'uniform';
    if (allocate !== 'uniform' && allocate !== 'sensitivity') throw new UsageError('--allocate is uniform or sensitivity');
    if (allocate === 'sensitivity' && targetMacs === undefined && targetParams === undefined) throw new UsageError('--allocate sensitivity needs --target-macs or --target-params');
    const roundTo = (flags['round-to'] as number | undefined) ?? 8;
    if (!Number.isInteger(roundTo) || roundTo < 1) throw new UsageError('--round-to is a whole number ≥ 1 (1: no rounding)');
    const steps = (flags.steps as number | undefined) ?? 1;
    if (!Number.isInteger(steps) || steps < 1) throw new UsageError('--steps is a whole number ≥ 1');
    const scope = (flags.scope as string | undefined) ?? 'layer';
    if (scope !== 'layer' && scope !== 'global') throw new UsageError('--scope is layer or global');

    const job = await openJob(positional, flags, 'prune', 'pruned');
    const { model, calib, evalData, input, output } = job;
    if (model.format.startsWith('tfjs') && targetLatency !== undefined) {
      throw new UsageError('--target-latency measures with ONNX Runtime; for TF.js models use --ratio, --target-params or --target-macs (with --allocate sensitivity)');
    }

    let groupRatios: Record<string, number> | undefined;
    let sensitivity: SensitivityResult | undefined;
    if (allocate === 'sensitivity') {
      sensitivity = await pruningSensitivity(model, { data: (calib ?? evalData).data, criterion, calib: calib?.data });
      groupRatios = allocateFromCurves(sensitivity, (targetMacs ?? targetParams)!, targetMacs !== undefined ? 'macs' : 'params').ratios;
    }
    const common = {
      roundTo,
      criterion,
      calib: calib?.data,
      recover: recover as 'none',
      steps,
      exclude: (flags.exclude as string | undefined)?.split(',').filter(Boolean),
      seed: flags.seed as number | undefined,
    };
    const outcome = targetLatency !== undefined
      ? await pruneToLatency(model, input, targetLatency, { ...common, structured: true, workDir: fs.mkdtempSync(path.join(os.tmpdir(), 'mc-prune-')) })
      : await pruneModel(model, {
      structured: !!flags.structured,
      ratio,
      targetMacs: groupRatios ? undefined : targetMacs,
      targetParams: groupRatios ? undefined : targetParams,
      groupRatios,
      roundTo,
      threshold: flags.threshold as number | undefined,
      scope: scope as 'layer',
      criterion,
      calib: calib?.data,
      recover: recover as 'none',
      steps,
      exclude: (flags.exclude as string | undefined)?.split(',').filter(Boolean),
      seed: flags.seed as number | undefined,
    });
    const report = await finishJob(job, outcome.model, flags, { step: 'prune' });
    const zipAll = (f: string) => modelFiles(f).reduce((a, x) => a + zipSize(fs.readFileSync(x)), 0);
    const zipped = flags.unstructured ? { before: zipAll(input), after: zipAll(output) } : undefined;
    if (flags.json) {
      io.out(JSON.stringify({ output, before: report.before, after: report.after, groups: outcome.groups, skipped: outcome.skipped, reconstruction: outcome.reconstruction, sparsity: outcome.sparsity, zippedBytes: zipped, fidelity: report.fidelity ?? null, latencyMs: report.latencyMs ?? null, allocation: groupRatios ?? null, notes: outcome.notes }));
      return 0;
    }
    const changed = flags.structured ? outcome.groups.length : outcome.sparsity?.length ?? 0;
    let text = renderReport(`prune --${flags.structured ? 'structured' : 'unstructured'}`, input, output, report, outcome.notes, changed, outcome.skipped.map((s) => ({ ...s, op: '' })));
    text += `\n\n${detail(outcome)}`;
    if (zipped) text += `\n\nzipped size: ${fmtBytes(zipped.before)} → ${fmtBytes(zipped.after)} (${(zipped.after / zipped.before).toFixed(3)}x)`;
    io.out(text);
    return 0;
  },
};

export function zipSize(b: Uint8Array): number {
  return zlib.deflateRawSync(b, { level: 6 }).length;
}

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
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, {
      ...DATA_FLAGS,
      data: { type: 'string' },
      eval: { type: 'string' },
      calib: { type: 'string' },
      criterion: { type: 'string' },
      ratios: { type: 'string' },
      metric: { type: 'string' },
      'target-macs': { type: 'number' },
      'target-params': { type: 'number' },
      json: { type: 'boolean' },
    });
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
    const data = openData((flags.data ?? flags.eval) as string | undefined, inputs, flags) ?? randomData(inputs, flags, 16);
    const calib = openData(flags.calib as string | undefined, inputs, flags);
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
