import { DataType } from '../../ir/dtype';
import type { Model, Node } from '../../ir/graph';
import { GraphEditor, cloneModel } from '../graph-edit';
import { denseCandidate, transpose2d } from '../dense';
import { constantResolver, weightKey } from './registry';
import type { SkippedNode } from './static';

/**
 * int4 weight-only, block-wise: MatMul (and Gemm without transA/alpha/beta) becomes
 * com.microsoft MatMulNBits. B is stored as [N, blocks, blockSize/2] uint8 with two 4-bit
 * codes per byte (low nibble first) along K; w = (code − zero_point) × scale per block.
 *
 * symmetric: zero point 8 (the op's default, so no zero-point input) and scale = v/−8 where
 *   v is the block's value of largest magnitude, so that value is represented exactly;
 * asymmetric: scale = (max − min)/15 with a per-block zero point (packed two per byte).
 */

export interface Int4Options {
  blockSize?: 32 | 64 | 128;
  symmetric?: boolean;
  exclude?: Set<string>;
}

export interface Int4Result {
  model: Model;
  quantized: string[];
  skipped: SkippedNode[];
}

export function quantizeInt4(model: Model, opts: Int4Options = {}): Int4Result {
  const block = opts.blockSize ?? 32;
  const symmetric = opts.symmetric ?? true;
  if (![32, 64, 128].includes(block)) throw new RangeError('block size must be 32, 64 or 128');
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const constOf = constantResolver(g);
  if (!out.opsetImports.some((o) => o.domain === 'com.microsoft')) out.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  const quantized: string[] = [];
  const skipped: SkippedNode[] = [];
  const replaced = new Map<Node, Node>();
  const shared = new Map<string, string[]>();
  for (const n of g.nodes) {
    if (n.opType === 'Constant' || n.opType === 'Identity') continue;
    const skip = (reason: string) => skipped.push({ name: n.label, op: n.opType, reason });
    const dense = denseCandidate(n, constOf, 'int4 weight-only', opts.exclude, skip);
    if (!dense) continue;
    // MatMulNBits wants B transposed: rows are output columns N, each of length K.
    const { i: k, o: nOut } = dense;
    const base = (n.name || n.outputs[0]).replace(/[^\w.:/-]/g, '_');
    // A weight read by several layers is packed once and shared again.
    const key = weightKey(n);
    let packed = shared.get(key);
    if (!packed) {
      const q = packBlocks(transpose2d(dense.w, k, nOut), nOut, k, block, symmetric);
      packed = [
        ed.initializer(`${base}_weight_q4`, DataType.UINT8, [nOut, q.blocks, block / 2], q.packed),
        ed.initializer(`${base}_weight_scales`, DataType.FLOAT, [nOut * q.blocks], q.scales),
      ];
      if (!symmetric) packed.push(ed.initializer(`${base}_weight_zero_points`, DataType.UINT8, [q.zeroPoints!.length], q.zeroPoints!));
      shared.set(key, packed);
    }
    const inputs = [n.inputs[0], ...packed];
    const bias = dense.bias ? ed.initializer(`${base}_bias`, DataType.FLOAT, [nOut], dense.bias) : undefined;
    if (bias) {
      if (symmetric) inputs.push('');
      inputs.push('', bias); // g_idx is unused
    }
    const m = ed.node('MatMulNBits', inputs, [`${base}_q4`], 'com.microsoft');
    m.outputs = [n.outputs[0]];
    m.setInt('K', k);
    m.setInt('N', nOut);
    m.setInt('bits', 4);
    m.setInt('block_size', block);
    replaced.set(n, m);
    quantized.push(n.label);
  }
  g.nodes = g.nodes.map((n) => replaced.get(n) ?? n);
  ed.dropUnusedInitializers();
  ed.sort();
  return { model: out, quantized, skipped };
}

/** Quantizes rows of `b` ([n, k], row-major) into 4-bit blocks along k. */
export function packBlocks(b: Float32Array, n: number, k: number, block: number, symmetric: boolean) {
  const blocks = Math.ceil(k / block);
  const packed = new Uint8Array(n * blocks * (block / 2));
  const scales = new Float32Array(n * blocks);
  const zeroPoints = symmetric ? undefined : new Uint8Array(n * Math.ceil(blocks / 2));
  const codes = new Uint8Array(block);
  for (let r = 0; r < n; r++) {
    for (let bl = 0; bl < blocks; bl++) {
      const start = bl * block;
      const end = Math.min(k, start + block);
      let scale: number;
      let zp: number;
      if (symmetric) {
        let v = 0;
        for (let i = start; i < end; i++) if (Math.abs(b[r * k + i]) > Math.abs(v)) v = b[r * k + i];
        scale = v !== 0 ? v / -8 : 1;
        zp = 8;
      } else {
        let lo = 0;
        let hi = 0;
        for (let i = start; i < end; i++) {
          lo = Math.min(lo, b[r * k + i]);
          hi = Math.max(hi, b[r * k + i]);
        }
        scale = hi > lo ? (hi - lo) / 15 : 1;
        zp = Math.min(15, Math.max(0, Math.round(-lo / scale)));
      }
      codes.fill(zp); // K padding decodes to exactly 0
      for (let i = start; i < end; i++) codes[i - start] = Math.min(15, Math.max(0, Math.round(b[r * k + i] / scale) + zp));
      const o = (r * blocks + bl) * (block / 2);
      for (let i = 0; i < block; i += 2) packed[o + i / 2] = codes[i] | (codes[i + 1] << 4);
      scales[r * blocks + bl] = scale;
      if (zeroPoints) {
        const zi = r * Math.ceil(blocks / 2) + (bl >> 1);
        zeroPoints[zi] |= bl & 1 ? zp << 4 : zp;
      }
    }
  }
  return { packed, scales, zeroPoints, blocks };
}
