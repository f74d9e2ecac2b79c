import { UsageError } from '../../core/errors';
import { saveVerified } from '../../core/runtime/verified-save';
import type { EarlyExitOutcome } from '../../core/transforms/early-exit';
import { earlyExitStep } from '../../core/transforms/early-exit/step';
import type { WidthsOutcome } from '../../core/transforms/widths';
import { parseArgs, type FlagSpec } from '../args';
import type { Command } from '../command';
import { fmtCount, table } from '../format';
import { jobFlagsFor, openJob, stepContext, trainingCurves } from '../job';
import { stepFlags, stepOptionsFromFlags } from '../step-flags';

/**
 * The job's flags the step reads, without --runs (latency is timed per sample; thresholds
 * calibrate on --eval) and --samples (training and evaluation data are real, never random).
 */
const JOB = Object.fromEntries(Object.entries(jobFlagsFor(earlyExitStep)).filter(([k]) => k !== 'runs' && k !== 'samples'));

const EXIT_FLAGS = stepFlags(earlyExitStep);

const FLAGS: Record<string, FlagSpec> = {
  ...EXIT_FLAGS.spec,
  eval: { type: 'string', placeholder: 'data', help: 'Held-out data (required): thresholds are calibrated and the result is measured on it.' },
  train: { type: 'string', placeholder: 'data', help: 'Training inputs for the exit heads (.npy, .pb, an image folder, or name=path per input). Unlabeled data is enough.' },
  'train-labels': { type: 'string', placeholder: 'y.npy', help: 'Integer class labels of the training inputs (optional: the heads learn from the model’s own output).' },
};
for (const [k, v] of Object.entries(JOB)) if (!(k in FLAGS)) FLAGS[k] = v;

/** The JSON report (also what the editor reads): the outcome without the model. */
export function earlyExitReport(r: EarlyExitOutcome, files: { input: string; output: string; train: string; eval: string }) {
  const rest: Omit<EarlyExitOutcome, 'model'> & { model?: unknown } = { ...r };
  delete rest.model;
  return { ...files, ...(rest as Omit<EarlyExitOutcome, 'model'>), expectedMacsRatio: r.originalMacs > 0 ? r.expectedMacs / r.originalMacs : 1 };
}

function text(rep: ReturnType<typeof earlyExitReport>): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const sc = (x: number | null) => (x === null ? '–' : x.toFixed(4));
  const ratio = (m: number) => (rep.originalMacs > 0 ? `${(m / rep.originalMacs).toFixed(3)}x` : '–');
  const oos = rep.outOfSample;
  const rows = rep.exits.map((e, k) => [
    String(k),
    e.tensor,
    pct(e.position),
    e.threshold === null ? 'off' : e.threshold.toFixed(4),
    pct(e.samples),
    sc(e.score),
    `${fmtCount(Math.round(e.macs))} (${ratio(e.macs)})`,
    pct(oos.exits[k].samples),
    sc(oos.exits[k].score),
  ]);
  rows.push([String(rep.exits.length), 'final output', '100%', '–', pct(rep.final.samples), sc(rep.final.score), `${fmtCount(Math.round(rep.final.macs))} (${ratio(rep.final.macs)})`, pct(oos.final.samples), sc(oos.final.score)]);
  const m = rep.metric;
  const lat = rep.latency;
  const drop = (s: number) => {
    const d = 100 * (rep.original.score - s);
    return m === 'accuracy' ? ` (${Math.abs(d).toFixed(2)} pp ${d >= 0 ? 'below' : 'above'})` : '';
  };
  return [
    `early-exit: ${rep.input} → ${rep.output} (${rep.form === 'if' ? 'nested If with an exit_index output' : 'every head as an extra output'})`,
    '',
    table(['exit', 'tensor', 'at MACs', 'threshold', 'leaving', m, 'MACs paid', 'leaving (oos)', `${m} (oos)`], rows),
    '',
    `out of sample (${oos.folds}-fold cross-fit, margin z = ${oos.margin}): expected MACs ${oos.expectedMacsRatio.toFixed(3)}x, ${m} ${oos.score.toFixed(4)} vs ${rep.original.score.toFixed(4)} original${drop(oos.score)}`,
    `in sample (thresholds written, fitted to all ${rep.eval}): expected MACs ${fmtCount(Math.round(rep.expectedMacs))} vs ${fmtCount(rep.originalMacs)} original (${rep.expectedMacsRatio.toFixed(3)}x), ${m} ${rep.earlyExit.score.toFixed(4)}${drop(rep.earlyExit.score)}`,
    lat
      ? `latency at batch 1 on ${lat.samples} evaluation samples, interleaved: p50 ${lat.earlyExitMs.p50.toFixed(3)} ms vs ${lat.originalMs.p50.toFixed(3)} ms original; mean ratio ${lat.ratioMean.toFixed(2)}x`
      : 'latency: not measured',
    `heads trained ${rep.training.epochs} epochs (${rep.training.trainable} trainable tensors, ${rep.training.secondsPerEpoch.toFixed(2)} s/epoch) on ${rep.train}; evaluated on ${rep.eval}`,
    `curve: ${rep.curve.length} thresholds (accuracy against expected MACs in --json)`,
    ...rep.notes.map((n) => `note: ${n}`),
    ...rep.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}

