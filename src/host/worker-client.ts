import { fork, type ChildProcess } from 'child_process';
import type { AnyJobResult, HostToWorker, JobKind, JobRequest, JobRequestOf, JobResult, TrainProgressDto, WorkerToHost } from '../protocol/worker';

/**
 * The host's side of the worker: spawns it on first use, matches replies to requests,
 * forwards progress, cancels, and survives crashes: pending jobs fail with a clear
 * message and the next job starts a fresh worker. Does not import vscode, so it is tested
 * in plain mocha.
 */

export class JobError extends Error {
  constructor(
    readonly kind: Extract<WorkerToHost, { type: 'error' }>['kind'] | 'crashed',
    message: string,
  ) {
    super(message);
    this.name = 'JobError';
  }
}

interface Pending {
  resolve(v: AnyJobResult): void;
  reject(e: JobError): void;
  onProgress?: (stage: string, fraction?: number) => void;
  onTrainProgress?: (batch: TrainProgressDto[]) => void;
}

export interface RunOptions {
  onProgress?: (stage: string, fraction?: number) => void;
  /** Training progress of jobs whose steps train (batched by the worker: ≤ 10 calls a second). */
  onTrainProgress?: (batch: TrainProgressDto[]) => void;
  /** Aborting cancels the job in the worker. */
  signal?: AbortSignal;
}

export class WorkerClient {
  private proc: ChildProcess | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  /** Called when the worker dies unexpectedly (after pending jobs were rejected). */
  onCrash?: (message: string) => void;

  constructor(private readonly script: string) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  private spawn(): ChildProcess {
    // ELECTRON_RUN_AS_NODE makes a desktop VS Code binary behave as plain Node for the child.
    const p = fork(this.script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
    let stderr = '';
    p.stderr?.on('data', (d) => (stderr = (stderr + String(d)).slice(-2000)));
    p.on('message', (m: WorkerToHost) => this.onMessage(m));
    p.on('exit', (code, signal) => {
      if (this.proc !== p) return;
      this.proc = undefined;
      const last = stderr.trim().split('\n').pop();
      const msg = `the Model Compressor worker stopped unexpectedly (${signal ?? `exit code ${code}`})${last ? `: ${last}` : ''}; the next job starts a new worker`;
      const jobs = [...this.pending.values()];
      this.pending.clear();
      for (const j of jobs) j.reject(new JobError('crashed', msg));
      if (jobs.length || code !== 0) this.onCrash?.(msg);
    });
    return p;
  }

  private onMessage(m: WorkerToHost): void {
    if (!m || typeof m !== 'object') return;
    if (m.type === 'progress') this.pending.get(m.id)?.onProgress?.(m.stage, m.fraction);
    else if (m.type === 'train') this.pending.get(m.id)?.onTrainProgress?.(m.progress);
    else if (m.type === 'result' || m.type === 'error') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === 'result') p.resolve(m.value);
      else p.reject(new JobError(m.kind, m.message));
    }
  }

  /** Runs a job; the request's and the result's types follow from its kind (src/protocol/jobs.ts). */
  job<K extends JobKind>(job: JobRequestOf<K>, opts: RunOptions = {}): Promise<JobResult<K>> {
    this.proc ??= this.spawn();
    const id = this.nextId++;
    const proc = this.proc;
    return new Promise<JobResult<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: AnyJobResult) => void, reject, onProgress: opts.onProgress, onTrainProgress: opts.onTrainProgress });
      this.send(proc, { type: 'run', id, job: job as JobRequest });
      // After `run`: a cancel for an id the worker does not know yet would be lost.
      if (opts.signal) {
        if (opts.signal.aborted) this.send(proc, { type: 'cancel', id });
        else opts.signal.addEventListener('abort', () => this.send(proc, { type: 'cancel', id }), { once: true });
      }
    });
  }

  private send(p: ChildProcess, m: HostToWorker): void {
    if (p.connected) p.send(m);
  }

  dispose(): void {
    const p = this.proc;
    this.proc = undefined;
    for (const j of this.pending.values()) j.reject(new JobError('cancelled', 'the worker was shut down'));
    this.pending.clear();
    if (p) {
      if (p.connected) p.disconnect();
      p.kill();
    }
  }
}
