/**
 * What every format's structured pruning shares below the policy: how many channels a ratio
 * removes (with the rounding CPU kernels like), and dropping positions along one axis of a
 * dense float32 tensor.
 */

/** Drops `positions` along `axis` of a row-major tensor; returns the new dims and a new array. */
export function removeAlongAxis(t: { dims: number[]; data: Float32Array }, axis: number, positions: Set<number>): { dims: number[]; data: Float32Array } {
  const dims = [...t.dims];
  const src = t.data;
  const n = dims[axis];
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!positions.has(i)) keep.push(i);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * keep.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const k of keep) {
      const base = (a * n + k) * inner;
      out.set(src.subarray(base, base + inner), o);
      o += inner;
    }
  }
  dims[axis] = keep.length;
  return { dims, data: out };
}

/**
 * How many of `size` channels to remove at `ratio`, keeping the count a multiple of `roundTo`
 * for groups of at least 2× that size (CPU kernels work in blocks of 8 channels), and at
 * least one channel.
 */
export function removeCount(size: number, ratio: number, roundTo = 8): number {
  let keep = size - Math.floor(size * ratio + 1e-9);
  if (roundTo > 1 && size >= 2 * roundTo) keep = Math.min(size, Math.max(roundTo, Math.round(keep / roundTo) * roundTo));
  return Math.max(0, Math.min(size - 1, size - keep));
}

/**
 * Channels to remove now from a group that had `size0` channels before step 1 and has `size`
 * now, so that the cumulative removed share reaches `cumulative` of the ORIGINAL size (counted
 * and rounded on `size0`): increments on already-rounded counts would stop short of the final
 * ratio. Every format's multi-step pruning counts this way.
 */
export function stepRemoveCount(size0: number, size: number, cumulative: number, roundTo = 8): number {
  return Math.min(size - 1, Math.max(0, size - (size0 - removeCount(size0, cumulative, roundTo))));
}
