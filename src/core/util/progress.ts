/**
 * Progress of long jobs: the engine reports `(stage, fraction)` through the `onProgress`
 * callbacks its options take; `ProgressTracker` turns those into events with an ETA for
 * whatever renders them (a progress bar on a terminal, plain lines otherwise, the
 * extension's progress notification). The engine never prints.
 */

export interface ProgressEvent {
  stage: string;
  /** 0–1 within the stage, when known. */
  fraction?: number;
  /** Seconds left in this stage, extrapolated from its progress so far (when known). */
  etaSeconds?: number;
  /** Seconds since the job started. */
  elapsedSeconds: number;
}

export type ProgressSink = (e: ProgressEvent) => void;

/**
 * Computes each stage's ETA by linear extrapolation from the time spent in the stage and the
 * fraction done (no ETA before 2% or 1 s, when it would only be noise).
 */
export class ProgressTracker {
  private stage = '';
  private stageStart = 0;
  private readonly start: number;

  constructor(
    private readonly sink: ProgressSink,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.start = now();
  }

  /** The `onProgress` callback to hand to the engine. */
  readonly report = (stage: string, fraction?: number): void => {
    const t = this.now();
    if (stage !== this.stage) {
      this.stage = stage;
      this.stageStart = t;
    }
    const inStage = (t - this.stageStart) / 1000;
    const f = fraction === undefined || !Number.isFinite(fraction) ? undefined : Math.min(1, Math.max(0, fraction));
    const etaSeconds = f !== undefined && f >= 0.02 && inStage >= 1 ? (inStage * (1 - f)) / f : undefined;
    this.sink({ stage, fraction: f, etaSeconds, elapsedSeconds: (t - this.start) / 1000 });
  };
}
