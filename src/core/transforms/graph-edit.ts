import { DataType } from '../ir/dtype';
import { Node, type Graph } from '../ir/graph';
import { Tensor, type NumericArray } from '../ir/tensor';
import { pushAll } from '../util/arrays';

export { cloneGraphShallow, cloneModel } from '../ir/clone';

/**
 * Small, safe graph edits shared by transforms: fresh names, new initializers, new nodes,
 * and rewiring consumers.
 */
export class GraphEditor {
  private used = new Set<string>();

  constructor(readonly graph: Graph) {
    for (const i of graph.inputs) this.used.add(i.name);
    for (const o of graph.outputs) this.used.add(o.name);
    for (const k of graph.initializers.keys()) this.used.add(k);
    for (const n of graph.nodes) {
      if (n.name) this.used.add(n.name);
      for (const o of n.outputs) this.used.add(o);
      for (const i of n.inputs) this.used.add(i);
    }
  }

  /** A name no value, initializer or node uses yet. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  initializer(base: string, dtype: DataType, dims: number[], data: NumericArray | Uint8Array): string {
    const name = this.fresh(base);
    this.graph.initializers.set(name, Tensor.fromArray(name, dtype, dims, data));
    return name;
  }

  scalar(base: string, value: number, dtype = DataType.FLOAT): string {
    const data = dtype === DataType.FLOAT ? Float32Array.of(value) : dtype === DataType.INT8 ? Int8Array.of(value) : dtype === DataType.UINT8 ? Uint8Array.of(value) : Int32Array.of(value);
    return this.initializer(base, dtype, [], data);
  }

  /** Creates a node with fresh output names; it is not inserted (see `insertAfter`/`append`). */
  node(op: string, inputs: string[], outBase: string[], domain = ''): Node {
    const n = new Node(op, inputs, outBase.map((b) => this.fresh(b)), this.fresh(`${outBase[0]}_${op}`));
    n.domain = domain;
    return n;
  }

  append(...nodes: Node[]): void {
    pushAll(this.graph.nodes, nodes);
  }

  /** Rewires every consumer of `from` (optionally only those in `only`) to read `to`. */
  rewire(from: string, to: string, only?: (n: Node) => boolean): void {
    for (const n of this.graph.nodes) {
      if (only && !only(n)) continue;
      n.inputs = n.inputs.map((i) => (i === from ? to : i));
    }
  }

  /** Removes initializers no node, graph output or subgraph refers to any more. */
  dropUnusedInitializers(): void {
    const used = new Set<string>(this.graph.outputs.map((o) => o.name));
    const visit = (g: Graph) => {
      for (const n of g.nodes) {
        for (const i of n.inputs) used.add(i);
        n.subgraphs().forEach(visit);
      }
    };
    visit(this.graph);
    const dropped = new Set([...this.graph.initializers.keys()].filter((k) => !used.has(k)));
    for (const k of dropped) this.graph.initializers.delete(k);
    // Old models (IR < 4) also list initializers as graph inputs: those must go too.
    this.graph.inputs = this.graph.inputs.filter((i) => !dropped.has(i.name));
  }

  /** Restores a topological order after insertions. */
  sort(): void {
    this.graph.nodes = this.graph.topoOrder();
  }
}
