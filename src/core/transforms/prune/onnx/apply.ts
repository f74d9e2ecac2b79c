import { DataType } from '../../../ir/dtype';
import type { Model, Node } from '../../../ir/graph';
import type { Tensor } from '../../../ir/tensor';
import { GraphEditor, cloneModel } from '../../graph-edit';
import { memberEdit, type PruneEdits } from './rules';
import type { Group } from './types';
import './ops';
import { removeAlongAxis } from '../shrink';

/**
 * Applies a pruning plan to a copy of the model. Removals are collected per (node, input,
 * axis) in the original coordinates and applied once, so a consumer that reads channels of
 * several groups (after a Concat) and tensors shared between nodes are handled correctly:
 * every edited input gets a fresh initializer; shared originals are never changed. How each
 * member is edited is its kind's entry in the per-op registry (rules.ts, ops/).
 */

export interface GroupPlan {
  group: Group;
  /** Group channels to remove (indices into the group's channels). */
  remove: number[];
}

export function applyPruning(model: Model, plans: GroupPlan[]): Model {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const index = new Map(model.graph.nodes.map((n, i) => [n, i]));
  const copyOf = (n: Node) => g.nodes[index.get(n)!];
  /** One weight may lose rows (its own output channels) and columns (its inputs') at once. */
  type Edit = { node: Node; input: number; tensor: Tensor; axes: Map<number, Set<number>> };
  const weightEdits = new Map<string, Edit>();
  type NodeEdit = { node: Node; state: unknown; finish: (state: unknown, copy: Node, ed: GraphEditor, source: Model) => void };
  const nodeEdits = new Map<string, NodeEdit>();
  const edits: PruneEdits = {
    weight(node, input, tensor, axis, positions) {
      const key = `${index.get(node)}:${input}`;
      let e = weightEdits.get(key);
      if (!e) weightEdits.set(key, (e = { node, input, tensor, axes: new Map() }));
      let set = e.axes.get(axis);
      if (!set) e.axes.set(axis, (set = new Set()));
      for (const p of positions) set.add(p);
    },
    perNode(node, kind, init, finish) {
      const key = `${kind}:${index.get(node)}`;
      let e = nodeEdits.get(key);
      if (!e) nodeEdits.set(key, (e = { node, state: init(), finish: finish as NodeEdit['finish'] }));
      return e.state as ReturnType<typeof init>;
    },
  };
  for (const { group, remove } of plans) {
    if (!remove.length) continue;
    for (const m of group.members) memberEdit(m.kind)(m, group, remove, edits);
  }
  for (const e of weightEdits.values()) {
    const n = copyOf(e.node);
    let t = { dims: [...e.tensor.dims], data: e.tensor.toFloat32() };
    for (const [axis, positions] of e.axes) t = removeAlongAxis(t, axis, positions);
    n.inputs[e.input] = ed.initializer(`${e.tensor.name || n.inputs[e.input]}_pruned`, DataType.FLOAT, t.dims, t.data);
  }
  for (const e of nodeEdits.values()) e.finish(e.state, copyOf(e.node), ed, model);
  g.valueInfo.clear(); // intermediate shapes changed
  ed.dropUnusedInitializers();
  return out;
}
