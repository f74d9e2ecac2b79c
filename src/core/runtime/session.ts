import * as path from 'path';
import type * as OrtTypes from 'onnxruntime-node';
import { ModelError, UsageError } from '../errors';
import { allTensors, onnxToBytes, saveOnnx } from '../formats/onnx';
import { DataType, dtypeName } from '../ir/dtype';
import type { Model } from '../ir/graph';
import type { NumericArray } from '../ir/tensor';
import { rssStage } from './rss-log';
import { fillScratchDir, makeScratchDir, releaseScratch } from '../util/scratch';

/**
 * ONNX Runtime sessions over files, bytes or in-memory IR models. Everything that touches
 * onnxruntime-node goes through here, so the rest of the engine deals in `HostTensor`s.
 */

/**
 * ORT's log severity for the process-wide environment and every session: 3 = error. Its
 * warnings (multi-line, ANSI-coloured `[W:onnxruntime…]`) would otherwise reach stderr.
 */
export const ORT_LOG_SEVERITY = 3;

let ortModule: typeof OrtTypes | undefined;
/**
 * onnxruntime-node, loaded on first use with its telemetry off (`ORT_DISABLE_TELEMETRY=1`
 * must be in the environment before the native module loads; otherwise every process writes
 * a device id and an events database under `$HOME/.cache/Microsoft/` and may contact
 * Microsoft's events host) and its environment logging only errors.
 */
export function ort(): typeof OrtTypes {
  if (!ortModule) {
    disableOrtTelemetry();
    ortModule = require('onnxruntime-node') as typeof OrtTypes;
    ortModule.env.logLevel = 'error';
  }
  return ortModule;
}

/** Sets `ORT_DISABLE_TELEMETRY=1` for this process and every child it starts. Call before ORT loads. */
export function disableOrtTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY = '1';
}

/** A tensor in host memory, independent of ORT's types. */
export interface HostTensor {
  dtype: DataType;
  dims: number[];
  data: NumericArray;
}

export interface SessionOptions {
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Only 'cpu' ships with onnxruntime-node on Linux; others are passed through to ORT. */
  executionProvider?: string;
  /**
   * Let ORT's thread pool spin between runs (its default). Turn off when several sessions
   * run alternately in one process, or each run pays for the other's spinning threads.
   */
  allowSpinning?: boolean;
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * ORT's CPU memory arena (its default: on). An arena keeps the largest working set any run
   * needed until the session is released; without it each run's memory is freed when the run
   * ends. Turn off for sessions that run alternately with another (reference and candidate),
   * so the process holds one run's working set at a time instead of both sessions' largest.
   */
  memoryArena?: boolean;
  /**
   * ORT's memory pattern (default on): after the first run it allocates one block laid out
   * from that run's trace. Off for training graphs, where it held 2130 MiB against 1263 MiB
   * without it on MobileNetV2 at batch 16 (same step time).
   */
  memoryPattern?: boolean;
}

/**
 * Options of two sessions that run alternately (reference and candidate): no spinning threads,
 * and no memory arena, so only one run's working set is held at a time. Measured on a 324 MiB
 * BERT-base-sized encoder and its int8 model, fidelity on 256 samples at batch 32: peak RSS
 * 1.47 GiB with ORT's arenas, 1.18 GiB without, same figures, no slower.
 */
export const ALTERNATING: SessionOptions = { allowSpinning: false, memoryArena: false };

export interface IOSpec {
  name: string;
  dtype: DataType;
  /** numbers, symbolic names, or null for unknown. */
  shape: Array<number | string | null>;
}

const ORT_TYPES: Record<string, DataType> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  float64: DataType.DOUBLE,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  int16: DataType.INT16,
  uint16: DataType.UINT16,
  int32: DataType.INT32,
  uint32: DataType.UINT32,
  int64: DataType.INT64,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
  string: DataType.STRING,
};

