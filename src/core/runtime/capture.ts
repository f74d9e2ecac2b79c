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
  const session = await ModelSession.create(withExtraOutputs(model, names), opts.session, model.path);
  try {
    for (const { start, size, feeds } of data.batches(opts.batchSize, opts.limit)) {
      if (opts.signal?.aborted) throw new CancelledError();
      const out = await session.run(feeds, names);
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
