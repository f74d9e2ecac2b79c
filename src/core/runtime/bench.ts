import { fork, type ChildProcess } from 'child_process';
import * as path from 'path';
import { runnableOnnx, type RunnableOnnx } from './onnx-file';
import { CancelledError, ModelError } from '../errors';
import { modelFiles, modelSizeBytes } from '../formats/registry';

export { modelFiles, modelSizeBytes };
import type { ChildReply, ChildRequest } from './bench-child';
import { checkProvider } from './session';

/**
 * Latency benchmark. Each model runs in its own child process; with several models the
 * runs are interleaved (A B A B …) so a drifting machine biases none of them, and ratios
 * are reported against the first model.
 */

export interface BenchOptions {
  runs?: number;
  warmup?: number;
  threads?: number;
  interThreads?: number;
  executionProvider?: string;
  batch?: number;
  shapes?: Record<string, number[]>;
  /** Inputs filled with one value instead of random data (e.g. a runtime-widths selector = 1). */
  constants?: Record<string, number>;
  /** Bytes on disk of each model, when the caller has them (else each file is opened to list its weight files). */
  sizes?: number[];
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface LatencyStats {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

export interface ModelBench {
  path: string;
  sizeBytes: number;
  sessionCreateMs: number;
  latencyMs: LatencyStats;
  /** Samples per second at the benchmarked batch size, from the mean latency. */
  throughput: number;
  peakRssBytes: number;
  /** p50 latency relative to the first model (1 for the first). */
  ratioP50: number;
  ratioSize: number;
}

export interface BenchResult {
  runs: number;
  warmup: number;
  batch: number;
  threads: number | null;
  interleaved: boolean;
  models: ModelBench[];
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function latencyStats(times: number[]): LatencyStats {
  const s = [...times].sort((a, b) => a - b);
  return { min: s[0], p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

class Child {
  private proc: ChildProcess;
  private pending: ((r: ChildReply) => void) | undefined;
  private exitError: string | undefined;

  constructor(readonly label: string) {
    this.proc = fork(path.join(__dirname, 'bench-child.js'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    this.proc.stderr?.on('data', (d) => (stderr += String(d)));
    this.proc.on('message', (r: ChildReply) => {
      const p = this.pending;
      this.pending = undefined;
      p?.(r);
    });
    this.proc.on('exit', (code, signal) => {
      this.exitError = `benchmark process for ${label} exited (${signal ?? code})${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`;
      const p = this.pending;
      this.pending = undefined;
      p?.({ ok: false, error: this.exitError });
    });
  }

  request(m: ChildRequest): Promise<ChildReply & { ok: true }> {
    if (this.exitError) return Promise.reject(new ModelError(this.label, this.exitError));
    return new Promise((resolve, reject) => {
      this.pending = (r) => (r.ok ? resolve(r) : reject(new ModelError(this.label, r.error)));
      this.proc.send(m);
    });
  }

  kill(): void {
    if (this.proc.connected) this.proc.disconnect();
    this.proc.kill();
  }
}

export async function benchmarkModels(paths: string[], opts: BenchOptions = {}): Promise<BenchResult> {
  const runs = opts.runs ?? 50;
  const warmup = opts.warmup ?? 5;
  const batch = opts.batch ?? 1;
  checkProvider(opts.executionProvider);
  const interleaved = paths.length > 1;
  const sizes = opts.sizes ?? paths.map((f) => modelSizeBytes(f));
  // TF.js layers models run through an ONNX export (sizes above are the originals').
  const runnable: RunnableOnnx[] = [];
  const children: Child[] = [];
  try {
    for (const p of paths) runnable.push(runnableOnnx(p));
    children.push(...paths.map((p) => new Child(p)));
    const created: number[] = [];
    for (let i = 0; i < paths.length; i++) {
      const r = await children[i].request({
        cmd: 'load',
        path: runnable[i].path,
        batch,
        shapes: opts.shapes ?? {},
        constants: opts.constants ?? {},
        // Spinning thread pools steal the CPU from the other model's runs when interleaved.
        session: { intraOpThreads: opts.threads, interOpThreads: opts.interThreads ?? 1, executionProvider: opts.executionProvider, allowSpinning: !interleaved },
      });
      created.push(r.createMs ?? NaN);
    }
    for (const c of children) await c.request({ cmd: 'run', n: warmup });
    const times: number[][] = paths.map(() => []);
    for (let r = 0; r < runs; r++) {
      if (opts.signal?.aborted) throw new CancelledError();
      for (let i = 0; i < children.length; i++) times[i].push(...((await children[i].request({ cmd: 'run', n: 1 })).times ?? []));
      opts.onProgress?.(r + 1, runs);
    }
    const rss: number[] = [];
    for (const c of children) rss.push((await c.request({ cmd: 'stats' })).maxRssBytes ?? NaN);
    const stats = times.map(latencyStats);
    return {
      runs,
      warmup,
      batch,
      threads: opts.threads ?? null,
      interleaved,
      models: paths.map((p, i) => ({
        path: p,
        sizeBytes: sizes[i],
        sessionCreateMs: created[i],
        latencyMs: stats[i],
        throughput: (batch * 1000) / stats[i].mean,
        peakRssBytes: rss[i],
        ratioP50: stats[i].p50 / stats[0].p50,
        ratioSize: sizes[i] / sizes[0],
      })),
    };
  } finally {
    for (const c of children) c.kill();
    for (const r of runnable) r.release();
  }
}
