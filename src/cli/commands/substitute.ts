import { UsageError } from '../../core/errors';
import { substituteDepthwise, substituteLowRank, type LayerSubstitution } from '../../core/transforms/substitute';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { JOB_FLAGS, finishJob, openJob } from '../job';
import { fmtCount, table } from '../format';
import { renderReport } from '../report';

export const substituteCommand: Command = {
  name: 'substitute',
  summary: 'replace convolutions with depthwise-separable pairs, or dense layers with low-rank factors',
  usage:
    'model-compressor substitute <model> (--depthwise [--multiplier m] | --lowrank [--energy f | --rank r | --target-params f] [--plain]) ' +
    '[--layers n1,n2] [--max-error e] [--calib data] [--no-refit] [--eval data --labels y] [--runs N] [--no-bench] [-o out.onnx] [--json]',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, {
      ...JOB_FLAGS,
      depthwise: { type: 'boolean' },
      lowrank: { type: 'boolean' },
      multiplier: { type: 'number' },
      energy: { type: 'number' },
      rank: { type: 'number' },
      'target-params': { type: 'number' },
      plain: { type: 'boolean' },
      layers: { type: 'string' },
      'max-error': { type: 'number' },
      'no-refit': { type: 'boolean' },
    });
    if (!!flags.depthwise === !!flags.lowrank) throw new UsageError('choose one of --depthwise or --lowrank');
    if (flags.depthwise && (flags.energy !== undefined || flags.rank !== undefined || flags['target-params'] !== undefined || flags.plain)) {
      throw new UsageError('--energy, --rank, --target-params and --plain go with --lowrank');
    }
    if (flags.lowrank && flags.multiplier !== undefined) throw new UsageError('--multiplier goes with --depthwise');
    const m = flags.multiplier as number | undefined;
    if (m !== undefined && (!Number.isInteger(m) || m < 1)) throw new UsageError('--multiplier is a whole number ≥ 1');
    const energy = flags.energy as number | undefined;
    if (energy !== undefined && !(energy > 0 && energy <= 1)) throw new UsageError('--energy is a fraction in (0, 1]');
    const tp = flags['target-params'] as number | undefined;
    if (tp !== undefined && !(tp > 0 && tp < 1)) throw new UsageError('--target-params is a fraction in (0, 1)');
    if ([energy, flags.rank, tp].filter((x) => x !== undefined).length > 1) throw new UsageError('choose one of --energy, --rank or --target-params');
    if (flags['max-error'] !== undefined && flags.lowrank && !flags.calib) throw new UsageError('--max-error with --lowrank needs --calib (the error is measured on calibration data)');

    const job = await openJob(positional, flags, 'substitute', 'substituted');
    const { model, calib, input, output } = job;
    const layers = (flags.layers as string | undefined)?.split(',').filter(Boolean);
    const common = { layers, maxError: flags['max-error'] as number | undefined, calib: calib?.data };
    const r = flags.depthwise
      ? await substituteDepthwise(model, { ...common, multiplier: m, refit: !flags['no-refit'] })
      : await substituteLowRank(model, { ...common, energy, rank: flags.rank as number | undefined, targetParams: tp, plain: !!flags.plain });
    const report = await finishJob(job, r.model, flags, { step: 'substitute' });
    if (flags.json) {
      io.out(JSON.stringify({ output, kind: flags.depthwise ? 'depthwise' : 'lowrank', before: report.before, after: report.after, layers: r.layers, skipped: r.skipped, fidelity: report.fidelity ?? null, latencyMs: report.latencyMs ?? null }));
      return 0;
    }
    const text = renderReport(`substitute ${flags.depthwise ? '--depthwise' : '--lowrank'}`, input, output, report, [...(calib ? [] : ['no --calib: layers keep their SVD initialisation (no refit; the budget applies to the weight error)']), ...(r.layers.length ? [] : ['no layer was substituted within the error budget: the output is an unchanged copy (see the reasons above; raise --max-error or give --multiplier to force)'])], r.layers.length, r.skipped);
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
