import { DataType } from '../../ir/dtype';
import { Node, type Model } from '../../ir/graph';
import { Tensor } from '../../ir/tensor';
import { cloneModel } from '../graph-edit';
import type { ExitPoint } from './points';

/**
 * Exit heads: a small classifier per exit point (BranchyNet, Teerapittayanon et al. 2016).
 * - A feature map [N, C, H, W] with C·H·W ≤ `flattenLimit` (small maps, where the layout
 *   still carries the information): Flatten → Gemm(C·H·W → K).
 * - A larger map: GlobalAveragePool → Flatten → Gemm(C → K), optionally after a 1×1 Conv
 *   C → `width` with Relu (`headWidth`).
 * - Features [N, F]: Gemm(F → K).
 * Gemm weights start uniform in ±1/√fan_in (PyTorch's nn.Linear default), seeded; biases 0.
 */

export interface HeadOptions {
  classes: number;
  /** Width of an optional 1×1 Conv + Relu before pooling (feature maps only). */
  headWidth?: number;
  /** Largest C·H·W read whole by a Flatten head (default 4096). */
  flattenLimit?: number;
  seed?: number;
}

export interface Head {
  exit: ExitPoint;
  /** 0-based exit number. */
  index: number;
  /** The head's logits tensor, [N, classes]. */
  logits: string;
  /** The head's trainable initializers. */
  weights: string[];
  /** The head's nodes, in order (they read only `exit.tensor` and their own weights). */
  nodes: Node[];
  /** MACs per sample of the head. */
  macs: number;
  /** A one-line description, e.g. "GlobalAveragePool → Gemm 64→10". */
  form: string;
}

function uniform(n: number, bound: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * bound;
  }
  return out;
}

const num = (d: unknown): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);

/** Returns a copy of `model` with one head per exit; each head's logits is an extra graph output. */
export function addHeads(model: Model, exits: ExitPoint[], opts: HeadOptions): { model: Model; heads: Head[] } {
  const m = cloneModel(model);
  const g = m.graph;
  const K = opts.classes;
  const heads: Head[] = [];
  exits.forEach((exit, k) => {
    const p = `early_exit_${k + 1}`;
    const nodes: Node[] = [];
    const weights: string[] = [];
    const addInit = (name: string, dims: number[], data: Float32Array) => {
      g.initializers.set(name, Tensor.fromArray(name, DataType.FLOAT, dims, data));
      weights.push(name);
    };
    let x = exit.tensor;
    let features: number;
    let macs = 0;
    let form: string;
    if (exit.shape.length === 4) {
      const [, C, H, W] = exit.shape.map(num);
      if (!C) throw new Error(`exit ${exit.tensor}: channel count unknown`);
      let c = C;
      const small = H !== undefined && W !== undefined && C * H * W <= (opts.flattenLimit ?? 4096);
      const parts: string[] = [];
      if (opts.headWidth && !small) {
        const w = opts.headWidth;
        addInit(`${p}.conv.weight`, [w, C, 1, 1], uniform(w * C, 1 / Math.sqrt(C), (opts.seed ?? 0) * 7919 + k * 31 + 1));
        addInit(`${p}.conv.bias`, [w], new Float32Array(w));
        const conv = new Node('Conv', [x, `${p}.conv.weight`, `${p}.conv.bias`], [`${p}/conv`], `${p}/Conv`);
        const relu = new Node('Relu', [`${p}/conv`], [`${p}/relu`], `${p}/Relu`);
        nodes.push(conv, relu);
        x = `${p}/relu`;
        macs += C * w * (H ?? 1) * (W ?? 1);
        c = w;
        parts.push(`Conv 1×1 ${C}→${w} + Relu`);
      }
      if (small) {
        features = C * H! * W!;
        parts.push('Flatten');
      } else {
        nodes.push(new Node('GlobalAveragePool', [x], [`${p}/pool`], `${p}/GlobalAveragePool`));
        x = `${p}/pool`;
        features = c;
        parts.push('GlobalAveragePool');
      }
      const flat = new Node('Flatten', [x], [`${p}/flat`], `${p}/Flatten`);
      flat.setInt('axis', 1);
      nodes.push(flat);
      x = `${p}/flat`;
      form = `${parts.join(' → ')} → Gemm ${features}→${K}`;
    } else {
      const F = num(exit.shape[1]);
      if (!F) throw new Error(`exit ${exit.tensor}: feature count unknown`);
      features = F;
      form = `Gemm ${F}→${K}`;
    }
    addInit(`${p}.weight`, [K, features], uniform(K * features, 1 / Math.sqrt(features), (opts.seed ?? 0) * 7919 + k * 31 + 2));
    addInit(`${p}.bias`, [K], new Float32Array(K));
    const gemm = new Node('Gemm', [x, `${p}.weight`, `${p}.bias`], [`${p}/logits`], `${p}/Gemm`);
    gemm.setInt('transB', 1);
    nodes.push(gemm);
    macs += features * K;
    g.nodes.push(...nodes);
    g.outputs.push({ name: `${p}/logits`, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [exit.shape[0], K] } });
    heads.push({ exit, index: k, logits: `${p}/logits`, weights, nodes, macs, form });
  });
  return { model: m, heads };
}