function widthsText(r: Omit<WidthsOutcome, 'model'>, files: { input: string; output: string; train: string; eval: string }): string {
  const ms = (x?: { p50: number }) => (x ? `${x.p50.toFixed(3)} ms` : '–');
  const rows = r.widths.map((w) => [w.width.toString(), `${fmtCount(Math.round(w.macs))} (${(w.macs / r.original.macs).toFixed(3)}x)`, w.before.toFixed(4), w.score.toFixed(4), ms(w.latencyMs)]);
  rows.push(['original', fmtCount(r.original.macs), '', r.original.score.toFixed(4), ms(r.original.latencyMs)]);
  return [
    `runtime widths: ${files.input} → ${files.output} (input '${r.selector}' picks the sub-network)`,
    '',
    table(['width', 'MACs (= budget)', `${r.metric} before`, `${r.metric} after`, 'latency p50 (batch 1)'], rows),
    '',
    `${r.groups} channel groups narrowed; ${r.training.epochs ? `trained ${r.training.epochs} epochs (${r.training.secondsPerEpoch.toFixed(2)} s/epoch; ${r.training.rule})` : 'not fine-tuned'} on ${files.train}; evaluated on ${files.eval}`,
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

/**
 * `early-exit <model> --train x --eval ex (--max-accuracy-drop d | --min-agreement a | --threshold t) -o out.onnx`:
 * exit heads at stage boundaries with calibrated confidence thresholds (BranchyNet,
 * Teerapittayanon et al. 2016), written as one ONNX model.
 */
export const earlyExitCommand: Command = {
  name: 'early-exit',
  summary: earlyExitStep.summary,
  usage:
    'model-compressor early-exit <model> --train x.npy [--train-labels y.npy] --eval ex.npy [--labels ey.npy] ' +
    '(--max-accuracy-drop d | --min-agreement a | --threshold t) [--margin z] [--folds k] [--exits auto|t1,t2] [--form if|multi-output] [--score max-prob|entropy] ' +
    '[--head-width c] [--joint] [--temperature T] [--alpha a] [--epochs n] [--batch b] [--lr r] [--seed s] [--latency-samples N] -o out.onnx [--json]\n' +
    '       model-compressor early-exit <model> --widths 0.5,0.75,1 --train x.npy [--train-labels y.npy] --eval ex.npy [--labels ey.npy] [--criterion l1|l2|bn|random] [--selector width|budget] [--epochs n] -o out.onnx [--json]',
  flags: FLAGS,
  example: earlyExitStep.example,
  async run(argv, io) {
    const { positional, flags: f } = parseArgs(argv, this.flags);
    const o = stepOptionsFromFlags(earlyExitStep, EXIT_FLAGS, f);
    if (!f.train) throw new UsageError('early-exit needs training inputs for the heads (--train x.npy)');
    if (!f.eval) throw new UsageError('early-exit calibrates thresholds on held-out data (--eval ex.npy)');
    if (o.maxAccuracyDrop !== undefined && !f.labels) throw new UsageError('--max-accuracy-drop needs evaluation labels (--labels); without labels use --min-agreement');
    const job = await openJob(positional, f, o.widths ? 'early-exit --widths' : 'early-exit', o.widths ? 'widths' : 'exits');
    try {
      const r = await earlyExitStep.apply(job.model, { ...o, latencySamples: f['no-bench'] ? 0 : o.latencySamples }, stepContext(job));
      job.progress.done();
      await saveVerified(r.model, job.output);
      const files = { input: job.input, output: job.output, train: job.train!.label, eval: job.evalData.label };
      const curves = trainingCurves(job);
      const out = r.outcome;
      if (out.kind === 'widths') {
        const rest: Omit<WidthsOutcome, 'model'> & { kind?: string } = { ...out };
        delete rest.kind;
        io.out(f.json ? JSON.stringify({ ...files, ...rest, curves }) : widthsText(rest, files));
        return 0;
      }
      const rest: Omit<EarlyExitOutcome, 'model'> & { kind?: string } = { ...out };
      delete rest.kind;
      const rep = earlyExitReport({ ...rest, model: r.model }, files);
      io.out(f.json ? JSON.stringify({ ...rep, curves }) : text(rep));
      return 0;
    } finally {
      job.progress.done();
    }
  },
};
