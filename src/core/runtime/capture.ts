import { CancelledError, UsageError } from '../errors';
import { storageBytes } from '../ir/dtype';
import { Graph, Model } from '../ir/graph';
import { inferShapes } from '../ir/shape-inference';
import { batchPlan, fixedBatch, type Dataset } from './data/dataset';
import { ModelSession, type HostTensor, type SessionOptions } from './session';

/**
 * Activation capture: runs a model on data and hands back chosen intermediate tensors,
 * batch by batch. It works on an in-memory copy of the model with extra graph outputs; the
 * model itself is not changed. Calibration, sensitivity analysis and reconstruction use it.
 */

export interface CaptureOptions {
  batchSize: number;
  /**
   * Bytes one batch of captured activations may take (default 128 MiB). Grouped capture
   * (`captureGrouped`) shrinks the batch and splits the tensors into groups, one pass over the
   * data per group, so that no batch holds more.
   */
  maxBatchBytes?: number;
  /** Called after each batch of each pass: stage, fraction done (0–1). */
  onProgress?: (stage: string, fraction: number) => void;
  session?: SessionOptions;
  limit?: number;
  signal?: AbortSignal;
}

/** Batches `model` accepts over the data (its fixed batch, if any, wins over the request). */
export function modelBatches(model: Model, opts: Pick<CaptureOptions, 'batchSize' | 'limit'>, data: Dataset): { batchSize: number; samples: number } {
  return batchPlan(inputShapesOf(model), opts.batchSize, Math.min(opts.limit ?? data.count, data.count));
}

/** The model's fixed batch size (a numeric first dim of an input), if any. */
export function modelFixedBatch(model: Model): number | undefined {
  return fixedBatch(inputShapesOf(model));
}

function inputShapesOf(model: Model): Array<{ shape: Array<number | string | null> }> {
  const g = model.graph;
  return g.inputs.filter((i) => !g.initializers.has(i.name)).map((i) => ({ shape: i.type?.kind === 'tensor' && i.type.shape ? i.type.shape : [] }));
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
  const plan = modelBatches(model, opts, data);
  try {
    for (const { start, size, feeds } of data.batches(plan.batchSize, plan.samples)) {
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
    const plan = modelBatches(models[0].model, opts, data);
    for (const { start, size, feeds } of data.batches(plan.batchSize, plan.samples)) {
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

/**
 * Default bound on one batch of captured activations. ONNX Runtime holds each batch's values
 * once more while it hands them over, so the working set is about twice this: at 256 MiB,
 * static int8 calibration of a 324 MiB BERT-base-sized encoder peaked 340 MiB higher than at 128.
 */
export const DEFAULT_BATCH_BYTES = 128 * 2 ** 20;

/**
 * Bytes per sample of each named value, from shape inference with the data's sample shapes
 * (the batch axis counts 1). A value whose size cannot be inferred gets the largest known size.
 */
export function activationBytesPerSample(model: Model, names: string[], data: Dataset): Map<string, number> {
  const inputShapes: Record<string, Array<number | string>> = {};
  for (const [name, src] of data.sources) inputShapes[name] = ['batch', ...src.sampleShape];
  const { types } = inferShapes(model, { inputShapes });
  const out = new Map<string, number>();
  const unknown: string[] = [];
  for (const n of names) {
    const t = types.get(n);
    let elems: number | null = t?.shape ? 1 : null;
    for (const d of t?.shape ?? []) {
      if (typeof d === 'number') elems! *= d;
      else if (d === null) elems = null;
      if (elems === null) break;
    }
    if (elems === null || !t) unknown.push(n);
    else out.set(n, storageBytes(t.dtype, elems) || elems * 4);
  }
  const fallback = Math.max(4, ...out.values());
  for (const n of unknown) out.set(n, fallback);
  return out;
}

/**
 * Splits `names` into groups and picks a batch size so that one batch of one group's
 * activations stays within `maxBytes`, with as few groups as possible: each group is one more
 * pass of the whole model over the data, which costs far more than running smaller batches.
 * The batch is the largest (up to `batchSize`) at which every value of one sample fits in one
 * group; when they do not fit even at batch 1 (or at the model's fixed batch), the batch is 1
 * and the tensors are packed greedily in order.
 */
export function planCaptureGroups(perSample: Map<string, number>, names: string[], batchSize: number, maxBytes: number, fixedBatch?: number): { batchSize: number; groups: string[][] } {
  let total = 0;
  for (const n of names) total += perSample.get(n) ?? 0;
  const b = fixedBatch ?? Math.max(1, Math.min(batchSize, total > 0 ? Math.floor(maxBytes / total) : batchSize));
  const groups: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const n of names) {
    const nb = (perSample.get(n) ?? 0) * b;
    if (cur.length && bytes + nb > maxBytes) {
      groups.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(n);
    bytes += nb;
  }
  if (cur.length) groups.push(cur);
  return { batchSize: b, groups };
}

/**
 * Streams activations with bounded memory: like `captureActivations`, but the names are
 * split into groups (one pass over the data each) and the batch shrunk, so one batch of
 * captured values stays within `maxBatchBytes`. `onBatch` sees a subset of the names
 * each time; every (name, sample) is seen exactly once.
 */
export async function captureGrouped(
  model: Model,
  names: string[],
  data: Dataset,
  opts: CaptureOptions,
  onBatch: (b: { group: number; groups: number; start: number; size: number; values: Record<string, HostTensor> }) => void | Promise<void>,
): Promise<{ groups: number; batchSize: number }> {
  const maxBytes = opts.maxBatchBytes ?? DEFAULT_BATCH_BYTES;
  const plan = planCaptureGroups(activationBytesPerSample(model, names, data), names, opts.batchSize, maxBytes, modelFixedBatch(model));
  const total = modelBatches(model, { batchSize: plan.batchSize, limit: opts.limit }, data).samples;
  for (const [k, group] of plan.groups.entries()) {
    await captureActivations(model, group, data, { ...opts, batchSize: plan.batchSize }, async ({ start, size, values }) => {
      await onBatch({ group: k, groups: plan.groups.length, start, size, values });
      opts.onProgress?.('capturing activations', (k + (start + size) / Math.max(1, total)) / plan.groups.length);
    });
  }
  return { groups: plan.groups.length, batchSize: plan.batchSize };
}
