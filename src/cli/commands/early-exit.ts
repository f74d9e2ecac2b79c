import { UsageError } from '../../core/errors';
import { readLabels } from '../../core/runtime/data/dataset';
import { checkLabels } from '../../core/runtime/data/checks';
import { saveVerified } from '../../core/runtime/verified-save';
import { earlyExit, type EarlyExitOutcome, type ExitTarget } from '../../core/transforms/early-exit';
import { runtimeWidths, type WidthsOutcome } from '../../core/transforms/widths';
import type { Criterion } from '../../core/transforms/prune/importance';
import { parseArgs, type FlagSpec } from '../args';
import type { Command } from '../command';
import { openData } from '../data-flags';
import { fmtCount, table } from '../format';
import { JOB_FLAGS, openJob } from '../job';

/** The job's flags without --runs and --calib (latency is timed per sample; thresholds calibrate on --eval). */
const JOB = Object.fromEntries(Object.entries(JOB_FLAGS).filter(([k]) => k !== 'runs' && k !== 'calib'));

const FLAGS: Record<string, FlagSpec> = {
  ...JOB,
  eval: { type: 'string', placeholder: 'data', help: 'Held-out data (required): thresholds are calibrated and the result is measured on it.' },
  train: { type: 'string', placeholder: 'data', help: 'Training inputs for the exit heads (.npy, .pb, an image folder, or name=path per input). Unlabeled data is enough.' },
  'train-labels': { type: 'string', placeholder: 'y.npy', help: 'Integer class labels of the training inputs (optional: the heads learn from the model’s own output).' },
  'max-accuracy-drop': { type: 'number', placeholder: 'd', help: 'Target: accuracy at most d below the original’s (a fraction, 0.005 = 0.5 pp); needs --labels.' },
  'min-agreement': { type: 'number', placeholder: 'a', help: 'Target: top-1 agreement with the original of at least a (no labels needed).' },
  threshold: { type: 'number', placeholder: 't', help: 'No target: leave at every exit whose confidence exceeds t.' },
  exits: { type: 'string', placeholder: 'auto|t1,t2', default: 'auto', help: 'Exit points: about three stage boundaries spread by cumulative MACs, or tensor names.' },
  form: { type: 'string', choices: ['if', 'multi-output'], default: 'if', help: 'if: one model with nested If and an exit_index output; multi-output: every head as an extra output.' },
  score: { type: 'string', choices: ['max-prob', 'entropy'], default: 'max-prob', help: 'Confidence score of an exit.' },
  margin: { type: 'number', placeholder: 'z', default: 2, help: 'Safety margin of the calibration: the target must hold for the bound (lost − gained + z·√(lost + gained))/n on the drop, not only the observed one (0: fit the evaluation data exactly).' },
  folds: { type: 'number', placeholder: 'k', default: 5, help: 'Folds of the out-of-sample cross-fit of the calibration on --eval.' },
  'head-width': { type: 'number', placeholder: 'c', help: 'Channels of a 1×1 Conv before pooling in each head (default: none).' },
  joint: { type: 'boolean', help: 'Fine-tune the backbone with the heads (default: the backbone stays frozen).' },
  temperature: { type: 'number', placeholder: 'T', default: 4, help: 'Distillation temperature.' },
  alpha: { type: 'number', placeholder: 'a', default: 0.7, help: 'Weight of the distillation term, 1 − α on the labels (1 without labels).' },
  epochs: { type: 'number', placeholder: 'n', help: 'Training epochs (default 10 for exit heads, 5 with --widths; 0 with --widths: no fine-tuning).' },
  batch: { type: 'number', default: 32, help: 'Samples per training step.' },
  lr: { type: 'number', placeholder: 'r', help: 'Learning rate (AdamW, cosine schedule; default 3e-3 for exit heads, 1e-3 with --widths).' },
  widths: { type: 'string', placeholder: 'w1,w2,…', help: 'Instead of exits: one file that runs at these widths (fractions, 1 added), picked by a float input `width`; plain CNNs and MLPs.' },
  criterion: { type: 'string', choices: ['l1', 'l2', 'bn', 'random'], default: 'l1', help: '--widths: channel importance criterion (the pruning criteria).' },
  selector: { type: 'string', choices: ['width', 'budget'], default: 'width', help: "--widths: the model's input that picks the sub-network: width (a fraction of the channels) or budget (a fraction of the full width's MACs; the widest width within it runs)." },
  'latency-samples': { type: 'number', placeholder: 'N', default: 200, help: 'Evaluation samples timed at batch 1, interleaved with the original (0 skips).' },
};

