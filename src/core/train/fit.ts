import { UsageError } from '../errors';
import { dynamicKind } from '../analysis/dynamic-models';
import { DataType } from '../ir/dtype';
import { Model, outerRefs } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import { ModelSession, type HostTensor } from '../runtime/session';
import { cloneModel } from '../ir/clone';
import type { AccumulateOptions, EpochRecord, FitOptions, FitResult, LossTerm, SampleSet, TrainableSelection, TrainProgress } from './api';
import { buildTrainingGraph, floatWeights } from './autodiff';
import { assertCheckpointExists, readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint';
import { shuffled } from './data';
import { Optimizer, clipGradNorm, learningRate, validateSchedule } from './optim';
import { TrainingSession } from './session';

/**
 * The training loop: seeded shuffling per epoch, batches, an optimizer step per batch
 * (masks keep pruned zeros), validation after each epoch, early stopping that keeps the
 * best weights, a checkpoint per epoch, progress and cancel between steps.
 */

/**
 * Why `model` cannot be trained as one graph, in the user's terms, or undefined. Training
 * differentiates one static graph; it refuses:
 * - an early-exit model (metadata `early_exit`, written by `early-exit`): its exits pick the
 *   output by confidence (nested If), and its heads and thresholds were fitted to the current
 *   backbone;
 * - a runtime-widths model (metadata `runtime_widths`, written by `early-exit --widths`): an If
 *   on its width input picks a sub-network whose weights are Slices of the shared weights;
 * - any other control flow (If, Loop, Scan) that a trained weight reaches: a gradient does not
 *   pass through subgraphs, so the weights behind it would silently get none.
 * `trainable` defaults to every float weight.
 */
export function trainingRefusal(model: Model, trainable?: string[]): string | undefined {
  const file = model.path ?? 'the model';
  const kind = dynamicKind(model);
  if (kind === 'early-exit') {
    return `${file} is an early-exit model (its exits choose the output by confidence, with heads and thresholds fitted to its backbone): it cannot be trained or distilled; train the backbone (the model before early-exit), then add the exits again with early-exit`;
  }
  if (kind === 'runtime-widths') {
    return `${file} is a runtime-widths model (an If on its width input picks a sub-network of shared, sliced weights): it cannot be trained or distilled; train the full-width model (the one before early-exit --widths), then build the widths again (they are fine-tuned there)`;
  }
  const reached = new Set(trainable ?? floatWeights(model));
  for (const n of model.graph.topoOrder()) {
    const reads = [...n.inputs, ...outerRefs(n)];
    if (!reads.some((v) => reached.has(v))) continue;
    if (n.subgraphs().length) {
      return `${file}: node '${n.label}' (${n.opType}) holds subgraphs (control flow) that trained weights reach; training does not go through control flow: freeze the weights before it (--freeze) or export the model without ${n.opType}`;
    }
    for (const o of n.outputs) if (o) reached.add(o);
  }
  return undefined;
}

/** Throws the UsageError of `trainingRefusal` (see there). */
export function assertTrainable(model: Model, trainable?: string[]): void {
  const why = trainingRefusal(model, trainable);
  if (why) throw new UsageError(why);
}

/**
 * Resolves `trainable`/`freeze` (exact initializer names or name prefixes) to the float
 * weights to train. A pattern that matches nothing is a UsageError naming it.
 */
export function selectTrainable(model: Model, sel: TrainableSelection): string[] {
  const all = floatWeights(model);
  const match = (patterns: string[], what: string) => {
    const hit = new Set<string>();
    for (const p of patterns) {
      const m = all.filter((w) => w === p || w.startsWith(p));
      if (!m.length) throw new UsageError(`--${what} '${p}' matches no float weight of the model (weights: ${all.slice(0, 8).join(', ')}${all.length > 8 ? ', …' : ''})`);
      m.forEach((w) => hit.add(w));
    }
    return hit;
  };
  let chosen = sel.trainable?.length ? all.filter((w) => match(sel.trainable!, 'trainable').has(w)) : all;
  if (sel.freeze?.length) {
    const frozen = match(sel.freeze, 'freeze');
    chosen = chosen.filter((w) => !frozen.has(w));
  }
  if (!chosen.length) throw new UsageError('no weight left to train after --trainable/--freeze');
  return chosen;
}

/** A copy of `model` whose `names` initializers are graph inputs (weights fed per run). */
export function parameterised(model: Model, names: string[]): Model {
  const m = cloneModel(model);
  for (const n of names) {
    const t = m.graph.initializers.get(n)!;
    m.graph.initializers.delete(n);
    m.graph.inputs = m.graph.inputs.filter((i) => i.name !== n);
    m.graph.inputs.push({ name: n, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [...t.dims] } });
  }
  return m;
}

