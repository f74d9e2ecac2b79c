import { analyzeModel } from '../../core/analysis/analyze';
import { UsageError } from '../../core/errors';
import { modelSizeBytes, openModel } from '../../core/formats/registry';
import { readLabels } from '../../core/runtime/data/dataset';
import { benchmarkModels } from '../../core/runtime/bench';
import { distill, parseMatches } from '../../core/transforms/distill';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { fmtBytes, fmtCount, table } from '../format';
import { JOB_FLAGS, openJob } from '../job';
import { openData } from '../data-flags';
import { saveVerified } from '../../core/runtime/verified-save';

const flags = {
  ...JOB_FLAGS,
  teacher: { type: 'string' as const, placeholder: 'teacher.onnx', help: 'The teacher model (same inputs; class logits as its first output).' },
  train: { type: 'string' as const, placeholder: 'x.npy', help: 'Training inputs (.npy, .pb, an image folder, or name=path per input).' },
  'train-labels': { type: 'string' as const, placeholder: 'y.npy', help: 'Integer class labels of the training inputs (optional: without them α = 1).' },
  temperature: { type: 'number' as const, placeholder: 'T', help: 'Softening temperature T (default 4).' },
  alpha: { type: 'number' as const, placeholder: 'a', help: 'Weight of the distillation term, 1 − α on the labels (default 0.7; 1 without labels).' },
  match: { type: 'string' as const, multiple: true, placeholder: 'teacherTensor=studentTensor', help: 'Feature distillation: MSE between two intermediate tensors of the same shape (repeatable).' },
  'match-weight': { type: 'number' as const, placeholder: 'b', help: 'Weight of each feature term (default 1).' },
  epochs: { type: 'number' as const, placeholder: 'n', help: 'Training epochs (default 5).' },
  batch: { type: 'number' as const, placeholder: 'b', help: 'Batch size (default 32).' },
  lr: { type: 'number' as const, placeholder: 'r', help: 'Learning rate (default 1e-3 with AdamW, 1e-2 with SGD), cosine schedule.' },
  optimizer: { type: 'string' as const, placeholder: 'adamw|sgd', help: 'Optimizer (default adamw).' },
};

/**
 * `distill <student> --teacher <teacher> --train x [--train-labels y]`: knowledge distillation
 * (Hinton et al. 2015) with the report of teacher, student before and student after.
 */
export const distillCommand: Command = Object.assign(
  {
    name: 'distill',
    summary: 'train a (compressed) student on a teacher’s softened outputs, with or without labels',
    usage:
      'model-compressor distill <student> --teacher <teacher> --train x.npy [--train-labels y.npy] [--temperature T] [--alpha a] [--match t=s …] ' +
      '[--epochs n] [--batch b] [--lr r] [--optimizer adamw|sgd] [--eval data --labels y] [--runs N] [--no-bench] [-o out.onnx] [--json]',
    async run(argv: string[], io: { out(t: string): void; err(t: string): void }): Promise<number> {
      const parsed = parseArgs(argv, flags);
      const f = parsed.flags;
      if (!f.teacher) throw new UsageError('distill needs a teacher (--teacher model.onnx)');
      if (!f.train) throw new UsageError('distill needs training inputs (--train x.npy)');
      const job = await openJob(parsed.positional, f, 'distill', 'distilled');
      const teacherPath = f.teacher as string;
      const teacher = openModel(teacherPath);
      const train = openData(f.train as string, job.inputs, f)!;
      if (train.random) throw new UsageError('distill trains on real inputs; --train cannot be random');
      const trainLabels = f['train-labels'] ? readLabels(f['train-labels'] as string) : undefined;
      const optimizer = f.optimizer as string | undefined;
      if (optimizer !== undefined && optimizer !== 'adamw' && optimizer !== 'sgd') throw new UsageError('--optimizer is adamw or sgd');
      const evalReal = !job.evalData.random;
      const r = await distill(job.model, teacher, {
        train: train.data,
        trainLabels,
        temperature: f.temperature as number | undefined,
        alpha: f.alpha as number | undefined,
        match: parseMatches(f.match as string[] | undefined),
        matchWeight: f['match-weight'] as number | undefined,
        epochs: f.epochs as number | undefined,
        batchSize: f.batch as number | undefined,
        lr: f.lr as number | undefined,
        optimizer: optimizer as 'adamw' | undefined,
        eval: { data: job.evalData.data, labels: job.labels },
        onProgress: (p) => {
          if (p.phase === 'epoch' && !f.json) io.err(`epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(4)}`);
        },
      });
      await saveVerified(r.model, job.output);
      const bench = f['no-bench'] ? undefined : await benchmarkModels([teacherPath, job.output], { runs: (f.runs as number | undefined) ?? 50 });
      const fig = (m: typeof teacher, file: string, i: number) => ({
        sizeBytes: modelSizeBytes(file),
        params: analyzeModel(m).totals.params,
        macs: analyzeModel(m).totals.macs,
        latencyP50Ms: bench?.models[i].latencyMs.p50 ?? null,
      });
      const report = {
        output: job.output,
        data: { train: train.label, eval: job.evalData.label, evalIsRandom: !evalReal },
        alpha: r.alpha,
        temperature: r.temperature,
        losses: r.losses.map((l) => l.kind),
        teacher: { ...fig(teacher, teacherPath, 0), accuracy: r.teacherAccuracy ?? null },
        student: { ...fig(r.model, job.output, 1), before: r.before ?? null, after: r.after ?? null },
        history: r.fit.history,
        secondsPerEpoch: r.secondsPerEpoch,
      };
      if (f.json) {
        io.out(JSON.stringify(report));
        return 0;
      }
      const a = (x: number | undefined | null) => (x === undefined || x === null ? '–' : x.toFixed(4));
      const rows = [
        ['size', fmtBytes(report.teacher.sizeBytes), fmtBytes(report.student.sizeBytes)],
        ['params', fmtCount(report.teacher.params), fmtCount(report.student.params)],
        ['MACs', fmtCount(report.teacher.macs), fmtCount(report.student.macs)],
        ['latency p50', bench ? `${report.teacher.latencyP50Ms!.toFixed(2)} ms` : '–', bench ? `${report.student.latencyP50Ms!.toFixed(2)} ms` : '–'],
        ['accuracy', a(r.teacherAccuracy), `${a(r.before?.accuracy)} → ${a(r.after?.accuracy)}`],
        ['agreement with teacher', '1', `${a(r.before?.agreement)} → ${a(r.after?.agreement)}`],
      ];
      io.out(
        [
          `distill: ${job.input} → ${job.output} (teacher ${teacherPath})`,
          '',
          table(['', 'teacher', 'student'], rows),
          '',
          `loss: ${r.losses.map((l) => l.kind).join(' + ')}, α = ${r.alpha}, T = ${r.temperature}; ${r.fit.history.length} epochs, ${r.secondsPerEpoch.toFixed(2)} s/epoch; trained on ${train.label}`,
          `evaluated on ${job.evalData.label}${evalReal ? '' : ' (random inputs: agreement only; give --eval and --labels for accuracy)'}`,
        ].join('\n'),
      );
      return 0;
    },
  },
  { flags, example: 'distill student.onnx --teacher model.onnx --train x.npy --train-labels y.npy --eval ex.npy --labels ey.npy -o student.distilled.onnx' },
);
