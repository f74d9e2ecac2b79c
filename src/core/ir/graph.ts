import { DataType, type Int64 } from './dtype';
import { Tensor } from './tensor';
import { pushAll } from '../util/arrays';

/**
 * The model IR. Format plugins read into it and write out of it; analysis and
 * transforms only ever see these nouns.
 *
 * A value is identified by its name (as in ONNX). The graph keeps nodes in a list and
 * derives producer/consumer indexes on demand (`index()`), so transforms can edit the
 * lists freely and ask for a fresh index afterwards.
 */

/** A dimension: a fixed size, a symbolic name, or unknown (null). */
export type Dim = number | string | null;

export interface TensorTypeInfo {
  kind: 'tensor';
  dtype: DataType;
  /** null when even the rank is unknown. */
  shape: Dim[] | null;
  /** Per-dim denotations etc. that we do not model, kept for round trips. */
  sparse?: boolean;
}

/** A type the IR does not model (sequence, map, optional): kept as encoded bytes. */
export interface OpaqueTypeInfo {
  kind: 'opaque';
  description: string;
  encoded: Uint8Array;
}

export type TypeInfo = TensorTypeInfo | OpaqueTypeInfo;

export interface ValueInfo {
  name: string;
  type?: TypeInfo;
  docString?: string;
  /** Fields of the source format that the IR does not model, re-emitted verbatim. */
  extra?: Uint8Array[];
}

export enum AttrType {
  UNDEFINED = 0,
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  GRAPH = 5,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
  TENSORS = 9,
  GRAPHS = 10,
  SPARSE_TENSOR = 11,
  SPARSE_TENSORS = 12,
  TYPE_PROTO = 13,
  TYPE_PROTOS = 14,
}

export type AttrValue =
  | { type: AttrType.FLOAT; value: number }
  | { type: AttrType.INT; value: Int64 }
  | { type: AttrType.STRING; value: Uint8Array }
  | { type: AttrType.TENSOR; value: Tensor }
  | { type: AttrType.GRAPH; value: Graph }
  | { type: AttrType.FLOATS; value: number[] }
  | { type: AttrType.INTS; value: Int64[] }
  | { type: AttrType.STRINGS; value: Uint8Array[] }
  | { type: AttrType.TENSORS; value: Tensor[] }
  | { type: AttrType.GRAPHS; value: Graph[] }
  /** Types the IR keeps opaque (sparse tensors, type protos, or a reference-only attribute). */
  | { type: AttrType.UNDEFINED | AttrType.SPARSE_TENSOR | AttrType.SPARSE_TENSORS | AttrType.TYPE_PROTO | AttrType.TYPE_PROTOS; value: undefined };

export type Attribute = AttrValue & {
  name: string;
  docString?: string;
  /** For attributes inside functions that refer to a parent attribute. */
  refAttrName?: string;
  extra?: Uint8Array[];
};

export interface SparseTensor {
  values: Tensor;
  indices: Tensor;
  dims: number[];
}

export interface OpsetId {
  domain: string;
  version: number;
}

export class Node {
  attributes = new Map<string, Attribute>();
  docString = '';
  domain = '';
  overload = '';
  metadata: Array<[string, string]> = [];
  extra: Uint8Array[] = [];

  constructor(
    public opType: string,
    public inputs: string[],
    public outputs: string[],
    public name = '',
  ) {}

  attr(name: string): Attribute | undefined {
    return this.attributes.get(name);
  }

  int(name: string, dflt: number): number {
    const a = this.attributes.get(name);
    return a?.type === AttrType.INT ? Number(a.value) : dflt;
  }

  ints(name: string): number[] | undefined {
    const a = this.attributes.get(name);
    return a?.type === AttrType.INTS ? a.value.map(Number) : undefined;
  }

  float(name: string, dflt: number): number {
    const a = this.attributes.get(name);
    return a?.type === AttrType.FLOAT ? a.value : dflt;
  }

  str(name: string, dflt: string): string {
    const a = this.attributes.get(name);
    return a?.type === AttrType.STRING ? new TextDecoder().decode(a.value) : dflt;
  }

  setInt(name: string, value: number): void {
    this.attributes.set(name, { name, type: AttrType.INT, value });
  }

  setInts(name: string, value: number[]): void {
    this.attributes.set(name, { name, type: AttrType.INTS, value });
  }

  setFloat(name: string, value: number): void {
    this.attributes.set(name, { name, type: AttrType.FLOAT, value });
  }

  setString(name: string, value: string): void {
    this.attributes.set(name, { name, type: AttrType.STRING, value: new TextEncoder().encode(value) });
  }

  /** Subgraphs held in attributes (If/Loop/Scan bodies). */
  subgraphs(): Graph[] {
    const r: Graph[] = [];
    for (const a of this.attributes.values()) {
      if (a.type === AttrType.GRAPH) r.push(a.value);
      else if (a.type === AttrType.GRAPHS) pushAll(r, a.value);
    }
    return r;
  }

  /** A display name: the node's name, or op type plus first output. */
  get label(): string {
    return this.name || `${this.opType}(${this.outputs[0] ?? ''})`;
  }
}

export interface GraphIndex {
  producer: Map<string, Node>;
  consumers: Map<string, Node[]>;
}

export class Graph {
  nodes: Node[] = [];
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  valueInfo = new Map<string, ValueInfo>();
  initializers = new Map<string, Tensor>();
  sparseInitializers: SparseTensor[] = [];
  docString = '';
  metadata: Array<[string, string]> = [];
  /** Fields of the source format the IR does not model (e.g. quantization annotations). */
  extra: Uint8Array[] = [];

