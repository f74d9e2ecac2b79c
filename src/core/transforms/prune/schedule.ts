import { UsageError } from '../../errors';

/**
 * Pruning schedules for prune → retrain → repeat: how a final target (a fraction of MACs,
 * params, channels or weights to remove) is spread over `steps` prune steps.
 *
 * - 'linear': step t of n reaches target·t/n.
 * - 'cubic': Zhu & Gupta 2017 ("To prune, or not to prune", eq. 1) with t₀ = 0 and Δt = 1:
 *   s_t = s_f + (s_i − s_f)·(1 − t/n)³, s_i = 0. It prunes hard at first, while many redundant
 *   weights remain, and gently at the end, leaving more retraining per removed weight.
 */
export type PruneSchedule = 'linear' | 'cubic';
export const SCHEDULES: PruneSchedule[] = ['linear', 'cubic'];

/**
 * The cumulative target after step `step` (1-based) of `steps`, in [0, final].
 * Throws UsageError on a step outside 1..steps or a final outside [0, 1).
 */
export function scheduledTarget(final: number, step: number, steps: number, schedule: PruneSchedule = 'cubic', initial = 0): number {
  if (!(steps >= 1) || !Number.isInteger(steps)) throw new UsageError(`the number of prune steps must be a positive integer (got ${steps})`);
  if (!Number.isInteger(step) || step < 1 || step > steps) throw new UsageError(`prune step ${step} is outside 1..${steps}`);
  if (!(final >= 0 && final < 1)) throw new UsageError(`a pruning target must be in [0, 1) (got ${final})`);
  const f = step / steps;
  if (schedule === 'linear') return initial + (final - initial) * f;
  if (schedule === 'cubic') return final + (initial - final) * (1 - f) ** 3;
  throw new UsageError(`unknown prune schedule '${schedule as string}' (schedules: ${SCHEDULES.join(', ')})`);
}

/** All cumulative targets, step 1..steps (the last equals `final`). */
export function scheduleTargets(final: number, steps: number, schedule: PruneSchedule = 'cubic'): number[] {
  return Array.from({ length: steps }, (_, i) => scheduledTarget(final, i + 1, steps, schedule));
}

/**
 * The cumulative share removed after step `step` of `steps` for a final `ratio` of channels or
 * weights: the schedule when one is given, else equal per-step shares of what is left
 * (1 − (1 − r)^(step/steps)). The last step always reaches `ratio` itself.
 */
export function cumulativeRatio(ratio: number, step: number, steps: number, schedule?: PruneSchedule): number {
  if (step >= steps) return ratio;
  return schedule ? scheduledTarget(ratio, step, steps, schedule) : 1 - (1 - ratio) ** (step / steps);
}

/** The cumulative share of a params/MACs target after step `step`: the schedule, else linear. */
export function cumulativeTarget(target: number, step: number, steps: number, schedule?: PruneSchedule): number {
  return schedule ? scheduledTarget(target, step, steps, schedule) : (target * step) / steps;
}
