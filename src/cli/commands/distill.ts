import { analyzeModel } from '../../core/analysis/analyze';
import { UsageError } from '../../core/errors';
import { modelSizeBytes, openModel } from '../../core/formats/registry';
import { benchmarkModels } from '../../core/runtime/bench';
import { saveVerified } from '../../core/runtime/verified-save';
import { distillStep } from '../../core/transforms/distill/step';
import { parseArgs, type FlagSpec } from '../args';
import type { Command } from '../command';
import { fmtBytes, fmtCount, table } from '../format';
import { jobFlagsFor, openJob, stepContext, trainingCurves } from '../job';
import { stepFlags, stepOptionsFromFlags, withoutKeys } from '../step-flags';

const DISTILL_FLAGS = stepFlags(distillStep);
const flags: Record<string, FlagSpec> = {
  ...DISTILL_FLAGS.spec,
  train: { type: 'string', placeholder: 'x.npy', help: 'Training inputs (.npy, .pb, an image folder, or name=path per input).' },
  'train-labels': { type: 'string', placeholder: 'y.npy', help: 'Integer class labels of the training inputs (optional: without them α = 1).' },
  ...withoutKeys(jobFlagsFor(distillStep), { ...DISTILL_FLAGS.spec, train: {} as FlagSpec, 'train-labels': {} as FlagSpec }),
};

/**
 * `distill <student> --teacher <teacher> --train x [--train-labels y]`: knowledge distillation
 * (Hinton et al. 2015) with the report of teacher, student before and student after.
 */
export const distillCommand: Command = Object.assign(
  {
    name: 'distill',
    summary: distillStep.summary,
    usage:
      'model-compressor distill <student> --teacher <teacher> --train x.npy [--train-labels y.npy] [--temperature T] [--alpha a] [--match t=s …] ' +
      '[--epochs n] [--batch b] [--lr r] [--optimizer adamw|adam|sgd] [--keep-zeros] [--eval data --labels y] [--runs N] [--no-bench] [-o out.onnx] [--json]',
    async run(argv: string[], io: { out(t: string): void; err(t: string): void }): Promise<number> {
      const parsed = parseArgs(argv, flags);
      const f = parsed.flags;
      const o = stepOptionsFromFlags(distillStep, DISTILL_FLAGS, f);
      if (!o.teacher) throw new UsageError('distill needs a teacher (--teacher model.onnx)');
      if (!f.train) throw new UsageError('distill needs training inputs (--train x.npy)');
      const job = await openJob(parsed.positional, f, 'distill', 'distilled');
      const teacherPath = o.teacher;
      const teacher = openModel(teacherPath);
      if (job.train?.random) throw new UsageError('distill trains on real inputs; --train cannot be random');
      const evalReal = !job.evalData.random;
      const { model: student, outcome: r } = await distillStep.apply(job.model, o, stepContext(job));
      job.progress.done();
      await saveVerified(student, job.output);
      const bench = f['no-bench'] ? undefined : await benchmarkModels([teacherPath, job.output], { runs: (f.runs as number | undefined) ?? 50 });
      const fig = (m: typeof teacher, file: string, i: number) => ({
        sizeBytes: modelSizeBytes(file),
        params: analyzeModel(m).totals.params,
        macs: analyzeModel(m).totals.macs,
        latencyP50Ms: bench?.models[i].latencyMs.p50 ?? null,
      });
      const report = {
        output: job.output,
        data: { train: job.train!.label, eval: job.evalData.label, evalIsRandom: !evalReal },
        alpha: r.alpha,
        temperature: r.temperature,
        losses: r.losses.map((l) => l.kind),
        teacher: { ...fig(teacher, teacherPath, 0), accuracy: r.teacherAccuracy ?? null },
        student: { ...fig(student, job.output, 1), before: r.before ?? null, after: r.after ?? null },
        history: r.fit.history,
        curves: trainingCurves(job),
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
          `loss: ${r.losses.map((l) => l.kind).join(' + ')}, α = ${r.alpha}, T = ${r.temperature}; ${r.fit.history.length} epochs, ${r.secondsPerEpoch.toFixed(2)} s/epoch; trained on ${job.train!.label}`,
          `evaluated on ${job.evalData.label}${evalReal ? '' : ' (random inputs: agreement only; give --eval and --labels for accuracy)'}`,
        ].join('\n'),
      );
      return 0;
    },
  },
  { flags, example: distillStep.example },
);
