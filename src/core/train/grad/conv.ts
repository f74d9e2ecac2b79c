import { DataType } from '../../ir/dtype';
import { Tensor } from '../../ir/tensor';
import { registerGradient, type GradContext } from './registry';

/**
 * Conv and ConvTranspose (ONNX spec; the backward forms of Dumoulin & Visin, "A guide to
 * convolution arithmetic", 2016):
 * - dX of Conv is a ConvTranspose of dY with the same strides, pads, dilations and groups,
 *   and output_padding = (H + p_begin + p_end − ((k−1)·d + 1)) mod s, so that it has X's size;
 *   for 1×1 convolutions one batched MatMul Wᵀ·dY, for stride-1 depthwise ones a depthwise
 *   Conv with the flipped kernel (both faster in ORT than a ConvTranspose).
 * - dW of a 1×1 stride-1 convolution is one batched MatMul of X and dY (one Gemm at small
 *   spatial sizes); of a depthwise one, one dot product (or Mul + ReduceSum) per kernel tap,
 *   or at small 2-D stride-1 sizes one channel-batched MatMul per kernel row;
 *   of other group-1 ones, k² `Slice`s (im2col) and one batched MatMul. The windows are
 *   Slices of the padded input, at stride s > 1 (2-D) of its SpaceToDepth. Otherwise dW is
 *   one Conv of X (batch and channel axes swapped) with dY as its kernel, at stride d and
 *   dilation s. MC_TRAIN_DW=slices forces the Slice form everywhere, MC_TRAIN_DW=conv the
 *   Conv form (measurement only).
 * - dB sums dY over the batch and spatial axes.
 */

interface Geometry {
  spatial: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
  out: number[];
}

/** Resolves auto_pad and explicit pads against the static spatial input size (ONNX Conv). */
function convGeometry(c: GradContext, xName: string, kernel: number[]): Geometry {
  const n = c.node;
  const xs = c.shape(xName);
  if (!xs) c.refuse(`the shape of its input '${xName}' is unknown`);
  const spatial = xs.slice(2).map((d, i) => {
    if (typeof d !== 'number') c.refuse(`spatial dimension ${i} of '${xName}' is not a fixed number`);
    return d;
  });
  const r = spatial.length;
  const strides = n.ints('strides') ?? Array(r).fill(1);
  const dilations = n.ints('dilations') ?? Array(r).fill(1);
  const autoPad = n.str('auto_pad', 'NOTSET');
  let padsBegin: number[];
  let padsEnd: number[];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    padsBegin = [];
    padsEnd = [];
    spatial.forEach((h, i) => {
      const out = Math.ceil(h / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - h);
      const small = Math.floor(total / 2);
      padsBegin.push(autoPad === 'SAME_UPPER' ? small : total - small);
      padsEnd.push(autoPad === 'SAME_UPPER' ? total - small : small);
    });
  } else if (autoPad === 'VALID') {
    padsBegin = Array(r).fill(0);
    padsEnd = Array(r).fill(0);
  } else {
    const p = n.ints('pads') ?? Array(2 * r).fill(0);
    padsBegin = p.slice(0, r);
    padsEnd = p.slice(r);
  }
  const out = spatial.map((h, i) => Math.floor((h + padsBegin[i] + padsEnd[i] - ((kernel[i] - 1) * dilations[i] + 1)) / strides[i]) + 1);
  return { spatial, kernel, strides, dilations, padsBegin, padsEnd, out };
}

function kernelOf(c: GradContext, w: string): number[] {
  const attr = c.node.ints('kernel_shape');
  if (attr) return attr;
  const ws = c.shape(w);
  if (!ws || ws.slice(2).some((d) => typeof d !== 'number')) c.refuse(`the kernel shape of '${w}' is unknown`);
  return ws.slice(2) as number[];
}

