import { DataType } from '../../../../ir/dtype';
import type { Model } from '../../../../ir/graph';
import { Tensor } from '../../../../ir/tensor';
import { registerChannelRule, registerMemberEdit, type PruneEdits } from '../rules';
import { layoutSize, removedPositions, type Group, type Layout, type Member } from '../types';

/**
 * Split and Slice along channels: each part takes whole channels of the segments it
 * overlaps (a sub-range of a group is allowed, a part of a flattened channel block is not).
 * When channels go, Split's sizes shrink by the removed positions in each part and Slice's
 * bounds move. Slices of other axes pass the layout through.
 */
registerChannelRule(['Split', 'Slice'], {
  trace(n, t) {
    const x = t.layout(n.inputs[0]);
    if (!x) return false;
    const op = n.opType;
    const out = n.outputs[0];
    const rank = t.shapes.get(n.inputs[0])?.shape?.length ?? 0;
    const total = layoutSize(x);
    let ranges: Array<[number, number]> | undefined;
    let axisIndex = 0;
    if (op === 'Split') {
      const axis = n.int('axis', 0);
      if (axis === 1 || (rank > 0 && axis === 1 - rank)) {
        const sizes = n.ints('split') ?? (n.inputs[1] ? t.constOf(n.inputs[1])?.toNumbers() : undefined) ?? Array(n.outputs.length).fill(total / n.outputs.length);
        let start = 0;
        ranges = sizes.map((sz) => [start, (start += sz)] as [number, number]);
      }
    } else {
      const c = (k: number) => (n.inputs[k] ? t.constOf(n.inputs[k])?.toNumbers() : undefined);
      const [starts, ends, axes, stepsV] = [c(1), c(2), n.inputs[3] ? c(3) : [0], n.inputs[4] ? c(4) : undefined];
      axisIndex = axes ? axes.findIndex((a) => a === 1 || (rank > 0 && a === 1 - rank)) : -1;
      const touchesOther = axes && axes.some((a, k) => k !== axisIndex && (a === 1 || a === 1 - rank));
      if (starts && ends && axes && axisIndex >= 0 && !touchesOther && (!stepsV || stepsV[axisIndex] === 1)) {
        const clamp = (v: number) => Math.max(0, Math.min(total, v < 0 ? v + total : v));
        ranges = [[clamp(starts[axisIndex]), clamp(ends[axisIndex])]];
      } else if (starts && ends && axes && axisIndex < 0) {
        t.setLayout(out, x); // slices other axes only
        return;
      }
    }
    const parts = ranges?.map(([a, b]) => carve(x, a, b));
    if (!ranges || !parts || parts.some((p) => !p)) {
      t.markUnsafe(x, `${op} along channels that splits a flattened channel block`);
      return;
    }
    parts.forEach((part, k) => n.outputs[k] && t.setLayout(n.outputs[k], part!));
    const member: Member =
      op === 'Split' ? { kind: 'split', node: n, layout: x, bounds: [0, ...ranges.map((r) => r[1])] } : { kind: 'slice', node: n, layout: x, start: ranges[0][0], end: ranges[0][1], axisIndex };
    for (const sg of x) if (sg.group >= 0) t.group(sg.group).members.push(member);
  },
});

/** Positions [a, b) of `x`'s channel axis as a layout, or undefined if they cut a channel's block. */
function carve(x: Layout, a: number, b: number): Layout | undefined {
  const part: Layout = [];
  for (const sg of x) {
    const lo = Math.max(a, sg.offset);
    const hi = Math.min(b, sg.offset + sg.size * sg.block);
    if (lo >= hi) continue;
    if ((lo - sg.offset) % sg.block || (hi - sg.offset) % sg.block) return undefined;
    part.push({ ...sg, offset: lo - a, size: (hi - lo) / sg.block, start: sg.start + (lo - sg.offset) / sg.block });
  }
  return part;
}

type Cut = Extract<Member, { kind: 'split' | 'slice' }>;

/** Removed positions (input channel coordinates) are collected over every group, then the sizes or bounds are rewritten once. */
function editCut(m: Cut, group: Group, remove: number[], edits: PruneEdits): void {
  const state = edits.perNode(m.node, 'cut', () => ({ member: m, removed: new Set<number>() }), (s, n, ed, source) => {
    const before = (p: number) => [...s.removed].filter((r) => r < p).length;
    const member = s.member;
    if (member.kind === 'split') {
      const sizes = member.bounds.slice(1).map((b, k) => b - member.bounds[k] - (before(b) - before(member.bounds[k])));
      if (n.attr('split')) n.setInts('split', sizes);
      else if (n.inputs[1]) n.inputs[1] = ed.initializer(`${n.inputs[1]}_pruned`, DataType.INT64, [sizes.length], BigInt64Array.from(sizes.map(BigInt)));
      else n.inputs[1] = ed.initializer(`${n.outputs[0]}_split_sizes`, DataType.INT64, [sizes.length], BigInt64Array.from(sizes.map(BigInt)));
    } else {
      const rewrite = (input: number, value: number) => {
        const name = n.inputs[input];
        const v = constantValues(source, member.node.inputs[input]);
        v[member.axisIndex] = value;
        n.inputs[input] = ed.initializer(`${name}_pruned`, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt)));
      };
      rewrite(1, member.start - before(member.start));
      rewrite(2, member.end - before(member.end));
    }
  });
  for (const pos of removedPositions(m.layout, group.id, remove)) state.removed.add(pos);
}
registerMemberEdit('split', editCut);
registerMemberEdit('slice', editCut);

function constantValues(model: Model, name: string): number[] {
  const t = model.graph.initializers.get(name) ?? model.graph.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name)?.attr('value');
  if (t instanceof Tensor) return t.toNumbers();
  if (t && 'value' in t && t.value instanceof Tensor) return t.value.toNumbers();
  throw new Error(`Slice bound '${name}' is not a constant`);
}
