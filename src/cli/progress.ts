import { SingleBar } from 'cli-progress';
import { ProgressTracker, type ProgressEvent } from '../core/util/progress';

/**
 * Progress of long jobs on stderr: a bar with stage and ETA on a terminal (cli-progress),
 * plain lines otherwise (one per stage, and every 25% within it), nothing with `--json`
 * unless `--progress` asks for it. Returns the engine's `onProgress` callback and `done`.
 */
export function cliProgress(flags: Record<string, unknown>, stream: NodeJS.WriteStream = process.stderr): { onProgress?: (stage: string, fraction?: number) => void; done: () => void } {
  if ((flags.json && !flags.progress) || flags['no-progress']) return { done: () => undefined };
  const fmtEta = (e: ProgressEvent) => (e.etaSeconds === undefined ? '' : `ETA ${fmtSeconds(e.etaSeconds)}`);
  if (stream.isTTY) {
    let bar: SingleBar | undefined;
    let stage = '';
    const tracker = new ProgressTracker((e) => {
      if (e.stage !== stage) {
        bar?.stop();
        stage = e.stage;
        bar = new SingleBar({ format: '{stage} [{bar}] {percentage}% {eta_text}', stream, hideCursor: true, clearOnComplete: true, barsize: 24, fps: 5 });
        bar.start(100, 0, { stage, eta_text: '' });
      }
      bar!.update(Math.round((e.fraction ?? 0) * 100), { stage, eta_text: fmtEta(e) });
    });
    return { onProgress: tracker.report, done: () => bar?.stop() };
  }
  let stage = '';
  let step = -1;
  const tracker = new ProgressTracker((e) => {
    const q = e.fraction === undefined ? 0 : Math.floor(e.fraction * 4);
    if (e.stage === stage && q <= step) return;
    stage = e.stage;
    step = q;
    const pct = e.fraction === undefined ? '' : ` ${Math.round(e.fraction * 100)}%`;
    const eta = fmtEta(e);
    stream.write(`[${fmtSeconds(e.elapsedSeconds)}] ${e.stage}${pct}${eta ? ` (${eta})` : ''}\n`);
  });
  return { onProgress: tracker.report, done: () => undefined };
}

function fmtSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}