/**
 * ∂L/∂W of a convolution whose input is `x` (C channels) and output gradient `dy`
 * (M channels), as [M, C/g, k...]: Σ over batch and output pixels of dy · window(x).
 */
export function convWeightGrad(c: GradContext, x: string, dy: string, channels: number, outChannels: number, group: number, geo: Geometry): string {
  const K = geo.kernel.reduce((a, b) => a * b, 1);
  const L = geo.out.reduce((a, b) => a * b, 1);
  const trivial = K === 1 && geo.strides.every((s) => s === 1) && geo.out.every((o, i) => o === geo.spatial[i] + geo.padsBegin[i] + geo.padsEnd[i]);
  const depthwise = group > 1 && channels === group && outChannels === group;
  const windowsCheap = geo.strides.every((s) => s === 1) || phaseSplit(geo);
  const force = process.env.MC_TRAIN_DW;
  if (trivial && group === 1 && channels * outChannels >= L * (channels + outChannels)) return pointwiseWeightGradGemm(c, x, dy, channels, outChannels, L);
  if (depthwise && !trivial && force !== 'conv' && (windowsCheap || force === 'slices')) return depthwiseWeightGradByTaps(c, x, dy, channels, geo);
  // Group 1: the Slice form's per-sample MatMul [C·K, L]×[L, M] is a better GEMM than the
  // Conv form's C GEMMs of width K (measured 4% faster per SqueezeNet 1.1 step at stride 1).
  const sliceForm = force === 'slices' || (group === 1 && windowsCheap && force !== 'conv');
  if (!trivial && !sliceForm) return convWeightGradByConv(c, x, dy, channels, group, geo);
  let cols: string;
  if (trivial) cols = padded(c, x, geo);
  else {
    const windows = kernelWindows(c, x, channels, geo);
    cols = K === 1 ? windows[0] : c.op('Concat', windows.map((w) => c.op('Unsqueeze', [w, c.ints([2])])), { axis: 2 });
  }
  const cg = channels / group;
  const mg = outChannels / group;
  if (cg === 1 && mg === 1 && group > 1) {
    // Depthwise: dW[c, k] = Σ_{n,l} cols[n, c, k, l]·dy[n, c, l].
    const cr = c.op('Reshape', [cols, c.ints([0, channels, K, L])]);
    const dr = c.op('Reshape', [dy, c.ints([0, channels, 1, L])]);
    const s = c.op('ReduceSum', [c.op('Mul', [cr, dr]), c.ints([0, 3])], { keepdims: 0 });
    return c.op('Reshape', [s, c.ints([outChannels, 1, ...geo.kernel])]);
  }
  // Batched over (n, g), the side with more rows first: MLAS packs the second operand (a copy
  // of it per sample) and reuses it for every row of the first. dY·colsᵀ ([mg, L]×[L, cg·K])
  // needs no final transpose; on MobileNetV2's 16→96 1×1 layer at 112² it took 9 ms against
  // 19 ms for cols·dYᵀ, on 24→144 at 56² 4.9 against 6.2 ms.
  const cr = c.op('Reshape', [cols, c.ints([0, group, cg * K, L])]);
  const dr = c.op('Reshape', [dy, c.ints([0, group, mg, L])]);
  const lhsIsDy = mg >= cg * K;
  const [a, b] = lhsIsDy ? [dr, cr] : [cr, dr];
  const prod = c.op('ReduceSum', [c.op('MatMul', [a, c.op('Transpose', [b], { perm: [0, 1, 3, 2] })]), c.ints([0])], { keepdims: 0 });
  const t = lhsIsDy ? prod : c.op('Transpose', [prod], { perm: [0, 2, 1] });
  return c.op('Reshape', [t, c.ints([outChannels, cg, ...geo.kernel])]);
}

