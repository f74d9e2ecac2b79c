import { SingleBar } from 'cli-progress';
import type { TrainProgress } from '../core/train/api';
import { ProgressTracker, type ProgressEvent } from '../core/util/progress';

/** One epoch of one training run, as `--json` reports it (`training`). */
export interface EpochPoint {
  /** The recipe step (`2:distill`) or the command's stage the run belongs to. */
  step?: string;
  /** 1-based index of the training run within the job (prune → retrain runs one per prune step). */
  run: number;
  epoch: number;
  epochs: number;
  loss: number;
  /** Validation metric (accuracy), when the run validates. */
  metric?: number;
  lr: number;
  samplesPerSecond: number;
}

export interface CliProgress {
  /** The engine's `(stage, fraction)` callback; absent when nothing is shown. */
  onProgress?: (stage: string, fraction?: number) => void;
  /** Training progress: the bar shows epoch, loss, metric and ETA; each epoch is kept in `epochs`. */
  onTrainProgress: (p: TrainProgress, step?: string) => void;
  /** Every epoch seen so far, in order (per-epoch curves for `--json`). */
  epochs: EpochPoint[];
  done: () => void;
}

/**
 * Progress of long jobs on stderr: a bar with stage and ETA on a terminal (cli-progress),
 * plain lines otherwise (one per stage, and every 25% within it), nothing with `--json`
 * unless `--progress` asks for it. Training adds epoch, loss and validation metric to the bar
 * and one line per epoch; the epochs are collected either way for `--json`.
 */
export function cliProgress(flags: Record<string, unknown>, stream: NodeJS.WriteStream = process.stderr): CliProgress {
  const epochs: EpochPoint[] = [];
  let run = 0;
  let lastEpoch = Infinity;
  const collect = (p: TrainProgress, step?: string) => {
    if (p.phase === 'step' && p.step === 1 && p.epoch <= lastEpoch) run++;
    if (p.phase === 'step') lastEpoch = p.epoch;
    if (p.phase !== 'epoch') return;
    if (run === 0) run = 1;
    lastEpoch = p.epoch;
    epochs.push({ ...(step ? { step } : {}), run, epoch: p.epoch, epochs: p.epochs, loss: p.loss, ...(p.metric !== undefined ? { metric: p.metric } : {}), lr: p.lr, samplesPerSecond: p.samplesPerSecond });
  };
  if ((flags.json && !flags.progress) || flags['no-progress']) return { onTrainProgress: collect, epochs, done: () => undefined };
  const fmtEta = (s?: number) => (s === undefined || !Number.isFinite(s) ? '' : `ETA ${fmtSeconds(s)}`);
  const epochLine = (p: TrainProgress, step?: string) =>
    `${step ? `${step}: ` : ''}epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toPrecision(4)}${p.metric !== undefined ? `, validation accuracy ${p.metric.toFixed(4)}` : ''}, lr ${p.lr.toExponential(2)}, ${p.samplesPerSecond.toFixed(0)} samples/s`;
  // The bar shows the running loss and the validation metric of the last finished epoch of this run.
  const trainText = (p: TrainProgress) => {
    const last = epochs[epochs.length - 1];
    const metric = last && last.run === run && last.metric !== undefined ? ` val ${last.metric.toFixed(4)}` : '';
    return `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toPrecision(4)}${metric}`;
  };
  let lastStage = 'training';
  if (stream.isTTY) {
    let bar: SingleBar | undefined;
    let stage = '';
    const show = (s: string, fraction: number | undefined, eta: string, train: string) => {
      if (s !== stage || !bar) {
        bar?.stop();
        stage = s;
        bar = new SingleBar({ format: '{stage} [{bar}] {percentage}% {train} {eta_text}', stream, hideCursor: true, clearOnComplete: true, barsize: 24, fps: 5 });
        bar.start(100, 0, { stage, eta_text: '', train: '' });
      }
      bar.update(Math.round((fraction ?? 0) * 100), { stage, eta_text: eta, train });
    };
    const tracker = new ProgressTracker((e: ProgressEvent) => show(e.stage, e.fraction, fmtEta(e.etaSeconds), ''));
    return {
      onProgress: (s, f) => {
        lastStage = s;
        tracker.report(s, f);
      },
      onTrainProgress: (p, step) => {
        collect(p, step);
        if (p.phase === 'step') {
          show(lastStage, ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps), fmtEta(p.etaSeconds), trainText(p));
          return;
        }
        bar?.stop();
        bar = undefined;
        stream.write(`${epochLine(p, step)}\n`);
      },
      epochs,
      done: () => bar?.stop(),
    };
  }
  let stage = '';
  let quarter = -1;
  const tracker = new ProgressTracker((e) => {
    const q = e.fraction === undefined ? 0 : Math.floor(e.fraction * 4);
    if (e.stage === stage && q <= quarter) return;
    stage = e.stage;
    quarter = q;
    const pct = e.fraction === undefined ? '' : ` ${Math.round(e.fraction * 100)}%`;
    const eta = fmtEta(e.etaSeconds);
    stream.write(`[${fmtSeconds(e.elapsedSeconds)}] ${e.stage}${pct}${eta ? ` (${eta})` : ''}\n`);
  });
  return {
    onProgress: tracker.report,
    onTrainProgress: (p, step) => {
      collect(p, step);
      if (p.phase === 'epoch') {
        const eta = p.epoch < p.epochs ? fmtEta(p.etaSeconds) : '';
        stream.write(`${epochLine(p, step)}${eta ? ` (${eta})` : ''}\n`);
      }
    },
    epochs,
    done: () => undefined,
  };
}

function fmtSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}