export function ortTypeName(t: DataType): OrtTypes.Tensor.Type {
  for (const [k, v] of Object.entries(ORT_TYPES)) if (v === t) return k as OrtTypes.Tensor.Type;
  throw new UsageError(`ONNX Runtime has no tensor type for ${dtypeName(t)}`);
}

/**
 * In-memory models whose tensors take more than this reach ONNX Runtime through a temporary
 * file with every tensor in external data, not as one serialized buffer. ORT maps external
 * data from the file (it reads raw bytes only as it needs them, and returns the memory to the
 * system when the session is released), whereas a serialized buffer is one more copy of every
 * weight in this process, kept until the garbage collector runs, and ORT's copy of inline
 * initializers stays in the C heap after the session is released. Measured on a 324 MiB
 * BERT-base-sized encoder: one session from a buffer added 890 MiB of resident memory; from
 * the external-data file, 350 MiB, back to the baseline after release.
 */
export const IN_MEMORY_SESSION_LIMIT = 16 * 2 ** 20;

/**
 * What to open a session on for `model`, read from `file`: the file itself when it keeps at
 * most IN_MEMORY_SESSION_LIMIT bytes of weights inline (small, or weights in external data),
 * else the model (written by `ModelSession.create` to a temporary external-data file).
 */
export function sessionSource(model: Model, file: string): string | Model {
  if (model.format !== 'onnx') return file;
  let inline = 0;
  for (const t of allTensors(model)) if (t.sourceKind !== 'external') inline += t.byteLength;
  return inline > IN_MEMORY_SESSION_LIMIT ? model : file;
}

export class ModelSession {
  private constructor(
    private readonly session: OrtTypes.InferenceSession,
    readonly label: string,
    readonly inputs: IOSpec[],
    readonly outputs: IOSpec[],
    readonly createMs: number,
    private readonly cleanup?: () => void,
  ) {}

  /**
   * `source` is a file path, serialized ONNX bytes, or an IR model (serialized in memory, or to a
   * temporary external-data file above IN_MEMORY_SESSION_LIMIT, deleted on `release`).
   */
  static async create(source: string | Uint8Array | Model, opts: SessionOptions = {}, label?: string): Promise<ModelSession> {
    const name = label ?? (typeof source === 'string' ? source : source instanceof Uint8Array ? '<in-memory model>' : source.path ?? '<in-memory model>');
    const so = sessionOptions(opts);
    let cleanup: (() => void) | undefined;
    let arg: string | Uint8Array;
    if (typeof source === 'string' || source instanceof Uint8Array) arg = source;
    else {
      const tensors = allTensors(source);
      const bytes = tensors.reduce((a, t) => a + t.byteLength, 0);
      if (bytes <= IN_MEMORY_SESSION_LIMIT) arg = onnxToBytes(source);
      else {
        const dir = makeScratchDir('mc-session-');
        const file = path.join(dir, 'model.onnx');
        fillScratchDir(dir, bytes, () => saveOnnx(source, file, { externalData: 'always' }));
        arg = file;
        cleanup = () => releaseScratch(dir);
      }
    }
    if (!(typeof source === 'string' || source instanceof Uint8Array)) rssStage(`serialized for a session: ${name}`);
    const t0 = process.hrtime.bigint();
    let session: OrtTypes.InferenceSession;
    try {
      session = typeof arg === 'string' ? await ort().InferenceSession.create(arg, so) : await ort().InferenceSession.create(arg, so);
    } catch (e) {
      cleanup?.();
      throw ortError(name, e, 'rejected the model');
    }
    const createMs = Number(process.hrtime.bigint() - t0) / 1e6;
    rssStage(`session created: ${name}`);
    const spec = (m: readonly OrtTypes.InferenceSession.ValueMetadata[]): IOSpec[] =>
      m.map((v) => ({
        name: v.name,
        dtype: v.isTensor ? ORT_TYPES[v.type] ?? DataType.UNDEFINED : DataType.UNDEFINED,
        shape: v.isTensor ? v.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d ? d : null)) : [],
      }));
    return new ModelSession(session, name, spec(session.inputMetadata), spec(session.outputMetadata), createMs, cleanup);
  }

  async run(feeds: Record<string, HostTensor>, outputNames?: string[]): Promise<Record<string, HostTensor>> {
    const o = ort();
    const f: Record<string, OrtTypes.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new o.Tensor(ortTypeName(v.dtype), v.data as never, v.dims);
    let res: OrtTypes.InferenceSession.ReturnType;
    try {
      res = outputNames ? await this.session.run(f, outputNames) : await this.session.run(f);
    } catch (e) {
      throw ortError(this.label, e, 'failed to run the model');
    }
    const out: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(res)) {
      out[k] = { dtype: ORT_TYPES[v.type] ?? DataType.UNDEFINED, dims: [...v.dims], data: v.data as NumericArray };
    }
    return out;
  }

  /** A raw run for benchmarks: feeds already converted to ORT tensors. */
  async runRaw(feeds: Record<string, OrtTypes.Tensor>): Promise<void> {
    await this.session.run(feeds);
  }

  async release(): Promise<void> {
    try {
      await this.session.release();
    } finally {
      this.cleanup?.();
      rssStage(`session released: ${this.label}`);
    }
  }
}