/**
 * Whether the windows of a strided convolution are taken from a `SpaceToDepth` of the padded
 * input (2-D, one stride s > 1 on both axes): each of the s² phases is then a contiguous
 * block of channels, and every kernel tap a unit-stride Slice of one phase. ORT's strided
 * Slice and a Reshape + Transpose split both gather element by element: on MobileNetV2's
 * 96×112² stride-2 layer the nine strided Slices took 208–228 ms, the Transpose split
 * 66–95 ms, SpaceToDepth 22–43 ms and its nine unit-stride Slices 13–17 ms (ORT itself
 * rewrites s² strided phase Slices + Concat into one SpaceToDepth).
 */
function phaseSplit(geo: Geometry): boolean {
  return geo.spatial.length === 2 && geo.strides[0] === geo.strides[1] && geo.strides[0] > 1;
}

/**
 * The input window of each kernel tap (row-major over the kernel) of `x` (C = `channels`),
 * each [N, C, out…]: window k holds X_pad[n, c, l·s + k·d]. At stride 1, unit-stride `Slice`s of the padded
 * input; with a phase split (see `phaseSplit`), Slices of its SpaceToDepth, where tap
 * position p = k·d lies in phase p mod s at offset ⌊p/s⌋; otherwise strided Slices.
 */
function kernelWindows(c: GradContext, x: string, channels: number, geo: Geometry): string[] {
  const r = geo.spatial.length;
  const K = geo.kernel.reduce((a, b) => a * b, 1);
  const axes = Array.from({ length: r }, (_, a) => a + 2);
  const unit = geo.strides.every((v) => v === 1);
  const split = phaseSplit(geo);
  let xp: string;
  if (split) {
    // Pad (or crop) each axis to s·q, q = ⌊(k−1)·d/s⌋ + out rows per phase, then split.
    const s = geo.strides[0];
    const total = geo.kernel.map((k, a) => s * (Math.floor(((k - 1) * geo.dilations[a]) / s) + geo.out[a]));
    const padEnd = total.map((t, a) => Math.max(0, t - geo.spatial[a] - geo.padsBegin[a]));
    xp = c.op('Pad', [x, c.ints([0, 0, ...geo.padsBegin, 0, 0, ...padEnd])]);
    if (total.some((t, a) => geo.spatial[a] + geo.padsBegin[a] + padEnd[a] > t)) xp = c.op('Slice', [xp, c.ints([0, 0]), c.ints(total), c.ints(axes)]);
    xp = c.op('SpaceToDepth', [xp], { blocksize: s });
  } else xp = padded(c, x, geo);
  const windows: string[] = [];
  const idx = Array(r).fill(0);
  for (let k = 0; k < K; k++) {
    let rem = k;
    for (let a = r - 1; a >= 0; a--) {
      idx[a] = rem % geo.kernel[a];
      rem = Math.floor(rem / geo.kernel[a]);
    }
    const pos = idx.map((i, a) => i * geo.dilations[a]);
    if (split) {
      const s = geo.strides[0];
      // SpaceToDepth puts phase (ph, pw) in channels [(ph·s + pw)·C, (ph·s + pw + 1)·C).
      const phase = pos.reduce((acc, p) => acc * s + (p % s), 0);
      const off = pos.map((p) => Math.floor(p / s));
      windows.push(c.op('Slice', [xp, c.ints([phase * channels, ...off]), c.ints([(phase + 1) * channels, ...off.map((o, a) => o + geo.out[a])]), c.ints([1, ...axes])]));
      continue;
    }
    const ends = pos.map((v, a) => v + geo.strides[a] * (geo.out[a] - 1) + 1);
    const ins = [xp, c.ints(pos), c.ints(ends), c.ints(axes)];
    windows.push(c.op('Slice', unit ? ins : [...ins, c.ints(geo.strides)]));
  }
  return windows;
}

/** X with the convolution's pads applied (X itself when there are none). */
function padded(c: GradContext, x: string, geo: Geometry): string {
  const anyPad = geo.padsBegin.some((p) => p !== 0) || geo.padsEnd.some((p) => p !== 0);
  return anyPad ? c.op('Pad', [x, c.ints([0, 0, ...geo.padsBegin, 0, 0, ...geo.padsEnd])]) : x;
}

