import * as fs from 'fs';
import * as path from 'path';
import { ModelError } from '../../errors';
import type { Model } from '../../ir/graph';
import { allGraphs } from '../../ir/graph';
import type { Tensor } from '../../ir/tensor';
import { AtomicFile, assertNotInput } from '../../util/atomic-write';
import { ProtoReader, WireError } from '../protobuf';
import type { FormatPlugin, SaveOptions } from '../format';
import { decodeModel, describeDecodeError, type DecodeContext } from './decode';
import { encodeModel, type ExternalPlan } from './encode';
import { pushAll } from '../../util/arrays';

/** Protobuf messages over 2 GiB cannot be parsed by most readers (ORT included). */
const PROTO_LIMIT = 2 ** 31 - 1;
/** Leave headroom for the graph structure when deciding to go external automatically. */
const AUTO_EXTERNAL_AT = 1.8 * 2 ** 30;

/** ModelProto field numbers and their wire types, for content sniffing. */
const MODEL_FIELDS: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2 };

/**
 * Content sniffing: the file must begin with a sequence of well-formed ModelProto fields
 * (known field numbers with the right wire types) and contain ir_version or a graph.
 */
function looksLikeOnnx(head: Uint8Array, fileSize: number): boolean {
  const r = new ProtoReader(head);
  let seen = 0;
  let key = false;
  try {
    while (!r.done && seen < 16) {
      const start = r.pos;
      const [f, wt] = r.tag();
      if (MODEL_FIELDS[f] !== wt) return false;
      if (f === 1 || f === 7) key = true;
      seen++;
      if (wt === 2) {
        const len = r.uint32();
        if (len > fileSize - r.pos) return false;
        if (r.pos + len > head.length) return key; // runs past the sniffed prefix: fine
        r.pos += len;
      } else r.skip(wt, start);
    }
  } catch (e) {
    if (e instanceof WireError) return key && seen > 0;
    throw e;
  }
  return key;
}

export function readOnnxBytes(buf: Uint8Array, file: string, dir?: string): Model {
  const ctx: DecodeContext = { dir, externalSizes: new Map() };
  try {
    const m = decodeModel(buf, ctx);
    m.path = file;
    return m;
  } catch (e) {
    const msg = describeDecodeError(e);
    if (msg) throw new ModelError(file, msg);
    if (e instanceof RangeError) throw new ModelError(file, `not a valid ONNX model (${e.message})`);
    throw e;
  }
}

/** Every tensor in the model, subgraphs and Constant nodes included. */
export function allTensors(model: Model): Tensor[] {
  const out: Tensor[] = [];
  for (const g of allGraphs(model.graph)) {
    pushAll(out, g.initializers.values());
    for (const s of g.sparseInitializers) out.push(s.values, s.indices);
    for (const n of g.nodes) {
      for (const a of n.attributes.values()) {
        if (a.type === 4) out.push(a.value);
        else if (a.type === 9) pushAll(out, a.value);
      }
    }
  }
  return out;
}

/** Serialises a model to one in-memory buffer (no external data). */
export function onnxToBytes(model: Model): Uint8Array {
  return encodeModel(model).toBytes();
}

export function saveOnnx(model: Model, output: string, opts: SaveOptions = {}): { bytes: number; externalBytes: number } {
  const tensors = allTensors(model);
  const externalFiles = new Set(tensors.map((t) => t.externalFile).filter((f): f is string => !!f));
  assertNotInput(output, [model.path, ...externalFiles]);

  const total = tensors.reduce((a, t) => a + t.byteLength, 0);
  const useExternal = opts.externalData === 'always' || (opts.externalData !== 'never' && total > (opts.autoExternalAt ?? AUTO_EXTERNAL_AT));
  let plan: ExternalPlan | undefined;
  if (useExternal) {
    const location = opts.externalLocation ?? `${path.basename(output)}.data`;
    if (path.basename(location) !== location) throw new ModelError(output, 'the external data location must be a plain file name');
    assertNotInput(path.join(path.dirname(output), location), [model.path, ...externalFiles]);
    plan = { location, threshold: opts.externalThreshold ?? 1024, entries: [], size: 0 };
  }
  const proto = encodeModel(model, plan);
  if (proto.length > PROTO_LIMIT) {
    throw new ModelError(output, `the model is ${proto.length} bytes, over protobuf's 2 GiB limit; save with external data`);
  }

  let dataFile: AtomicFile | undefined;
  const modelFile = new AtomicFile(output);
  try {
    if (plan) {
      dataFile = new AtomicFile(path.join(path.dirname(output), plan.location));
      const chunk = new Uint8Array(1 << 22);
      for (const { tensor, offset } of plan.entries) {
        dataFile.padTo(offset);
        const len = tensor.byteLength;
        // Zero-filled stretches become holes (see AtomicFile.writeSparse).
        if (tensor.sourceKind === 'external') {
          for (let o = 0; o < len; o += chunk.length) {
            const part = chunk.subarray(0, Math.min(chunk.length, len - o));
            tensor.readInto(o, part);
            dataFile.writeSparse(part);
          }
        } else {
          const bytes = tensor.bytes();
          for (let o = 0; o < len; o += chunk.length) dataFile.writeSparse(bytes.subarray(o, Math.min(len, o + chunk.length)));
        }
      }
    }
    for (const c of proto.finish()) modelFile.write(c);
    const bytes = modelFile.size;
    const externalBytes = dataFile?.size ?? 0;
    dataFile?.commit();
    modelFile.commit();
    return { bytes, externalBytes };
  } catch (e) {
    dataFile?.abort();
    modelFile.abort();
    throw e;
  }
}

export const onnxFormat: FormatPlugin = {
  id: 'onnx',
  extensions: ['.onnx'],
  match(head, fileSize) {
    return looksLikeOnnx(head, fileSize);
  },
  open(file) {
    const abs = path.resolve(file);
    const buf = fs.readFileSync(abs);
    let dir: string;
    try {
      dir = fs.realpathSync(path.dirname(abs));
    } catch {
      dir = path.dirname(abs);
    }
    return readOnnxBytes(buf, file, dir);
  },
  save: saveOnnx,
};
