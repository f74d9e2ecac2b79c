/**
 * The worker process: runs engine jobs for the extension host, crash-isolated from the
 * editor. Speaks only the typed protocol (src/protocol/worker.ts) over Node IPC. Jobs on
 * the same model run one after another; jobs on different models run side by side.
 */
import { CancelledError, ModelError, NotAvailableError, OutputError, UsageError, oneLine } from '../core/errors';
import type { HostToWorker, JobRequest, WorkerToHost } from '../protocol/worker';
import { installExitCleanup } from '../core/util/scratch';
import { runJob } from './jobs';
import { TrainProgressBatcher } from './train-progress';

// ONNX Runtime's telemetry stays off in the worker (and anything it starts): set before ORT loads.
process.env.ORT_DISABLE_TELEMETRY = '1';

const send = (m: WorkerToHost) => process.send?.(m);
const running = new Map<number, AbortController>();
const queues = new Map<string, Promise<unknown>>();

function modelKey(job: JobRequest): string {
  switch (job.kind) {
    case 'inspect':
    case 'layers':
    case 'tensor':
    case 'quickQuantize':
    case 'compress':
      return job.model;
    default:
      return `#${job.kind}`;
  }
}

function classify(e: unknown): Extract<WorkerToHost, { type: 'error' }>['kind'] {
  if (e instanceof ModelError) return 'model';
  if (e instanceof UsageError || e instanceof OutputError) return 'usage';
  if (e instanceof CancelledError) return 'cancelled';
  if (e instanceof NotAvailableError) return 'unavailable';
  return 'internal';
}

function run(id: number, job: JobRequest): void {
  const ctl = new AbortController();
  running.set(id, ctl);
  const batcher = new TrainProgressBatcher((progress) => send({ type: 'train', id, progress }));
  const key = modelKey(job);
  // Reads (the layer table) must stay responsive: they skip the per-model queue.
  const queued = job.kind === 'layers' || job.kind === 'tensor' || job.kind === 'inspect';
  const prev = queued ? Promise.resolve() : queues.get(key) ?? Promise.resolve();
  const task = prev
    .catch(() => undefined)
    .then(async () => {
      if (ctl.signal.aborted) throw new CancelledError();
      return runJob(job, { signal: ctl.signal, progress: (stage, fraction) => send({ type: 'progress', id, stage, fraction }), train: (p) => batcher.push(p) });
    })
    .then(
      (value) => {
        batcher.flush();
        send({ type: 'result', id, value: value ?? null });
      },
      (e) => {
        batcher.flush();
        send({ type: 'error', id, kind: classify(e), message: oneLine(e) });
      },
    )
    .finally(() => running.delete(id));
  if (!queued) queues.set(key, task);
}

process.on('message', (m: HostToWorker) => {
  if (!m || typeof m !== 'object') return;
  if (m.type === 'run' && typeof m.id === 'number' && m.job && typeof m.job === 'object') run(m.id, m.job);
  else if (m.type === 'cancel') running.get(m.id)?.abort();
});
installExitCleanup();
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', pid: process.pid });