/**
 * ∂L/∂W of a 1×1 stride-1 convolution (group 1) as ONE Gemm contracting over batch and
 * pixels: dW = dY′·X′ᵀ with X′ = X as [C, N·L] and dY′ = dY as [M, N·L]. Chosen when the
 * per-sample products of the batched form (N·M·C values) would outweigh the two transposes
 * (N·L·(C + M) values), i.e. at small spatial sizes: on MobileNetV2's 7×7 layers it
 * replaces 16 MatMuls with K = 49 and a ReduceSum over 16 copies of dW.
 */
function pointwiseWeightGradGemm(c: GradContext, x: string, dy: string, channels: number, outChannels: number, pixels: number): string {
  const flat = (t: string, ch: number) => c.op('Reshape', [c.op('Transpose', [c.op('Reshape', [t, c.ints([0, ch, pixels])])], { perm: [1, 0, 2] }), c.ints([ch, -1])]);
  const g = c.op('Gemm', [flat(dy, outChannels), flat(x, channels)], { transB: 1 });
  return c.op('Reshape', [g, c.ints([outChannels, channels, ...Array(c.shape(x)!.length - 2).fill(1)])]);
}

/** Output pixels per sample from which a depthwise tap is one dot product (see below). */
const DOT_MIN_PIXELS = 512;

/**
 * ∂L/∂W of a depthwise convolution, one kernel tap at a time:
 * dW[c, k] = Σ_n Σ_l window_k(X)[n, c, l]·dY[n, c, l] (windows from `kernelWindows`). With
 * at least DOT_MIN_PIXELS output pixels per sample, each tap is one batched MatMul
 * [N, C, 1, L]×[N, C, L, 1] whose transposed operand ORT fuses away (a vector dot product
 * per sample and channel, 1.3–1.4x faster than Mul + ReduceSum on MobileNetV2's 28²–112²
 * layers); below it the per-call cost of N·C tiny products loses (3x slower at 7²): 2-D
 * stride-1 layers then take `depthwiseWeightGradByRows`, others a Mul and a ReduceSum over
 * the pixels per tap. One ReduceSum over the batch follows. Measured 1.3–1.4x faster than
 * the grouped-Conv form at stride 1 (ORT's im2col of a kernel as large as dY dominates
 * there) and 1.2–1.7x at stride 2 (through the SpaceToDepth phase split). MC_TRAIN_DW=conv
 * forces the Conv form.
 */
function depthwiseWeightGradByTaps(c: GradContext, x: string, dy: string, channels: number, geo: Geometry): string {
  const axes = Array.from({ length: geo.spatial.length }, (_, a) => a + 2);
  const L = geo.out.reduce((a, b) => a * b, 1);
  if (L < DOT_MIN_PIXELS && geo.spatial.length === 2 && geo.strides.every((v) => v === 1)) {
    const byRows = depthwiseWeightGradByRows(c, x, dy, channels, geo);
    if (byRows) return byRows;
  }
  const windows = kernelWindows(c, x, channels, geo);
  let taps: string[];
  if (L >= DOT_MIN_PIXELS) {
    const flat = c.ints([0, channels, 1, L]);
    const dyT = c.op('Transpose', [c.op('Reshape', [dy, flat])], { perm: [0, 1, 3, 2] });
    taps = windows.map((w) => c.op('MatMul', [c.op('Reshape', [w, flat]), dyT]));
  } else {
    taps = windows.map((w) => c.op('Unsqueeze', [c.op('ReduceSum', [c.op('Mul', [w, dy]), c.ints(axes)], { keepdims: 0 }), c.ints([2])]));
  }
  const s = c.op('ReduceSum', [c.op('Concat', taps, { axis: 2 }), c.ints([0])], { keepdims: 0 });
  return c.op('Reshape', [s, c.ints([channels, 1, ...geo.kernel])]);
}

