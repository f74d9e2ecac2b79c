import * as fs from 'fs';
import * as path from 'path';
import { ModelError } from '../../errors';
import { DataType, storageBytes } from '../../ir/dtype';
import { Graph, Model, Node, type Dim } from '../../ir/graph';
import { Tensor, elementCount } from '../../ir/tensor';
import type { FormatPlugin } from '../format';
import { confine } from '../onnx/decode';

/**
 * TF.js layers models (`model.json` + binary weight shards), read into the IR for
 * inspection: one node per Keras layer (op type = the layer class, domain `tfjs`), its
 * weights as initializers named as in the manifest. Weights may be float32/int32, float16, or
 * quantized in the manifest (uint8/uint16 with min and scale), which are dequantized lazily.
 * A layer class the reader does not model is still a node with its weights counted.
 * Shards must stay inside the model's folder and hold exactly what the manifest declares.
 */

const MAX_JSON = 64 * 2 ** 20;

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number; original_dtype?: string };
}

type Json = Record<string, unknown>;

const DTYPES: Record<string, DataType> = { float32: DataType.FLOAT, int32: DataType.INT32, bool: DataType.BOOL, float16: DataType.FLOAT16, uint8: DataType.UINT8, uint16: DataType.UINT16 };

function looksLikeTfjs(head: Uint8Array): boolean {
  const text = new TextDecoder().decode(head.subarray(0, Math.min(head.length, 65536))).trimStart();
  return text.startsWith('{') && /"(modelTopology|weightsManifest)"\s*:/.test(text);
}

export function readTfjs(file: string): Model {
  const fail = (why: string): never => {
    throw new ModelError(file, why);
  };
  const size = fs.statSync(file).size;
  if (size > MAX_JSON) fail(`model.json is ${size} bytes, over the ${MAX_JSON}-byte limit for a TF.js topology`);
  let json: Json;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  const format = json.format as string | undefined;
  const topology = json.modelTopology as Json | undefined;
  if (format === 'graph-model' || (topology && 'node' in topology)) fail('TF.js graph models are not supported yet (layers models are)');
  if (!topology || typeof topology !== 'object') fail('no modelTopology: not a TF.js layers model');
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) fail('no weightsManifest array');

  // Weights: each manifest group is the concatenation of its shards.
  const dir = fs.realpathSync(path.dirname(path.resolve(file)));
  const weights = new Map<string, Tensor>();
  for (const [g, group] of (manifest as Json[]).entries()) {
    const paths = group?.paths;
    const specs = group?.weights;
    if (!Array.isArray(paths) || !Array.isArray(specs)) fail(`weightsManifest[${g}] needs "paths" and "weights" arrays`);
    const shards = (paths as unknown[]).map((p) => {
      if (typeof p !== 'string') return fail(`weightsManifest[${g}] has a non-string path`);
      let resolved: string;
      try {
        resolved = confine(dir, p, p);
      } catch {
        return fail(`weight shard path '${p}' points outside the model's folder`);
      }
      try {
        return fs.readFileSync(resolved);
      } catch {
        return fail(`weight shard '${p}' is missing`);
      }
    });
    const data = shards.length === 1 ? shards[0] : Buffer.concat(shards);
    let offset = 0;
    for (const s of specs as WeightSpec[]) {
      if (!s || typeof s.name !== 'string' || !Array.isArray(s.shape)) fail(`weightsManifest[${g}] has a malformed weight entry`);
      const q = s.quantization;
      const stored = q ? q.dtype : s.dtype;
      const dtype = DTYPES[stored];
      if (dtype === undefined || (!q && (dtype === DataType.UINT8 || dtype === DataType.UINT16))) fail(`weight '${s.name}' has unknown dtype '${stored}'`);
      let n: number;
      try {
        n = elementCount(s.shape);
      } catch {
        return fail(`weight '${s.name}' has an invalid shape [${s.shape.join(', ')}]`);
      }
      const bytes = storageBytes(dtype, n);
      if (offset + bytes > data.length) fail(`weight shards hold ${data.length} bytes, fewer than the manifest declares (weight '${s.name}' needs bytes ${offset}…${offset + bytes})`);
      const view = data.subarray(offset, offset + bytes);
      offset += bytes;
      weights.set(s.name, q && (dtype === DataType.UINT8 || dtype === DataType.UINT16) ? dequantized(s.name, s.shape, view, dtype, q) : Tensor.fromArray(s.name, dtype, s.shape, view));
    }
  }

  const g = new Graph(String((topology as Json).class_name ?? 'tfjs'));
  const model = new Model(g, 'tfjs-layers');
  model.path = file;
  model.producerName = String(json.generatedBy ?? '');
  model.producerVersion = String(json.convertedBy ?? '');
  model.opsetImports = [{ domain: 'tfjs', version: 1 }];
  buildGraph(g, (topology as Json).model_config ? ((topology as Json).model_config as Json) : (topology as Json), weights, fail);
  return model;
}

