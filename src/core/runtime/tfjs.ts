import * as fs from 'fs';
import * as path from 'path';
import { ModelError, NotAvailableError, UsageError } from '../errors';
import { exportKerasToOnnx } from '../formats/tfjs/to-onnx';
import { DataType } from '../ir/dtype';
import { confine } from '../formats/onnx/decode';
import { openModel, saveModel } from '../formats/registry';
import type { Model } from '../ir/graph';
import { ModelSession, type HostTensor, type IOSpec } from './session';
import { fillScratchDir, makeScratchDir, releaseScratch } from '../util/scratch';
import { pushAll } from '../util/arrays';

/**
 * Runs TF.js models with TensorFlow.js itself, so that what this tool writes is checked by
 * the library that will deploy it. Backends, best first: `@tensorflow/tfjs-node` when it
 * loads (an optional dependency: its install needs a libtensorflow download), then
 * `@tensorflow/tfjs-backend-wasm` (XNNPACK kernels compiled to WebAssembly, about 20x the
 * pure-JS backend on convolutions), then the pure-JS `cpu` backend. The environment variable
 * `MODEL_COMPRESSOR_TFJS_BACKEND=cpu|wasm` forces one. Every report names the backend that
 * ran. Files are read with a handler of our own (the same folder confinement as everywhere),
 * independent of this tool's TF.js reader.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tf = any;

/** A TensorFlow.js backend this tool can run on. */
export type TfjsBackend = 'tensorflow' | 'wasm' | 'cpu';

let loaded: { tf: Tf; wasm?: Tf; node: boolean } | undefined;
const unavailable = new Map<TfjsBackend, string>();
let wasmDir = '';

function load(): { tf: Tf; wasm?: Tf; node: boolean } {
  if (loaded) return loaded;
  const req = (name: string) => require(name) as Tf; // kept out of the bundle
  try {
    loaded = { tf: req('@tensorflow/tfjs-node'), node: true };
  } catch {
    // The bundle beside the built engine (dist/tfjs-bundle.js, with the .wasm files beside it), else the packages.
    const bundled = path.join(__dirname, 'tfjs-bundle.js');
    try {
      if (fs.existsSync(bundled)) {
        const b = req(bundled) as { tf?: Tf; wasm?: Tf };
        // A bundle built before the wasm backend was added exports TensorFlow.js itself.
        loaded = b.tf ? { tf: b.tf, wasm: b.wasm, node: false } : { tf: b, node: false };
        if (!b.wasm) unavailable.set('wasm', 'not in the bundle (run npm run build)');
        wasmDir = __dirname;
      } else {
        loaded = { tf: req('@tensorflow/tfjs'), node: false };
        try {
          loaded.wasm = req('@tensorflow/tfjs-backend-wasm');
          wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
        } catch (e) {
          unavailable.set('wasm', (e as Error).message.split('\n')[0]);
        }
      }
    } catch (e) {
      throw new NotAvailableError(`TensorFlow.js is not installed (${(e as Error).message.split('\n')[0]})`);
    }
    if (loaded.wasm) loaded.wasm.setWasmPaths(wasmDir + path.sep);
  }
  // Production mode: no debug checks, and no console banner advertising tfjs-node.
  loaded.tf.env().set('PROD', true);
  return loaded;
}

/** The backend used when none is asked for: tfjs-node, else wasm, else cpu (or the environment's choice). */
function preferred(): TfjsBackend {
  const env = process.env.MODEL_COMPRESSOR_TFJS_BACKEND;
  if (env === 'cpu' || env === 'wasm' || env === 'tensorflow') return env;
  if (load().node) return 'tensorflow';
  return unavailable.has('wasm') ? 'cpu' : 'wasm';
}

/**
 * The TensorFlow.js module switched to `want` (default: the best that loads). A backend that
 * fails to start (e.g. the .wasm files are missing) is remembered and the next one is used;
 * `backend` is the one in use.
 */
export async function tfjsBackend(want?: TfjsBackend): Promise<{ tf: Tf; backend: TfjsBackend }> {
  const { tf } = load();
  let backend = want ?? preferred();
  if (unavailable.has(backend)) backend = 'cpu';
  if (tf.getBackend() !== backend) {
    let ok = false;
    try {
      ok = await tf.setBackend(backend);
    } catch (e) {
      unavailable.set(backend, (e as { message?: string }).message ?? String(e));
    }
    if (!ok) {
      if (backend === 'cpu') throw new NotAvailableError('TensorFlow.js cannot start its cpu backend');
      unavailable.set(backend, unavailable.get(backend) ?? 'it did not start');
      return tfjsBackend('cpu');
    }
  }
  return { tf, backend };
}

