import { axis, reduceMean, registerGradient, type GradContext } from './registry';

/**
 * Normalisation layers.
 * - BatchNormalization, frozen statistics (the default `BatchNormMode`; train mode rewrites
 *   BN nodes into batch-statistics ops before differentiation, see `../batchnorm.ts`): y = (x − μ)·γ/√(σ² + ε) + β with μ, σ² constant, so
 *   dX = dY·γ/√(σ² + ε), dγ = Σ dY·x̂, dβ = Σ dY over every axis but the channel axis 1.
 * - LayerNormalization (Ba et al. 2016) over the axes from `axis` on:
 *   dX = r·(g − mean(g) − x̂·mean(g·x̂)) with g = dY·γ, r = 1/√(var + ε).
 */

registerGradient('BatchNormalization', {
  nonDifferentiableInputs: [3, 4],
  nonDifferentiableOutputs: [1, 2],
  rule: (c: GradContext) => {
    if (c.node.int('training_mode', 0) !== 0) c.refuse('training_mode 1 is not supported (statistics are frozen)');
    const [x, scale, , mean, variance] = [0, 1, 2, 3, 4].map((i) => c.x(i));
    const rank = c.shape(x)?.length;
    if (rank === undefined) c.refuse('the rank of its input is unknown');
    const eps = c.node.float('epsilon', 1e-5);
    const per = (t: string) => c.op('Reshape', [t, c.ints([-1, ...Array(rank - 2).fill(1)])]);
    const inv = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [variance, c.float(eps)])])]);
    const dy = c.dy(0)!;
    const others = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const grads: Array<string | undefined> = [];
    if (c.needs(0)) grads[0] = c.op('Mul', [dy, per(c.op('Mul', [scale, inv]))]);
    if (c.needs(1)) {
      const xhat = c.op('Mul', [c.op('Sub', [x, per(mean)]), per(inv)]);
      grads[1] = c.op('ReduceSum', [c.op('Mul', [dy, xhat]), c.ints(others)], { keepdims: 0 });
    }
    if (c.needs(2)) grads[2] = c.op('ReduceSum', [dy, c.ints(others)], { keepdims: 0 });
    return grads;
  },
});

registerGradient('LayerNormalization', {
  nonDifferentiableOutputs: [1, 2],
  rule: (c: GradContext) => {
    const x = c.x(0);
    const rank = c.shape(x)?.length;
    if (rank === undefined) c.refuse('the rank of its input is unknown');
    const a = axis(c.node.int('axis', -1), rank);
    const eps = c.node.float('epsilon', 1e-5);
    const axes = Array.from({ length: rank - a }, (_, i) => a + i);
    const mu = reduceMean(c, x, axes);
    const xc = c.op('Sub', [x, mu]);
    const v = reduceMean(c, c.op('Mul', [xc, xc]), axes);
    const r = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [v, c.float(eps)])])]);
    const xhat = c.op('Mul', [xc, r]);
    const dy = c.dy(0)!;
    const grads: Array<string | undefined> = [];
    if (c.needs(0)) {
      const g = c.op('Mul', [dy, c.x(1)]);
      const mg = reduceMean(c, g, axes);
      const mgx = reduceMean(c, c.op('Mul', [g, xhat]), axes);
      grads[0] = c.op('Mul', [r, c.op('Sub', [c.op('Sub', [g, mg]), c.op('Mul', [xhat, mgx])])]);
    }
    if (c.needs(1)) grads[1] = c.reduceTo(c.op('Mul', [dy, xhat]), c.x(1), c.y(0));
    if (c.x(2) && c.needs(2)) grads[2] = c.reduceTo(dy, c.x(2), c.y(0));
    return grads;
  },
});
