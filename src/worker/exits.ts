import { randomUUID } from 'crypto';
import { UsageError } from '../core/errors';
import type { Model } from '../core/ir/graph';
import { saveVerified } from '../core/runtime/verified-save';
import { exitCurve, exitStateOf, exitTable, reexport, type ExitState } from '../core/transforms/early-exit';
import { EXIT_RUN_ID, EXIT_THRESHOLD_MAX, EXIT_THRESHOLD_MIN, type ExitsReexportDto, type ExitsResultDto } from '../protocol/exits';

/**
 * The trained state of the last early-exit runs, kept in the worker so that the panel can
 * re-export at another threshold without training again. Bounded: the last `MAX_KEPT` runs
 * (each holds its model with heads and the per-exit observations); the panel drops its runs
 * when it closes. Requests are untrusted: the id must name a kept run and the threshold must
 * be a number in [EXIT_THRESHOLD_MIN, EXIT_THRESHOLD_MAX]; the file written is the run's own
 * output, never a path from the request.
 */

export const MAX_KEPT = 2;

interface Kept {
  state: ExitState;
  output: string;
}

const kept = new Map<string, Kept>();

/**
 * Keeps the early-exit state of `written` (the model a recipe returned) under a fresh id and
 * returns the result view's DTO; undefined when `written` is not an early-exit model.
 */
export function keepExitRun(written: Model, output: string): ExitsResultDto | undefined {
  const state = exitStateOf(written);
  if (!state) return undefined;
  const id = randomUUID();
  kept.set(id, { state, output });
  while (kept.size > MAX_KEPT) kept.delete(kept.keys().next().value as string);
  return { id, metric: state.metric, form: state.form, curve: exitCurve(state), calibrated: exitTable(state, state.calibrated.map((t) => (Number.isFinite(t) ? t : null))), output };
}

/** The kept run `id`, or a UsageError saying why there is none. */
function keptRun(id: unknown): Kept {
  if (typeof id !== 'string' || !EXIT_RUN_ID.test(id)) throw new UsageError('re-export: not an early-exit run id');
  const k = kept.get(id);
  if (!k) throw new UsageError(`re-export: this early-exit run is no longer kept (only the last ${MAX_KEPT} are, and not after the panel closed or the worker restarted); run the step again`);
  return k;
}

function threshold(t: unknown): number {
  if (typeof t !== 'number' || !Number.isFinite(t) || t < EXIT_THRESHOLD_MIN || t > EXIT_THRESHOLD_MAX) {
    throw new UsageError(`re-export: the threshold must be a number in [${EXIT_THRESHOLD_MIN}, ${EXIT_THRESHOLD_MAX}]; got ${typeof t === 'number' ? t : typeof t}`);
  }
  return t;
}

/**
 * Writes the kept run `id` with `threshold` at every exit over the run's output (loaded in
 * ORT before it takes the name, see `saveVerified`) and returns its table and what ORT
 * measured on it. Errors: UsageError for an unknown id or a threshold out of range.
 */
export async function reexportRun(req: { id: unknown; threshold: unknown }, signal?: AbortSignal): Promise<ExitsReexportDto> {
  const run = keptRun(req.id);
  const t = threshold(req.threshold);
  const r = await reexport(run.state, t, { signal });
  await saveVerified(r.model, run.output);
  return { id: req.id as string, output: run.output, threshold: t, table: r.table, measured: r.measured };
}

/** Forgets the kept runs named in `ids` (others and unknown ids are left alone). */
export function dropExitRuns(ids: unknown): number {
  if (!Array.isArray(ids)) throw new UsageError('exitsDrop: ids must be a list');
  let n = 0;
  for (const id of ids.slice(0, 64)) if (typeof id === 'string' && kept.delete(id)) n++;
  return n;
}

/** Ids of the kept runs, oldest first (for tests). */
export function keptExitRuns(): string[] {
  return [...kept.keys()];
}
