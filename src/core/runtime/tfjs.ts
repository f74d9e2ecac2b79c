import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelError, NotAvailableError } from '../errors';
import { DataType } from '../ir/dtype';
import { confine } from '../formats/onnx/decode';
import { openModel, saveModel } from '../formats/registry';
import type { Model } from '../ir/graph';
import { ModelSession, type HostTensor, type IOSpec } from './session';
import { pushAll } from '../util/arrays';

/**
 * Runs TF.js models with TensorFlow.js itself, so that what this tool writes is checked by
 * the library that will deploy it. `@tensorflow/tfjs-node` is used when it loads (an
 * optional dependency: its install needs a libtensorflow download), otherwise pure-JS
 * `@tensorflow/tfjs` on its CPU backend. Files are read with a handler of our own (the
 * same folder confinement as everywhere), independent of this tool's TF.js reader.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tf = any;

let loaded: { tf: Tf; backend: string } | undefined;

/** The TensorFlow.js module, loaded on first use. */
export function tfjs(): { tf: Tf; backend: string } {
  if (loaded) return loaded;
  const req = (name: string) => require(name) as Tf; // kept out of the bundle
  let result: { tf: Tf; backend: string };
  try {
    result = { tf: req('@tensorflow/tfjs-node'), backend: 'tensorflow' };
  } catch {
    try {
      // The bundle beside the built engine (dist/tfjs-bundle.js), else the package.
      const bundled = path.join(__dirname, 'tfjs-bundle.js');
      result = { tf: req(fs.existsSync(bundled) ? bundled : '@tensorflow/tfjs'), backend: 'cpu' };
      result.tf.setBackend('cpu');
    } catch (e) {
      throw new NotAvailableError(`TensorFlow.js is not installed (${(e as Error).message.split('\n')[0]})`);
    }
  }
  // Production mode: no debug checks, and no console banner advertising tfjs-node.
  result.tf.env().set('PROD', true);
  loaded = result;
  return loaded;
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

const DTYPES: Record<string, DataType> = { float32: DataType.FLOAT, int32: DataType.INT32, bool: DataType.BOOL };

/** A TF.js model ready to run, with the same shape of API as an ORT session. */
export class TfjsRunner {
  private constructor(
    private readonly tf: Tf,
    private readonly model: Tf,
    private readonly graph: boolean,
    readonly label: string,
    readonly inputs: IOSpec[],
    readonly outputs: IOSpec[],
    readonly backend: string,
  ) {}

  /**
   * Runs an in-memory model: it is written to a scratch folder, loaded (TensorFlow.js keeps
   * everything in memory), and the folder removed at once.
   */
  static async fromModel(model: Model): Promise<TfjsRunner> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-compressor-tfjs-'));
    try {
      const file = path.join(dir, 'model.json');
      saveModel(model, file);
      return await TfjsRunner.create(file);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  static async create(file: string): Promise<TfjsRunner> {
    const { tf, backend } = tfjs();
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
    return new TfjsRunner(tf, model, graph, file, inputs, outputs, backend);
  }

  async run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    const tf = this.tf;
    const xs = this.inputs.map((i) => {
      const f = feeds[i.name];
      if (!f) throw new ModelError(this.label, `no data for input '${i.name}'`);
      return tf.tensor(f.data, f.dims, i.dtype === DataType.INT32 ? 'int32' : 'float32');
    });
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
      const list: Tf[] = Array.isArray(ys) ? ys : [ys];
      const out: Record<string, HostTensor> = {};
      list.forEach((y, k) => {
        out[this.outputs[k].name] = { dtype: DataType.FLOAT, dims: [...y.shape], data: Float32Array.from(y.dataSync() as ArrayLike<number>) };
      });
      tf.dispose(list);
      return out;
    } finally {
      tf.dispose(xs);
    }
  }

  /** The outputs of the named layers (layers models), for one batch: dims as TensorFlow.js gives them (NHWC). */
  async capture(layers: string[], feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    if (this.graph) throw new ModelError(this.label, 'layer outputs are captured from TF.js layers models only');
    const { tf } = tfjs();
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
    const xs = this.inputs.map((i) => {
      const f = feeds[i.name];
      if (!f) throw new ModelError(this.label, `no data for input '${i.name}'`);
      return tf.tensor(f.data, f.dims, i.dtype === DataType.INT32 ? 'int32' : 'float32');
    });
    try {
      const ys = this.probe.model.predict(xs.length === 1 ? xs[0] : xs);
      const list: Tf[] = Array.isArray(ys) ? ys : [ys];
      const out: Record<string, HostTensor> = {};
      list.forEach((y, k) => (out[layers[k]] = { dtype: DataType.FLOAT, dims: [...y.shape], data: Float32Array.from(y.dataSync() as ArrayLike<number>) }));
      tf.dispose(list);
      return out;
    } finally {
      tf.dispose(xs);
    }
  }

  private probe?: { key: string; model: Tf };

  async release(): Promise<void> {
    this.model.dispose?.();
  }
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
