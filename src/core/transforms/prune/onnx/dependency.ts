import { DataType } from '../../../ir/dtype';
import { outerRefs, type Model, type Node } from '../../../ir/graph';
import { inferShapes } from '../../../ir/shape-inference';
import type { Tensor } from '../../../ir/tensor';
import { constantResolver } from '../../quantize/registry';
import { pushAll } from '../../../util/arrays';

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
 */

/**
 * Positions [offset, offset + size·block) of a tensor's channel axis hold the group's
 * channels [start, start + size) (a Split or Slice can carve a sub-range of a group).
 */
export interface Segment {
  group: number;
  offset: number;
  size: number;
  /** Each group channel spans `block` consecutive positions (Flatten of H×W maps). */
  block: number;
  start: number;
}

/** A segment of channels no group owns (e.g. from a graph input): it never changes. */
export interface FixedSegment {
  group: -1;
  offset: number;
  size: number;
  block: number;
  start: number;
}

export type Layout = Array<Segment | FixedSegment>;

export type Member =
  /** Output channels: weight (input 1) axis (0 for Conv/Gemm transB=1, 1 for ConvTranspose, last for MatMul/Gemm transB=0) and bias (input 2). */
  | { kind: 'producer'; node: Node; weight: Tensor; axis: number; bias?: Tensor }
  /** Per-channel parameters along the group's channels: BN scale/bias/mean/var, depthwise weights, elementwise constants. */
  | { kind: 'params'; node: Node; tensors: Array<{ tensor: Tensor; axis: number; input: number }>; depthwise?: boolean }
  /** Input channels of a consumer, located by the layout of the tensor it reads. */
  | { kind: 'consumer'; node: Node; weight: Tensor; axis: number; layout: Layout }
  /** A Reshape whose constant target shape holds the feature count. */
  | { kind: 'reshape'; node: Node; shape: Tensor; featureAxis: number; layout: Layout }
  /** A channel Split (sizes shrink by the removed positions in each part) or Slice (bounds move). */
  | { kind: 'split'; node: Node; layout: Layout; bounds: number[] }
  | { kind: 'slice'; node: Node; layout: Layout; start: number; end: number; axisIndex: number };

export interface Group {
  id: number;
  size: number;
  members: Member[];
  unsafe?: string;
  /** A tensor that carries the group's channels (for activation statistics). */
  tensor: string;
}

export interface DependencyGraph {
  groups: Group[];
  /** Layout of every tensor that carries group channels. */
  layouts: Map<string, Layout>;
}

const PASS = new Set([
  'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Clip', 'Softplus', 'Mish', 'Gelu',
  'Identity', 'Dropout', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'Resize', 'Upsample',
  'Abs', 'Neg', 'Sqrt', 'Exp', 'Erf', 'LRN', 'Cast',
]);
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean', 'PRelu']);

