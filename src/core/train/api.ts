import type { Model } from '../ir/graph';
import type { HostTensor, SessionOptions } from '../runtime/session';

/**
 * The public types of the training engine. Everything a method built on the engine
 * (fine-tune and distillation recovery, Taylor importance, sparsity training, QAT, early-exit
 * heads, slimmable widths) needs is named here; `index.ts` exports the functions:
 *
 * - `buildTrainingGraph(model, { losses, trainable })` → one ONNX graph (forward + loss +
 *   backward) of standard ops: trainable initializers become graph inputs, the outputs are
 *   the loss, each loss term and one gradient per trainable weight (reverse-mode autodiff,
 *   rules from `grad/registry.ts`).
 * - `TrainingSession` runs that graph in ONNX Runtime: one `step` is one `session.run`.
 * - `fit(model, train, options)` is the loop (batches, optimizer, schedule, masks,
 *   validation, early stopping, checkpoints, progress, cancel) and returns the original
 *   inference graph with new weights, plus the curves.
 * - `accumulateGradients(model, data, options)` sums ∂L/∂w over batches without updating
 *   (Taylor importance, Molchanov et al. 2019: |Σ w·∂L/∂w| per channel, `channelSaliency`).
 *
 * Stability: these types are extended, never broken.
 */

/** A loss term. The total loss is Σ weight·term (each `weight` defaults to 1). */
export type LossTerm = CrossEntropyLoss | DistillationLoss | MseLoss | L1Penalty | L2Penalty;

/**
 * Softmax cross-entropy with integer class labels, averaged over the batch (PyTorch's
 * `F.cross_entropy`, reduction 'mean'). `logits`: a float [N, C] tensor of the graph.
 * `labels`: the name of a NEW graph input, int64 [N], that the data feeds.
 */
export interface CrossEntropyLoss {
  kind: 'cross-entropy';
  logits: string;
  labels: string;
  weight?: number;
}

/**
 * Knowledge distillation (Hinton et al. 2015): T²·KL(softmax(t/T) ‖ softmax(s/T)), the KL
 * summed over classes and averaged over the batch (PyTorch `kl_div(..., 'batchmean')·T²`).
 * `logits`: the student's [N, C] tensor. `teacherLogits`: the name of a NEW graph input,
 * float [N, C], fed with the teacher's logits (any model, run by ORT: see `withTeacher`), or
 * a tensor of the same graph (e.g. the full width when training slimmable widths), which
 * then acts as a constant: no gradient flows into it (PyTorch's `detach()`).
 */
export interface DistillationLoss {
  kind: 'distillation';
  logits: string;
  teacherLogits: string;
  /** T > 0 (4 is the usual default). */
  temperature: number;
  weight?: number;
}

/**
 * Mean squared error over all elements, mean((prediction − target)²) (PyTorch `mse_loss`).
 * `prediction`: a float tensor of the graph (an output or any intermediate: feature
 * matching). `target`: another tensor of the graph, or the name of a NEW graph input of the
 * same shape that the data feeds (regression targets, teacher features). When `target` is a
 * graph tensor, gradients flow into both sides.
 */
export interface MseLoss {
  kind: 'mse';
  prediction: string;
  target: string;
  weight?: number;
}

/** λ·Σ|w| over the named initializers (sparsity training; subgradient sign(w), 0 at 0). */
export interface L1Penalty {
  kind: 'l1';
  weights: string[];
  weight: number;
}

/** (λ/2)·Σw² over the named initializers, so its gradient is λ·w. */
export interface L2Penalty {
  kind: 'l2';
  weights: string[];
  weight: number;
}

/**
 * How BatchNormalization nodes that remain in a model are trained (models exported with BN
 * folded into the convolutions have none, and then the mode changes nothing).
 * - `'frozen'` (default): the running mean and variance stay as they are and act as
 *   constants (the model's own inference semantics, `training_mode` 0), while scale (γ) and
 *   bias (β) are trainable like any weight. What fine-tuning with small batches wants
 *   (PyTorch's `model.eval()` for BN layers).
 * - `'train'`: PyTorch's `model.train()` semantics: each batch is normalised with its own
 *   statistics (biased variance), the gradient flows through them, and the running mean and
 *   variance are updated after every step with momentum 1 − the node's ONNX `momentum`
 *   (0.1 for PyTorch exports) and the unbiased batch variance. Batches need more than one
 *   value per channel. See `batchnorm.ts`.
 * Either way the trained model is the original inference graph; in `'train'` mode it holds
 * the updated running statistics.
 */
