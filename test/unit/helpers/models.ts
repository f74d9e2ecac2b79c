import type { Model } from '../../../src/core/ir/graph';
import { ModelBuilder } from './builder';

/**
 * A small transformer encoder block (MatMul-heavy):
 *
 *   x[n,seq,d] ─┬─ MatMul Wq ─┐
 *               ├─ MatMul Wk ─┴─ MatMul(QKᵀ) ─ Mul(1/√d) ─ Softmax ─┐
 *               ├─ MatMul Wv ──────────────────────────────────────── MatMul ─ MatMul Wo ─ Add(x) ─ LayerNorm ─┐
 *               │                                                                                            ├─ MatMul W1 ─ Relu ─ MatMul W2 ─ Add ─ LayerNorm ─ y
 */
export function transformerEncoder(d = 64, ff = 128, seq = 16): Model {
  const b = new ModelBuilder(17);
  const x = b.input('x', ['n', seq, d]);
  const proj = (inp: string, name: string, k = d, n = d) => b.node('MatMul', [inp, b.init(name, [k, n], scaled(k * n, 1 / Math.sqrt(k)))])[0];
  const q = proj(x, 'wq');
  const k = proj(x, 'wk');
  const v = proj(x, 'wv');
  const [kt] = b.node('Transpose', [k], { perm: [0, 2, 1] });
  const [scores] = b.node('MatMul', [q, kt]);
  const [scaledScores] = b.node('Mul', [scores, b.init('inv_sqrt_d', [], Float32Array.of(1 / Math.sqrt(d)))]);
  const [att] = b.node('Softmax', [scaledScores], { axis: -1 });
  const [ctx] = b.node('MatMul', [att, v]);
  const o = proj(ctx, 'wo');
  const [res1] = b.node('Add', [o, x]);
  const [ln1] = b.node('LayerNormalization', [res1, b.init('g1', [d], new Float32Array(d).fill(1)), b.init('b1', [d], new Float32Array(d))], { axis: -1 });
  const h = proj(ln1, 'w1', d, ff);
  const [r] = b.node('Relu', [h]);
  const f = proj(r, 'w2', ff, d);
  const [res2] = b.node('Add', [f, ln1]);
  const [ln2] = b.node('LayerNormalization', [res2, b.init('g2', [d], new Float32Array(d).fill(1)), b.init('b2', [d], new Float32Array(d))], { axis: -1 });
  b.markOutput(ln2, 'y');
  return b.build();
}

let seed = 100;
function scaled(n: number, s: number): Float32Array {
  const { randomFloats } = require('./builder') as typeof import('./builder');
  const a = randomFloats(n, seed++, 1);
  for (let i = 0; i < n; i++) a[i] *= s * Math.sqrt(3);
  return a;
}
