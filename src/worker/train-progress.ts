import type { TrainProgressDto } from '../protocol/jobs';

/**
 * Batches training progress for the wire: at most one message per `intervalMs` (default 100 ms,
 * so ≤ 10 a second), holding every epoch event since the last message and the latest step
 * event. Steps in between are dropped (the chart is a sample of the loss); epochs never are.
 */
export class TrainProgressBatcher {
  private pending: TrainProgressDto[] = [];
  private last = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (batch: TrainProgressDto[]) => void,
    private readonly intervalMs = 100,
    private readonly now: () => number = () => Date.now(),
  ) {}

  push(p: TrainProgressDto): void {
    // A newer step event replaces a pending one; epoch events are kept.
    const tail = this.pending[this.pending.length - 1];
    if (p.phase === 'step' && tail?.phase === 'step') this.pending[this.pending.length - 1] = p;
    else this.pending.push(p);
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait);
  }

  /** Sends what is pending now (at the end of a job, so the last epoch is never lost). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    this.last = this.now();
    this.send(batch);
  }
}
