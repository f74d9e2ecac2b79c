import { UsageError } from '../../core/errors';
import type { EvaluationReport } from '../../core/runtime/evaluate';
import { QUANTIZE_MODES, quantizeModel, type QuantizeMode, type QuantizeOutcome } from '../../core/transforms/quantize';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { JOB_FLAGS, finishJob, openJob } from '../job';
import { renderReport } from '../report';

const SUFFIX: Record<QuantizeMode, string> = { dynamic: 'int8', static: 'int8', fp16: 'fp16', int4: 'int4', cluster: 'clustered', uint8: 'uint8', uint16: 'uint16' };

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'quantize a model (int8 dynamic/static, fp16, int4, weight clustering), then prove it',
  usage:
    'model-compressor quantize <model> --mode dynamic|static|fp16|int4|cluster (ONNX) | fp16|uint8|uint16 (TF.js) [--calib data|random:N] [--method minmax|percentile|entropy] ' +
    '[--percentile p] [--per-channel|--per-tensor] [--symmetric-activations] [--reduce-range|--full-range] [--dynamic-form integer|fused|weights] ' +
    '[--block-size 32|64|128] [--asymmetric] [--k 16|256] [--cluster-form gather|dense] [--exclude n1,n2] ' +
    '[--target-agreement x | --max-accuracy-drop d] [--eval data --labels y] [--runs N] [--no-bench] [-o out.onnx] [--json]',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, {
      ...JOB_FLAGS,
      mode: { type: 'string' },
      method: { type: 'string' },
      percentile: { type: 'number' },
      'per-channel': { type: 'boolean' },
      'per-tensor': { type: 'boolean' },
      'symmetric-activations': { type: 'boolean' },
      'reduce-range': { type: 'boolean' },
      'full-range': { type: 'boolean' },
      'dynamic-form': { type: 'string' },
      'block-size': { type: 'number' },
      asymmetric: { type: 'boolean' },
      k: { type: 'number' },
      'cluster-form': { type: 'string' },
      exclude: { type: 'string' },
      'target-agreement': { type: 'number' },
      'max-accuracy-drop': { type: 'number' },
    });
    const mode = flags.mode as QuantizeMode | undefined;
    if (!mode || !QUANTIZE_MODES.includes(mode)) throw new UsageError(`--mode is one of ${QUANTIZE_MODES.join(', ')}`);
    const only = (flag: string, modes: QuantizeMode[]) => {
      if (flags[flag] !== undefined && !modes.includes(mode)) throw new UsageError(`--${flag} applies to --mode ${modes.join('/')}`);
    };
    only('method', ['static']);
    only('percentile', ['static']);
    only('symmetric-activations', ['static']);
    only('dynamic-form', ['dynamic']);
    only('block-size', ['int4']);
    only('asymmetric', ['int4']);
    only('k', ['cluster']);
    only('cluster-form', ['cluster']);
    if (mode === 'static' && !flags.calib) throw new UsageError('--mode static needs calibration data: --calib data.npy (or, explicitly, --calib random:N)');
    const method = flags.method as string | undefined;
    if (method && !['minmax', 'percentile', 'entropy'].includes(method)) throw new UsageError('--method is minmax, percentile or entropy');
    const block = flags['block-size'] as number | undefined;
    if (block !== undefined && ![32, 64, 128].includes(block)) throw new UsageError('--block-size is 32, 64 or 128');
    const k = flags.k as number | undefined;
    if (k !== undefined && k !== 16 && k !== 256) throw new UsageError('--k is 16 or 256');
    const form = flags['dynamic-form'] as string | undefined;
    if (form && !['integer', 'fused', 'weights'].includes(form)) throw new UsageError('--dynamic-form is integer, fused or weights');
    const cform = flags['cluster-form'] as string | undefined;
    if (cform && !['gather', 'dense'].includes(cform)) throw new UsageError('--cluster-form is gather or dense');
    if (flags['reduce-range'] && flags['full-range']) throw new UsageError('choose --reduce-range or --full-range');
    if (flags['per-channel'] && flags['per-tensor']) throw new UsageError('choose --per-channel or --per-tensor');
    const target = flags['target-agreement'] as number | undefined;
    if (target !== undefined && !(target > 0 && target <= 1)) throw new UsageError('--target-agreement is a fraction in (0, 1]');

    const job = await openJob(positional, flags, 'quantize', SUFFIX[mode]);
    const { model, calib, evalData, labels, input, output } = job;
    const outcome = await quantizeModel(model, {
      mode,
      perChannel: flags['per-tensor'] ? false : true,
      method: method as 'minmax' | undefined,
      percentile: flags.percentile as number | undefined,
      symmetricActivations: !!flags['symmetric-activations'],
      reduceRange: flags['reduce-range'] ? true : flags['full-range'] ? false : undefined,
      exclude: (flags.exclude as string | undefined)?.split(',').filter(Boolean),
      dynamicForm: form as 'integer' | undefined,
      blockSize: block as 32 | undefined,
      symmetric: !flags.asymmetric,
      k: k as 16 | undefined,
      clusterForm: cform as 'gather' | undefined,
      calib: calib?.data,
      targetAgreement: target,
      maxAccuracyDrop: flags['max-accuracy-drop'] as number | undefined,
      eval: evalData.data,
      labels,
    });
    const report = await finishJob(job, outcome.model, flags, { layerOutputs: layerOutputs(model, outcome), step: 'quantize' });
    const json = toJson(output, mode, outcome, report);
    io.out(flags.json ? JSON.stringify(json) : renderReport(`quantize --mode ${mode}`, input, output, report, outcome.notes, outcome.quantizedNodes.length, outcome.skippedNodes, outcome.mixedPrecision, outcome.slowerBecause));
    return 0;
  },
};

export function layerOutputs(model: import('../../core/ir/graph').Model, outcome: QuantizeOutcome) {
  const byLabel = new Map(model.graph.nodes.map((n) => [n.label, n]));
  return outcome.quantizedNodes.map((l) => byLabel.get(l)).filter((n) => n && n.outputs[0]).map((n) => ({ name: n!.label, output: n!.outputs[0] }));
}

export function toJson(output: string, mode: string, o: QuantizeOutcome, r: EvaluationReport) {
  return {
    output,
    mode,
    before: r.before,
    after: r.after,
    quantizedNodes: o.quantizedNodes,
    skippedNodes: o.skippedNodes,
    fidelity: r.fidelity ?? null,
    latencyMs: r.latencyMs ? { before: r.latencyMs.before, after: r.latencyMs.after, ratioP50: r.latencyMs.ratioP50 } : null,
    slowerThanOriginal: r.latencyMs ? r.latencyMs.ratioP50 > 1.02 : null,
    slowerBecause: r.latencyMs && r.latencyMs.ratioP50 > 1.02 ? o.slowerBecause : null,
    layers: r.layers ?? [],
    mixedPrecision: o.mixedPrecision ?? null,
    notes: o.notes,
  };
}
