import { registerGradient, type GradContext } from './registry';

/**
 * Gemm (Y = α·A'·B' + β·C, A' = transA ? Aᵀ : A) and MatMul (numpy semantics, batched and
 * broadcast). Matrix-calculus identities: dA' = dY·B'ᵀ, dB' = A'ᵀ·dY, dC = β·dY reduced
 * to C's broadcast shape.
 */

registerGradient('Gemm', (c: GradContext) => {
  const n = c.node;
  const dy = c.dy(0)!;
  const [a, b] = [c.x(0), c.x(1)];
  const alpha = n.float('alpha', 1);
  const beta = n.float('beta', 1);
  const ta = n.int('transA', 0);
  const tb = n.int('transB', 0);
  const grads: Array<string | undefined> = [];
  if (c.needs(0)) {
    grads[0] = ta
      ? c.op('Gemm', [b, dy], { transA: tb, transB: 1, alpha: { f: alpha } })
      : c.op('Gemm', [dy, b], { transA: 0, transB: tb ? 0 : 1, alpha: { f: alpha } });
  }
  if (c.needs(1)) {
    grads[1] = tb
      ? c.op('Gemm', [dy, a], { transA: 1, transB: ta, alpha: { f: alpha } })
      : c.op('Gemm', [a, dy], { transA: ta ? 0 : 1, transB: 0, alpha: { f: alpha } });
  }
  if (c.x(2) && c.needs(2)) {
    const scaled = beta === 1 ? dy : c.op('Mul', [dy, c.float(beta)]);
    grads[2] = c.reduceTo(scaled, c.x(2), c.y(0));
  }
  return grads;
});

function swapLast(rank: number): number[] {
  const p = Array.from({ length: rank }, (_, i) => i);
  [p[rank - 2], p[rank - 1]] = [p[rank - 1], p[rank - 2]];
  return p;
}

registerGradient('MatMul', (c: GradContext) => {
  const dy = c.dy(0)!;
  const [a, b] = [c.x(0), c.x(1)];
  const as = c.shape(a);
  const bs = c.shape(b);
  const ys = c.shape(c.y(0));
  if (!as || !bs || !ys) c.refuse('the ranks of its operands are unknown');
  if (as.length < 2 || bs.length < 2) c.refuse('1-D operands are not supported (reshape them to matrices)');
  const grads: Array<string | undefined> = [];
  if (c.needs(0)) {
    const bt = c.op('Transpose', [b], { perm: swapLast(bs.length) });
    const full = c.op('MatMul', [dy, bt]);
    grads[0] = reduceMatmul(c, full, a, as, ys);
  }
  if (c.needs(1)) {
    const at = c.op('Transpose', [a], { perm: swapLast(as.length) });
    const full = c.op('MatMul', [at, dy]);
    grads[1] = reduceMatmul(c, full, b, bs, ys);
  }
  return grads;
});

/** Sums the batch axes of a broadcast MatMul operand gradient back to its shape. */
function reduceMatmul(c: import('./registry').GradContext, g: string, operand: string, os: import('../../ir/graph').Dim[], ys: import('../../ir/graph').Dim[]): string {
  if (os.length === ys.length && os.slice(0, -2).every((d, i) => d !== null && d === ys[i])) return g;
  const lead = ys.length - os.length;
  const axes: number[] = [];
  for (let i = 0; i < ys.length - 2; i++) {
    const od = i - lead >= 0 ? os[i - lead] : undefined;
    if (od === undefined) continue;
    if (od === 1 && ys[i] !== 1) axes.push(i);
    else if (od === null || (od !== ys[i] && typeof od !== 'number')) c.refuse(`batch dimension ${i - lead} of '${operand}' is not known to broadcast`);
  }
  let r = g;
  if (axes.length) r = c.op('ReduceSum', [r, c.ints(axes)], { keepdims: 1 });
  if (lead > 0) r = c.op('ReduceSum', [r, c.ints(Array.from({ length: lead }, (_, i) => i))], { keepdims: 0 });
  return r;
}
