import { UsageError } from '../../core/errors';
import { readLabels } from '../../core/runtime/data/dataset';
import { datasetSampleSet, fit, labelsTensor, selectTrainable, type FitOptions, type LossTerm, type LrSchedule, type OptimizerConfig, type SampleSet, type TrainProgress } from '../../core/train';
import { parseArgs, type FlagSpec } from '../args';
import type { Command } from '../command';
import { openData } from '../data-flags';
import { JOB_FLAGS, finishJob, openJob } from '../job';
import { renderReport } from '../report';

const list = (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

const TRAIN_FLAGS: Record<string, FlagSpec> = {
  ...JOB_FLAGS,
  train: { type: 'string', placeholder: 'data', help: 'training inputs (.npy, .pb or an image folder)' },
  'train-labels': { type: 'string', placeholder: 'labels.npy', help: 'integer class labels of the training inputs, one per sample' },
  'val-split': { type: 'number', placeholder: 'f', help: 'hold out this fraction of the training data for validation (instead of --eval/--labels)' },
  epochs: { type: 'number', default: 10, help: 'passes over the training data' },
  batch: { type: 'number', default: 32, help: 'samples per training step' },
  lr: { type: 'number', placeholder: 'r', help: 'learning rate (default 1e-3 for adam/adamw, 0.01 for sgd)' },
  optimizer: { type: 'string', choices: ['adamw', 'adam', 'sgd'], default: 'adamw', help: 'optimizer' },
  momentum: { type: 'number', default: 0.9, help: 'SGD momentum' },
  nesterov: { type: 'boolean', help: 'Nesterov momentum (SGD)' },
  'weight-decay': { type: 'number', help: 'weight decay (decoupled for adamw, L2 for adam and sgd)' },
  schedule: { type: 'string', choices: ['constant', 'step', 'cosine'], default: 'constant', help: 'learning-rate schedule' },
  warmup: { type: 'number', placeholder: 'steps', help: 'linear warm-up steps' },
  'clip-grad-norm': { type: 'number', placeholder: 'g', help: 'clip the global gradient L2 norm to g' },
  patience: { type: 'number', placeholder: 'p', help: 'early stopping: epochs without a better validation metric' },
  trainable: { type: 'string', placeholder: 'n1,n2', help: 'train only these weights (names or prefixes)' },
  freeze: { type: 'string', placeholder: 'n1,n2', help: 'keep these weights frozen (names or prefixes)' },
  l1: { type: 'number', placeholder: 'λ', help: 'L1 penalty λ·Σ|w| on the trained weights (sparsity training)' },
  l2: { type: 'number', placeholder: 'λ', help: 'L2 penalty (λ/2)·Σw² on the trained weights' },
  'keep-zeros': { type: 'boolean', help: 'weights that are exactly zero stay zero (retraining a pruned model)' },
  bn: { type: 'string', choices: ['frozen', 'train'], default: 'frozen', help: 'BatchNormalization: frozen running statistics, or batch statistics with running-statistic updates (PyTorch train mode)' },
  resume: { type: 'boolean', help: 'continue from the checkpoint beside the output' },
  threads: { type: 'number', help: 'ONNX Runtime intra-op threads' },
};

export const trainCommand: Command = {
  name: 'train',
  summary: 'train or fine-tune a model on labelled data (cross-entropy; optional L1/L2 sparsity penalties)',
  usage:
    'model-compressor train <model> --train x.npy --train-labels y.npy [--eval ex.npy --labels ey.npy | --val-split f] [--epochs n] [--batch b] ' +
    '[--lr r] [--optimizer adamw|adam|sgd] [--momentum m] [--nesterov] [--weight-decay w] [--schedule constant|step|cosine] [--warmup steps] ' +
    '[--clip-grad-norm g] [--patience p] [--seed s] [--trainable n1,n2 | --freeze n1,n2] [--l1 λ] [--l2 λ] [--keep-zeros] [--bn frozen|train] [--resume] [--threads t] ' +
    '[--runs N] [--no-bench] -o out.onnx [--json]',
  flags: TRAIN_FLAGS,
  example: 'train model.onnx --train x.npy --train-labels y.npy --eval ex.npy --labels ey.npy --epochs 5 -o trained.onnx',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (!flags.train) throw new UsageError('--train names the training inputs (.npy, .pb or an image folder)');
    if (!flags['train-labels']) throw new UsageError('--train-labels names the training labels (integers, one per sample)');
    if (!flags.output) throw new UsageError('-o names the trained model to write');
    if (flags.eval && flags['val-split'] !== undefined) throw new UsageError('choose one of --eval (with --labels) or --val-split');
    if (flags.eval && !flags.labels) throw new UsageError('validation on --eval needs --labels');
    const split = flags['val-split'] as number | undefined;
    if (split !== undefined && !(split > 0 && split < 1)) throw new UsageError('--val-split is a fraction in (0, 1)');
    const kind = ((flags.optimizer as string | undefined) ?? 'adamw') as OptimizerConfig['kind'];
    if (!['adamw', 'adam', 'sgd'].includes(kind)) throw new UsageError(`--optimizer must be adamw, adam or sgd, got '${kind}'`);
    const sched = (flags.schedule as string | undefined) ?? 'constant';
    if (!['constant', 'step', 'cosine'].includes(sched)) throw new UsageError(`--schedule must be constant, step or cosine, got '${sched}'`);
    const bn = (flags.bn as string | undefined) ?? 'frozen';
    if (bn !== 'frozen' && bn !== 'train') throw new UsageError(`--bn must be frozen or train, got '${bn}'`);
    const epochs = (flags.epochs as number | undefined) ?? 10;
    const lr = (flags.lr as number | undefined) ?? (kind === 'sgd' ? 0.01 : 1e-3);
    const wd = flags['weight-decay'] as number | undefined;
    const optimizer: OptimizerConfig =
      kind === 'sgd' ? { kind, lr, momentum: (flags.momentum as number | undefined) ?? 0.9, nesterov: !!flags.nesterov, weightDecay: wd } : { kind, lr, weightDecay: wd };
    if (kind !== 'sgd' && (flags.momentum !== undefined || flags.nesterov)) throw new UsageError('--momentum and --nesterov go with --optimizer sgd');
    const warmupSteps = flags.warmup as number | undefined;
    const schedule: LrSchedule = sched === 'step' ? { kind: 'step', stepEpochs: Math.max(1, Math.round(epochs / 3)), gamma: 0.1, warmupSteps } : sched === 'cosine' ? { kind: 'cosine', warmupSteps } : { kind: 'constant', warmupSteps };

    const job = await openJob(positional, { ...flags, calib: undefined }, 'train', 'trained');
    const { model, inputs, output } = job;
    if (model.format !== 'onnx') throw new UsageError('training needs an ONNX model (export a TF.js model to ONNX first: model-compressor export)');
    const trainData = openData(flags.train as string, inputs, flags)!;
    const trainLabels = readLabels(flags['train-labels'] as string);
    if (trainLabels.length !== trainData.data.count) {
      throw new UsageError(`--train-labels holds ${trainLabels.length} labels for ${trainData.data.count} training samples`);
    }
    const logits = model.graph.outputs[0]?.name;
    if (!logits) throw new UsageError('the model has no output');
    const labelsName = inputs.some((i) => i.name === 'labels') ? 'train_labels' : 'labels';
    const trainable = selectTrainable(model, { trainable: list(flags.trainable), freeze: list(flags.freeze) });
    const losses: LossTerm[] = [{ kind: 'cross-entropy', logits, labels: labelsName }];
    if (flags.l1 !== undefined) losses.push({ kind: 'l1', weights: trainable, weight: flags.l1 as number });
    if (flags.l2 !== undefined) losses.push({ kind: 'l2', weights: trainable, weight: flags.l2 as number });

    const all = datasetSampleSet(trainData.data, { [labelsName]: labelsTensor(trainLabels) });
    let train: SampleSet = all;
    let validation: FitOptions['validation'];
    if (split !== undefined) {
      const nVal = Math.max(1, Math.round(all.count * split));
      if (nVal >= all.count) throw new UsageError('--val-split leaves no training samples');
      const nTrain = all.count - nVal;
      // The held-out split is the last samples of the training data (never shuffled into training).
      train = { count: nTrain, gather: (idx) => all.gather(idx) };
      validation = { data: { count: nVal, gather: (idx) => all.gather(idx.map((i) => nTrain + i)) }, metric: 'accuracy', labels: labelsName };
    } else if (flags.eval && job.labels) {
      validation = { data: datasetSampleSet(job.evalData.data, { [labelsName]: labelsTensor(job.labels) }), metric: 'accuracy', labels: labelsName };
    }
    const patience = flags.patience as number | undefined;
    if (patience !== undefined && !validation) throw new UsageError('--patience needs validation data (--eval with --labels, or --val-split)');

    // The shared progress bar per epoch (stage and ETA), and one summary line per epoch.
    const onProgress = (p: TrainProgress) => {
      if (p.phase === 'step') job.progress.onProgress?.(`epoch ${p.epoch}/${p.epochs}`, p.step / p.steps);
      else {
        job.progress.done();
        if (!flags.json) {
          io.err(`epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toPrecision(4)}${p.metric !== undefined ? `, validation accuracy ${p.metric.toFixed(4)}` : ''}, lr ${p.lr.toExponential(2)}, ${p.samplesPerSecond.toFixed(0)} samples/s`);
        }
      }
    };
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.once('SIGINT', onSig);
    let r;
    try {
      r = await fit(model, train, {
        losses,
        trainable,
        epochs,
        batchSize: (flags.batch as number | undefined) ?? 32,
        optimizer,
        schedule,
        clipGradNorm: flags['clip-grad-norm'] as number | undefined,
        seed: (flags.seed as number | undefined) ?? 0,
        keepZeros: !!flags['keep-zeros'],
        batchNorm: bn,
        validation,
        earlyStopping: patience !== undefined ? { patience } : undefined,
        checkpoint: { path: `${output}.ckpt`, resume: !!flags.resume },
        onProgress,
        signal: ac.signal,
        session: flags.threads !== undefined ? { intraOpThreads: flags.threads as number } : undefined,
      });
    } finally {
      process.removeListener('SIGINT', onSig);
    }
    const report = await finishJob(job, r.model, flags);
    const acc = report.fidelity?.accuracy;
    if (flags.json) {
      io.out(
        JSON.stringify({
          output,
          checkpoint: `${output}.ckpt`,
          trainable: r.trainable,
          epochs: r.history,
          bestEpoch: r.bestEpoch,
          bestValidation: r.bestMetric ?? null,
          stopped: r.stopped,
          msPerStep: r.msPerStep,
          steps: r.steps,
          accuracy: acc ? { before: acc.reference, after: acc.candidate, data: report.fidelity?.data } : null,
          before: report.before,
          after: report.after,
          latencyMs: report.latencyMs ?? null,
        }),
      );
      return 0;
    }
    const notes = [
      `trained ${r.trainable.length} weight tensors for ${r.history.length} epoch(s) (${r.stopped}); kept epoch ${r.bestEpoch}${r.bestMetric !== undefined ? ` (validation accuracy ${r.bestMetric.toFixed(4)})` : ''}; ${r.msPerStep.toFixed(1)} ms per step`,
      `checkpoint: ${output}.ckpt (continue with --resume)`,
    ];
    io.out(renderReport('train', job.input, output, report, notes, r.trainable.length, []));
    return 0;
  },
};
