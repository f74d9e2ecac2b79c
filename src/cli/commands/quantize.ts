import { UsageError } from '../../core/errors';
import type { EvaluationReport } from '../../core/runtime/evaluate';
import { QUANTIZE_MODES, type QuantizeMode, type QuantizeOutcome } from '../../core/transforms/quantize';
import { quantizeStep } from '../../core/transforms/quantize/step';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { finishJob, jobFlagsFor, openJob, stepContext } from '../job';
import { checkCalib, checkTrain, stepFlags, stepOptionsFromFlags, withoutKeys } from '../step-flags';
import { renderReport } from '../report';

const SUFFIX: Record<QuantizeMode, string> = { dynamic: 'int8', static: 'int8', fp16: 'fp16', int4: 'int4', cluster: 'clustered', uint8: 'uint8', uint16: 'uint16' };

const QUANTIZE_FLAGS = stepFlags(quantizeStep);

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: quantizeStep.summary,
  usage: 'model-compressor quantize <model> --mode dynamic|static|fp16|int4|cluster (ONNX) | fp16|uint8|uint16 (TF.js) [options]',
  flags: { ...QUANTIZE_FLAGS.spec, ...withoutKeys(jobFlagsFor(quantizeStep), QUANTIZE_FLAGS.spec) },
  example: quantizeStep.example,
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (flags.mode === undefined) throw new UsageError(`--mode is one of ${QUANTIZE_MODES.join(', ')}`);
    const o = stepOptionsFromFlags(quantizeStep, QUANTIZE_FLAGS, flags);
    checkCalib(quantizeStep, QUANTIZE_FLAGS, o, flags);
    checkTrain(quantizeStep, QUANTIZE_FLAGS, o, flags);
    const job = await openJob(positional, flags, 'quantize', SUFFIX[o.mode]);
    const { model, input, output } = job;
    const { outcome } = await quantizeStep.apply(model, o, stepContext(job));
    const report = await finishJob(job, outcome.model, flags, { layerOutputs: layerOutputs(model, outcome), step: 'quantize' });
    const json = toJson(output, o.mode, outcome, report);
    io.out(flags.json ? JSON.stringify(json) : renderReport(`quantize --mode ${o.mode}`, input, output, report, outcome.notes, outcome.quantizedNodes.length, outcome.skippedNodes, outcome.mixedPrecision, outcome.slowerBecause));
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
    /** Fidelity or accuracy collapses, each with what helps (the text report's `warning:` lines). */
    warnings: r.warnings ?? [],
    /** Wall time of the verification stages, ms (`--samples`/`--eval` and `--no-bench` trim them). */
    verificationMs: r.costMs,
    mixedPrecision: o.mixedPrecision ?? null,
    notes: o.notes,
  };
}