function target(f: Record<string, unknown>): ExitTarget {
  const given = (['max-accuracy-drop', 'min-agreement', 'threshold'] as const).filter((k) => f[k] !== undefined);
  if (given.length !== 1) throw new UsageError('early-exit needs exactly one of --max-accuracy-drop d, --min-agreement a or --threshold t');
  const v = f[given[0]] as number;
  if (given[0] === 'max-accuracy-drop') {
    if (!(v >= 0 && v < 1)) throw new UsageError(`--max-accuracy-drop is a fraction in [0, 1), got ${v}`);
    return { kind: 'max-accuracy-drop', drop: v };
  }
  if (given[0] === 'min-agreement') {
    if (!(v > 0 && v <= 1)) throw new UsageError(`--min-agreement is a fraction in (0, 1], got ${v}`);
    return { kind: 'min-agreement', agreement: v };
  }
  if (!(v >= 0)) throw new UsageError(`--threshold must be ≥ 0, got ${v}`);
  return { kind: 'threshold', threshold: v };
}

function exitsFlag(v: unknown): 'auto' | string[] {
  if (v === undefined || v === 'auto') return 'auto';
  const names = String(v).split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.length) throw new UsageError('--exits is auto or a comma-separated list of tensor names');
  return names;
}

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
  const drop = (s: number) => (m === 'accuracy' ? ` (${(100 * (rep.original.score - s)).toFixed(2)} pp below)` : '');
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

async function runWidths(positional: string[], f: Record<string, unknown>, io: { out(t: string): void }): Promise<number> {
  for (const k of ['max-accuracy-drop', 'min-agreement', 'threshold', 'exits', 'form', 'score', 'head-width', 'joint']) {
    if (f[k] !== undefined) throw new UsageError(`--widths builds a width-switchable model; --${k} belongs to early exits`);
  }
  const widths = String(f.widths).split(',').map((v) => Number(v.trim()));
  const selector = (f.selector as string | undefined) ?? 'width';
  if (!widths.length || widths.some((w) => !(w > 0 && w <= 1))) throw new UsageError(`--widths takes fractions in (0, 1], e.g. 0.5,0.75,1; got '${String(f.widths)}'`);
  const job = await openJob(positional, f, 'early-exit --widths', 'widths');
  try {
    const train = openData(f.train as string, job.inputs, f)!;
    if (train.random) throw new UsageError('--widths fine-tunes on real inputs; --train cannot be random');
    if (job.evalData.random) throw new UsageError('--widths measures on real inputs; --eval cannot be random');
    let trainLabels: Int32Array | undefined;
    if (f['train-labels']) {
      trainLabels = readLabels(f['train-labels'] as string);
      checkLabels(trainLabels, f['train-labels'] as string, train.data.count);
    }
    const r = await runtimeWidths(job.model, {
      widths,
      train: train.data,
      trainLabels,
      eval: job.evalData.data,
      labels: job.labels,
      criterion: f.criterion as Criterion | undefined,
      selector: selector as 'width' | 'budget',
      temperature: f.temperature as number | undefined,
      training: { epochs: f.epochs as number | undefined, batchSize: f.batch as number | undefined, lr: f.lr as number | undefined, seed: f.seed as number | undefined },
      latencySamples: f['no-bench'] ? 0 : (f['latency-samples'] as number | undefined),
      onProgress: job.progress.onProgress,
    });
    await saveVerified(r.model, job.output);
    const rest: Omit<WidthsOutcome, 'model'> & { model?: unknown } = { ...r };
    delete rest.model;
    const files = { input: job.input, output: job.output, train: train.label, eval: job.evalData.label };
    io.out(f.json ? JSON.stringify({ ...files, ...rest }) : widthsText(rest, files));
    return 0;
  } finally {
    job.progress.done();
  }
}

/**
 * `early-exit <model> --train x --eval ex (--max-accuracy-drop d | --min-agreement a | --threshold t) -o out.onnx`:
 * exit heads at stage boundaries with calibrated confidence thresholds (BranchyNet,
 * Teerapittayanon et al. 2016), written as one ONNX model.
 */