/** A copy of `model` holding `weights` (new tensors; the input model is not touched). */
export function withWeights(model: Model, weights: Map<string, Float32Array>): Model {
  const m = cloneModel(model);
  for (const [name, w] of weights) {
    const old = m.graph.initializers.get(name)!;
    const t = Tensor.fromArray(name, DataType.FLOAT, [...old.dims], Float32Array.from(w));
    t.modified = true;
    m.graph.initializers.set(name, t);
  }
  return m;
}

/** The most epochs one fit may run (a bound on the work a request can ask for). */
export const MAX_EPOCHS = 10_000;

function validateFit(o: FitOptions, count: number): void {
  if (!Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > MAX_EPOCHS) throw new UsageError(`epochs must be a whole number from 1 to ${MAX_EPOCHS}, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new UsageError(`batch size must be a whole number ≥ 1, got ${o.batchSize}`);
  if (count < 1) throw new UsageError('the training data has no samples');
  if (o.clipGradNorm !== undefined && !(o.clipGradNorm > 0)) throw new UsageError('gradient-norm clipping needs a positive norm');
  if (o.earlyStopping && !o.validation) throw new UsageError('early stopping needs validation data');
  if (o.earlyStopping && !(o.earlyStopping.patience >= 1)) throw new UsageError('early-stopping patience must be ≥ 1 epoch');
  validateSchedule(o.schedule);
}

function firstCrossEntropy(losses: LossTerm[]): string | undefined {
  for (const l of losses) if (l.kind === 'cross-entropy') return l.labels;
  return undefined;
}

function argmaxAccuracy(out: HostTensor, labels: HostTensor): [number, number] {
  const n = out.dims[0];
  const c = out.data.length / n;
  let right = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if ((out.data[i * c + j] as number) > (out.data[i * c + best] as number)) best = j;
    if (best === Number(labels.data[i])) right++;
  }
  return [right, n];
}

/** Evaluates the validation metric with the current weights. */
class Validator {
  private constructor(
    private readonly o: FitOptions['validation'] & object,
    private readonly session: ModelSession | TrainingSession,
    private readonly output: string,
    private readonly labels: string,
    private readonly params: string[],
  ) {}

  static async create(model: Model, params: string[], opts: FitOptions, train: TrainingSession): Promise<Validator | undefined> {
    const v = opts.validation;
    if (!v) return undefined;
    if (v.metric === 'loss') return new Validator(v, train, '', '', params);
    const labels = v.labels ?? firstCrossEntropy(opts.losses);
    if (!labels) throw new UsageError('validation accuracy needs labels (a cross-entropy loss or validation.labels)');
    const output = v.output ?? model.graph.outputs[0]?.name;
    if (!output) throw new UsageError('the model has no output to validate');
    const s = await ModelSession.create(parameterised(model, params), { ...opts.session, allowSpinning: false }, '<validation>');
    return new Validator(v, s, output, labels, params);
  }

  get higherIsBetter(): boolean {
    return this.o.metric === 'accuracy';
  }

  async measure(weights: Map<string, Float32Array>, batch: number, shapes: Map<string, number[]>): Promise<number> {
    const n = this.o.data.count;
    let right = 0;
    let total = 0;
    let lossSum = 0;
    for (let s = 0; s < n; s += batch) {
      const idx = Array.from({ length: Math.min(batch, n - s) }, (_, i) => s + i);
      const feeds = await this.o.data.gather(idx);
      if (this.session instanceof TrainingSession) {
        const r = await this.session.step(feeds, weights);
        lossSum += r.loss * idx.length;
        total += idx.length;
        continue;
      }
      const labels = feeds[this.labels];
      if (!labels) throw new UsageError(`the validation data has no '${this.labels}' labels`);
      const f: Record<string, HostTensor> = {};
      for (const i of this.session.inputs) {
        if (feeds[i.name]) f[i.name] = feeds[i.name];
        else if (weights.has(i.name)) f[i.name] = { dtype: DataType.FLOAT, dims: shapes.get(i.name)!, data: weights.get(i.name)! };
      }
      const out = await this.session.run(f, [this.output]);
      const [r, t] = argmaxAccuracy(out[this.output], labels);
      right += r;
      total += t;
    }
    return this.o.metric === 'loss' ? lossSum / Math.max(1, total) : right / Math.max(1, total);
  }

  async release(): Promise<void> {
    if (this.session instanceof ModelSession) await this.session.release();
  }
}

function copyMap(m: Map<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
}

function applyMasks(params: Map<string, Float32Array>, masks: Map<string, Uint8Array>): void {
  for (const [k, m] of masks) {
    const w = params.get(k);
    if (w) for (let i = 0; i < w.length; i++) if (!m[i]) w[i] = 0;
  }
}

/**
 * Trains `model` on `train` (see `FitOptions`). Returns a copy of the original inference
 * graph with the best (or last) weights and the curves; never modifies `model`.
 */
export async function fit(model: Model, train: SampleSet, opts: FitOptions): Promise<FitResult> {
  validateFit(opts, train.count);
  const optimizer = new Optimizer(opts.optimizer);
  const trainable = selectTrainable(model, opts);
  assertTrainable(model, trainable);
  const tg = buildTrainingGraph(model, { losses: opts.losses, trainable, batchNorm: opts.batchNorm });
  const params = new Map(trainable.map((n) => [n, model.graph.initializers.get(n)!.toFloat32()]));
  // Everything the written model takes from training: the weights and, in BN train mode, the
  // running statistics (updated by each step, not by the optimizer).
  const values = new Map(params);
  for (const n of tg.state.keys()) values.set(n, model.graph.initializers.get(n)!.toFloat32());
  const masks = new Map<string, Uint8Array>();
  for (const [k, m] of opts.masks ?? []) {
    const w = params.get(k);
    if (!w) throw new UsageError(`a mask is given for '${k}', which is not trained`);
    if (m.length !== w.length) throw new UsageError(`the mask of '${k}' has ${m.length} entries, the weight has ${w.length}`);
    masks.set(k, m);
  }
  if (opts.keepZeros) {
    for (const [k, w] of params) if (!masks.has(k) && w.some((v) => v === 0)) masks.set(k, Uint8Array.from(w, (v) => (v === 0 ? 0 : 1)));
  }
  applyMasks(params, masks);

  const session = await TrainingSession.create(tg, opts.session);
  let validator: Validator | undefined;
  try {
    validator = await Validator.create(model, [...values.keys()], opts, session);
    const steps = opts.dropLast ? Math.floor(train.count / opts.batchSize) : Math.ceil(train.count / opts.batchSize);
    if (steps < 1) throw new UsageError(`batch ${opts.batchSize} is larger than the ${train.count} training samples with dropLast`);
    const total = steps * opts.epochs;
    const seed = opts.seed ?? 0;
    let state: Checkpoint = { epoch: 0, globalStep: 0, history: [], bestEpoch: 0, stale: 0, params: values, best: new Map(), optimizer: optimizer.state };
    if (opts.checkpoint?.resume) {
      assertCheckpointExists(opts.checkpoint.path);
      const loaded = readCheckpoint(opts.checkpoint.path, new Map([...values].map(([k, v]) => [k, v.length])));
      for (const [k, v] of loaded.params) values.get(k)!.set(v);
      optimizer.state.step = loaded.optimizer.step;
      for (const [k, v] of loaded.optimizer.slots) optimizer.state.slots.set(k, v);
      state = { ...loaded, params: values, optimizer: optimizer.state };
    }
    let stopped: FitResult['stopped'] = 'completed';
    let stepMs = 0;
    let stepsTimed = 0;
    const better = (m: number, best: number | undefined) =>
      best === undefined || (validator!.higherIsBetter ? m > best + (opts.earlyStopping?.minDelta ?? 0) : m < best - (opts.earlyStopping?.minDelta ?? 0));
    const shapes = new Map([...tg.paramShapes, ...tg.stateShapes]);
    // Epoch 0: the weights before training are the baseline every epoch must beat; kept when none does.
    if (validator && state.epoch === 0) {
      state.initialMetric = await validator.measure(values, Math.max(opts.batchSize, 64), shapes);
      state.bestMetric = state.initialMetric;
      state.bestEpoch = 0;
      state.best = copyMap(values);
    }
    outer: for (let epoch = state.epoch; epoch < opts.epochs; epoch++) {
      const t0 = Date.now();
      const perm = shuffled(train.count, seed, epoch);
      let lossSum = 0;
      let seen = 0;
      let lr = 0;
      for (let s = 0; s < steps; s++) {
        if (opts.signal?.aborted) {
          stopped = 'cancelled';
          break outer;
        }
        const idx = perm.slice(s * opts.batchSize, Math.min(train.count, (s + 1) * opts.batchSize));
        const ts = process.hrtime.bigint();
        const feeds = await train.gather(idx);
        const r = await session.step(feeds, values);
        for (const [k, v] of r.state) values.get(k)!.set(v);
        for (const [k, m] of masks) {
          const g = r.grads.get(k)!;
          for (let i = 0; i < g.length; i++) if (!m[i]) g[i] = 0;
        }
        if (opts.clipGradNorm) clipGradNorm(r.grads, opts.clipGradNorm);
        lr = learningRate(opts.optimizer.lr, opts.schedule, state.globalStep, total, epoch);
        optimizer.update(params, r.grads, lr);
        applyMasks(params, masks);
        state.globalStep++;
        const ms = Number(process.hrtime.bigint() - ts) / 1e6;
        stepMs += ms;
        stepsTimed++;
        if (!Number.isFinite(r.loss)) throw new UsageError(`the loss became ${r.loss} at epoch ${epoch + 1}, step ${s + 1}; lower the learning rate`);
        lossSum += r.loss * idx.length;
        seen += idx.length;
        const avg = stepMs / stepsTimed;
        opts.onProgress?.({
          phase: 'step',
          epoch: epoch + 1,
          epochs: opts.epochs,
          step: s + 1,
          steps,
          loss: r.loss,
          lr,
          samplesPerSecond: (opts.batchSize * 1000) / avg,
          etaSeconds: ((total - state.globalStep) * avg) / 1000,
        });
      }
      const rec: EpochRecord = { epoch: epoch + 1, trainLoss: lossSum / Math.max(1, seen), lr, seconds: (Date.now() - t0) / 1000 };
      if (validator) {
        rec.metric = await validator.measure(values, Math.max(opts.batchSize, 64), shapes);
        if (better(rec.metric, state.bestMetric)) {
          state.bestMetric = rec.metric;
          state.bestEpoch = epoch + 1;
          state.best = copyMap(values);
          state.stale = 0;
        } else state.stale++;
      } else state.bestEpoch = epoch + 1;
      rec.seconds = (Date.now() - t0) / 1000;
      state.history.push(rec);
      state.epoch = epoch + 1;
      if (opts.checkpoint) writeCheckpoint(opts.checkpoint.path, state);
      opts.onProgress?.({
        phase: 'epoch',
        epoch: epoch + 1,
        epochs: opts.epochs,
        step: steps,
        steps,
        loss: rec.trainLoss,
        lr,
        samplesPerSecond: stepsTimed ? (opts.batchSize * 1000 * stepsTimed) / stepMs : 0,
        etaSeconds: stepsTimed ? ((total - state.globalStep) * stepMs) / stepsTimed / 1000 : 0,
        metric: rec.metric,
      });
      if (opts.earlyStopping && state.stale >= opts.earlyStopping.patience) {
        stopped = 'early-stopped';
        break;
      }
    }
    const final = validator && state.best.size ? state.best : values;
    if (!(validator && state.best.size)) state.bestEpoch = state.epoch;
    return {
      model: withWeights(model, final),
      history: state.history,
      bestEpoch: state.bestEpoch,
      bestMetric: state.bestMetric,
      initialMetric: state.initialMetric,
      msPerStep: stepsTimed ? stepMs / stepsTimed : 0,
      steps: state.globalStep,
      stopped,
      trainable,
    };
  } finally {
    await validator?.release();
    await session.release();
  }
}

/**
 * Σ over batches of ∂L/∂w for the selected weights, without updating them (each batch's
 * loss is its mean over the batch). The basis of first-order Taylor importance.
 */
export async function accumulateGradients(model: Model, data: SampleSet, opts: AccumulateOptions): Promise<Map<string, Float32Array>> {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new UsageError(`batch size must be a whole number ≥ 1, got ${opts.batchSize}`);
  const trainable = selectTrainable(model, opts);
  assertTrainable(model, trainable);
  const tg = buildTrainingGraph(model, { losses: opts.losses, trainable });
  const params = new Map(trainable.map((n) => [n, model.graph.initializers.get(n)!.toFloat32()]));
  const sums = new Map(trainable.map((n) => [n, new Float32Array(params.get(n)!.length)]));
  const session = await TrainingSession.create(tg, opts.session);
  try {
    const n = Math.min(data.count, opts.limit ?? data.count);
    for (let s = 0; s < n; s += opts.batchSize) {
      if (opts.signal?.aborted) throw new (await import('../errors')).CancelledError();
      const idx = Array.from({ length: Math.min(opts.batchSize, n - s) }, (_, i) => s + i);
      const r = await session.step(await data.gather(idx), params);
      for (const [k, g] of r.grads) {
        const acc = sums.get(k)!;
        for (let i = 0; i < g.length; i++) acc[i] += g[i];
      }
    }
  } finally {
    await session.release();
  }
  return sums;
}

/**
 * First-order Taylor saliency per channel (Molchanov et al. 2019): |Σ_{i ∈ channel} w_i·g_i|
 * along `axis` of a weight with dims `dims` (axis 0: output channels of Conv/Gemm-transB).
 */
export function channelSaliency(w: Float32Array, g: Float32Array, dims: number[], axis = 0): Float64Array {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const ch = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const s = new Float64Array(ch);
  for (let o = 0; o < outer; o++) for (let c = 0; c < ch; c++) for (let i = 0; i < inner; i++) {
    const k = (o * ch + c) * inner + i;
    s[c] += w[k] * g[k];
  }
  return s.map(Math.abs);
}

export type { TrainProgress };