/** Largest diagonal-selector constant (floats) `depthwiseWeightGradByRows` builds. */
const MAX_DIAGONAL_FLOATS = 1 << 16;

/**
 * ∂L/∂W of a 2-D stride-1 depthwise convolution with few output pixels, one kernel row at a
 * time, channel-major: for kernel row i, T_i[c] = A_iᵀ·D[c] with A_i = the rows i·d_h … of
 * the padded input as [C, N·H_out, W_pad] and D = dY as [C, N·H_out, W_out], a batched
 * MatMul over channels contracting batch and rows; dW[c, i, j] is the sum of T_i[c]'s j-th
 * diagonal (entries (q + j·d_w, q)), read by one MatMul with a constant 0/1 selector.
 * C GEMMs instead of N·C dot products or 3k² passes of Mul + ReduceSum: on MobileNetV2's
 * 7² and 14² layers 1.2–1.6x faster than the per-tap forms. Undefined when the selector
 * would exceed MAX_DIAGONAL_FLOATS.
 */
function depthwiseWeightGradByRows(c: GradContext, x: string, dy: string, channels: number, geo: Geometry): string | undefined {
  const [kh, kw] = geo.kernel;
  const [dh, dw] = geo.dilations;
  const [ho, wo] = geo.out;
  const wp = wo + (kw - 1) * dw;
  if (wp * wo * kw > MAX_DIAGONAL_FLOATS) return undefined;
  const xp = c.op('Pad', [c.op('Transpose', [x], { perm: [1, 0, 2, 3] }), c.ints([0, 0, geo.padsBegin[0], geo.padsBegin[1], 0, 0, geo.padsEnd[0], geo.padsEnd[1]])]);
  const d = c.op('Reshape', [c.op('Transpose', [dy], { perm: [1, 0, 2, 3] }), c.ints([channels, -1, wo])]);
  const rows = Array.from({ length: kh }, (_, i) => {
    const a = c.op('Reshape', [c.op('Slice', [xp, c.ints([i * dh]), c.ints([i * dh + ho]), c.ints([2])]), c.ints([channels, -1, wp])]);
    return c.op('Unsqueeze', [c.op('MatMul', [c.op('Transpose', [a], { perm: [0, 2, 1] }), d]), c.ints([1])]);
  });
  const t = c.op('Reshape', [c.op('Concat', rows, { axis: 1 }), c.ints([channels, kh, wp * wo])]);
  const selector = new Float32Array(wp * wo * kw);
  for (let q = 0; q < wo; q++) for (let j = 0; j < kw; j++) selector[((q + j * dw) * wo + q) * kw + j] = 1;
  const diagonals = c.op('Constant', [], { value: Tensor.fromArray('value', DataType.FLOAT, [wp * wo, kw], selector) });
  return c.op('Reshape', [c.op('MatMul', [t, diagonals]), c.ints([channels, 1, kh, kw])]);
}

/**
 * The same ∂L/∂W as one convolution whose kernel is dY (batch and channel axes swapped):
 * dW[m, c, k] = Σ_{n,l} X_pad[n, c, l·s + k·d]·dY[n, m, l], i.e. a convolution of X with dY
 * at stride d and dilation s. For groups, each (sample, group) pair is its own group.
 */