export const earlyExitCommand: Command = {
  name: 'early-exit',
  summary: 'add early exits that skip the rest of the network on easy inputs (calibrated to an accuracy or agreement target)',
  usage:
    'model-compressor early-exit <model> --train x.npy [--train-labels y.npy] --eval ex.npy [--labels ey.npy] ' +
    '(--max-accuracy-drop d | --min-agreement a | --threshold t) [--exits auto|t1,t2] [--form if|multi-output] [--score max-prob|entropy] ' +
    '[--head-width c] [--joint] [--temperature T] [--alpha a] [--epochs n] [--batch b] [--lr r] [--seed s] [--latency-samples N] -o out.onnx [--json]\n' +
    '       model-compressor early-exit <model> --widths 0.5,0.75,1 --train x.npy [--train-labels y.npy] --eval ex.npy [--labels ey.npy] [--criterion l1|l2|bn|random] [--selector width|budget] [--epochs n] -o out.onnx [--json]',
  flags: FLAGS,
  example: 'early-exit model.onnx --train x.npy --train-labels y.npy --eval ex.npy --labels ey.npy --max-accuracy-drop 0.005 -o model.exits.onnx',
  async run(argv, io) {
    const { positional, flags: f } = parseArgs(argv, this.flags);
    if (!f.train) throw new UsageError('early-exit needs training inputs for the heads (--train x.npy)');
    if (!f.eval) throw new UsageError('early-exit calibrates thresholds on held-out data (--eval ex.npy)');
    if (f.widths !== undefined) return runWidths(positional, f, io);
    const t = target(f);
    if (t.kind === 'max-accuracy-drop' && !f.labels) throw new UsageError('--max-accuracy-drop needs evaluation labels (--labels); without labels use --min-agreement');
    const form = (f.form as string | undefined) ?? 'if';
    const score = (f.score as string | undefined) ?? 'max-prob';
    const hw = f['head-width'] as number | undefined;
    if (hw !== undefined && !(Number.isSafeInteger(hw) && hw > 0)) throw new UsageError(`--head-width is a positive integer, got ${hw}`);
    for (const k of ['epochs', 'batch'] as const) {
      const v = f[k] as number | undefined;
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) throw new UsageError(`--${k} is a positive integer, got ${v}`);
    }
    const lr = f.lr as number | undefined;
    if (lr !== undefined && !(lr > 0)) throw new UsageError(`--lr must be > 0, got ${lr}`);
    const margin = f.margin as number | undefined;
    if (margin !== undefined && !(margin >= 0 && Number.isFinite(margin))) throw new UsageError(`--margin is a number ≥ 0, got ${margin}`);
    const folds = f.folds as number | undefined;
    if (folds !== undefined && !(Number.isSafeInteger(folds) && folds >= 2)) throw new UsageError(`--folds is an integer ≥ 2, got ${folds}`);
    const ls = f['latency-samples'] as number | undefined;
    if (ls !== undefined && !(Number.isSafeInteger(ls) && ls >= 0)) throw new UsageError(`--latency-samples is an integer ≥ 0, got ${ls}`);
    const job = await openJob(positional, f, 'early-exit', 'exits');
    try {
      const train = openData(f.train as string, job.inputs, f)!;
      if (train.random) throw new UsageError('early-exit trains its heads on real inputs; --train cannot be random');
      if (job.evalData.random) throw new UsageError('early-exit calibrates on real inputs; --eval cannot be random');
      let trainLabels: Int32Array | undefined;
      if (f['train-labels']) {
        trainLabels = readLabels(f['train-labels'] as string);
        checkLabels(trainLabels, f['train-labels'] as string, train.data.count);
      }
      const r = await earlyExit(job.model, {
        train: train.data,
        trainLabels,
        eval: job.evalData.data,
        labels: job.labels,
        target: t,
        margin,
        folds,
        exits: exitsFlag(f.exits),
        form: form as 'if' | 'multi-output',
        score: score as 'max-prob' | 'entropy',
        headWidth: hw,
        joint: f.joint === true,
        temperature: f.temperature as number | undefined,
        alpha: f.alpha as number | undefined,
        training: { epochs: f.epochs as number | undefined, batchSize: f.batch as number | undefined, lr, seed: f.seed as number | undefined },
        latencySamples: f['no-bench'] ? 0 : ls,
        onProgress: job.progress.onProgress,
      });
      await saveVerified(r.model, job.output);
      const rep = earlyExitReport(r, { input: job.input, output: job.output, train: train.label, eval: job.evalData.label });
      io.out(f.json ? JSON.stringify(rep) : text(rep));
      return 0;
    } finally {
      job.progress.done();
    }
  },
};
