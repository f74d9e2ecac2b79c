import type { Group } from './dependency';

/**
 * First-order Taylor importance of channel groups (Molchanov et al. 2019, "Importance
 * Estimation for Neural Network Pruning", eq. 4 and 6 with the absolute value instead of the
 * square): the loss change when a channel's parameters are zeroed is ≈ |Σ_s w_s·∂L/∂w_s|
 * over the channel's parameters s. A channel's parameters here are its output filters and
 * biases in every coupled producer and its per-channel parameters (BatchNormalization γ and
 * β, depthwise filters); weights without a gradient (running statistics, frozen tensors)
 * contribute nothing. Per batch b the sum is signed; the score is Σ_b |Σ_s w_s·g_{b,s}|, so
 * gradients that cancel across batches do not hide a channel that matters in each of them.
 */

/** Channel-axis view of a tensor of `dims`: `outer` blocks of [size, inner]. */
function axisView(dims: number[], axis: number): { outer: number; inner: number } {
  return {
    outer: dims.slice(0, axis).reduce((a, b) => a * b, 1),
    inner: dims.slice(axis + 1).reduce((a, b) => a * b, 1),
  };
}

/** Adds Σ w·g along `axis` (size = dims[axis]) into `acc` (length dims[axis]). */
function addAlongAxis(acc: Float64Array, w: ArrayLike<number>, g: ArrayLike<number>, dims: number[], axis: number): void {
  const size = dims[axis];
  const { outer, inner } = axisView(dims, axis);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < size; c++) {
      const base = (o * size + c) * inner;
      let s = 0;
      for (let k = 0; k < inner; k++) s += w[base + k] * g[base + k];
      acc[c] += s;
    }
  }
}

/**
 * The group's tensors along its channel axis: [initializer name, channel axis, dims]. Only
 * tensors whose channel axis has exactly the group's size (whole-group members) are used.
 */
export function groupParameters(g: Group): Array<{ name: string; axis: number; dims: number[]; values: () => Float32Array }> {
  const out: Array<{ name: string; axis: number; dims: number[]; values: () => Float32Array }> = [];
  const add = (t: { name: string; dims: number[]; toFloat32(): Float32Array }, axis: number) => {
    if (t.dims[axis] === g.size && !out.some((p) => p.name === t.name)) out.push({ name: t.name, axis, dims: t.dims, values: () => t.toFloat32() });
  };
  for (const m of g.members) {
    if (m.kind === 'producer') {
      add(m.weight, m.axis);
      if (m.bias) add(m.bias, 0);
    } else if (m.kind === 'params') {
      for (const t of m.tensors) add(t.tensor, t.axis);
    }
  }
  return out;
}

/** Σ_s w_s·g_s per channel of one group for one batch (signed). Missing gradients count as 0. */
export function taylorChannelSums(g: Group, grads: ReadonlyMap<string, ArrayLike<number>>, weights?: ReadonlyMap<string, ArrayLike<number>>): Float64Array {
  const acc = new Float64Array(g.size);
  for (const p of groupParameters(g)) {
    const grad = grads.get(p.name);
    if (!grad) continue;
    addAlongAxis(acc, weights?.get(p.name) ?? p.values(), grad, p.dims, p.axis);
  }
  return acc;
}

/**
 * Accumulates Taylor scores over batches: call `add` with each batch's gradients (weight
 * name → ∂L/∂w of that batch, same layout as the weight), then `scores`.
 */
export class TaylorAccumulator {
  private readonly totals = new Map<Group, Float64Array>();
  private readonly weights = new Map<string, Float32Array>();
  private batches = 0;

  constructor(private readonly groups: Group[]) {
    for (const g of groups) {
      this.totals.set(g, new Float64Array(g.size));
      for (const p of groupParameters(g)) if (!this.weights.has(p.name)) this.weights.set(p.name, p.values());
    }
  }

  /** Names of every weight a score depends on: the weights whose gradients are needed. */
  get weightNames(): string[] {
    return [...this.weights.keys()];
  }

  add(grads: ReadonlyMap<string, ArrayLike<number>>): void {
    for (const g of this.groups) {
      const s = taylorChannelSums(g, grads, this.weights);
      const t = this.totals.get(g)!;
      for (let c = 0; c < g.size; c++) t[c] += Math.abs(s[c]);
    }
    this.batches++;
  }

  /** Per group: the mean over batches of |Σ w·g| per channel, or why there is no score. */
  scores(): Map<Group, Float64Array | string> {
    const out = new Map<Group, Float64Array | string>();
    for (const g of this.groups) {
      if (!groupParameters(g).length) out.set(g, 'the group has no trainable per-channel weights for a Taylor score');
      else out.set(g, this.totals.get(g)!.map((v) => v / Math.max(1, this.batches)));
    }
    return out;
  }
}