  constructor(public name = '') {}

  /**
   * Producer and consumers of every value. A node with subgraphs (If/Loop/Scan) also
   * consumes the outer-scope values its subgraphs read (at any depth), so a value used
   * only inside a branch still has a consumer here.
   */
  index(): GraphIndex {
    const producer = new Map<string, Node>();
    const consumers = new Map<string, Node[]>();
    for (const n of this.nodes) {
      for (const o of n.outputs) if (o) producer.set(o, n);
      for (const i of inputsWithOuterRefs(n)) {
        if (!i) continue;
        let list = consumers.get(i);
        if (!list) consumers.set(i, (list = []));
        if (!list.includes(n)) list.push(n);
      }
    }
    return { producer, consumers };
  }

  /** Nodes in a topological order (stable for graphs that are already ordered). */
  topoOrder(): Node[] {
    const { producer } = this.index();
    const state = new Map<Node, 1 | 2>();
    const order: Node[] = [];
    const deps = new Map<Node, string[]>();
    const depsOf = (n: Node) => {
      let d = deps.get(n);
      if (!d) deps.set(n, (d = inputsWithOuterRefs(n)));
      return d;
    };
    const visit = (root: Node) => {
      // Iterative DFS so deep graphs cannot overflow the stack.
      const stack: Array<[Node, number]> = [[root, 0]];
      while (stack.length) {
        const top = stack[stack.length - 1];
        const [n, i] = top;
        if (i === 0) {
          if (state.get(n) === 2) {
            stack.pop();
            continue;
          }
          state.set(n, 1);
        }
        const ins = depsOf(n);
        if (i < ins.length) {
          top[1]++;
          const p = producer.get(ins[i]);
          if (p && p !== n && !state.has(p)) stack.push([p, 0]);
          continue;
        }
        stack.pop();
        if (state.get(n) !== 2) {
          state.set(n, 2);
          order.push(n);
        }
      }
    };
    for (const n of this.nodes) visit(n);
    return order;
  }

  isInitializer(name: string): boolean {
    return this.initializers.has(name);
  }
}

/**
 * A source format's own document, kept beside the IR by formats whose writers regenerate
 * it (the TF.js topology JSON). Cloning a model clones it, so transforms may edit it.
 */
export interface FormatSource {
  readonly kind: string;
  clone(): FormatSource;
}

export type ModelFormat = 'onnx' | 'tfjs-layers' | 'tfjs-graph' | 'tflite' | 'safetensors';

export class Model {
  irVersion: Int64 = 8;
  opsetImports: OpsetId[] = [{ domain: '', version: 17 }];
  producerName = '';
  producerVersion = '';
  domain = '';
  modelVersion: Int64 = 0;
  docString = '';
  metadata: Array<[string, string]> = [];
  /** Model-level fields the IR keeps opaque (functions, training info, unknown fields). */
  extra: Uint8Array[] = [];
  /** The file the model was read from, when it came from a file. */
  path?: string;
  /** Every file the model was read from (model, external data, TF.js shards); set by `openModel`, kept by clones. Writers refuse to overwrite them. */
  inputFiles?: string[];
  /** The source format's own document, for writers that regenerate it. */
  source?: FormatSource;

  constructor(
    public graph: Graph,
    public format: ModelFormat = 'onnx',
  ) {}

  opset(domain = ''): number | undefined {
    const d = domain === 'ai.onnx' ? '' : domain;
    return this.opsetImports.find((o) => (o.domain === 'ai.onnx' ? '' : o.domain) === d)?.version;
  }
}

/**
 * Values of the enclosing scopes that a node's subgraphs read (at any depth): names used
 * by their nodes (or returned as their outputs) that the subgraph itself does not define.
 * Empty for nodes without subgraphs. ONNX IR spec, "Names Within a Graph" (outer scope).
 */
export function outerRefs(node: Node): string[] {
  const out = new Set<string>();
  for (const sg of node.subgraphs()) for (const r of graphOuterRefs(sg)) out.add(r);
  return [...out];
}

function graphOuterRefs(g: Graph): Set<string> {
  const defined = new Set<string>([...g.initializers.keys(), ...g.inputs.map((i) => i.name)]);
  for (const n of g.nodes) for (const o of n.outputs) if (o) defined.add(o);
  const refs = new Set<string>();
  const use = (name: string) => {
    if (name && !defined.has(name)) refs.add(name);
  };
  for (const n of g.nodes) {
    n.inputs.forEach(use);
    for (const sg of n.subgraphs()) graphOuterRefs(sg).forEach(use);
  }
  g.outputs.forEach((o) => use(o.name));
  return refs;
}

/** A node's explicit inputs followed by the outer-scope values its subgraphs read. */
export function inputsWithOuterRefs(node: Node): string[] {
  if (!node.attributes.size) return node.inputs;
  const refs = outerRefs(node);
  return refs.length ? [...node.inputs, ...refs.filter((r) => !node.inputs.includes(r))] : node.inputs;
}

/** Every graph in the model, the main one first, subgraphs after (depth first). */
export function allGraphs(g: Graph): Graph[] {
  const out: Graph[] = [];
  const stack = [g];
  while (stack.length) {
    const x = stack.pop()!;
    out.push(x);
    for (const n of x.nodes) pushAll(stack, n.subgraphs());
  }
  return out;
}