function convWeightGradByConv(c: GradContext, x: string, dy: string, channels: number, group: number, geo: Geometry): string {
  const r = geo.spatial.length;
  const cg = channels / group;
  // Kernel extent the convolution yields along each axis (≥ k: the tail beyond k is dropped).
  const kFull = geo.spatial.map((h, i) => Math.floor((h + geo.padsBegin[i] + geo.padsEnd[i] - ((geo.out[i] - 1) * geo.strides[i] + 1)) / geo.dilations[i]) + 1);
  const attrs = {
    strides: geo.dilations,
    dilations: geo.strides,
    pads: [...geo.padsBegin, ...geo.padsEnd],
  };
  const crop = (t: string, lead: number) =>
    kFull.some((k, i) => k !== geo.kernel[i])
      ? c.op('Slice', [t, c.ints(Array(r).fill(0)), c.ints(geo.kernel), c.ints(Array.from({ length: r }, (_, i) => i + lead))])
      : t;
  const spatialPerm = Array.from({ length: r }, (_, i) => i + 2);
  // Input [cg, g·N, H...] (channel g·N + n), kernel dYᵀ [M, N, Ho...], g groups: the
  // convolution sums over the batch inside each group and keeps c′ on its batch axis.
  const xr =
    group === 1
      ? c.op('Transpose', [x], { perm: [1, 0, ...spatialPerm] })
      : c.op('Reshape', [
          c.op('Transpose', [c.op('Reshape', [x, c.ints([0, group, cg, ...geo.spatial])])], { perm: [2, 1, 0, ...Array.from({ length: r }, (_, i) => i + 3)] }),
          c.ints([cg, -1, ...geo.spatial]),
        ]);
  const dt = c.op('Transpose', [dy], { perm: [1, 0, ...spatialPerm] });
  const g = crop(c.op('Conv', [xr, dt], { ...attrs, group }), 2);
  return c.op('Transpose', [g], { perm: [1, 0, ...spatialPerm] });
}

/** 1×1 convolution, stride 1, no pads, group 1: dX = Wᵀ·dY as one batched MatMul. */
function pointwiseInputGrad(c: GradContext, dy: string, w: string, geo: Geometry, group: number): string | undefined {
  const K = geo.kernel.reduce((a, b) => a * b, 1);
  if (group !== 1 || K !== 1 || geo.strides.some((v) => v !== 1) || geo.padsBegin.some((v) => v !== 0) || geo.padsEnd.some((v) => v !== 0)) return undefined;
  const m = channelsOf(c, c.y(0), 'output');
  const wt = c.op('Transpose', [c.op('Reshape', [w, c.ints([m, -1])])], { perm: [1, 0] });
  const g = c.op('MatMul', [wt, c.op('Reshape', [dy, c.ints([0, m, -1])])]);
  return c.op('Reshape', [g, c.shapeOf(c.x(0))]);
}

/**
 * Depthwise convolution (group = C = M) at stride 1: dX is a depthwise Conv of dY with the
 * spatially flipped kernel, which ORT runs with its fast depthwise kernel instead of a
 * grouped ConvTranspose. Strided ones keep the ConvTranspose: zero-interleaving dY with
 * `Pad` first measured no faster on MobileNetV2. Undefined when the form does not apply.
 */
function depthwiseInputGrad(c: GradContext, dy: string, w: string, geo: Geometry, group: number): string | undefined {
  const ch = channelsOf(c, c.x(0), 'input');
  if (group === 1 || group !== ch || channelsOf(c, c.y(0), 'output') !== ch || geo.strides.some((v) => v !== 1)) return undefined;
  const r = geo.spatial.length;
  const span = geo.kernel.map((k, i) => (k - 1) * geo.dilations[i]);
  const begin = span.map((sp, i) => sp - geo.padsBegin[i]);
  const end = span.map((sp, i) => sp - geo.padsEnd[i]);
  if (begin.some((v) => v < 0) || end.some((v) => v < 0)) return undefined;
  const axes = Array.from({ length: r }, (_, i) => i + 2);
  const flipped = c.op('Slice', [w, c.ints(Array(r).fill(-1)), c.ints(Array(r).fill(-(2 ** 53 - 1))), c.ints(axes), c.ints(Array(r).fill(-1))]);
  return c.op('Conv', [dy, flipped], { group: ch, kernel_shape: geo.kernel, dilations: geo.dilations, pads: [...begin, ...end] });
}

