import { registerChannelRule } from '../rules';
import { layoutSize } from '../types';

/**
 * Conv and ConvTranspose with a constant 4-D weight.
 *
 * - Conv, group 1: reads its input's channels (weight axis 1) and starts a group of its O
 *   output channels (weight axis 0, bias).
 * - Depthwise Conv (group = C, one input channel per group): output channel c reads input
 *   channel c, so its weight and bias shrink with the input's group, and `group` with them.
 * - Other grouped Convs couple channels in blocks that are not followed: unsafe.
 * - ConvTranspose, group 1: the weight is [I, O, kH, kW]: inputs on axis 0, outputs on axis 1.
 */

registerChannelRule(['Conv'], {
  starts: true,
  trace(n, t) {
    const w = n.inputs[1] ? t.floatConst(n.inputs[1]) : undefined;
    if (!w || w.dims.length !== 4) return false;
    const bias = n.inputs[2] ? t.floatConst(n.inputs[2]) : undefined;
    const x = t.layout(n.inputs[0]);
    const out = n.outputs[0];
    const groupAttr = n.int('group', 1);
    const [o, iPerG] = w.dims;
    if (groupAttr === 1) {
      if (x) t.addConsumer(x, { kind: 'consumer', node: n, weight: w, axis: 1, layout: x });
      const id = t.newGroup(o, out);
      t.addMember(id, { kind: 'producer', node: n, weight: w, axis: 0, bias });
      t.setLayout(out, [{ group: id, offset: 0, size: o, block: 1, start: 0 }]);
      return;
    }
    if (iPerG === 1 && groupAttr === o && x && layoutSize(x) === o) {
      const owner = t.singleGroup(x);
      if (owner === undefined) {
        t.markUnsafe(x, 'a depthwise conv reads a mixed channel layout');
        return;
      }
      const tensors = [{ tensor: w, axis: 0, input: 1 }];
      if (bias) tensors.push({ tensor: bias, axis: 0, input: 2 });
      t.addMember(owner, { kind: 'params', node: n, tensors, depthwise: true });
      t.setLayout(out, x);
      return;
    }
    if (x) t.markUnsafe(x, `grouped Conv (group ${groupAttr}) couples channels in a way not followed`);
  },
});

registerChannelRule(['ConvTranspose'], {
  starts: true,
  trace(n, t) {
    const w = n.inputs[1] ? t.floatConst(n.inputs[1]) : undefined;
    if (!w || w.dims.length !== 4 || n.int('group', 1) !== 1) return false;
    const bias = n.inputs[2] ? t.floatConst(n.inputs[2]) : undefined;
    const x = t.layout(n.inputs[0]);
    const out = n.outputs[0];
    if (x) t.addConsumer(x, { kind: 'consumer', node: n, weight: w, axis: 0, layout: x });
    const id = t.newGroup(w.dims[1], out);
    t.addMember(id, { kind: 'producer', node: n, weight: w, axis: 1, bias });
    t.setLayout(out, [{ group: id, offset: 0, size: w.dims[1], block: 1, start: 0 }]);
  },
});
