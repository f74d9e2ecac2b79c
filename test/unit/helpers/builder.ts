import { DataType } from '../../../src/core/ir/dtype';
import { AttrType, Graph, Model, Node, type Dim, type Attribute } from '../../../src/core/ir/graph';
import { Tensor, type NumericArray } from '../../../src/core/ir/tensor';
import { onnxToBytes } from '../../../src/core/formats/onnx';

/** Deterministic PRNG (mulberry32) so generated weights are the same on every run. */
export function rng(seed = 1): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomFloats(n: number, seed = 1, scale = 0.5): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

type AttrInput = number | number[] | string | Tensor | Graph | { floats: number[] } | { float: number };

/** Builds small ONNX models in tests: `b.input(...); b.conv(...); b.output(...)`. */
export class ModelBuilder {
  readonly graph = new Graph('test');
  readonly model = new Model(this.graph);
  private seed = 1;
  private counter = 0;

  constructor(opset = 17) {
    this.model.opsetImports = [{ domain: '', version: opset }];
    this.model.irVersion = 8;
    this.model.producerName = 'model-compressor-tests';
  }

  input(name: string, shape: Dim[], dtype = DataType.FLOAT): string {
    this.graph.inputs.push({ name, type: { kind: 'tensor', dtype, shape } });
    return name;
  }

  output(name: string, dtype = DataType.FLOAT, shape: Dim[] | null = null): string {
    this.graph.outputs.push({ name, type: { kind: 'tensor', dtype, shape } });
    return name;
  }

  init(name: string, dims: number[], data?: NumericArray, dtype = DataType.FLOAT): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const d = data ?? randomFloats(n, this.seed++);
    this.graph.initializers.set(name, Tensor.fromArray(name, dtype, dims, d));
    return name;
  }

  ints(name: string, values: number[]): string {
    return this.init(name, [values.length], BigInt64Array.from(values.map(BigInt)), DataType.INT64);
  }

  node(op: string, inputs: string[], attrs: Record<string, AttrInput> = {}, nOut = 1, name?: string): string[] {
    const id = this.counter++;
    const outs = Array.from({ length: nOut }, (_, i) => `${op.toLowerCase()}${id}${nOut > 1 ? `_${i}` : ''}`);
    const n = new Node(op, inputs, outs, name ?? `${op}_${id}`);
    for (const [k, v] of Object.entries(attrs)) n.attributes.set(k, toAttr(k, v));
    this.graph.nodes.push(n);
    return outs;
  }

  conv(x: string, cin: number, cout: number, k: number, opts: { group?: number; stride?: number; pad?: number; bias?: boolean; dilation?: number } = {}): string {
    const g = opts.group ?? 1;
    const w = this.init(`w${this.counter}`, [cout, cin / g, k, k]);
    const inputs = [x, w];
    if (opts.bias ?? true) inputs.push(this.init(`b${this.counter}`, [cout]));
    const p = opts.pad ?? Math.floor(k / 2);
    const attrs: Record<string, AttrInput> = { kernel_shape: [k, k], pads: [p, p, p, p], strides: [opts.stride ?? 1, opts.stride ?? 1], group: g };
    if (opts.dilation) attrs.dilations = [opts.dilation, opts.dilation];
    return this.node('Conv', inputs, attrs)[0];
  }

  gemm(x: string, k: number, n: number): string {
    const w = this.init(`w${this.counter}`, [n, k]);
    const b = this.init(`b${this.counter}`, [n]);
    return this.node('Gemm', [x, w, b], { transB: 1 })[0];
  }

  /** Renames the last node's first output to a graph output name. */
  markOutput(value: string, name = 'output', dtype = DataType.FLOAT): string {
    for (const n of this.graph.nodes) n.outputs = n.outputs.map((o) => (o === value ? name : o));
    for (const n of this.graph.nodes) n.inputs = n.inputs.map((i) => (i === value ? name : i));
    return this.output(name, dtype);
  }

  build(): Model {
    return this.model;
  }

  bytes(): Uint8Array {
    return onnxToBytes(this.model);
  }
}

function toAttr(name: string, v: AttrInput): Attribute {
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AttrType.INT, value: v } : { name, type: AttrType.FLOAT, value: v };
  if (typeof v === 'string') return { name, type: AttrType.STRING, value: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, value: v };
  if (v instanceof Tensor) return { name, type: AttrType.TENSOR, value: v };
  if (v instanceof Graph) return { name, type: AttrType.GRAPH, value: v };
  if ('floats' in v) return { name, type: AttrType.FLOATS, value: v.floats };
  return { name, type: AttrType.FLOAT, value: v.float };
}

/** Wraps a hand-encoded GraphProto into a minimal ModelProto (IR 8, opset 13). */
export function modelProto(graph: import('../../../src/core/formats/protobuf').ProtoWriter): Uint8Array {
  const { ProtoWriter } = require('../../../src/core/formats/protobuf') as typeof import('../../../src/core/formats/protobuf');
  return new ProtoWriter().varintField(1, 8).messageField(7, graph).messageField(8, new ProtoWriter().varintField(2, 13)).toBytes();
}