function channelsOf(c: GradContext, name: string, what: string): number {
  const s = c.shape(name);
  const d = s?.[1];
  if (typeof d !== 'number') c.refuse(`the channel count of its ${what} '${name}' is unknown`);
  return d;
}

function biasGrad(c: GradContext, dy: string, rank: number): string {
  return c.op('ReduceSum', [dy, c.ints([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)])], { keepdims: 0 });
}

registerGradient('Conv', (c: GradContext) => {
  const dy = c.dy(0)!;
  const [x, w] = [c.x(0), c.x(1)];
  const kernel = kernelOf(c, w);
  const geo = convGeometry(c, x, kernel);
  const group = c.node.int('group', 1);
  const r = geo.spatial.length;
  const grads: Array<string | undefined> = [];
  if (c.needs(0)) {
    const outputPadding = geo.spatial.map(
      (h, i) => h + geo.padsBegin[i] + geo.padsEnd[i] - ((geo.out[i] - 1) * geo.strides[i] + (geo.kernel[i] - 1) * geo.dilations[i] + 1),
    );
    grads[0] = pointwiseInputGrad(c, dy, w, geo, group) ?? depthwiseInputGrad(c, dy, w, geo, group) ?? c.op('ConvTranspose', [dy, w], {
      strides: geo.strides,
      dilations: geo.dilations,
      pads: [...geo.padsBegin, ...geo.padsEnd],
      group,
      kernel_shape: kernel,
      output_padding: outputPadding,
    });
  }
  if (c.needs(1)) grads[1] = convWeightGrad(c, x, dy, channelsOf(c, x, 'input'), channelsOf(c, c.y(0), 'output'), group, geo);
  if (c.x(2) && c.needs(2)) grads[2] = biasGrad(c, dy, r + 2);
  return grads;
});

registerGradient('ConvTranspose', (c: GradContext) => {
  const n = c.node;
  if (n.ints('output_shape') || n.str('auto_pad', 'NOTSET') !== 'NOTSET') {
    c.refuse('only explicit pads are supported (no output_shape or auto_pad)');
  }
  const dy = c.dy(0)!;
  const [x, w] = [c.x(0), c.x(1)];
  const kernel = kernelOf(c, w);
  const group = n.int('group', 1);
  const xs = c.shape(x);
  if (!xs) c.refuse(`the shape of its input '${x}' is unknown`);
  const r = xs.length - 2;
  const strides = n.ints('strides') ?? Array(r).fill(1);
  const dilations = n.ints('dilations') ?? Array(r).fill(1);
  const pads = n.ints('pads') ?? Array(2 * r).fill(0);
  const grads: Array<string | undefined> = [];
  if (c.needs(0)) grads[0] = c.op('Conv', [dy, w], { strides, dilations, pads, group, kernel_shape: kernel });
  if (c.needs(1)) {
    // The adjoint view: a convolution of dY (output channels) whose "output gradient" is X.
    const ys = c.shape(c.y(0));
    const ySpatial = (ys ?? []).slice(2);
    if (ySpatial.length !== r || ySpatial.some((d) => typeof d !== 'number')) c.refuse(`the spatial size of its output is unknown`);
    const xSpatial = xs.slice(2);
    if (xSpatial.some((d) => typeof d !== 'number')) c.refuse(`the spatial size of '${x}' is unknown`);
    const geo: Geometry = {
      spatial: ySpatial as number[],
      kernel,
      strides,
      dilations,
      padsBegin: pads.slice(0, r),
      padsEnd: pads.slice(r),
      out: xSpatial as number[],
    };
    grads[1] = convWeightGrad(c, dy, x, channelsOf(c, c.y(0), 'output'), channelsOf(c, x, 'input'), group, geo);
  }
  if (c.x(2) && c.needs(2)) grads[2] = biasGrad(c, dy, r + 2);
  return grads;
});
