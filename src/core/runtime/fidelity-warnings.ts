import type { CompareResult } from './compare';

/**
 * The rule every report uses to flag a fidelity or accuracy collapse, in one place so that the
 * CLI and the editor say the same thing. A result is flagged when, on the first output:
 * - any candidate value is ±Infinity or NaN where the original is finite;
 * - cosine similarity is below COLLAPSE.cosine (0.98), except for models whose values differ by
 *   design and only their decisions compare (`decisionsOnly`: early exits, fine-tuned runtime widths);
 * - top-1 agreement (classifier-shaped outputs) is below COLLAPSE.top1 (0.90);
 * - with labels, accuracy drops by more than COLLAPSE.accuracyDrop (0.02 = 2 points).
 * After `train` the outputs are meant to move: only non-finite outputs and the accuracy drop
 * (with labels) count, never cosine or agreement with the untrained original.
 * Each warning names what helps, for the kind of step that was run.
 */
export const COLLAPSE = { cosine: 0.98, top1: 0.9, accuracyDrop: 0.02 } as const;

export type StepKind = 'prune' | 'quantize' | 'substitute' | 'train' | 'compress';

const REMEDIES: Record<StepKind, string> = {
  prune: 'prune fewer channels (a lower --ratio, or --allocate sensitivity, which prunes the least sensitive groups most), recover with --recover reconstruct and calibration data (--calib), or --exclude the most sensitive groups (see `sensitivity`)',
  quantize: 'keep the worst layers in float (--exclude, or --target-agreement to find the smallest set), use --per-channel, a calibration --method percentile/entropy with real --calib data, or a wider storage type',
  substitute: 'lower --max-error (layers over the budget are skipped), raise --multiplier or --energy, give calibration data (--calib) for the refit, or substitute fewer --layers',
  train: 'a lower --lr, --clip-grad-norm, validation that keeps the best epoch (--val-split, with --patience to stop early), or fewer trained weights (--freeze)',
  compress: 'lighten the step that loses the most (see each step’s report): fewer pruned channels with --recover reconstruct, layers kept in float, or fewer substituted layers',
};

/** What the rule reads of a report (an `EvaluationReport`, evaluate.ts): the fidelity on the first output and the per-layer SQNR. */
export interface FidelityFigures {
  fidelity?: CompareResult & { data: string };
  layers?: Array<{ name: string; sqnrDb: number | null }>;
  /**
   * The candidate changes its output values by design and only its decisions compare (an
   * early-exit model answers from an exit head's logits; runtime widths fine-tune the full width
   * by distillation): cosine is not a collapse criterion.
   */
  decisionsOnly?: boolean;
}

export function fidelityWarnings(r: FidelityFigures, kind: StepKind | undefined): string[] {
  const f = r.fidelity;
  if (!f?.outputs.length) return [];
  const o = f.outputs[0];
  const problems: string[] = [];
  const trained = kind === 'train';
  if (o.nonFinite) problems.push(`${o.nonFinite} output value(s) are ±Infinity or NaN`);
  else if (!r.decisionsOnly && !trained && o.cosine < COLLAPSE.cosine) problems.push(`cosine ${o.cosine.toFixed(4)} < ${COLLAPSE.cosine}`);
  if (!trained && o.top1Agreement !== undefined && o.top1Agreement < COLLAPSE.top1) problems.push(`top-1 agreement ${o.top1Agreement.toFixed(3)} < ${COLLAPSE.top1}`);
  const drop = f.accuracy ? f.accuracy.reference - f.accuracy.candidate : 0;
  if (drop > COLLAPSE.accuracyDrop) problems.push(`accuracy dropped ${(drop * 100).toFixed(1)} points`);
  if (!problems.length) return [];
  if (trained) return [`training made the model worse: ${problems.join(', ')}. What helps: ${REMEDIES.train}`];
  const worst = (r.layers ?? []).filter((l) => l.sqnrDb !== null).sort((a, b) => a.sqnrDb! - b.sqnrDb!).slice(0, 3);
  const random = /random/.test(f.data);
  return [
    `fidelity collapsed: ${problems.join(', ')}. What helps: ${REMEDIES[kind ?? 'compress']}` +
      (worst.length ? `; the layers with the lowest SQNR are ${worst.map((l) => `${l.name} (${l.sqnrDb!.toFixed(1)} dB)`).join(', ')}` : '') +
      (random ? '. Measured on random data: for a model with random or untrained weights, judge by top-5 agreement and SQNR, or evaluate on real data (--eval)' : ''),
  ];
}
