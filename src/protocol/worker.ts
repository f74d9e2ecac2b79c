/**
 * Messages between the extension host and the worker process. Typed messages only: no
 * imports, no behaviour. Every request carries an id; the worker answers with progress
 * events and exactly one `result` or `error` for that id.
 */

import type { LayerSortKey } from './common';
import type { AnyJobResult, JobRequest, TrainProgressDto } from './jobs';

export type { LayerSortKey };
export type * from './jobs';

export type HostToWorker =
  | { type: 'run'; id: number; job: JobRequest }
  | { type: 'cancel'; id: number };

export type WorkerToHost =
  | { type: 'ready'; pid: number }
  | { type: 'progress'; id: number; stage: string; fraction?: number }
  /** Training progress of a job whose steps train: every epoch event and the latest step, at most 10 messages a second. */
  | { type: 'train'; id: number; progress: TrainProgressDto[] }
  /** `value` is the job's `JobResult`. */
  | { type: 'result'; id: number; value: AnyJobResult }
  | { type: 'error'; id: number; kind: 'model' | 'usage' | 'cancelled' | 'unavailable' | 'internal'; message: string };
