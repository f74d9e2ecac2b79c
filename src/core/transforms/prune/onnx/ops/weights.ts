import { registerMemberEdit } from '../rules';
import { removedPositions } from '../types';

/**
 * The edits every weighted op shares: a producer loses rows of its weight (and bias entries),
 * per-channel parameters lose entries (a depthwise conv's `group` drops by the same count),
 * and a consumer loses the input positions the removed channels occupy in the tensor it reads.
 */

registerMemberEdit('producer', (m, _group, remove, edits) => {
  edits.weight(m.node, 1, m.weight, m.axis, remove);
  if (m.bias) edits.weight(m.node, 2, m.bias, 0, remove);
});

registerMemberEdit('params', (m, _group, remove, edits) => {
  for (const t of m.tensors) edits.weight(m.node, t.input, t.tensor, t.axis, remove);
  if (m.depthwise) {
    const s = edits.perNode(m.node, 'group', () => ({ removed: 0 }), (st, n) => n.setInt('group', n.int('group', 1) - st.removed));
    s.removed = remove.length;
  }
});

registerMemberEdit('consumer', (m, group, remove, edits) => {
  edits.weight(m.node, 1, m.weight, m.axis, removedPositions(m.layout, group.id, remove));
});