/** The TensorFlow.js module (loaded on first use) and the backend it will run on by default. */
export function tfjs(): { tf: Tf; backend: TfjsBackend } {
  return { tf: load().tf, backend: preferred() };
}

/** True for the error TensorFlow.js throws when a backend lacks a kernel (then the cpu backend runs it). */
function missingKernel(e: unknown): boolean {
  return /not registered for backend|kernel .* not (registered|implemented)/i.test((e as Error)?.message ?? '');
}

type Json = Record<string, unknown>;

/** A tfjs IOHandler reading model.json and its shards from disk, confined to the model's folder. */
function fileHandler(file: string): { load(): Promise<Json> } {
  return {
    async load() {
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
      const dir = fs.realpathSync(path.dirname(path.resolve(file)));
      const specs: unknown[] = [];
      const parts: Buffer[] = [];
      for (const group of (json.weightsManifest as Json[] | undefined) ?? []) {
        for (const p of group.paths as string[]) parts.push(fs.readFileSync(confine(dir, p, p)));
        pushAll(specs, group.weights as unknown[]);
      }
      const data = Buffer.concat(parts);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        modelInitializer: json.modelInitializer,
        weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      };
    },
  };
}

/** TensorFlow.js outputs (one tensor or a list) as host tensors under `names`; the tensors are disposed. */
function hostOutputs(tf: Tf, ys: Tf, names: string[]): Record<string, HostTensor> {
  const list: Tf[] = Array.isArray(ys) ? ys : [ys];
  try {
    const out: Record<string, HostTensor> = {};
    list.forEach((y, k) => (out[names[k]] = { dtype: DataType.FLOAT, dims: [...y.shape], data: Float32Array.from(y.dataSync() as ArrayLike<number>) }));
    return out;
  } finally {
    tf.dispose(list);
  }
}

const DTYPES: Record<string, DataType> = { float32: DataType.FLOAT, int32: DataType.INT32, bool: DataType.BOOL };

/** A TF.js model ready to run, with the same shape of API as an ORT session. */
export class TfjsRunner {
  private constructor(
    private readonly model: Tf,
    private readonly graph: boolean,
    readonly label: string,
    readonly inputs: IOSpec[],
    readonly outputs: IOSpec[],
    private chosen: TfjsBackend,
  ) {}

  /** The backend that runs this model (cpu after a kernel the chosen backend lacks). */
  get backend(): TfjsBackend {
    return this.chosen;
  }

  /**
   * Runs `fn` on this runner's backend (TensorFlow.js has one global backend, so it is set
   * before each call); when the backend lacks a kernel, the model is run by the cpu backend
   * from then on.
   */
  private async on<T>(fn: (tf: Tf) => T | Promise<T>): Promise<T> {
    const { tf, backend } = await tfjsBackend(this.chosen);
    this.chosen = backend;
    try {
      return await fn(tf);
    } catch (e) {
      if (backend === 'cpu' || !missingKernel(e)) throw e;
      this.chosen = 'cpu';
      return fn((await tfjsBackend('cpu')).tf);
    }
  }

  /**
   * Runs an in-memory model: it is written to a scratch folder, loaded (TensorFlow.js keeps
   * everything in memory), and the folder removed at once.
   */
  static async fromModel(model: Model, opts: { backend?: TfjsBackend } = {}): Promise<TfjsRunner> {
    const dir = makeScratchDir('model-compressor-tfjs-');
    try {
      const file = path.join(dir, 'model.json');
      fillScratchDir(dir, 0, () => saveModel(model, file));
      return await TfjsRunner.create(file, opts);
    } finally {
      releaseScratch(dir);
    }
  }

  /** `backend`: the TensorFlow.js backend to run on (default: the best that loads, see above). */
  static async create(file: string, opts: { backend?: TfjsBackend } = {}): Promise<TfjsRunner> {
    const { tf, backend } = await tfjsBackend(opts.backend);
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
    const graph = json.format === 'graph-model';
    let model: Tf;
    try {
      model = graph ? await tf.loadGraphModel(fileHandler(file)) : await tf.loadLayersModel(fileHandler(file));
    } catch (e) {
      throw new ModelError(file, `TensorFlow.js cannot load it (${(e as Error).message.split('\n')[0]})`);
    }
    const spec = (list: Array<{ name: string; shape?: Array<number | null>; dtype?: string }>): IOSpec[] =>
      list.map((t, i) => ({
        name: graph ? t.name : `input_${i}`,
        dtype: DTYPES[t.dtype ?? 'float32'] ?? DataType.FLOAT,
        shape: (t.shape ?? []).map((d, k) => (d === null || d === undefined || d < 0 ? (k === 0 ? 'batch' : null) : d)),
      }));
    let inputs = spec(model.inputs);
    let outputs = spec(model.outputs);
    if (!graph) {
      // Same names as this tool's reader (and the ONNX export) gives, by position.
      const ir = openModel(file).graph;
      inputs = inputs.map((s, i) => ({ ...s, name: ir.inputs[i]?.name ?? `input_${i}` }));
      outputs = outputs.map((s, i) => ({ ...s, name: ir.outputs[i]?.name ?? `output_${i}` }));
    }
    return new TfjsRunner(model, graph, file, inputs, outputs, backend);
  }

