import { registerChannelRule } from '../rules';
import { layoutSize, type Layout } from '../types';

/**
 * Elementwise ops (residual Add, squeeze-excitation Mul, …): every non-constant input must
 * line up channel for channel, and their groups merge, so the producers shrink together. A
 * constant operand with a per-channel dimension (a [1, C, 1, 1] scale) shrinks with them.
 */
registerChannelRule(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean', 'PRelu'], {
  trace(n, t) {
    const op = n.opType;
    const out = n.outputs[0];
    const carried = n.inputs.filter((i) => t.layout(i));
    const acts = n.inputs.filter((i) => i && !t.constOf(i));
    const ls = acts.map((i) => t.layout(i));
    if (ls.some((l) => !l)) {
      t.markUnsafe(carried.map((c) => t.layout(c)!).flat(), `${op} combines pruned channels with a tensor whose channels are not tracked`);
      return;
    }
    const base = ls[0]!;
    let ok = true;
    for (const l of ls.slice(1)) {
      if (l!.length !== base.length || l!.some((s, k) => s.size !== base[k].size || s.block !== base[k].block || s.offset !== base[k].offset || s.start !== base[k].start || (s.group < 0) !== (base[k].group < 0))) ok = false;
    }
    if (!ok) {
      t.markUnsafe(ls.flat() as Layout, `${op} joins tensors whose channel layouts differ`);
      return;
    }
    for (const l of ls.slice(1)) l!.forEach((s, k) => s.group >= 0 && t.union(base[k].group, s.group));
    for (const [input, i] of n.inputs.entries()) {
      const c = i ? t.constOf(i) : undefined;
      if (!c) continue;
      const rank = t.shapes.get(out)?.shape?.length ?? 0;
      const axis = c.dims.length - (rank - 1);
      if (axis >= 0 && axis < c.dims.length && c.dims[axis] !== 1) {
        const owner = t.singleGroup(base);
        if (owner === undefined || c.dims[axis] !== layoutSize(base)) {
          t.markUnsafe(base, `${op} has a constant operand along mixed channels`);
          return;
        }
        t.addMember(owner, { kind: 'params', node: n, tensors: [{ tensor: c, axis, input }] });
      }
    }
    t.setLayout(out, base);
  },
});
