import { DataType } from '../../../ir/dtype';
import { outerRefs, type Model } from '../../../ir/graph';
import { inferShapes } from '../../../ir/shape-inference';
import { constantResolver } from '../../quantize/registry';
import { pushAll } from '../../../util/arrays';
import { channelRule, type Tracer } from './rules';
import type { DependencyGraph, Group, Layout } from './types';
import './ops';

export { layoutSize, removedPositions } from './types';
export type { DependencyGraph, FixedSegment, Group, Layout, Member, Segment } from './types';

/**
 * The channel dependency graph: which tensor dimensions must shrink together when output
 * channels are removed.
 *
 * Every prunable producer (Conv with group 1, ConvTranspose, Gemm, MatMul with a constant
 * weight) starts a group of C channels. Its output's *layout* (a list of segments mapping
 * the tensor's channel axis to groups) is propagated forward, in graph order, through ops
 * that keep channels (activations, BatchNormalization, Dropout, pooling, Resize), depthwise
 * convs (input and output coupled), Concat (segments at offsets), Flatten/Reshape to
 * [N, C·H·W] (each channel becomes a block of features), and elementwise ops, where two
 * activations meeting (residual Add, squeeze-excitation Mul) merge their groups. Standard
 * convs and dense layers consume a layout (their input channels shrink) and start a new
 * group. Anything else that touches a layout (an unknown op, a graph output, a channel
 * Slice) marks the groups involved unsafe, with the reason; those are never pruned.
 *
 * How each op propagates channels is its entry in the per-op registry (rules.ts, one file per
 * op family under ops/); this function walks the graph and keeps the groups.
 */
export function buildDependencyGraph(model: Model): DependencyGraph {
  const g = model.graph;
  const constOf = constantResolver(g);
  const shapes = inferShapes(model).types;
  const parent: number[] = [];
  const groups: Group[] = [];
  const find = (x: number): number => (parent[x] === x ? x : (parent[x] = find(parent[x])));
  const layouts = new Map<string, Layout>();
  const unsafe = new Map<number, string>();
  const t: Tracer = {
    model,
    shapes,
    constOf,
    floatConst(name) {
      const c = constOf(name);
      return c && c.dtype === DataType.FLOAT ? c : undefined;
    },
    layout: (name) => (name ? layouts.get(name) : undefined),
    setLayout: (name, layout) => void layouts.set(name, layout),
    channelsOf(name) {
      const s = shapes.get(name)?.shape;
      const c = s && s.length >= 2 ? s[1] : undefined;
      return typeof c === 'number' ? c : undefined;
    },
    newGroup(size, tensor) {
      const id = groups.length;
      groups.push({ id, size, members: [], tensor });
      parent.push(id);
      return id;
    },
    addMember: (group, m) => void groups[group].members.push(m),
    addConsumer(layout, m) {
      // The consumer belongs to every group whose channels it reads.
      for (const s of layout) if (s.group >= 0) groups[s.group].members.push(m);
    },
    union(a, b) {
      const ra = find(a);
      const rb = find(b);
      if (ra !== rb) parent[rb] = ra;
    },
    find,
    group: (id) => groups[id],
    singleGroup: (l) => (l.length === 1 && l[0].group >= 0 && l[0].block === 1 && l[0].start === 0 && l[0].size === groups[l[0].group].size ? l[0].group : undefined),
    markUnsafe(layout, why) {
      for (const s of layout) if (s.group >= 0 && !unsafe.has(find(s.group))) unsafe.set(find(s.group), why);
    },
  };

  for (const n of g.topoOrder()) {
    // A value read inside an If/Loop/Scan branch (outer-scope reference) keeps its channels.
    for (const r of outerRefs(n)) if (layouts.has(r)) t.markUnsafe(layouts.get(r)!, `read inside a subgraph of ${n.opType} '${n.label}'`);
    if (n.domain) {
      for (const i of n.inputs) if (layouts.has(i)) t.markUnsafe(layouts.get(i)!, `${n.domain}:${n.opType} reads the channels`);
      continue;
    }
    const rule = channelRule(n.opType);
    // Producers start groups; other nodes matter only when a tracked layout reaches them.
    if (rule?.starts && rule.trace(n, t) !== false) continue;
    const carried = n.inputs.filter((i) => layouts.has(i));
    if (carried.length === 0) continue;
    if (rule && !rule.starts && rule.trace(n, t) !== false) continue;
    // Any other op reading tracked channels: not followed.
    for (const c of carried) t.markUnsafe(layouts.get(c)!, `${n.opType} reads the channels and is not followed`);
  }
  for (const o of g.outputs) {
    const l = layouts.get(o.name);
    if (l) t.markUnsafe(l, `the channels reach the graph output '${o.name}'`);
  }

  // Fold members into group roots.
  const roots = new Map<number, Group>();
  for (const grp of groups) {
    const r = find(grp.id);
    let root = roots.get(r);
    if (!root) {
      root = { id: r, size: groups[r].size, members: [], tensor: groups[r].tensor };
      roots.set(r, root);
    }
    if (grp.size !== root.size) unsafe.set(r, unsafe.get(r) ?? 'coupled producers have different channel counts');
    pushAll(root.members, grp.members);
  }
  for (const [r, why] of unsafe) {
    const root = roots.get(find(r));
    if (root && !root.unsafe) root.unsafe = why;
  }
  // Layouts keep the original ids; rewrite them to roots.
  for (const l of layouts.values()) for (const s of l) if (s.group >= 0) s.group = find(s.group);
  return { groups: [...roots.values()], layouts };
}
