import { DataType } from '../../../../ir/dtype';
import { registerChannelRule, registerMemberEdit } from '../rules';
import { removedPositions, type Layout } from '../types';

/**
 * Flatten (axis 1) and Reshape of [N, C, …] to [N, C·…]: each channel becomes a block of
 * H·W… consecutive features. A Reshape's constant target shape holds the feature count, which
 * shrinks by the removed positions. Anything else that reshapes channels is not followed.
 */
registerChannelRule(['Flatten', 'Reshape'], {
  trace(n, t) {
    const x = t.layout(n.inputs[0]);
    if (!x) return false;
    const op = n.opType;
    const out = n.outputs[0];
    const s = t.shapes.get(n.inputs[0])?.shape;
    const o = t.shapes.get(out)?.shape;
    const spatial = s && s.length >= 2 ? s.slice(2).reduce<number | null>((a, d) => (a !== null && typeof d === 'number' ? a * d : null), 1) : null;
    const flattens = (op === 'Flatten' && n.int('axis', 1) === 1) || (op === 'Reshape' && o?.length === 2 && s && s.length >= 2);
    if (!flattens || spatial === null) {
      t.markUnsafe(x, `${op} that does not flatten [N, C, …] to [N, C·…]`);
      return;
    }
    const layout: Layout = x.map((seg) => ({ ...seg, offset: seg.offset * spatial, block: seg.block * spatial }));
    if (op === 'Reshape') {
      const shapeT = t.constOf(n.inputs[1]);
      if (!shapeT) {
        t.markUnsafe(x, 'Reshape to a computed shape');
        return;
      }
      const featureAxis = shapeT.toNumbers().findIndex((v, k) => k === 1 && v > 0);
      if (featureAxis === 1) {
        const owner = t.singleGroup(x) ?? x.find((sg) => sg.group >= 0)?.group;
        if (owner !== undefined) t.addMember(t.find(owner), { kind: 'reshape', node: n, shape: shapeT, featureAxis: 1, layout });
      }
    }
    t.setLayout(out, layout);
  },
});

registerMemberEdit('reshape', (m, group, remove, edits) => {
  const state = edits.perNode(m.node, 'reshape', () => ({ shape: m.shape, removed: 0 }), (s, n, ed) => {
    const v = s.shape.toNumbers();
    v[1] -= s.removed;
    n.inputs[1] = ed.initializer(`${n.inputs[1]}_pruned`, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt)));
  });
  state.removed += removedPositions(m.layout, group.id, remove).length;
});