export function buildDependencyGraph(model: Model): DependencyGraph {
  const g = model.graph;
  const constOf = constantResolver(g);
  const shapes = inferShapes(model).types;
  const parent: number[] = [];
  const groups: Group[] = [];
  const find = (x: number): number => (parent[x] === x ? x : (parent[x] = find(parent[x])));
  const union = (a: number, b: number) => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[rb] = ra;
  };
  const layouts = new Map<string, Layout>();
  const unsafe = new Map<number, string>();
  const markUnsafe = (layout: Layout, why: string) => {
    for (const s of layout) if (s.group >= 0 && !unsafe.has(find(s.group))) unsafe.set(find(s.group), why);
  };
  const newGroup = (size: number, tensor: string): number => {
    const id = groups.length;
    groups.push({ id, size, members: [], tensor });
    parent.push(id);
    return id;
  };
  const channelsOf = (t: string): number | undefined => {
    const s = shapes.get(t)?.shape;
    const c = s && s.length >= 2 ? s[1] : undefined;
    return typeof c === 'number' ? c : undefined;
  };
  const isFloatConst = (n: string) => {
    const t = constOf(n);
    return t && t.dtype === DataType.FLOAT ? t : undefined;
  };

  for (const n of g.topoOrder()) {
    // A value read inside an If/Loop/Scan branch (outer-scope reference) keeps its channels.
    for (const r of outerRefs(n)) if (layouts.has(r)) markUnsafe(layouts.get(r)!, `read inside a subgraph of ${n.opType} '${n.label}'`);
    if (n.domain) {
      for (const i of n.inputs) if (layouts.has(i)) markUnsafe(layouts.get(i)!, `${n.domain}:${n.opType} reads the channels`);
      continue;
    }
    const inL = (k: number) => (n.inputs[k] ? layouts.get(n.inputs[k]) : undefined);
    const x = inL(0);
    const op = n.opType;
    const out = n.outputs[0];

    // Consumers and producers ------------------------------------------------------
    const w = n.inputs[1] ? isFloatConst(n.inputs[1]) : undefined;
    const bias = n.inputs[2] ? isFloatConst(n.inputs[2]) : undefined;
    if (op === 'Conv' && w && w.dims.length === 4) {
      const groupAttr = n.int('group', 1);
      const [o, iPerG] = w.dims;
      if (groupAttr === 1) {
        if (x) addConsumer(x, { kind: 'consumer', node: n, weight: w, axis: 1, layout: x });
        const id = newGroup(o, out);
        groups[id].members.push({ kind: 'producer', node: n, weight: w, axis: 0, bias });
        layouts.set(out, [{ group: id, offset: 0, size: o, block: 1, start: 0 }]);
        continue;
      }
      if (iPerG === 1 && groupAttr === o && x && layoutSize(x) === o) {
        // Depthwise: output channel c reads input channel c; prune both together.
        const owner = singleGroup(x);
        if (owner === undefined) {
          markUnsafe(x, 'a depthwise conv reads a mixed channel layout');
          continue;
        }
        const tensors = [{ tensor: w, axis: 0, input: 1 }];
        if (bias) tensors.push({ tensor: bias, axis: 0, input: 2 });
        groups[owner].members.push({ kind: 'params', node: n, tensors, depthwise: true });
        layouts.set(out, x);
        continue;
      }
      if (x) markUnsafe(x, `grouped Conv (group ${groupAttr}) couples channels in a way not followed`);
      continue;
    }
    if (op === 'ConvTranspose' && w && w.dims.length === 4 && n.int('group', 1) === 1) {
      if (x) addConsumer(x, { kind: 'consumer', node: n, weight: w, axis: 0, layout: x });
      const id = newGroup(w.dims[1], out);
      groups[id].members.push({ kind: 'producer', node: n, weight: w, axis: 1, bias });
      layouts.set(out, [{ group: id, offset: 0, size: w.dims[1], block: 1, start: 0 }]);
      continue;
    }
    if ((op === 'Gemm' || op === 'MatMul') && w && w.dims.length === 2) {
      const transB = op === 'Gemm' && n.int('transB', 0) === 1;
      if (op === 'Gemm' && (n.int('transA', 0) || (bias && bias.dims.length !== 1))) {
        if (x) markUnsafe(x, 'Gemm with transA or a broadcast bias');
        continue;
      }
      const xs = shapes.get(n.inputs[0])?.shape;
      if (x && xs && xs.length !== 2) {
        markUnsafe(x, 'MatMul on a tensor of rank > 2 (features not on axis 1)');
        continue;
      }
      if (x) addConsumer(x, { kind: 'consumer', node: n, weight: w, axis: transB ? 1 : 0, layout: x });
      const o = transB ? w.dims[0] : w.dims[1];
      const id = newGroup(o, out);
      groups[id].members.push({ kind: 'producer', node: n, weight: w, axis: transB ? 0 : 1, bias: op === 'Gemm' ? bias : undefined });
      layouts.set(out, [{ group: id, offset: 0, size: o, block: 1, start: 0 }]);
      continue;
    }

    // Nothing carries channels into this node: nothing to follow.
    const carried = n.inputs.filter((i) => layouts.has(i));
    if (carried.length === 0) continue;

    if (PASS.has(op)) {
      if (op === 'MaxPool' && n.outputs[1]) {
        markUnsafe(x!, 'MaxPool with an indices output');
        continue;
      }
      if (x) layouts.set(out, x);
      if (n.outputs.length > 1) n.outputs.slice(1).forEach((o2) => o2 && x && layouts.set(o2, x));
      continue;
    }
    if (op === 'BatchNormalization' && x) {
      const params = n.inputs.slice(1, 5).map((p) => (p ? isFloatConst(p) : undefined));
      const owner = singleGroup(x);
      if (params.some((p) => !p) || owner === undefined) {
        markUnsafe(x, 'BatchNormalization with non-constant parameters or a mixed layout');
        continue;
      }
      groups[owner].members.push({ kind: 'params', node: n, tensors: params.map((t, k) => ({ tensor: t!, axis: 0, input: k + 1 })) });
      layouts.set(out, x);
      continue;
    }
    if (op === 'Pad' && x) {
      const pads = n.ints('pads') ?? (n.inputs[1] ? constOf(n.inputs[1])?.toNumbers() : undefined);
      const rank = pads ? pads.length / 2 : 0;
      if (!pads || pads[1] !== 0 || pads[1 + rank] !== 0) {
        markUnsafe(x, 'Pad on the channel axis');
        continue;
      }
      layouts.set(out, x);
      continue;
    }
    if (ELEMENTWISE.has(op)) {
      // All activation inputs must line up channel for channel; merge their groups.
      const acts = n.inputs.filter((i) => i && !constOf(i));
      const ls = acts.map((i) => layouts.get(i));
      if (ls.some((l) => !l)) {
        markUnsafe(carried.map((c) => layouts.get(c)!).flat(), `${op} combines pruned channels with a tensor whose channels are not tracked`);
        continue;
      }
      const base = ls[0]!;
      let ok = true;
      for (const l of ls.slice(1)) {
        if (l!.length !== base.length || l!.some((s, k) => s.size !== base[k].size || s.block !== base[k].block || s.offset !== base[k].offset || s.start !== base[k].start || (s.group < 0) !== (base[k].group < 0))) ok = false;
      }
      if (!ok) {
        markUnsafe(ls.flat() as Layout, `${op} joins tensors whose channel layouts differ`);
        continue;
      }
      for (const l of ls.slice(1)) l!.forEach((s, k) => s.group >= 0 && union(base[k].group, s.group));
      // Constant operands with a per-channel dimension shrink with the channels.
      for (const [input, i] of n.inputs.entries()) {
        const c = i ? constOf(i) : undefined;
        if (!c) continue;
        const outShape = shapes.get(out)?.shape;
        const rank = outShape?.length ?? 0;
        const axis = c.dims.length - (rank - 1);
        if (axis >= 0 && axis < c.dims.length && c.dims[axis] !== 1) {
          const owner = singleGroup(base);
          if (owner === undefined || c.dims[axis] !== layoutSize(base)) {
            markUnsafe(base, `${op} has a constant operand along mixed channels`);
            ok = false;
            break;
          }
          groups[owner].members.push({ kind: 'params', node: n, tensors: [{ tensor: c, axis, input }] });
        }
      }
      if (ok) layouts.set(out, base);
      continue;
    }
    if (op === 'Concat') {
      const rank = shapes.get(out)?.shape?.length ?? 0;
      const axis = n.int('axis', 0);
      if (!(axis === 1 || (rank > 0 && axis === 1 - rank))) {
        markUnsafe(carried.map((c) => layouts.get(c)!).flat(), 'Concat along an axis other than channels');
        continue;
      }
      const layout: Layout = [];
      let offset = 0;
      let ok = true;
      for (const i of n.inputs) {
        const l = layouts.get(i);
        const c = channelsOf(i);
        if (l) {
          for (const s of l) layout.push({ ...s, offset: offset + s.offset });
          offset += layoutSize(l);
        } else if (c !== undefined) {
          layout.push({ group: -1, offset, size: c, block: 1, start: 0 });
          offset += c;
        } else ok = false;
      }
      if (!ok) {
        markUnsafe(layout, 'Concat with an input of unknown channel count');
        continue;
      }
      layouts.set(out, layout);
      continue;
    }
    if ((op === 'Split' || op === 'Slice') && x) {
      const rank = shapes.get(n.inputs[0])?.shape?.length ?? 0;
      const total = layoutSize(x);
      let ranges: Array<[number, number]> | undefined;
      let axisIndex = 0;
      if (op === 'Split') {
        const axis = n.int('axis', 0);
        if (axis === 1 || (rank > 0 && axis === 1 - rank)) {
          const sizes = n.ints('split') ?? (n.inputs[1] ? constOf(n.inputs[1])?.toNumbers() : undefined) ?? Array(n.outputs.length).fill(total / n.outputs.length);
          let start = 0;
          ranges = sizes.map((sz) => [start, (start += sz)] as [number, number]);
        }
      } else {
        const c = (k: number) => (n.inputs[k] ? constOf(n.inputs[k])?.toNumbers() : undefined);
        const [starts, ends, axes, stepsV] = [c(1), c(2), n.inputs[3] ? c(3) : [0], n.inputs[4] ? c(4) : undefined];
        axisIndex = axes ? axes.findIndex((a) => a === 1 || (rank > 0 && a === 1 - rank)) : -1;
        const touchesOther = axes && axes.some((a, k) => k !== axisIndex && (a === 1 || a === 1 - rank));
        if (starts && ends && axes && axisIndex >= 0 && !touchesOther && (!stepsV || stepsV[axisIndex] === 1)) {
          const clamp = (v: number) => Math.max(0, Math.min(total, v < 0 ? v + total : v));
          ranges = [[clamp(starts[axisIndex]), clamp(ends[axisIndex])]];
        } else if (starts && ends && axes && axisIndex < 0) {
          layouts.set(out, x); // slices other axes only
          continue;
        }
      }
      // Each range takes whole channels of the segments it overlaps (sub-ranges of a group allowed).
      const carve = (a: number, b: number): Layout | undefined => {
        const part: Layout = [];
        for (const sg of x) {
          const lo = Math.max(a, sg.offset);
          const hi = Math.min(b, sg.offset + sg.size * sg.block);
          if (lo >= hi) continue;
          if ((lo - sg.offset) % sg.block || (hi - sg.offset) % sg.block) return undefined;
          part.push({ ...sg, offset: lo - a, size: (hi - lo) / sg.block, start: sg.start + (lo - sg.offset) / sg.block });
        }
        return part;
      };
      const parts = ranges?.map(([a, b]) => carve(a, b));
      if (!ranges || !parts || parts.some((p) => !p)) {
        markUnsafe(x, `${op} along channels that splits a flattened channel block`);
        continue;
      }
      parts.forEach((part, k) => n.outputs[k] && layouts.set(n.outputs[k], part!));
      const member: Member = op === 'Split'
        ? { kind: 'split', node: n, layout: x, bounds: [0, ...ranges.map((r) => r[1])] }
        : { kind: 'slice', node: n, layout: x, start: ranges[0][0], end: ranges[0][1], axisIndex };
      for (const sg of x) if (sg.group >= 0) groups[sg.group].members.push(member);
      continue;
    }
    if ((op === 'Flatten' || op === 'Reshape') && x) {
      const s = shapes.get(n.inputs[0])?.shape;
      const o = shapes.get(out)?.shape;
      const spatial = s && s.length >= 2 ? s.slice(2).reduce<number | null>((a, d) => (a !== null && typeof d === 'number' ? a * d : null), 1) : null;
      const flattens = (op === 'Flatten' && n.int('axis', 1) === 1) || (op === 'Reshape' && o?.length === 2 && s && s.length >= 2);
      if (!flattens || spatial === null) {
        markUnsafe(x, `${op} that does not flatten [N, C, …] to [N, C·…]`);
        continue;
      }
      const layout: Layout = x.map((seg) => ({ ...seg, offset: seg.offset * spatial, block: seg.block * spatial }));
      if (op === 'Reshape') {
        const shapeT = constOf(n.inputs[1]);
        if (!shapeT) {
          markUnsafe(x, 'Reshape to a computed shape');
          continue;
        }
        const vals = shapeT.toNumbers();
        const featureAxis = vals.findIndex((v, k) => k === 1 && v > 0);
        if (featureAxis === 1) {
          const owner = singleGroup(x) ?? x.find((sg) => sg.group >= 0)?.group;
          if (owner !== undefined) groups[find(owner)].members.push({ kind: 'reshape', node: n, shape: shapeT, featureAxis: 1, layout });
        }
      }
      layouts.set(out, layout);
      continue;
    }
    // Any other op reading tracked channels: not followed.
    for (const c of carried) markUnsafe(layouts.get(c)!, `${op} reads the channels and is not followed`);
  }
  for (const o of g.outputs) {
    const l = layouts.get(o.name);
    if (l) markUnsafe(l, `the channels reach the graph output '${o.name}'`);
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

  function addConsumer(layout: Layout, m: Member) {
    // The consumer belongs to every group whose channels it reads.
    for (const s of layout) if (s.group >= 0) groups[s.group].members.push(m);
  }
  function singleGroup(l: Layout): number | undefined {
    return l.length === 1 && l[0].group >= 0 && l[0].block === 1 && l[0].start === 0 && l[0].size === groups[l[0].group].size ? l[0].group : undefined;
  }
}

export function layoutSize(l: Layout): number {
  return l.reduce((a, s) => a + s.size * s.block, 0);
}

/** Positions on a tensor's channel axis that disappear when `removed` channels of `group` go. */
export function removedPositions(layout: Layout, group: number, removed: number[]): number[] {
  const out: number[] = [];
  for (const s of layout) {
    if (s.group !== group) continue;
    for (const c of removed) {
      if (c < s.start || c >= s.start + s.size) continue;
      for (let t = 0; t < s.block; t++) out.push(s.offset + (c - s.start) * s.block + t);
    }
  }
  return out.sort((a, b) => a - b);
}