function dequantized(name: string, shape: number[], view: Uint8Array, dtype: DataType, q: NonNullable<WeightSpec['quantization']>): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const min = q.min ?? 0;
  const scale = q.scale ?? 1;
  return new Tensor(name, DataType.FLOAT, shape, {
    kind: 'lazy',
    load: () => {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dtype === DataType.UINT8 ? view[i] : view[2 * i] | (view[2 * i + 1] << 8);
        out[i] = v * scale + min;
      }
      return new Uint8Array(out.buffer);
    },
  });
}

function buildGraph(g: Graph, topo: Json, weights: Map<string, Tensor>, fail: (why: string) => never): void {
  const cls = topo.class_name as string | undefined;
  const config = (topo.config ?? {}) as Json;
  const layers = (Array.isArray(config) ? config : (config.layers as Json[] | undefined)) ?? [];
  if (!Array.isArray(layers)) fail('modelTopology has no layers');
  const weightsOf = (layerName: string) => [...weights.keys()].filter((k) => k.startsWith(`${layerName}/`) || k === layerName);
  const shapeOf = (c: Json): Dim[] | null => {
    const s = (c.batch_input_shape ?? c.batch_shape) as Array<number | null> | undefined;
    return Array.isArray(s) ? s.map((d, i) => (d === null ? (i === 0 ? 'batch' : null) : d)) : null;
  };
  const addInput = (name: string, c: Json) => g.inputs.push({ name, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: shapeOf(c) } });
  const addLayer = (l: Json, inputs: string[]) => {
    const c = (l.config ?? {}) as Json;
    const name = String(c.name ?? l.name ?? `layer${g.nodes.length}`);
    const node = new Node(String(l.class_name ?? 'Unknown'), [...inputs, ...weightsOf(name)], [`${name}:0`], name);
    node.domain = 'tfjs';
    for (const [k, v] of Object.entries(c)) {
      if (typeof v === 'string') node.setString(k, v);
      else if (typeof v === 'number' && Number.isInteger(v)) node.setInt(k, v);
      else if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) node.setInts(k, v as number[]);
    }
    g.nodes.push(node);
    return node.outputs[0];
  };
  if (cls === 'Sequential' || Array.isArray(config)) {
    let cur = 'input';
    const first = layers[0] as Json | undefined;
    const firstCfg = (first?.config ?? {}) as Json;
    addInput(cur, firstCfg);
    for (const l of layers) {
      if ((l as Json).class_name === 'InputLayer') continue;
      cur = addLayer(l as Json, [cur]);
    }
    g.outputs.push({ name: cur });
  } else {
    // Functional: inbound_nodes in Keras 2 ([[name, node, tensor, kwargs]…]) or Keras 3 ({args: [keras tensors]}) style.
    for (const l of layers as Json[]) {
      const c = (l.config ?? {}) as Json;
      const name = String(l.name ?? c.name);
      if (l.class_name === 'InputLayer') {
        addInput(`${name}:0`, c);
        continue;
      }
      const inbound = (l.inbound_nodes as unknown[] | undefined) ?? [];
      const sources: string[] = [];
      const visit = (x: unknown) => {
        if (Array.isArray(x) && typeof x[0] === 'string' && typeof x[1] === 'number') sources.push(`${x[0]}:0`);
        else if (x && typeof x === 'object' && !Array.isArray(x)) {
          const hist = ((x as Json).config as Json | undefined)?.keras_history;
          if (Array.isArray(hist) && typeof hist[0] === 'string') sources.push(`${hist[0]}:0`);
          else Object.values(x as Json).forEach(visit);
        } else if (Array.isArray(x)) x.forEach(visit);
      };
      if (inbound.length) visit(inbound[0]);
      addLayer({ ...l, config: { ...c, name } }, sources);
    }
    const outs = (config.output_layers as unknown[] | undefined) ?? [];
    for (const o of outs) {
      const n = Array.isArray(o) ? o[0] : undefined;
      if (typeof n === 'string') g.outputs.push({ name: `${n}:0` });
    }
  }
  // All weights are initializers (ones no layer claims still count towards the bytes).
  for (const [k, t] of weights) g.initializers.set(k, t);
}

export const tfjsLayersFormat: FormatPlugin = {
  id: 'tfjs-layers',
  extensions: ['.json'],
  match: (head) => looksLikeTfjs(head),
  open: readTfjs,
};

