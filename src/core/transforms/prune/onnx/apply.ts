import { DataType } from '../../../ir/dtype';
import type { Model, Node } from '../../../ir/graph';
import { Tensor } from '../../../ir/tensor';
import { GraphEditor, cloneModel } from '../../graph-edit';
import { removedPositions, type Group } from './dependency';

/**
 * Applies a pruning plan to a copy of the model. Removals are collected per (node, input,
 * axis) in the original coordinates and applied once, so a consumer that reads channels of
 * several groups (after a Concat) and tensors shared between nodes are handled correctly:
 * every edited input gets a fresh initializer; shared originals are never changed.
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
  const cloneOf = (n: Node) => g.nodes[index.get(n)!];
  /** One weight may lose rows (its own output channels) and columns (its inputs') at once. */
  type Edit = { node: Node; input: number; tensor: Tensor; axes: Map<number, Set<number>> };
  const edits = new Map<string, Edit>();
  const edit = (node: Node, input: number, tensor: Tensor, axis: number, positions: number[]) => {
    const key = `${index.get(node)}:${input}`;
    let e = edits.get(key);
    if (!e) edits.set(key, (e = { node, input, tensor, axes: new Map() }));
    let set = e.axes.get(axis);
    if (!set) e.axes.set(axis, (set = new Set()));
    for (const p of positions) set.add(p);
  };
  const groupCounts = new Map<Node, number>();
  const reshapes = new Map<Node, { shape: Tensor; removed: number }>();
  /** Removed positions (input channel coordinates) per Split/Slice node. */
  const cuts = new Map<Node, { member: Extract<GroupPlan['group']['members'][number], { kind: 'split' | 'slice' }>; removed: Set<number> }>();
  for (const { group, remove } of plans) {
    if (!remove.length) continue;
    for (const m of group.members) {
      switch (m.kind) {
        case 'producer':
          edit(m.node, 1, m.weight, m.axis, remove);
          if (m.bias) edit(m.node, 2, m.bias, 0, remove);
          break;
        case 'params':
          for (const t of m.tensors) edit(m.node, t.input, t.tensor, t.axis, remove);
          if (m.depthwise) groupCounts.set(m.node, remove.length);
          break;
        case 'consumer':
          edit(m.node, 1, m.weight, m.axis, removedPositions(m.layout, group.id, remove));
          break;
        case 'split':
        case 'slice': {
          const c = cuts.get(m.node) ?? { member: m, removed: new Set<number>() };
          for (const pos of removedPositions(m.layout, group.id, remove)) c.removed.add(pos);
          cuts.set(m.node, c);
          break;
        }
        case 'reshape': {
          const r = reshapes.get(m.node) ?? { shape: m.shape, removed: 0 };
          r.removed += removedPositions(m.layout, group.id, remove).length;
          reshapes.set(m.node, r);
          break;
        }
      }
    }
  }
  for (const e of edits.values()) {
    const n = cloneOf(e.node);
    let t = { dims: [...e.tensor.dims], data: e.tensor.toFloat32() };
    for (const [axis, positions] of e.axes) t = removeAlongAxis(t, axis, positions);
    n.inputs[e.input] = ed.initializer(`${e.tensor.name || n.inputs[e.input]}_pruned`, DataType.FLOAT, t.dims, t.data);
  }
  for (const [node, removed] of groupCounts) {
    const n = cloneOf(node);
    n.setInt('group', n.int('group', 1) - removed);
  }
  for (const [node, r] of reshapes) {
    const n = cloneOf(node);
    const v = r.shape.toNumbers();
    v[1] -= r.removed;
    n.inputs[1] = ed.initializer(`${n.inputs[1]}_pruned`, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt)));
  }
  for (const [node, { member, removed }] of cuts) {
    const n = cloneOf(node);
    const before = (p: number) => [...removed].filter((r) => r < p).length;
    if (member.kind === 'split') {
      const sizes = member.bounds.slice(1).map((b, k) => b - member.bounds[k] - (before(b) - before(member.bounds[k])));
      if (n.attr('split')) n.setInts('split', sizes);
      else if (n.inputs[1]) n.inputs[1] = ed.initializer(`${n.inputs[1]}_pruned`, DataType.INT64, [sizes.length], BigInt64Array.from(sizes.map(BigInt)));
      else {
        n.inputs[1] = ed.initializer(`${n.outputs[0]}_split_sizes`, DataType.INT64, [sizes.length], BigInt64Array.from(sizes.map(BigInt)));
      }
    } else {
      const rewrite = (input: number, value: number) => {
        const t = cloneOf(node).inputs[input];
        const v = constantValues(model, node.inputs[input]);
        v[member.axisIndex] = value;
        n.inputs[input] = ed.initializer(`${t}_pruned`, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt)));
      };
      rewrite(1, member.start - before(member.start));
      rewrite(2, member.end - before(member.end));
    }
  }
  g.valueInfo.clear(); // intermediate shapes changed
  ed.dropUnusedInitializers();
  return out;
}

function constantValues(model: Model, name: string): number[] {
  const t = model.graph.initializers.get(name) ?? model.graph.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name)?.attr('value');
  if (t instanceof Tensor) return t.toNumbers();
  if (t && 'value' in t && t.value instanceof Tensor) return t.value.toNumbers();
  throw new Error(`Slice bound '${name}' is not a constant`);
}

export function removeAlongAxis(t: { dims: number[]; data: Float32Array }, axis: number, positions: Set<number>): { dims: number[]; data: Float32Array } {
  const dims = [...t.dims];
  const src = t.data;
  const n = dims[axis];
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!positions.has(i)) keep.push(i);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * keep.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const k of keep) {
      const base = (a * n + k) * inner;
      out.set(src.subarray(base, base + inner), o);
      o += inner;
    }
  }
  dims[axis] = keep.length;
  return { dims, data: out };
}

/**
 * How many of `size` channels to remove at `ratio`, keeping the count a multiple of `roundTo`
 * for groups of at least 2× that size (CPU kernels work in blocks of 8 channels), and at
 * least one channel.
 */
export function removeCount(size: number, ratio: number, roundTo = 8): number {
  let keep = size - Math.floor(size * ratio + 1e-9);
  if (roundTo > 1 && size >= 2 * roundTo) keep = Math.min(size, Math.max(roundTo, Math.round(keep / roundTo) * roundTo));
  return Math.max(0, Math.min(size - 1, size - keep));
}