/** Execution providers this onnxruntime-node build offers. */
export function availableProviders(): string[] {
  try {
    return (ort().listSupportedBackends?.() ?? []).map((b: { name: string }) => b.name);
  } catch {
    return ['cpu'];
  }
}

/** Throws a UsageError for an execution provider this build does not offer. */
export function checkProvider(ep: string | undefined): void {
  if (!ep) return;
  const available = availableProviders();
  if (available.length && !available.includes(ep)) {
    throw new UsageError(`execution provider '${ep}' is not available in this onnxruntime-node build (available: ${available.join(', ')})`);
  }
}

/** The most threads a session may ask for (a bound on what a request can allocate). */
export const MAX_THREADS = 256;

function sessionOptions(opts: SessionOptions): OrtTypes.InferenceSession.SessionOptions {
  checkProvider(opts.executionProvider);
  const so: OrtTypes.InferenceSession.SessionOptions = {
    executionProviders: [opts.executionProvider ?? 'cpu'],
    graphOptimizationLevel: opts.graphOptimization ?? 'all',
    logSeverityLevel: ORT_LOG_SEVERITY,
  };
  for (const [what, n] of [['intra-op', opts.intraOpThreads], ['inter-op', opts.interOpThreads]] as const) {
    if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > MAX_THREADS)) throw new UsageError(`${what} threads must be a whole number from 0 (ONNX Runtime's default) to ${MAX_THREADS}, got ${n}`);
  }
  if (opts.memoryArena === false) so.enableCpuMemArena = false;
  if (opts.intraOpThreads !== undefined) so.intraOpNumThreads = opts.intraOpThreads;
  if (opts.interOpThreads !== undefined) so.interOpNumThreads = opts.interOpThreads;
  if (opts.memoryPattern === false) so.enableMemPattern = false;
  if (opts.allowSpinning === false) so.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  return so;
}

/** Turns an ORT exception into a one-line ModelError that names the node when ORT does. */
export function ortError(file: string, e: unknown, what: string): ModelError {
  const raw = e instanceof Error ? e.message : String(e);
  const text = raw.replace(/\s+/g, ' ').trim();
  const node = /[Nn]ode \(([^)]+)\)/.exec(text)?.[1] ?? /node name:? '?([^\s',]+)/i.exec(text)?.[1];
  // Drop ORT's "[ONNXRuntimeError] : 1 : FAIL : Load model from … failed:" prefix.
  const core = text.replace(/^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/, '').replace(/^Load model from .*? failed:\s*/, '');
  const short = core.length > 400 ? `${core.slice(0, 400)}…` : core;
  return new ModelError(file, `ONNX Runtime ${what}${node ? ` at node '${node}'` : ''}: ${short}`);
}
