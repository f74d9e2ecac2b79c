import { registerChannelRule } from '../rules';

/**
 * Gemm and MatMul with a constant 2-D weight, on a 2-D input: they read the input's features
 * (weight axis 0, or 1 for Gemm transB) and start a group of their outputs (the other axis;
 * Gemm's bias too). Gemm with transA or a broadcast bias, and MatMul on rank > 2 (features not
 * on axis 1), are not followed.
 */
registerChannelRule(['Gemm', 'MatMul'], {
  starts: true,
  trace(n, t) {
    const op = n.opType;
    const w = n.inputs[1] ? t.floatConst(n.inputs[1]) : undefined;
    if (!w || w.dims.length !== 2) return false;
    const bias = n.inputs[2] ? t.floatConst(n.inputs[2]) : undefined;
    const x = t.layout(n.inputs[0]);
    const out = n.outputs[0];
    const transB = op === 'Gemm' && n.int('transB', 0) === 1;
    if (op === 'Gemm' && (n.int('transA', 0) || (bias && bias.dims.length !== 1))) {
      if (x) t.markUnsafe(x, 'Gemm with transA or a broadcast bias');
      return;
    }
    const xs = t.shapes.get(n.inputs[0])?.shape;
    if (x && xs && xs.length !== 2) {
      t.markUnsafe(x, 'MatMul on a tensor of rank > 2 (features not on axis 1)');
      return;
    }
    if (x) t.addConsumer(x, { kind: 'consumer', node: n, weight: w, axis: transB ? 1 : 0, layout: x });
    const o = transB ? w.dims[0] : w.dims[1];
    const id = t.newGroup(o, out);
    t.addMember(id, { kind: 'producer', node: n, weight: w, axis: transB ? 0 : 1, bias: op === 'Gemm' ? bias : undefined });
    t.setLayout(out, [{ group: id, offset: 0, size: o, block: 1, start: 0 }]);
  },
});
