import { DataType } from '../ir/dtype';
import { AttrType, Node, type Attribute, type Graph } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import type { AttrSpec } from './grad/registry';

/**
 * The node emitter the training graph is built with (autodiff.ts, losses.ts, the gradient
 * rules): nodes and constants appended to a graph under fresh names (`train/<hint>_<n>`).
 */

/** A float32 zero, the `value` of ConstantOfShape nodes. */
export const ZERO = Tensor.fromArray('value', DataType.FLOAT, [1], new Float32Array([0]));

export function toAttribute(name: string, v: AttrSpec): Attribute {
  if (typeof v === 'number') return { name, type: AttrType.INT, value: v };
  if (typeof v === 'string') return { name, type: AttrType.STRING, value: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, value: v };
  if (v instanceof Tensor) return { name, type: AttrType.TENSOR, value: v };
  if ('fs' in v) return { name, type: AttrType.FLOATS, value: v.fs };
  return { name, type: AttrType.FLOAT, value: v.f };
}

/** Emits nodes and constants into a graph under fresh names. */
export class Emitter {
  private counter = 0;
  private readonly used: Set<string>;
  private readonly shapes = new Map<string, string>();

  constructor(readonly graph: Graph) {
    this.used = new Set<string>();
    for (const n of graph.nodes) for (const o of n.outputs) this.used.add(o);
    for (const i of graph.inputs) this.used.add(i.name);
    for (const k of graph.initializers.keys()) this.used.add(k);
  }

  fresh(hint: string): string {
    let name: string;
    do name = `train/${hint}_${this.counter++}`;
    while (this.used.has(name));
    this.used.add(name);
    return name;
  }

  emit(op: string, inputs: string[], attrs: Record<string, AttrSpec> = {}, nOut = 1): string[] {
    const outs = Array.from({ length: nOut }, () => this.fresh(op));
    const n = new Node(op, inputs, outs, outs[0]);
    for (const [k, v] of Object.entries(attrs)) n.attributes.set(k, toAttribute(k, v));
    this.graph.nodes.push(n);
    return outs;
  }

  /** Emits a one-output node whose output has a name chosen by the caller (from `fresh`). */
  emitNamed(op: string, inputs: string[], output: string): void {
    this.graph.nodes.push(new Node(op, inputs, [output], output));
  }

  op(op: string, inputs: string[], attrs: Record<string, AttrSpec> = {}): string {
    return this.emit(op, inputs, attrs)[0];
  }

  ints(values: number[]): string {
    const name = this.fresh('const');
    this.graph.initializers.set(name, Tensor.fromArray(name, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt))));
    return name;
  }

  /** An int64 scalar constant. */
  intScalar(value: number): string {
    const name = this.fresh('const');
    this.graph.initializers.set(name, Tensor.fromArray(name, DataType.INT64, [], BigInt64Array.of(BigInt(value))));
    return name;
  }

  /** A float32 1-D constant. */
  floats(values: number[]): string {
    const name = this.fresh('const');
    this.graph.initializers.set(name, Tensor.fromArray(name, DataType.FLOAT, [values.length], Float32Array.from(values)));
    return name;
  }

  float(value: number, dims: number[] = []): string {
    const name = this.fresh('const');
    const n = dims.reduce((a, b) => a * b, 1);
    this.graph.initializers.set(name, Tensor.fromArray(name, DataType.FLOAT, dims, new Float32Array(n).fill(value)));
    return name;
  }

  shapeOf(name: string): string {
    let s = this.shapes.get(name);
    if (!s) this.shapes.set(name, (s = this.op('Shape', [name])));
    return s;
  }

  zerosLike(name: string): string {
    return this.op('ConstantOfShape', [this.shapeOf(name)], { value: ZERO });
  }
}

