import { CancelledError, UsageError } from '../errors';
import { Graph, Model } from '../ir/graph';
import type { Dataset } from './data/dataset';
import { ModelSession, type HostTensor, type SessionOptions } from './session';

/**
 * Activation capture: runs a model on data and hands back chosen intermediate tensors,
 * batch by batch. It works on an in-memory copy of the model with extra graph outputs; the
 * model itself is not changed. Calibration, sensitivity analysis and reconstruction use it.
 */

export interface CaptureOptions {
  batchSize: number;
  session?: SessionOptions;
  limit?: number;
  signal?: AbortSignal;
}

/** A shallow copy of `model` whose graph also outputs `names`. */
export function withExtraOutputs(model: Model, names: string[]): Model {
  const g = model.graph;
  const known = new Set<string>([...g.inputs.map((i) => i.name), ...g.nodes.flatMap((n) => n.outputs)]);
  for (const n of names) if (!known.has(n)) throw new UsageError(`'${n}' is not a value computed by the model`);
  const g2 = Object.assign(new Graph(g.name), g);
  const existing = new Set(g.outputs.map((o) => o.name));
  g2.outputs = [...g.outputs, ...names.filter((n) => !existing.has(n)).map((name) => ({ name }))];
  const m2 = Object.assign(new Model(g2, model.format), model);
  m2.graph = g2;
  return m2;
}

/** Streams the requested activations; `onBatch` sees each batch once, then it is dropped. */
export async function captureActivations(
  model: Model,
  names: string[],
  data: Dataset,
  opts: CaptureOptions,
  onBatch: (b: { start: number; size: number; values: Record<string, HostTensor> }) => void | Promise<void>,
): Promise<void> {
  // Graph inputs come straight from the feeds; everything else becomes an extra output.
  const inputs = new Set(model.graph.inputs.map((i) => i.name));
  const computed = names.filter((n) => !inputs.has(n));
  const session = await ModelSession.create(withExtraOutputs(model, computed), opts.session, model.path);
  try {
    for (const { start, size, feeds } of data.batches(opts.batchSize, opts.limit)) {
      if (opts.signal?.aborted) throw new CancelledError();
      const out = computed.length ? await session.run(feeds, computed) : {};
      for (const n of names) if (inputs.has(n)) out[n] = feeds[n];
      await onBatch({ start, size, values: out });
    }
  } finally {
    await session.release();
  }
}

/**
 * Collects activations into memory, refusing to hold more than `maxBytes` (the caller
 * should stream with `captureActivations` instead, or use fewer samples).
 */
export async function collectActivations(
  model: Model,
  names: string[],
  data: Dataset,
  opts: CaptureOptions & { maxBytes?: number },
): Promise<Record<string, HostTensor[]>> {
  const maxBytes = opts.maxBytes ?? 512 * 2 ** 20;
  const out: Record<string, HostTensor[]> = Object.fromEntries(names.map((n) => [n, []]));
  let bytes = 0;
  await captureActivations(model, names, data, opts, ({ values }) => {
    for (const n of names) {
      bytes += values[n].data.byteLength;
      if (bytes > maxBytes) {
        throw new UsageError(`the requested activations exceed ${Math.round(maxBytes / 2 ** 20)} MiB; use fewer samples or stream them`);
      }
      out[n].push(values[n]);
    }
  });
  return out;
}

/**
 * Runs several models in lockstep on the same batches and hands over the requested values
 * of each (e.g. inputs from a partly compressed model, targets from the original).
 */
export async function captureLockstep(
  models: Array<{ model: Model; names: string[] }>,
  data: Dataset,
  opts: CaptureOptions,
  onBatch: (b: { start: number; size: number; values: Array<Record<string, HostTensor>> }) => void | Promise<void>,
): Promise<void> {
  const prepared = models.map(({ model, names }) => {
    const inputs = new Set(model.graph.inputs.map((i) => i.name));
    return { names, inputs, computed: names.filter((n) => !inputs.has(n)), model };
  });
  const sessions: ModelSession[] = [];
  try {
    for (const p of prepared) sessions.push(await ModelSession.create(withExtraOutputs(p.model, p.computed), opts.session, p.model.path));
    for (const { start, size, feeds } of data.batches(opts.batchSize, opts.limit)) {
      if (opts.signal?.aborted) throw new CancelledError();
      const values: Array<Record<string, HostTensor>> = [];
      for (let k = 0; k < prepared.length; k++) {
        const p = prepared[k];
        const out = p.computed.length ? await sessions[k].run(feeds, p.computed) : {};
        for (const n of p.names) if (p.inputs.has(n)) out[n] = feeds[n];
        values.push(out);
      }
      await onBatch({ start, size, values });
    }
  } finally {
    for (const s of sessions) await s.release();
  }
}