export type BatchNormMode = 'frozen' | 'train';

export interface TrainingGraphOptions {
  losses: LossTerm[];
  /** Float initializers to train (see `selectTrainable`). Must be non-empty. */
  trainable: string[];
  batchNorm?: BatchNormMode;
  /**
   * Extra forward tensors to expose as outputs of the training graph (e.g. the logits for a
   * running training accuracy).
   */
  extraOutputs?: string[];
}

/** A described input of the training graph. */
export interface TrainingInput {
  name: string;
  /**
   * 'data': an input of the original model; 'loss': labels/targets/teacher logits; 'param': a
   * trainable weight; 'state': a BatchNormalization running statistic (BN train mode).
   */
  role: 'data' | 'loss' | 'param' | 'state';
  /** ONNX element type (`DataType`). */
  dtype: number;
  /** Dims; strings are symbolic (the batch axis). */
  shape: Array<number | string | null>;
}

/**
 * The result of `buildTrainingGraph`: an ONNX model of standard ops whose one run is one
 * forward + backward pass.
 */
export interface TrainingGraph {
  /** The training graph (opset ≥ 13). Never the caller's model object. */
  model: Model;
  inputs: TrainingInput[];
  /** Name of the scalar float output holding the total loss. */
  lossOutput: string;
  /** Scalar output per loss term, in the order of `losses`. */
  termOutputs: string[];
  /** Trainable initializer name → name of the output holding ∂loss/∂weight (same shape). */
  gradOutputs: Map<string, string>;
  /** Trainable weight names, in input order. */
  params: string[];
  /** Dims of each trainable weight. */
  paramShapes: Map<string, number[]>;
  /**
   * BN train mode: running-statistic initializer name → name of the output holding its value
   * after this step (empty otherwise). Each is also an input, fed with its current value.
   */
  state: Map<string, string>;
  /** Dims of each running statistic in `state`. */
  stateShapes: Map<string, number[]>;
}

/** Which weights train: glob-free names or prefixes, resolved by `selectTrainable`. */
export interface TrainableSelection {
  /** Initializer names or name prefixes to train (default: every float weight of rank ≥ 1). */
  trainable?: string[];
  /** Initializer names or name prefixes to keep frozen (applied after `trainable`). */
  freeze?: string[];
}

/** Per-step results of `TrainingSession.step`. */
export interface StepResult {
  loss: number;
  /** One value per loss term. */
  terms: number[];
  /** Gradients, keyed by weight name (fresh arrays owned by the caller). */
  grads: Map<string, Float32Array>;
  /** The `extraOutputs` asked for. */
  extra: Record<string, HostTensor>;
  /** BN train mode: the updated running statistics, keyed by initializer name (empty otherwise). */
  state: Map<string, Float32Array>;
}

/**
 * A training data set: samples addressed by index, gathered into batches. Feeds are keyed
 * by training-graph input name (model inputs, labels, targets, teacher logits).
 */
export interface SampleSet {
  readonly count: number;
  /** The samples at `indices`, stacked on a leading batch axis. */
  gather(indices: readonly number[]): Promise<Record<string, HostTensor>>;
}

export type OptimizerConfig =
  | {
      /** SGD with momentum (PyTorch semantics: v = μv + g; Nesterov: g + μv). */
      kind: 'sgd';
      lr: number;
      momentum?: number;
      nesterov?: boolean;
      /** L2 weight decay added to the gradient (coupled). */
      weightDecay?: number;
    }
  | {
      /** Adam (Kingma & Ba 2015) with coupled L2 decay; AdamW (Loshchilov & Hutter 2019) with decoupled decay. */
      kind: 'adam' | 'adamw';
      lr: number;
      beta1?: number;
      beta2?: number;
      eps?: number;
      weightDecay?: number;
    };