  async run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.on(async (tf) => {
      const xs = this.feedTensors(tf, feeds);
      try {
        let ys: Tf;
        if (this.graph) {
          const named: Record<string, Tf> = {};
          this.inputs.forEach((i, k) => (named[i.name] = xs[k]));
          // execute() for static graphs; executeAsync() only where control flow or dynamic shapes need it.
          const names = this.outputs.map((o) => o.name);
          try {
            ys = this.model.execute(named, names);
          } catch (e) {
            if (!/executeAsync/.test((e as Error).message)) throw e;
            ys = await this.model.executeAsync(named, names);
          }
        } else {
          ys = this.model.predict(xs.length === 1 ? xs[0] : xs);
        }
        return hostOutputs(tf, ys, this.outputs.map((o) => o.name));
      } finally {
        tf.dispose(xs);
      }
    });
  }

  /** The outputs of the named layers (layers models), for one batch: dims as TensorFlow.js gives them (NHWC). */
  async capture(layers: string[], feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    if (this.graph) throw new ModelError(this.label, 'layer outputs are captured from TF.js layers models only');
    const { tf } = load();
    const key = layers.join('\u0000');
    if (this.probe?.key !== key) {
      const outs = layers.map((l) => {
        let out: Tf;
        try {
          out = this.model.getLayer(l).output;
        } catch {
          throw new ModelError(this.label, `it has no layer '${l}'`);
        }
        if (Array.isArray(out)) throw new ModelError(this.label, `layer '${l}' has ${out.length} outputs; only single-output layers are captured`);
        return out;
      });
      this.probe = { key, model: tf.model({ inputs: this.model.inputs, outputs: outs }) };
    }
    const probe = this.probe.model;
    return this.on((tf) => {
      const xs = this.feedTensors(tf, feeds);
      try {
        return hostOutputs(tf, probe.predict(xs.length === 1 ? xs[0] : xs), layers);
      } finally {
        tf.dispose(xs);
      }
    });
  }

  private feedTensors(tf: Tf, feeds: Record<string, HostTensor>): Tf[] {
    return this.inputs.map((i) => {
      const f = feeds[i.name];
      if (!f) throw new ModelError(this.label, `no data for input '${i.name}'`);
      return tf.tensor(f.data, f.dims, i.dtype === DataType.INT32 ? 'int32' : 'float32');
    });
  }

  private probe?: { key: string; model: Tf };

  async release(): Promise<void> {
    this.model.dispose?.();
  }
}

/** Something that runs a model on host tensors: an ORT session or a TensorFlow.js runner. */
export interface ModelRunner {
  run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

/**
 * Runs an in-memory TF.js layers model where TensorFlow.js's own semantics are not what is
 * being judged (sensitivity scans compare variants of one model with each other): ONNX
 * Runtime on the model's ONNX export (same NHWC inputs and output names), which is about 20x
 * faster than TensorFlow.js on wasm; TensorFlow.js when a layer has no ONNX rule. `runtime`
 * says which ran. Models this tool writes are still checked by TensorFlow.js (TfjsRunner).
 */
export async function variantRunner(model: Model): Promise<ModelRunner & { runtime: string }> {
  let onnx: Model | undefined;
  try {
    onnx = exportKerasToOnnx(model);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
  }
  if (onnx) {
    try {
      const s = await ModelSession.create(onnx, { allowSpinning: false }, model.graph.name || 'model');
      return { run: (feeds) => s.run(feeds), release: () => s.release(), runtime: 'ONNX Runtime (on the ONNX export)' };
    } catch (e) {
      if (!(e instanceof ModelError)) throw e;
    }
  }
  const r = await TfjsRunner.fromModel(model);
  return { run: (feeds) => r.run(feeds), release: () => r.release(), runtime: `TensorFlow.js (${r.backend} backend)` };
}

/**
 * A model's inputs as the runtime that will feed it sees them: TensorFlow.js for TF.js
 * models (names as this tool's reader gives them), ONNX Runtime otherwise.
 */
export async function modelInputs(file: string, format?: string): Promise<IOSpec[]> {
  const fmt = format ?? openModel(file).format;
  const r = fmt.startsWith('tfjs') ? await TfjsRunner.create(file) : await ModelSession.create(file);
  const inputs = r.inputs;
  await r.release();
  return inputs;
}
