import * as fs from 'fs';
import { CancelledError, UsageError } from '../../core/errors';
import { assertCheckpointExists } from '../../core/train';
import type { EvaluationReport } from '../../core/runtime/evaluate';
import { saveVerified } from '../../core/runtime/verified-save';
import { trainStep, type TrainOutcome } from '../../core/transforms/train/step';
import { parseArgs, type FlagSpec } from '../args';
import type { Command } from '../command';
import { finishJob, jobFlagsFor, openJob, stepContext, trainingCurves } from '../job';
import { renderReport } from '../report';
import { stepFlags, stepOptionsFromFlags, withoutKeys } from '../step-flags';

const TRAIN_FLAGS = stepFlags(trainStep);

/** Flags of the command only (not recipe keys): the checkpoint lives beside the output. */
const OWN: Record<string, FlagSpec> = {
  resume: { type: 'boolean', help: 'Continue a cancelled or crashed run from the checkpoint beside the output (<output>.ckpt); without one, refused.' },
  train: { type: 'string', placeholder: 'data', help: 'Training inputs (.npy, .pb, an image folder, or name=path per input).' },
  'train-labels': { type: 'string', placeholder: 'y.npy', help: 'Integer class labels of the training inputs, one per sample.' },
};

/** Exit code of a job cancelled by the user (128 + SIGINT), as shells report it. */
export const EXIT_CANCELLED = 130;

export const trainCommand: Command = {
  name: 'train',
  summary: trainStep.summary,
  usage:
    'model-compressor train <model> --train x.npy --train-labels y.npy [--val-split f] [--eval ex.npy --labels ey.npy] [--epochs n] [--batch b] ' +
    '[--lr r] [--optimizer adamw|adam|sgd] [--momentum m] [--nesterov] [--weight-decay w] [--schedule constant|step|cosine] [--warmup steps] ' +
    '[--clip-grad-norm g] [--patience p] [--seed s] [--trainable n1,n2 | --freeze n1,n2] [--l1 λ] [--l2 λ] [--keep-zeros] [--bn frozen|train] [--resume] [--threads t] ' +
    '[--runs N] [--no-bench] -o out.onnx [--json]',
  flags: { ...TRAIN_FLAGS.spec, ...OWN, ...withoutKeys(withoutKeys(jobFlagsFor(trainStep), OWN), TRAIN_FLAGS.spec) },
  example: trainStep.example,
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    const o = stepOptionsFromFlags(trainStep, TRAIN_FLAGS, flags);
    if (!flags.train) throw new UsageError('--train names the training inputs (.npy, .pb or an image folder)');
    if (!flags['train-labels']) throw new UsageError('--train-labels names the training labels (integers, one per sample)');
    if (!flags.output) throw new UsageError('-o names the trained model to write');
    if (flags.eval && !flags.labels) throw new UsageError('accuracy on --eval needs --labels');
    // The checkpoint lives beside the output: kept on cancel or crash (for --resume), removed on success.
    const checkpoint = `${flags.output as string}.ckpt`;
    if (flags.resume) assertCheckpointExists(checkpoint);

    const job = await openJob(positional, flags, 'train', 'trained');
    if (job.train?.random) throw new UsageError('train learns from real inputs; --train cannot be random');
    const { output } = job;
    // SIGINT stops training between steps, or the measurement after it; the best weights so far are
    // written, then the exit code says it was cancelled. Cancelled before any epoch completed, nothing is written.
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.once('SIGINT', onSig);
    try {
      const result = await trainStep.apply(job.model, o, stepContext(job, { signal: ac.signal, checkpoint: { path: checkpoint, resume: !!flags.resume } }));
      const { outcome: r } = result;
      const f = r.fit;
      const ckpt = () => (fs.existsSync(checkpoint) ? `; checkpoint ${checkpoint} (continue with --resume)` : '');
      const cancelled = async (when: string) => {
        job.progress.done();
        if (!f.history.length) {
          io.err(`cancelled before the first epoch completed: wrote nothing${ckpt()}`);
          return EXIT_CANCELLED;
        }
        await saveVerified(result.model, output);
        const kept = r.validation === 'none' ? 'the latest weights' : f.bestEpoch === 0 ? 'the original weights (no epoch beat them on validation)' : `the best weights (epoch ${f.bestEpoch})`;
        io.err(`cancelled ${when}after ${f.history.length} complete epoch(s): wrote ${kept} to ${output}${ckpt()}`);
        return EXIT_CANCELLED;
      };
      if (f.stopped === 'cancelled') return await cancelled('');
      let report;
      try {
        report = await finishJob(job, result.model, flags, { step: 'train', signal: ac.signal });
      } catch (e) {
        // The measurement was cancelled (it removes what it wrote): the trained weights are still written.
        if (e instanceof CancelledError && ac.signal.aborted) return await cancelled('while measuring the result (no report) ');
        throw e;
      }
      // Success: the checkpoint has served its purpose (resuming a cancelled or crashed run).
      fs.rmSync(checkpoint, { force: true });
      return print(report, r);
    } finally {
      process.removeListener('SIGINT', onSig);
    }

    function print(report: EvaluationReport, r: TrainOutcome): number {
      const acc = report.fidelity?.accuracy;
      if (flags.json) {
        io.out(
          JSON.stringify({
            output,
            checkpoint: null,
            trainable: r.fit.trainable,
            epochs: r.fit.history,
            bestEpoch: r.fit.bestEpoch,
            bestValidation: r.fit.bestMetric ?? null,
            initialValidation: r.fit.initialMetric ?? null,
            validation: r.validation,
            stopped: r.fit.stopped,
            msPerStep: r.fit.msPerStep,
            steps: r.fit.steps,
            accuracy: acc ? { before: acc.reference, after: acc.candidate, data: report.fidelity?.data, selectedOn: r.validation === 'eval' } : null,
            before: report.before,
            after: report.after,
            latencyMs: report.latencyMs ?? null,
            warnings: report.warnings ?? [],
            curves: trainingCurves(job),
            notes: r.notes,
          }),
        );
        return 0;
      }
      const f = r.fit;
      const notes = [
        `trained ${f.trainable.length} weight tensors for ${f.history.length} epoch(s) (${f.stopped}); kept ${f.bestEpoch === 0 ? 'the original weights (epoch 0)' : `epoch ${f.bestEpoch}`}${f.bestMetric !== undefined ? ` (validation accuracy ${f.bestMetric.toFixed(4)}${r.validation === 'val-split' ? ' on the held-out split' : ''})` : ''}; ${f.msPerStep.toFixed(1)} ms per step`,
        ...r.notes,
      ];
      // The original weights kept (epoch 0): no layer changed.
      io.out(renderReport('train', job.input, output, report, notes, f.bestEpoch === 0 && f.initialMetric !== undefined ? 0 : f.trainable.length, []));
      return 0;
    }
  },
};
