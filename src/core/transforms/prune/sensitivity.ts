import { UsageError } from '../../errors';
import type { Model, ModelFormat } from '../../ir/graph';
import { onnxSensitivity } from './onnx/sensitivity';
import type { SensitivityOptions, SensitivityResult } from './sensitivity-score';
import { kerasSensitivity } from './tfjs-layers/sensitivity';

export type { SensitivityCurve, SensitivityOptions, SensitivityPoint, SensitivityResult } from './sensitivity-score';

/**
 * Pruning sensitivity: each group is pruned alone at ratios 0.1 … 0.9 and the loss in
 * fidelity (or accuracy, with labels) is measured. The activations entering the part of
 * the graph a group affects are computed once from the original model and cached, so each
 * variant runs only the subgraph downstream of the group's first node (onnx/sensitivity.ts);
 * a TF.js layers model's variants run whole (tfjs-layers/sensitivity.ts).
 */

/** The one place sensitivity picks its code by format: ONNX variants run the affected subgraph in ORT; TF.js variants run whole. */
const SENSITIVITY: Partial<Record<ModelFormat, (model: Model, opts: SensitivityOptions) => Promise<SensitivityResult>>> = {
  onnx: onnxSensitivity,
  'tfjs-layers': kerasSensitivity,
};

export async function pruningSensitivity(input: Model, opts: SensitivityOptions): Promise<SensitivityResult> {
  const impl = SENSITIVITY[input.format];
  if (!impl) throw new UsageError(`pruning sensitivity works on ONNX and TF.js layers models, not ${input.format}`);
  return impl(input, opts);
}

/**
 * Chooses a ratio per group that removes `fraction` of the model's MACs (or params) with
 * the least predicted loss, greedily stepping along the curves (losses assumed additive).
 */
export function allocateFromCurves(result: SensitivityResult, fraction: number, by: 'macs' | 'params'): { ratios: Record<string, number>; predictedDrop: number; predictedSaved: number } {
  if (!(fraction > 0 && fraction < 1)) throw new UsageError('the target is a fraction in (0, 1)');
  const goal = fraction * result.totals[by];
  const pos = result.curves.map(() => -1); // index into points; -1 = unpruned
  const saved = (k: number, p: number) => (p < 0 ? 0 : by === 'macs' ? result.curves[k].points[p].macsSaved : result.curves[k].points[p].paramsSaved);
  const drop = (k: number, p: number) => (p < 0 ? 0 : Math.max(0, result.curves[k].points[p].drop));
  let total = 0;
  while (total < goal) {
    let best = -1;
    let bestNext = -1;
    let bestCost = Infinity;
    result.curves.forEach((c, k) => {
      // The next point that saves something: small groups remove nothing at low ratios.
      let next = pos[k] + 1;
      while (next < c.points.length && saved(k, next) <= saved(k, pos[k])) next++;
      if (next >= c.points.length) return;
      const cost = (drop(k, next) - drop(k, pos[k]) + 1e-6) / (saved(k, next) - saved(k, pos[k]));
      if (cost < bestCost) {
        bestCost = cost;
        best = k;
        bestNext = next;
      }
    });
    if (best < 0) break;
    total += saved(best, bestNext) - saved(best, pos[best]);
    pos[best] = bestNext;
  }
  const ratios: Record<string, number> = {};
  let predictedDrop = 0;
  result.curves.forEach((c, k) => {
    if (pos[k] >= 0) {
      ratios[c.group] = c.points[pos[k]].ratio;
      predictedDrop += drop(k, pos[k]);
    }
  });
  return { ratios, predictedDrop, predictedSaved: total / result.totals[by] };
}
