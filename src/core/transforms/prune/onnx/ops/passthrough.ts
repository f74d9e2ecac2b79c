import { registerChannelRule } from '../rules';

/**
 * Ops that keep channels where they are: activations, pooling, Resize, Dropout, Cast… (the
 * output has the input's layout), BatchNormalization (its four per-channel parameters shrink
 * with the group) and Pad that does not pad the channel axis.
 */

registerChannelRule(
  [
    'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Clip', 'Softplus', 'Mish', 'Gelu',
    'Identity', 'Dropout', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'Resize', 'Upsample',
    'Abs', 'Neg', 'Sqrt', 'Exp', 'Erf', 'LRN', 'Cast',
  ],
  {
    trace(n, t) {
      const x = t.layout(n.inputs[0]);
      if (n.opType === 'MaxPool' && n.outputs[1]) {
        if (x) t.markUnsafe(x, 'MaxPool with an indices output');
        return;
      }
      if (!x) return;
      for (const o of n.outputs) if (o) t.setLayout(o, x);
    },
  },
);

registerChannelRule(['BatchNormalization'], {
  trace(n, t) {
    const x = t.layout(n.inputs[0]);
    if (!x) return false;
    const params = n.inputs.slice(1, 5).map((p) => (p ? t.floatConst(p) : undefined));
    const owner = t.singleGroup(x);
    if (params.some((p) => !p) || owner === undefined) {
      t.markUnsafe(x, 'BatchNormalization with non-constant parameters or a mixed layout');
      return;
    }
    t.addMember(owner, { kind: 'params', node: n, tensors: params.map((p, k) => ({ tensor: p!, axis: 0, input: k + 1 })) });
    t.setLayout(n.outputs[0], x);
  },
});

registerChannelRule(['Pad'], {
  trace(n, t) {
    const x = t.layout(n.inputs[0]);
    if (!x) return false;
    const pads = n.ints('pads') ?? (n.inputs[1] ? t.constOf(n.inputs[1])?.toNumbers() : undefined);
    const rank = pads ? pads.length / 2 : 0;
    if (!pads || pads[1] !== 0 || pads[1 + rank] !== 0) {
      t.markUnsafe(x, 'Pad on the channel axis');
      return;
    }
    t.setLayout(n.outputs[0], x);
  },
});