/** Learning-rate schedule, evaluated per step. */
export type LrSchedule =
  | { kind: 'constant'; warmupSteps?: number }
  /** lr·gamma^floor(epoch / stepEpochs). */
  | { kind: 'step'; stepEpochs: number; gamma: number; warmupSteps?: number }
  /** Linear warmup from 0, then cosine decay to `minLr` at the last step (Loshchilov & Hutter 2017, SGDR without restarts). */
  | { kind: 'cosine'; warmupSteps?: number; minLr?: number };

export interface ValidationOptions {
  data: SampleSet;
  /**
   * 'accuracy': top-1 of `output` against the int64 labels fed as `labels` (higher is better).
   * 'loss': the training loss on the validation data (lower is better).
   */
  metric: 'accuracy' | 'loss';
  /** Model output for 'accuracy' (default: the first output). */
  output?: string;
  /** Feed name of the labels for 'accuracy' (default: the cross-entropy term's labels input). */
  labels?: string;
}

/** Reported after every step and every epoch. */
export interface TrainProgress {
  phase: 'step' | 'epoch';
  epoch: number;
  epochs: number;
  /** Step within the epoch (1-based) and steps per epoch. */
  step: number;
  steps: number;
  /** Loss of this step, or the epoch's mean loss. */
  loss: number;
  lr: number;
  samplesPerSecond: number;
  /** Seconds left at the current speed (validation excluded). */
  etaSeconds: number;
  /** After an epoch with validation. */
  metric?: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  /** Validation metric, when validating. */
  metric?: number;
  lr: number;
  seconds: number;
}

export interface FitOptions extends TrainableSelection {
  losses: LossTerm[];
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  schedule?: LrSchedule;
  /** Clip the global L2 norm of all gradients to this value (PyTorch `clip_grad_norm_`). */
  clipGradNorm?: number;
  /** Seeds the per-epoch shuffle (epoch e uses a permutation derived from seed and e). */
  seed?: number;
  /** Skip the last partial batch (default false). */
  dropLast?: boolean;
  /**
   * Sparsity masks: a weight with a mask keeps mask[i] = 0 entries at zero throughout
   * (gradient and update masked). `keepZeros: true` derives a mask from each trainable weight's
   * current exact zeros (prune → retrain of unstructured sparsity).
   */
  masks?: Map<string, Uint8Array>;
  keepZeros?: boolean;
  validation?: ValidationOptions;
  /** Stop when the validation metric has not improved for `patience` epochs; the best weights are returned. */
  earlyStopping?: { patience: number; minDelta?: number };
  /**
   * A checkpoint file written atomically after each epoch; with `resume`, training continues
   * from it, and a missing file is a UsageError (as Hugging Face's Trainer refuses
   * `resume_from_checkpoint` without one): resuming never silently starts over.
   */
  checkpoint?: { path: string; resume?: boolean };
  onProgress?: (p: TrainProgress) => void;
  /** Honoured between steps: `fit` then returns the best weights so far with `stopped: 'cancelled'`. */
  signal?: AbortSignal;
  session?: SessionOptions;
  batchNorm?: BatchNormMode;
}

export interface FitResult {
  /** The original inference graph (a copy) with the trained weights: no training nodes. */
  model: Model;
  history: EpochRecord[];
  /**
   * Epoch (1-based) whose weights `model` holds: the best validated one, else the last. With
   * validation, the weights before training compete as epoch 0 (as a baseline, like Keras'
   * EarlyStopping `baseline` with `restore_best_weights`): when no epoch beats them, `bestEpoch`
   * is 0 and `model` holds the original weights.
   */
  bestEpoch: number;
  bestMetric?: number;
  /** The validation metric of the weights before training (epoch 0), when there is validation. */
  initialMetric?: number;
  /** Mean wall time of one training step (forward + backward + optimizer), in ms. */
  msPerStep: number;
  steps: number;
  stopped: 'completed' | 'early-stopped' | 'cancelled';
  trainable: string[];
}

export interface AccumulateOptions extends TrainableSelection {
  losses: LossTerm[];
  batchSize: number;
  /** Stop after this many samples (default: all). */
  limit?: number;
  signal?: AbortSignal;
  session?: SessionOptions;
}
