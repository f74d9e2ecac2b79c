import { strict as assert } from 'assert';
import * as path from 'path';
import { openModel } from '../../src/core/formats/registry';
import { readNpy } from '../../src/core/runtime/data/npy';
import { DataType } from '../../src/core/ir/dtype';
import type { HostTensor } from '../../src/core/runtime/session';
import { inferShapes } from '../../src/core/ir/shape-inference';
import { ModelError, UsageError } from '../../src/core/errors';
import type { Model } from '../../src/core/ir/graph';
import { ModelSession } from '../../src/core/runtime/session';
import {
  Optimizer,
  TrainingSession,
  accumulateGradients,
  buildTrainingGraph,
  channelSaliency,
  fit,
  floatWeights,
  labelsTensor,
  readCheckpoint,
  selectTrainable,
  shuffled,
  tensorSampleSet,
  withWeights,
  writeCheckpoint,
  type BatchNormMode,
  type EpochRecord,
  type LossTerm,
  type OptimizerConfig,
  type TrainProgress,
} from '../../src/core/train';
import { ModelBuilder, randomFloats, rng } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { assertNoStack, cli } from './cli.test';

const REF = path.join(FIXTURES, 'grad_ref');

function npyFloat64(file: string): { shape: number[]; data: Float64Array } {
  const a = readNpy(file);
  const b = new Uint8Array(a.data.length);
  b.set(a.data);
  if (a.dtype === DataType.DOUBLE) return { shape: a.shape, data: new Float64Array(b.buffer) };
  if (a.dtype === DataType.FLOAT) return { shape: a.shape, data: Float64Array.from(new Float32Array(b.buffer)) };
  throw new Error(`unexpected dtype in ${file}`);
}

/** max |a − b| / max |b|: the relative error of a whole tensor. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

/** The first n digits samples with labels (y + 1) mod 10, as grad_ref/index.json says. */
function refBatch(n: number): Record<string, HostTensor> {
  const x = readNpy(path.join(FIXTURES, 'digits_train_x.npy'));
  const y = readNpy(path.join(FIXTURES, 'digits_train_y.npy'));
  const xb = new Uint8Array(n * 64 * 4);
  xb.set(x.data.subarray(0, n * 64 * 4));
  const yb = new Uint8Array(n * 8);
  yb.set(y.data.subarray(0, n * 8));
  const labels = Array.from(new BigInt64Array(yb.buffer), (v) => (Number(v) + 1) % 10);
  return { input: { dtype: DataType.FLOAT, dims: [n, 1, 8, 8], data: new Float32Array(xb.buffer) }, labels: labelsTensor(labels) };
}

describe('train: gradients against PyTorch autograd (grad_ref)', function () {
  this.timeout(60000);
  const index = JSON.parse(require('fs').readFileSync(path.join(REF, 'index.json'), 'utf8')) as {
    models: Record<string, { loss: number; grads: Record<string, string>; logits: string }>;
  };
  for (const name of ['digits_cnn', 'digits_mlp']) {
    it(`${name}: loss, logits and every weight gradient within 1e-3 relative error`, async () => {
      const model = openModel(path.join(FIXTURES, `${name}.onnx`));
      const ref = index.models[name];
      const weights = floatWeights(model);
      assert.deepEqual(new Set(weights), new Set(Object.keys(ref.grads)));
      const tg = buildTrainingGraph(model, { losses: [{ kind: 'cross-entropy', logits: 'output', labels: 'labels' }], trainable: weights, extraOutputs: ['output'] });
      const s = await TrainingSession.create(tg);
      try {
        const params = new Map(weights.map((w) => [w, model.graph.initializers.get(w)!.toFloat32()]));
        const r = await s.step(refBatch(64), params, ['output']);
        assert.ok(Math.abs(r.loss - ref.loss) / ref.loss < 1e-5, `loss ${r.loss} vs ${ref.loss}`);
        const logits = npyFloat64(path.join(REF, ref.logits));
        assert.ok(relErr(r.extra.output.data as Float32Array, logits.data) < 1e-4);
        const errs: Record<string, number> = {};
        for (const [w, file] of Object.entries(ref.grads)) {
          const g = npyFloat64(path.join(REF, file));
          const mine = r.grads.get(w)!;
          assert.equal(mine.length, g.data.length, w);
          errs[w] = relErr(mine, g.data);
        }
        if (process.env.MC_TRAIN_REPORT) console.log(name, JSON.stringify(errs));
        for (const [w, e] of Object.entries(errs)) assert.ok(e < 1e-3, `${w}: relative error ${e}`);
      } finally {
        await s.release();
      }
    });
  }
});

// ---- finite differences: every gradient rule, one case per attribute variant ----------------

/** Values in ±[0.1, 1] (away from the kinks of Relu/Clip/MaxPool ties at the step used). */
function spaced(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() < 0.5 ? -1 : 1) * (0.1 + 0.9 * r());
  return a;
}

/** Distinct values (a shuffled ladder with step 0.05), so a max never changes under ±h. */
function distinct(n: number, seed: number): Float32Array {
  const order = shuffled(n, seed, 0);
  return Float32Array.from(order, (k) => (k - n / 2) * 0.05);
}

interface FdCase {
  op: string;
  variant: string;
  build(b: ModelBuilder): string[];
  /** Initializers not to differentiate (indices, shapes). */
  frozen?: string[];
  /** Step of the central difference (default H). */
  h?: number;
  /** Losses (default: MSE of each output against a random target) and their extra feeds. */
  losses?: LossTerm[];
  feeds?: Record<string, HostTensor>;
  batchNorm?: BatchNormMode;
  /** Op types the training graph must contain (the gradient form the variant names). */
  forms?: string[];
}

const H = 1e-2;

/** Max relative error of the engine's gradients against central differences of its own loss. */
async function fdCheck(c: FdCase): Promise<number> {
  const b = new ModelBuilder(17);
  const outs = c.build(b);
  const model = b.build();
  const shapes = inferShapes(model).types;
  const losses: LossTerm[] = c.losses ?? outs.map((o, i) => ({ kind: 'mse', prediction: o, target: `target${i}` }));
  const trainable = floatWeights(model).filter((w) => !(c.frozen ?? []).includes(w));
  const tg = buildTrainingGraph(model, { losses, trainable, batchNorm: c.batchNorm });
  for (const op of c.forms ?? []) assert.ok(tg.model.graph.nodes.some((n) => n.opType === op), `${c.op} ${c.variant}: the training graph has no ${op}`);
  const s = await TrainingSession.create(tg);
  try {
    const feeds: Record<string, HostTensor> = { ...c.feeds };
    if (!c.losses) outs.forEach((o, i) => {
      const dims = shapes.get(o)!.shape as number[];
      const n = dims.reduce((x, y) => x * y, 1);
      feeds[`target${i}`] = { dtype: DataType.FLOAT, dims, data: randomFloats(n, 100 + i, 1) };
    });
    const params = new Map(trainable.map((w) => [w, model.graph.initializers.get(w)!.toFloat32()]));
    // BN train mode also feeds the running statistics (they do not change the loss).
    const values = new Map([...params, ...[...tg.state.keys()].map((k) => [k, model.graph.initializers.get(k)!.toFloat32()] as const)]);
    const r = await s.step(feeds, values);
    let num = 0;
    let den = 0;
    for (const [w, p] of params) {
      const g = r.grads.get(w)!;
      const pick = p.length <= 40 ? Array.from({ length: p.length }, (_, i) => i) : shuffled(p.length, 7, 0).slice(0, 40);
      for (const i of pick) {
        const v = p[i];
        const h = c.h ?? H;
        p[i] = v + h;
        const up = (await s.step(feeds, values)).loss;
        p[i] = v - h;
        const down = (await s.step(feeds, values)).loss;
        p[i] = v;
        const fd = (up - down) / (2 * h);
        num = Math.max(num, Math.abs(fd - g[i]));
        den = Math.max(den, Math.abs(fd));
      }
    }
    assert.ok(den > 1e-4, `${c.op} ${c.variant}: the gradient is zero everywhere, the check would prove nothing`);
    return num / den;
  } finally {
    await s.release();
  }
}

const f = (n: number[], seed: number, gen: (k: number, s: number) => Float32Array = spaced) => ({ dims: n, data: gen(n.reduce((a, x) => a * x, 1), seed) });
function w(b: ModelBuilder, name: string, dims: number[], seed: number, gen?: (k: number, s: number) => Float32Array): string {
  return b.init(name, dims, f(dims, seed, gen).data);
}

const CASES: FdCase[] = [
  { op: 'Conv', variant: '3x3 pads 1', build: (b) => b.node('Conv', [w(b, 'x', [2, 3, 5, 5], 1), w(b, 'w', [4, 3, 3, 3], 2), w(b, 'b', [4], 3)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }) },
  { op: 'Conv', variant: 'stride 2, asymmetric pads', build: (b) => b.node('Conv', [w(b, 'x', [2, 2, 7, 6], 1), w(b, 'w', [3, 2, 3, 3], 2)], { kernel_shape: [3, 3], pads: [0, 1, 1, 0], strides: [2, 2] }) },
  { op: 'Conv', variant: 'dilation 2', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 7, 7], 1), w(b, 'w', [3, 2, 3, 3], 2)], { kernel_shape: [3, 3], dilations: [2, 2], pads: [1, 1, 1, 1] }) },
  { op: 'Conv', variant: 'groups 2', build: (b) => b.node('Conv', [w(b, 'x', [2, 4, 5, 5], 1), w(b, 'w', [6, 2, 3, 3], 2), w(b, 'b', [6], 3)], { kernel_shape: [3, 3], group: 2, pads: [1, 1, 1, 1] }) },
  { op: 'Conv', variant: 'depthwise stride 2', build: (b) => b.node('Conv', [w(b, 'x', [2, 4, 6, 6], 1), w(b, 'w', [4, 1, 3, 3], 2)], { kernel_shape: [3, 3], group: 4, pads: [1, 1, 1, 1], strides: [2, 2] }) },
  { op: 'Conv', variant: 'depthwise dilation 2 (dW by kernel rows)', build: (b) => b.node('Conv', [w(b, 'x', [2, 3, 7, 7], 1), w(b, 'w', [3, 1, 3, 3], 2), w(b, 'b', [3], 3)], { kernel_shape: [3, 3], group: 3, pads: [2, 2, 2, 2], dilations: [2, 2] }), forms: ['Constant'] },
  { op: 'Conv', variant: 'depthwise 3x5 kernel, asymmetric pads (dW by kernel rows)', build: (b) => b.node('Conv', [w(b, 'x', [2, 2, 6, 7], 1), w(b, 'w', [2, 1, 3, 5], 2)], { kernel_shape: [3, 5], group: 2, pads: [0, 2, 1, 1] }), forms: ['Constant'] },
  { op: 'Conv', variant: 'depthwise stride 2 (Mul + ReduceSum per tap)', build: (b) => b.node('Conv', [w(b, 'x', [2, 3, 8, 8], 1), w(b, 'w', [3, 1, 3, 3], 2)], { kernel_shape: [3, 3], group: 3, pads: [1, 1, 1, 1], strides: [2, 2] }), forms: ['SpaceToDepth'] },
  { op: 'Conv', variant: 'depthwise stride 2 no pads, odd size', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 7, 6], 1), w(b, 'w', [2, 1, 3, 3], 2)], { kernel_shape: [3, 3], group: 2, strides: [2, 2] }) },
  { op: 'Conv', variant: 'depthwise stride 3 pads 2 (ConvTranspose fallback)', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 8, 8], 1), w(b, 'w', [2, 1, 3, 3], 2)], { kernel_shape: [3, 3], group: 2, strides: [3, 3], pads: [2, 2, 2, 2] }) },
  { op: 'Conv', variant: 'auto_pad SAME_UPPER stride 2', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 6, 6], 1), w(b, 'w', [3, 2, 3, 3], 2)], { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER', strides: [2, 2] }) },
  { op: 'Conv', variant: '1x1 (dW as dY·Xᵀ per sample)', build: (b) => b.node('Conv', [w(b, 'x', [2, 3, 4, 4], 1), w(b, 'w', [5, 3, 1, 1], 2), w(b, 'b', [5], 3)], { kernel_shape: [1, 1] }) },
  { op: 'Conv', variant: '1x1 on 1x2 pixels (dW as one Gemm)', build: (b) => b.node('Conv', [w(b, 'x', [2, 8, 1, 2], 1), w(b, 'w', [6, 8, 1, 1], 2), w(b, 'b', [6], 3)], { kernel_shape: [1, 1] }) },
  { op: 'Conv', variant: 'depthwise stride 1 pads 1 (dW by kernel rows)', build: (b) => b.node('Conv', [w(b, 'x', [2, 3, 5, 4], 1), w(b, 'w', [3, 1, 3, 3], 2), w(b, 'b', [3], 3)], { kernel_shape: [3, 3], group: 3, pads: [1, 1, 1, 1] }), forms: ['Constant'] },
  { op: 'Conv', variant: 'depthwise stride 1 on 24x24 (dW as one dot product per tap)', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 24, 24], 1), w(b, 'w', [2, 1, 3, 3], 2)], { kernel_shape: [3, 3], group: 2, pads: [1, 1, 1, 1] }), forms: ['MatMul'] },
  { op: 'Conv', variant: 'depthwise stride 2 on 46x46 (SpaceToDepth phases, dot per tap)', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 46, 46], 1), w(b, 'w', [2, 1, 3, 3], 2), w(b, 'b', [2], 3)], { kernel_shape: [3, 3], group: 2, pads: [1, 1, 1, 1], strides: [2, 2] }), forms: ['SpaceToDepth', 'MatMul'] },
  { op: 'Conv', variant: 'depthwise stride 2 dilation 2 (SpaceToDepth phases)', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 9, 9], 1), w(b, 'w', [2, 1, 3, 3], 2)], { kernel_shape: [3, 3], group: 2, pads: [2, 2, 2, 2], strides: [2, 2], dilations: [2, 2] }), forms: ['SpaceToDepth'] },
  { op: 'Conv', variant: 'kernel 2 stride 2 on 7x7 (SpaceToDepth phases of a cropped input)', build: (b) => b.node('Conv', [w(b, 'x', [1, 2, 7, 7], 1), w(b, 'w', [3, 2, 2, 2], 2)], { kernel_shape: [2, 2], strides: [2, 2] }), forms: ['SpaceToDepth', 'Slice'] },
  { op: 'Conv', variant: '1-D', build: (b) => b.node('Conv', [w(b, 'x', [2, 3, 9], 1), w(b, 'w', [4, 3, 3], 2)], { kernel_shape: [3], strides: [2], pads: [1, 1] }) },
  { op: 'ConvTranspose', variant: 'stride 2, pads 1, output_padding 1', build: (b) => b.node('ConvTranspose', [w(b, 'x', [2, 3, 4, 4], 1), w(b, 'w', [3, 2, 3, 3], 2), w(b, 'b', [2], 3)], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }) },
  { op: 'ConvTranspose', variant: 'groups 2', build: (b) => b.node('ConvTranspose', [w(b, 'x', [1, 4, 3, 3], 1), w(b, 'w', [4, 1, 3, 3], 2)], { kernel_shape: [3, 3], group: 2 }) },
  { op: 'Gemm', variant: 'transB, bias [N]', build: (b) => b.node('Gemm', [w(b, 'a', [3, 4], 1), w(b, 'w', [5, 4], 2), w(b, 'c', [5], 3)], { transB: 1 }) },
  { op: 'Gemm', variant: 'transA, alpha 0.7, beta 1.3, C [M,1]', build: (b) => b.node('Gemm', [w(b, 'a', [4, 3], 1), w(b, 'w', [4, 5], 2), w(b, 'c', [3, 1], 3)], { transA: 1, alpha: { float: 0.7 }, beta: { float: 1.3 } }) },
  { op: 'MatMul', variant: 'batched [2,3,4,5]x[5,6]', build: (b) => b.node('MatMul', [w(b, 'a', [2, 3, 4, 5], 1), w(b, 'w', [5, 6], 2)]) },
  { op: 'MatMul', variant: 'broadcast [2,1,4,5]x[3,5,2]', build: (b) => b.node('MatMul', [w(b, 'a', [2, 1, 4, 5], 1), w(b, 'w', [3, 5, 2], 2)]) },
  { op: 'Add', variant: 'broadcast [2,3,4]+[3,1]', build: (b) => b.node('Add', [w(b, 'a', [2, 3, 4], 1), w(b, 'c', [3, 1], 2)]) },
  { op: 'Sub', variant: 'broadcast [4]-[2,3,4]', build: (b) => b.node('Sub', [w(b, 'a', [4], 1), w(b, 'c', [2, 3, 4], 2)]) },
  { op: 'Mul', variant: 'broadcast [2,3,4]*[1,3,1]', build: (b) => b.node('Mul', [w(b, 'a', [2, 3, 4], 1), w(b, 'c', [1, 3, 1], 2)]) },
  { op: 'Div', variant: 'broadcast [2,3]/[3]', build: (b) => b.node('Div', [w(b, 'a', [2, 3], 1), b.init('c', [3], Float32Array.of(0.8, 1.3, -1.1))]) },
  { op: 'Pow', variant: 'x^y, x > 0', build: (b) => b.node('Pow', [b.init('a', [2, 3], f([2, 3], 1).data.map((v) => Math.abs(v) + 0.5)), b.init('e', [3], Float32Array.of(2, 1.5, 3))]) },
  { op: 'Sqrt', variant: 'x > 0', build: (b) => b.node('Sqrt', [b.init('a', [2, 5], f([2, 5], 1).data.map((v) => Math.abs(v) + 0.3))]) },
  { op: 'Relu', variant: '', build: (b) => b.node('Relu', [w(b, 'x', [3, 7], 1)]) },
  { op: 'LeakyRelu', variant: 'alpha 0.1', build: (b) => b.node('LeakyRelu', [w(b, 'x', [3, 7], 1)], { alpha: { float: 0.1 } }) },
  { op: 'Clip', variant: 'min -0.5, max 0.5', build: (b) => b.node('Clip', [w(b, 'x', [3, 7], 1), b.init('lo', [], Float32Array.of(-0.5)), b.init('hi', [], Float32Array.of(0.55))]), frozen: ['lo', 'hi'] },
  { op: 'Clip', variant: 'min 0, max 0.3 (ReLU6 form)', build: (b) => b.node('Clip', [w(b, 'x', [3, 7], 1), b.init('lo', [], Float32Array.of(0)), b.init('hi', [], Float32Array.of(0.3))]), frozen: ['lo', 'hi'] },
  { op: 'Clip', variant: 'min only', build: (b) => b.node('Clip', [w(b, 'x', [3, 7], 1), b.init('lo', [], Float32Array.of(0))]), frozen: ['lo'] },
  { op: 'Clip', variant: 'max only', build: (b) => b.node('Clip', [w(b, 'x', [3, 7], 1), '', b.init('hi', [], Float32Array.of(0.4))]), frozen: ['hi'] },
  { op: 'Sigmoid', variant: '', build: (b) => b.node('Sigmoid', [w(b, 'x', [3, 7], 1)]) },
  { op: 'Tanh', variant: '', build: (b) => b.node('Tanh', [w(b, 'x', [3, 7], 1)]) },
  { op: 'HardSigmoid', variant: 'alpha 0.5 beta 0.4', build: (b) => b.node('HardSigmoid', [w(b, 'x', [3, 7], 1)], { alpha: { float: 0.5 }, beta: { float: 0.4 } }) },
  { op: 'HardSwish', variant: 'input ×5 (all three pieces)', build: (b) => b.node('HardSwish', [b.node('Mul', [w(b, 'x', [3, 7], 1), b.init('k', [], Float32Array.of(5))])[0]]), frozen: ['k'], h: 2e-3 },
  { op: 'Erf', variant: '', build: (b) => b.node('Erf', [w(b, 'x', [3, 7], 1)]) },
  { op: 'Softmax', variant: 'axis 1 of 3-D', build: (b) => b.node('Softmax', [w(b, 'x', [2, 4, 3], 1)], { axis: 1 }) },
  { op: 'LogSoftmax', variant: 'axis -1', build: (b) => b.node('LogSoftmax', [w(b, 'x', [3, 5], 1)], { axis: -1 }) },
  {
    op: 'BatchNormalization',
    variant: 'frozen statistics',
    build: (b) => b.node('BatchNormalization', [w(b, 'x', [2, 3, 4, 4], 1), w(b, 's', [3], 2), w(b, 'bb', [3], 3), w(b, 'mean', [3], 4), b.init('var', [3], Float32Array.of(0.5, 1.5, 2))], { epsilon: { float: 1e-3 } }),
  },
  {
    op: 'BatchNormalization',
    variant: 'train mode: batch statistics, [2,3,4,4]',
    build: (b) => b.node('BatchNormalization', [w(b, 'x', [2, 3, 4, 4], 1), w(b, 's', [3], 2), w(b, 'bb', [3], 3), w(b, 'mean', [3], 4), b.init('var', [3], Float32Array.of(0.5, 1.5, 2))], { epsilon: { float: 1e-3 } }),
    batchNorm: 'train',
  },
  {
    op: 'BatchNormalization',
    variant: 'train mode: [N, C] input, after a Gemm',
    build: (b) => {
      const [h] = b.node('Gemm', [w(b, 'x', [5, 4], 1), w(b, 'wt', [3, 4], 2)], { transB: 1 });
      return b.node('BatchNormalization', [h, w(b, 's', [3], 3), w(b, 'bb', [3], 4), b.init('mean', [3]), b.init('var', [3], Float32Array.of(1, 1, 1))]);
    },
    batchNorm: 'train',
  },
  { op: 'LayerNormalization', variant: 'axis -1', build: (b) => b.node('LayerNormalization', [w(b, 'x', [2, 3, 6], 1), w(b, 's', [6], 2), w(b, 'bb', [6], 3)], { axis: -1 }) },
  { op: 'LayerNormalization', variant: 'axis 1 (last two axes)', build: (b) => b.node('LayerNormalization', [w(b, 'x', [2, 3, 4], 1), w(b, 's', [3, 4], 2)], { axis: 1 }) },
  { op: 'MaxPool', variant: '2x2 stride 2', build: (b) => b.node('MaxPool', [w(b, 'x', [2, 2, 4, 4], 1, distinct)], { kernel_shape: [2, 2], strides: [2, 2] }) },
  { op: 'MaxPool', variant: '3x3 stride 2 pads 1 (overlapping)', build: (b) => b.node('MaxPool', [w(b, 'x', [1, 2, 6, 6], 1, distinct)], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }) },
  { op: 'MaxPool', variant: '3x3 stride 2 ceil_mode', build: (b) => b.node('MaxPool', [w(b, 'x', [1, 2, 6, 6], 1, distinct)], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }) },
  { op: 'AveragePool', variant: '2x2 stride 2', build: (b) => b.node('AveragePool', [w(b, 'x', [2, 2, 4, 4], 1)], { kernel_shape: [2, 2], strides: [2, 2] }) },
  { op: 'AveragePool', variant: '3x3 stride 2 pads 1, count_include_pad 0', build: (b) => b.node('AveragePool', [w(b, 'x', [1, 2, 5, 5], 1)], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }) },
  { op: 'AveragePool', variant: '3x3 stride 1 pads 1, count_include_pad 1', build: (b) => b.node('AveragePool', [w(b, 'x', [1, 2, 5, 5], 1)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }) },
  { op: 'GlobalAveragePool', variant: '', build: (b) => b.node('GlobalAveragePool', [w(b, 'x', [2, 3, 3, 4], 1)]) },
  { op: 'Flatten', variant: 'axis 2', build: (b) => b.node('Flatten', [w(b, 'x', [2, 3, 2, 2], 1)], { axis: 2 }) },
  { op: 'Reshape', variant: '[2,3,4] → [4,-1]', build: (b) => b.node('Reshape', [w(b, 'x', [2, 3, 4], 1), b.ints('shape', [4, -1])]) },
  { op: 'Transpose', variant: 'perm [2,0,1]', build: (b) => b.node('Transpose', [w(b, 'x', [2, 3, 4], 1)], { perm: [2, 0, 1] }) },
  { op: 'Concat', variant: 'axis 1', build: (b) => b.node('Concat', [w(b, 'x', [2, 3, 2], 1), w(b, 'y', [2, 1, 2], 2)], { axis: 1 }) },
  { op: 'Split', variant: 'axis 1 into [1,3]', build: (b) => b.node('Split', [w(b, 'x', [2, 4, 2], 1), b.ints('split', [1, 3])], { axis: 1 }, 2) },
  { op: 'Slice', variant: 'axes [2,1], negative end', build: (b) => b.node('Slice', [w(b, 'x', [2, 4, 5], 1), b.ints('st', [1, 1]), b.ints('en', [-1, 3]), b.ints('ax', [2, 1])]) },
  { op: 'Gather', variant: 'embedding, repeated and negative indices', build: (b) => b.node('Gather', [w(b, 'emb', [6, 3], 1), b.init('idx', [2, 3], BigInt64Array.of(0n, 2n, 2n, -1n, 5n, 0n), DataType.INT64)], { axis: 0 }) },
  { op: 'ReduceMean', variant: 'axes [1], keepdims 0', build: (b) => b.node('ReduceMean', [w(b, 'x', [2, 3, 4], 1)], { axes: [1], keepdims: 0 }) },
  { op: 'ReduceSum', variant: 'axes input [0,2], keepdims 1', build: (b) => b.node('ReduceSum', [w(b, 'x', [2, 3, 4], 1), b.ints('ax', [0, 2])], { keepdims: 1 }) },
  { op: 'Squeeze', variant: 'axes [1]', build: (b) => b.node('Squeeze', [w(b, 'x', [2, 1, 3], 1), b.ints('ax', [1])]) },
  { op: 'Unsqueeze', variant: 'axes [0,3]', build: (b) => b.node('Unsqueeze', [w(b, 'x', [2, 3], 1), b.ints('ax', [0, 3])]) },
  { op: 'Pad', variant: 'constant, pads [0,1,2,0,2,1]', build: (b) => b.node('Pad', [w(b, 'x', [2, 3, 2], 1), b.ints('p', [0, 1, 2, 0, 2, 1])]) },
  { op: 'Identity', variant: '', build: (b) => b.node('Identity', [w(b, 'x', [2, 3], 1)]) },
  { op: 'Dropout', variant: 'inference mode', build: (b) => b.node('Dropout', [w(b, 'x', [2, 3], 1)]) },
  {
    op: 'Resize',
    variant: 'nearest ×2 (asymmetric, floor)',
    build: (b) => b.node('Resize', [w(b, 'x', [1, 2, 3, 3], 1), '', b.init('sc', [4], Float32Array.of(1, 1, 2, 2))], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }),
    frozen: ['sc'],
  },
  {
    op: 'Resize',
    variant: 'nearest ×3 (half_pixel)',
    build: (b) => b.node('Resize', [w(b, 'x', [1, 1, 2, 3], 1), '', b.init('sc', [4], Float32Array.of(1, 1, 3, 3))], { mode: 'nearest' }),
    frozen: ['sc'],
  },
];

const logitsModel = (b: ModelBuilder) => {
  const [z] = b.node('Gemm', [w(b, 'x', [4, 5], 1), w(b, 'w', [3, 5], 2), w(b, 'bias', [3], 3)], { transB: 1 });
  const [u] = b.node('Gemm', [w(b, 'x2', [4, 5], 4), w(b, 'w2', [3, 5], 5)], { transB: 1 });
  b.output(z);
  return [z, u];
};
const teacher: HostTensor = { dtype: DataType.FLOAT, dims: [4, 3], data: randomFloats(12, 9, 2) };

CASES.push(
  { op: 'loss', variant: 'cross-entropy', build: (b) => logitsModel(b).slice(0, 1), losses: [{ kind: 'cross-entropy', logits: 'gemm0', labels: 'y' }], feeds: { y: labelsTensor([0, 2, 1, 2]) } },
  { op: 'loss', variant: 'distillation T=4', build: (b) => logitsModel(b).slice(0, 1), losses: [{ kind: 'distillation', logits: 'gemm0', teacherLogits: 't', temperature: 4 }], feeds: { t: teacher } },
  {
    op: 'loss',
    variant: 'distillation to a tensor of the same graph (detached teacher)',
    build: logitsModel,
    losses: [{ kind: 'distillation', logits: 'gemm0', teacherLogits: 'gemm1', temperature: 3 }],
    frozen: ['x2', 'w2'],
  },
  {
    op: 'loss',
    variant: 'MSE between two graph tensors (feature matching)',
    build: logitsModel,
    losses: [{ kind: 'mse', prediction: 'gemm0', target: 'gemm1' }],
  },
  {
    op: 'loss',
    variant: '0.3·CE + 0.7·KD + L1 + L2 (composed)',
    build: (b) => logitsModel(b).slice(0, 1),
    losses: [
      { kind: 'cross-entropy', logits: 'gemm0', labels: 'y', weight: 0.3 },
      { kind: 'distillation', logits: 'gemm0', teacherLogits: 't', temperature: 2, weight: 0.7 },
      { kind: 'l1', weights: ['w'], weight: 0.05 },
      { kind: 'l2', weights: ['w', 'bias'], weight: 0.1 },
    ],
    feeds: { y: labelsTensor([1, 0, 0, 2]), t: teacher },
  },
);

describe('train: gradient rules against central finite differences', function () {
  this.timeout(120000);
  const table: string[] = [];
  after(() => {
    if (process.env.MC_TRAIN_REPORT) console.log(table.join('\n'));
  });
  for (const c of CASES) {
    it(`${c.op} ${c.variant}`, async () => {
      const err = await fdCheck(c);
      table.push(`| ${c.op} | ${c.variant || '—'} | ${err.toExponential(1)} |`);
      assert.ok(err < 1e-2, `max relative error ${err}`);
    });
  }
});

/**
 * PyTorch's max_pool2d (CPU) and its backward: each window's dY goes to ONE input, the first
 * maximum in row-major order (`val > max`), windows clamped to the input; overlapping windows
 * accumulate. Returns dX for dY.
 */
function maxPoolBackwardRef(x: Float32Array, dims: number[], k: number, s: number, p: number, ceil: boolean, dy: Float32Array): { y: Float32Array; dx: Float32Array; tied: number } {
  const [N, C, H, W] = dims;
  const size = (L: number) => {
    let o = (ceil ? Math.ceil : Math.floor)((L + 2 * p - k) / s) + 1;
    if (ceil && (o - 1) * s >= L + p) o--;
    return o;
  };
  const [Ho, Wo] = [size(H), size(W)];
  const y = new Float32Array(N * C * Ho * Wo);
  const dx = new Float32Array(x.length);
  let tied = 0;
  for (let nc = 0; nc < N * C; nc++) {
    for (let ho = 0; ho < Ho; ho++) {
      for (let wo = 0; wo < Wo; wo++) {
        let best = -Infinity;
        let at = -1;
        let count = 0;
        for (let h = Math.max(0, ho * s - p); h < Math.min(H, ho * s - p + k); h++) {
          for (let w = Math.max(0, wo * s - p); w < Math.min(W, wo * s - p + k); w++) {
            const v = x[nc * H * W + h * W + w];
            if (at < 0 || v > best) [best, at, count] = [v, nc * H * W + h * W + w, 1];
            else if (v === best) count++;
          }
        }
        const o = nc * Ho * Wo + ho * Wo + wo;
        y[o] = best;
        dx[at] += dy[o];
        if (count > 1) tied++;
      }
    }
  }
  return { y, dx, tied };
}

/** The values of the graph that depend on `from` (transitively). */
function dependents(model: Model, from: string): Set<string> {
  const dep = new Set([from]);
  for (const n of model.graph.nodes) if (n.inputs.some((i) => dep.has(i))) for (const o of n.outputs) dep.add(o);
  return dep;
}

describe('train: backward forms and execution order', function () {
  this.timeout(30000);

  const twoLayers = () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', ['N', 2, 6, 6]);
    const [r1] = b.node('Relu', [b.conv(x, 2, 4, 3)]);
    const [r2] = b.node('Clip', [b.conv(r1, 4, 3, 3), b.init('lo', [], Float32Array.of(0)), b.init('hi', [], Float32Array.of(6))]);
    b.output(r2);
    const model = b.build();
    const tg = buildTrainingGraph(model, { losses: [{ kind: 'mse', prediction: r2, target: 't' }], trainable: floatWeights(model).filter((w) => w !== 'lo' && w !== 'hi') });
    return { model, tg, activations: new Set(model.graph.nodes.flatMap((n) => n.outputs)) };
  };

  it('backward nodes read forward activations only once the gradient exists (ORT cannot run them during the forward pass)', () => {
    const { tg, activations } = twoLayers();
    const late = dependents(tg.model, 't');
    const early = tg.model.graph.nodes.filter((n) => n.name.startsWith('train/') && n.opType !== 'Shape' && n.opType !== 'Size' && n.inputs.some((i) => activations.has(i)) && !n.inputs.some((i) => late.has(i)));
    assert.deepEqual(early.map((n) => `${n.opType}(${n.inputs.join(', ')})`), []);
  });

  it('a statically shaped model (Conv, Relu, MaxPool, Flatten, Gemm) gives the same gradients as with a symbolic batch', async () => {
    const grads = async (batch: number | string) => {
      const b = new ModelBuilder(17);
      const x = b.input('x', [batch, 2, 6, 6]);
      const [r] = b.node('Relu', [b.conv(x, 2, 3, 3)]);
      const [p] = b.node('MaxPool', [r], { kernel_shape: [2, 2], strides: [2, 2] });
      const [f] = b.node('Flatten', [p]);
      const [y] = b.node('Gemm', [f, b.init('wf', [4, 27]), b.init('bf', [4])], { transB: 1 });
      b.output(y);
      const model = b.build();
      const trainable = floatWeights(model);
      const tg = buildTrainingGraph(model, { losses: [{ kind: 'cross-entropy', logits: y, labels: 'labels' }], trainable });
      const s = await TrainingSession.create(tg);
      try {
        const params = new Map(trainable.map((w) => [w, model.graph.initializers.get(w)!.toFloat32()]));
        const r = await s.step({ x: { dtype: DataType.FLOAT, dims: [2, 2, 6, 6], data: randomFloats(144, 3) }, labels: labelsTensor([1, 3]) }, params);
        return trainable.map((w) => r.grads.get(w)!);
      } finally {
        await s.release();
      }
    };
    const [fixed, symbolic] = [await grads(2), await grads('N')];
    fixed.forEach((g, i) => assert.ok(relErr(g, symbolic[i]) < 1e-6));
  });

  it("the gradient passed down to a layer waits for the later layer's weight gradients (each layer's dY is freed before going on)", () => {
    const { model, tg } = twoLayers();
    const [w1, , w2, b2] = floatWeights(model);
    // Each gradient output is an Identity of the gradient value.
    const value = (w: string) => tg.model.graph.nodes.find((n) => n.outputs[0] === tg.gradOutputs.get(w))!.inputs[0];
    for (const later of [w2, b2]) assert.ok(dependents(tg.model, value(later)).has(value(w1)), later);
  });

  it('Relu and Clip backward read only the activation output, so the Conv before them keeps one consumer (ORT fuses Conv+activation)', () => {
    for (const act of ['Relu', 'Clip']) {
      const b = new ModelBuilder(17);
      const x = b.input('x', [1, 2, 5, 5]);
      const c = b.conv(x, 2, 3, 3);
      const bounds = act === 'Clip' ? [b.init('lo', [], Float32Array.of(0)), b.init('hi', [], Float32Array.of(6))] : [];
      const [y] = b.node(act, [c, ...bounds]);
      b.output(y);
      const model = b.build();
      const tg = buildTrainingGraph(model, { losses: [{ kind: 'mse', prediction: y, target: 't' }], trainable: floatWeights(model) });
      const readers = tg.model.graph.nodes.filter((n) => n.inputs.includes(c)).map((n) => n.opType);
      assert.deepEqual(readers, [act], `${act}: the conv output is read by ${readers.join(', ')}`);
    }
  });

  for (const v of [
    { name: '3x3 stride 2 pads 1', k: 3, s: 2, p: 1, ceil: false, dims: [2, 3, 7, 7] },
    { name: '3x3 stride 2 ceil_mode', k: 3, s: 2, p: 0, ceil: true, dims: [1, 2, 8, 8] },
    { name: '2x2 stride 1', k: 2, s: 1, p: 0, ceil: false, dims: [1, 2, 5, 6] },
  ]) {
    it(`MaxPool ${v.name} with ties routes each window's gradient to its first maximum, as PyTorch does`, async () => {
      const r = rng(5);
      // Few distinct values (many zeros, as after a Relu): most windows have tied maxima.
      const n = v.dims.reduce((a, b) => a * b, 1);
      const xv = Float32Array.from({ length: n }, () => [0, 0, 0, 0.5, 1][Math.floor(r() * 5)]);
      const b = new ModelBuilder(17);
      const [y] = b.node('MaxPool', [b.init('x', v.dims, xv)], { kernel_shape: [v.k, v.k], strides: [v.s, v.s], pads: [v.p, v.p, v.p, v.p], ceil_mode: v.ceil ? 1 : 0 });
      b.output(y);
      const model = b.build();
      const tg = buildTrainingGraph(model, { losses: [{ kind: 'mse', prediction: y, target: 't' }], trainable: ['x'], extraOutputs: [y] });
      const s = await TrainingSession.create(tg);
      try {
        const yDims = inferShapes(model).types.get(y)!.shape as number[];
        const t = randomFloats(yDims.reduce((a, b) => a * b, 1), 8, 2);
        const res = await s.step({ t: { dtype: DataType.FLOAT, dims: yDims, data: t } }, new Map([['x', xv]]), [y]);
        const yv = res.extra[y].data as Float32Array;
        // MSE: dY = 2·(Y − T)/numel.
        const dy = Float32Array.from(yv, (a, i) => (2 * (a - t[i])) / yv.length);
        const ref = maxPoolBackwardRef(xv, v.dims, v.k, v.s, v.p, v.ceil, dy);
        assert.deepEqual(Array.from(yv), Array.from(ref.y));
        assert.ok(relErr(res.grads.get('x')!, ref.dx) < 1e-6, `relative error ${relErr(res.grads.get('x')!, ref.dx)}`);
        assert.ok(ref.tied > yv.length / 4, `only ${ref.tied} of ${yv.length} windows have tied maxima`);
      } finally {
        await s.release();
      }
    });
  }
});

describe('train: optimizer updates', () => {
  /** PyTorch's update rules (torch.optim.SGD, Adam, AdamW docs), element by element in float64. */
  function reference(o: OptimizerConfig, w0: Float64Array, grads: Float64Array[], lr: number): Float64Array {
    const w = Float64Array.from(w0);
    const m = new Float64Array(w.length);
    const v = new Float64Array(w.length);
    grads.forEach((g, k) => {
      const t = k + 1;
      for (let i = 0; i < w.length; i++) {
        if (o.kind === 'sgd') {
          const d = g[i] + (o.weightDecay ?? 0) * w[i];
          const mu = o.momentum ?? 0;
          if (mu === 0) w[i] -= lr * d;
          else {
            v[i] = t === 1 ? d : mu * v[i] + d;
            w[i] -= lr * (o.nesterov ? d + mu * v[i] : v[i]);
          }
        } else {
          const [b1, b2, eps] = [o.beta1 ?? 0.9, o.beta2 ?? 0.999, o.eps ?? 1e-8];
          let d = g[i];
          if (o.kind === 'adamw') w[i] *= 1 - lr * (o.weightDecay ?? 0.01);
          else d += (o.weightDecay ?? 0) * w[i];
          m[i] = b1 * m[i] + (1 - b1) * d;
          v[i] = b2 * v[i] + (1 - b2) * d * d;
          w[i] -= ((lr / (1 - b1 ** t)) * m[i]) / (Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** t) + eps);
        }
      }
    });
    return w;
  }

  for (const o of [
    { kind: 'sgd', lr: 0.1 },
    { kind: 'sgd', lr: 0.1, weightDecay: 0.01 },
    { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    { kind: 'sgd', lr: 0.1, momentum: 0.8, nesterov: true, weightDecay: 0.05 },
    { kind: 'adam', lr: 0.01 },
    { kind: 'adam', lr: 0.01, weightDecay: 0.1, beta1: 0.8, beta2: 0.99 },
    { kind: 'adamw', lr: 0.01 },
    { kind: 'adamw', lr: 0.01, weightDecay: 0.2, eps: 1e-6 },
  ] as OptimizerConfig[]) {
    it(`${JSON.stringify(o)}: 5 steps match PyTorch's update rule`, () => {
      const n = 257;
      const w0 = randomFloats(n, 1, 1);
      const grads = Array.from({ length: 5 }, (_, k) => randomFloats(n, 10 + k, 0.5));
      const w = Float32Array.from(w0);
      const opt = new Optimizer(o);
      for (const g of grads) opt.update(new Map([['w', w]]), new Map([['w', g]]), o.lr);
      const ref = reference(o, Float64Array.from(w0), grads.map((g) => Float64Array.from(g)), o.lr);
      const moved = Float64Array.from(w, (x, i) => x - w0[i]);
      const refMoved = ref.map((x, i) => x - w0[i]);
      assert.ok(relErr(moved, refMoved) < 1e-5, `relative error of the update ${relErr(moved, refMoved)}`);
    });
  }
});

// ---- the training loop ---------------------------------------------------------------------

function npyTensor(file: string): HostTensor {
  const a = readNpy(path.join(FIXTURES, file));
  const b = new Uint8Array(a.data.length);
  b.set(a.data);
  const data = a.dtype === DataType.INT64 ? new BigInt64Array(b.buffer) : new Float32Array(b.buffer);
  return { dtype: a.dtype, dims: a.shape, data };
}

/** PyTorch's default nn.Linear init (kaiming_uniform_ with a = √5): U(±1/√fan_in) for weight and bias. */
function reinitLinear(model: Model, seed: number): Model {
  const r = rng(seed);
  const weights = new Map<string, Float32Array>();
  for (const n of model.graph.nodes.filter((x) => x.opType === 'Gemm')) {
    const wt = model.graph.initializers.get(n.inputs[1])!;
    const bound = 1 / Math.sqrt(wt.dims[1]);
    weights.set(n.inputs[1], Float32Array.from({ length: wt.numel }, () => (r() * 2 - 1) * bound));
    weights.set(n.inputs[2], Float32Array.from({ length: wt.dims[0] }, () => (r() * 2 - 1) * bound));
  }
  return withWeights(model, weights);
}

async function accuracy(model: Model, x: HostTensor, y: HostTensor): Promise<number> {
  const s = await ModelSession.create(model);
  try {
    const out = (await s.run({ input: x }))['output'];
    const c = out.dims[1];
    let right = 0;
    for (let i = 0; i < out.dims[0]; i++) {
      let best = 0;
      for (let j = 1; j < c; j++) if ((out.data[i * c + j] as number) > (out.data[i * c + best] as number)) best = j;
      if (BigInt(best) === (y.data as BigInt64Array)[i]) right++;
    }
    return right / out.dims[0];
  } finally {
    await s.release();
  }
}

function split(t: HostTensor, from: number, to: number): HostTensor {
  const per = t.data.length / t.dims[0];
  return { dtype: t.dtype, dims: [to - from, ...t.dims.slice(1)], data: t.data.slice(from * per, to * per) as Float32Array };
}

describe('train: fit', function () {
  this.timeout(300000);
  const X = npyTensor('digits_train_x.npy');
  const Y = npyTensor('digits_train_y.npy');
  const mlp = () => openModel(path.join(FIXTURES, 'digits_mlp.onnx'));
  const ce: LossTerm[] = [{ kind: 'cross-entropy', logits: 'output', labels: 'labels' }];
  const trainSet = (from = 0, to = 1000) => tensorSampleSet({ input: split(X, from, to), labels: split(Y, from, to) });

  it('trains digits_mlp from a fresh PyTorch-style init to ≥ 0.95 test accuracy (test set never trained on)', async () => {
    const original = mlp();
    const model = reinitLinear(original, 42);
    const testX = npyTensor('digits_test_x.npy');
    const testY = npyTensor('digits_test_y.npy');
    const before = await accuracy(model, testX, testY);
    const progress: TrainProgress[] = [];
    const r = await fit(model, trainSet(0, 1000), {
      losses: ce,
      epochs: 30,
      batchSize: 32,
      optimizer: { kind: 'adamw', lr: 3e-3, weightDecay: 1e-4 },
      schedule: { kind: 'cosine', warmupSteps: 20 },
      seed: 1,
      validation: { data: trainSet(1000, 1200), metric: 'accuracy' },
      earlyStopping: { patience: 8 },
      onProgress: (p) => progress.push(p),
    });
    const after = await accuracy(r.model, testX, testY);
    if (process.env.MC_TRAIN_REPORT) {
      console.log(`before ${before.toFixed(4)} after ${after.toFixed(4)} best epoch ${r.bestEpoch} ${r.msPerStep.toFixed(2)} ms/step`);
      console.log(r.history.map((h) => `${h.epoch}: loss ${h.trainLoss.toFixed(4)} val ${h.metric?.toFixed(4)}`).join('\n'));
    }
    assert.ok(before < 0.3, `a fresh init should be near chance, got ${before}`);
    assert.ok(after >= 0.95, `test accuracy ${after}`);
    assert.ok(r.history[r.history.length - 1].trainLoss < r.history[0].trainLoss / 4);
    // The result is the original inference graph with new weights; the input model is untouched.
    assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), original.graph.nodes.map((n) => n.opType));
    assert.deepEqual(model.graph.initializers.get('l1.weight')!.toFloat32(), reinitLinear(original, 42).graph.initializers.get('l1.weight')!.toFloat32());
    assert.ok(progress.some((p) => p.phase === 'step' && p.samplesPerSecond > 0 && p.etaSeconds >= 0));
    assert.equal(progress.filter((p) => p.phase === 'epoch').length, r.history.length);
  });

  it('keeps pruned zeros through training (masks)', async () => {
    const model = mlp();
    const w = model.graph.initializers.get('l1.weight')!.toFloat32();
    const pruned = w.map((v, i) => (i % 2 ? 0 : v));
    const m = withWeights(model, new Map([['l1.weight', pruned]]));
    const r = await fit(m, trainSet(0, 256), { losses: ce, epochs: 2, batchSize: 64, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }, keepZeros: true });
    const out = r.model.graph.initializers.get('l1.weight')!.toFloat32();
    let changed = 0;
    out.forEach((v, i) => {
      if (i % 2) assert.equal(v, 0);
      else if (v !== pruned[i]) changed++;
    });
    assert.ok(changed > out.length / 4, 'the kept weights trained');
  });

  it('resumes from a checkpoint to the same weights as an uninterrupted run, and stops on cancel between steps', async () => {
    const dir = tmpDir();
    const ckpt = path.join(dir, 'train.ckpt');
    const opts = { losses: ce, batchSize: 50, optimizer: { kind: 'adam', lr: 1e-3 } as const, seed: 3, schedule: { kind: 'step', stepEpochs: 1, gamma: 0.5 } as const };
    const full = await fit(mlp(), trainSet(0, 300), { ...opts, epochs: 3 });
    const ac = new AbortController();
    let stepsSeen = 0;
    const first = await fit(mlp(), trainSet(0, 300), {
      ...opts,
      epochs: 3,
      checkpoint: { path: ckpt },
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === 'step' && ++stepsSeen === 8) ac.abort();
      },
    });
    assert.equal(first.stopped, 'cancelled');
    assert.equal(first.steps, 8);
    assert.equal(first.history.length, 1, 'one epoch (6 steps) completed before the cancel');
    const resumed = await fit(mlp(), trainSet(0, 300), { ...opts, epochs: 3, checkpoint: { path: ckpt, resume: true } });
    assert.equal(resumed.history.length, 3);
    assert.equal(resumed.stopped, 'completed');
    for (const name of full.trainable) {
      const a = full.model.graph.initializers.get(name)!.toFloat32();
      const b = resumed.model.graph.initializers.get(name)!.toFloat32();
      assert.ok(relErr(b, a) < 1e-5, `${name} differs after resume`);
    }
    // A checkpoint of another model is refused in one line.
    const other = openModel(path.join(FIXTURES, 'digits_cnn.onnx'));
    await assert.rejects(
      fit(other, tensorSampleSet({ input: split(X, 0, 10), labels: split(Y, 0, 10) }), { ...opts, epochs: 1, checkpoint: { path: ckpt, resume: true } }),
      (e: Error) => e instanceof ModelError && /not a usable training checkpoint/.test(e.message),
    );
  });

  it('refuses a checkpoint whose header counters are not usable (negative, text, null, inconsistent) in one line', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'c.ckpt');
    const w = Float32Array.of(1, 2, 3);
    const rec: EpochRecord = { epoch: 1, trainLoss: 0.5, lr: 1e-3, seconds: 1 };
    const good = { epoch: 2, globalStep: 8, history: [rec, rec], bestEpoch: 2, stale: 0, params: new Map([['w', w]]), best: new Map(), optimizer: { step: 8, slots: new Map() } };
    const sizes = new Map([['w', 3]]);
    writeCheckpoint(file, good);
    assert.equal(readCheckpoint(file, sizes).epoch, 2);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ epoch: -5 }, /bad epoch -5/],
      [{ epoch: 'x' }, /bad epoch "x"/],
      [{ epoch: null }, /bad epoch null/],
      [{ epoch: 1.5 }, /bad epoch 1\.5/],
      [{ epoch: 3 }, /2 epoch\(s\) of history for epoch 3/],
      [{ globalStep: -1 }, /bad globalStep -1/],
      [{ bestEpoch: 7 }, /bad bestEpoch 7 after 2 epoch/],
      [{ stale: 'no' }, /bad stale "no"/],
      [{ optimizer: { step: Number.NaN, slots: new Map() } }, /bad optimizerStep null/],
    ];
    for (const [change, message] of cases) {
      writeCheckpoint(file, { ...good, ...change } as unknown as Parameters<typeof writeCheckpoint>[1]);
      assert.throws(
        () => readCheckpoint(file, sizes),
        (e: Error) => e instanceof ModelError && /not a usable training checkpoint: /.test(e.message) && message.test(e.message) && !e.message.includes('\n'),
        JSON.stringify(change),
      );
    }
  });

  it('stops early and returns the best epoch’s weights (the original ones, epoch 0, when no epoch beats them)', async () => {
    const model = mlp();
    const r = await fit(model, trainSet(0, 200), {
      losses: ce,
      epochs: 10,
      batchSize: 50,
      optimizer: { kind: 'sgd', lr: 0.01 },
      validation: { data: trainSet(1000, 1100), metric: 'accuracy' },
      // Nothing can beat the original weights (epoch 0) by a whole unit of accuracy.
      earlyStopping: { patience: 2, minDelta: 1 },
    });
    assert.equal(r.stopped, 'early-stopped');
    assert.equal(r.history.length, 2);
    assert.equal(r.bestEpoch, 0);
    for (const name of r.trainable) assert.deepEqual(r.model.graph.initializers.get(name)!.toFloat32(), model.graph.initializers.get(name)!.toFloat32(), name);
  });

  it('accumulates gradients without updating (Taylor importance) and freezes with --freeze', async () => {
    const model = mlp();
    const set = trainSet(0, 128);
    const sums = await accumulateGradients(model, set, { losses: ce, batchSize: 64, freeze: ['l1.'] });
    assert.deepEqual([...sums.keys()], ['l2.weight', 'l2.bias', 'l3.weight', 'l3.bias']);
    const tg = buildTrainingGraph(model, { losses: ce, trainable: [...sums.keys()] });
    const s = await TrainingSession.create(tg);
    const params = new Map([...sums.keys()].map((k) => [k, model.graph.initializers.get(k)!.toFloat32()]));
    const a = await s.step(await set.gather(Array.from({ length: 64 }, (_, i) => i)), params);
    const b = await s.step(await set.gather(Array.from({ length: 64 }, (_, i) => 64 + i)), params);
    await s.release();
    const want = a.grads.get('l3.weight')!.map((v, i) => v + b.grads.get('l3.weight')![i]);
    assert.ok(relErr(sums.get('l3.weight')!, want) < 1e-5);
    const sal = channelSaliency(params.get('l2.weight')!, sums.get('l2.weight')!, [128, 256], 0);
    assert.equal(sal.length, 128);
    assert.ok(sal.every((v) => v >= 0) && sal.some((v) => v > 0));
  });

  it('refuses an op without a gradient rule in one line naming it, and trains past it when the weights before it are frozen', async () => {
    const b = new ModelBuilder(17);
    const x = b.input('input', ['n', 4]);
    const [h] = b.node('Gemm', [x, b.init('w0', [4, 4]), b.init('b0', [4])], { transB: 1 });
    const [c] = b.node('Cos', [h]);
    const [y] = b.node('Gemm', [c, b.init('w1', [3, 4]), b.init('b1', [3])], { transB: 1 });
    b.markOutput(y, 'output');
    const m = b.build();
    assert.throws(
      () => buildTrainingGraph(m, { losses: ce, trainable: ['w0', 'w1'] }),
      (e: Error) => e instanceof UsageError && /Cos/.test(e.message) && /--trainable\/--freeze/.test(e.message) && !e.message.includes('\n'),
    );
    const tg = buildTrainingGraph(m, { losses: ce, trainable: selectTrainable(m, { freeze: ['w0', 'b0'] }) });
    assert.deepEqual(tg.params, ['w1', 'b1']);
  });
});

describe('CLI: train', function () {
  this.timeout(300000);
  const fx = (n: string) => path.join(FIXTURES, n);

  it('fine-tunes digits_mlp with validation and reports curves, best epoch, time per step and before/after accuracy (--json)', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'mlp.trained.onnx');
    const r = cli(['train', fx('digits_mlp.onnx'), '--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy'), '--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy'), '--epochs', '2', '--batch', '64', '--lr', '1e-4', '--no-bench', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { epochs: Array<{ trainLoss: number; metric: number }>; bestEpoch: number; initialValidation: number; bestValidation: number; msPerStep: number; accuracy: { before: number; after: number }; stopped: string };
    assert.equal(j.epochs.length, 2);
    assert.ok(j.epochs.every((e) => e.metric > 0.9 && e.trainLoss > 0));
    assert.ok(j.msPerStep > 0 && j.stopped === 'completed');
    // The best epoch beats the original weights (epoch 0), or the original weights are kept.
    const top = Math.max(...j.epochs.map((e) => e.metric));
    assert.equal(j.bestEpoch, top > j.initialValidation ? j.epochs.findIndex((e) => e.metric === top) + 1 : 0);
    assert.equal(j.bestValidation, Math.max(top, j.initialValidation));
    assert.ok(Math.abs(j.accuracy.before - 0.9715) < 0.002 && j.accuracy.after > 0.94, JSON.stringify(j.accuracy));
    // A completed run removes its checkpoint (kept only on cancel or crash, for --resume), so --resume is refused in one line.
    assert.ok(!require('fs').existsSync(`${out}.ckpt`), 'no checkpoint left after a successful run');
    const again = cli(['train', fx('digits_mlp.onnx'), '--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy'), '--epochs', '3', '--batch', '64', '--lr', '1e-4', '--no-bench', '--resume', '-o', out, '--json']);
    assert.equal(again.code, 2, again.stderr);
    assert.equal(again.stderr.trim(), `error: --resume: no checkpoint at ${out}.ckpt (one is written after each epoch and removed when training completes); run without --resume to start from epoch 1`);
    assert.equal(again.stdout, '');
  });

  it('refuses bad requests in one line: missing labels, a count mismatch, a pattern that matches no weight', () => {
    const base = ['train', fx('digits_mlp.onnx'), '--train', fx('digits_train_x.npy'), '-o', path.join(tmpDir(), 'o.onnx')];
    const a = cli(base);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /--train-labels/);
    const b = cli([...base, '--train-labels', fx('digits_test_y.npy')]);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /597 labels for 1200 (training )?samples/);
    const c = cli([...base, '--train-labels', fx('digits_train_y.npy'), '--trainable', 'nope']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /'nope' matches no float weight/);
    for (const x of [a, b, c]) assertNoStack(x.stderr);
  });

  it('--bn train writes the model with updated BatchNormalization running statistics; --bn frozen keeps them; a bad --bn is refused', () => {
    const b = new ModelBuilder(17);
    const x = b.input('input', ['n', 1, 8, 8]);
    const [f] = b.node('Flatten', [x]);
    const [h] = b.node('Gemm', [f, b.init('w0', [16, 64], randomFloats(16 * 64, 3, 0.2)), b.init('b0', [16])], { transB: 1 });
    const [n] = b.node('BatchNormalization', [h, b.init('s', [16], new Float32Array(16).fill(1)), b.init('bb', [16]), b.init('mean', [16]), b.init('var', [16], new Float32Array(16).fill(1))]);
    const [r] = b.node('Relu', [n]);
    const [y] = b.node('Gemm', [r, b.init('w1', [10, 16], randomFloats(160, 4, 0.3)), b.init('b1', [10])], { transB: 1 });
    b.output(y);
    const dir = tmpDir();
    const file = path.join(dir, 'bn.onnx');
    require('fs').writeFileSync(file, b.bytes());
    const args = (bn: string, o: string) => ['train', file, '--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy'), '--epochs', '1', '--batch', '100', '--bn', bn, '--no-bench', '-o', path.join(dir, o)];
    const stats = (o: string) => {
      const m = openModel(path.join(dir, o));
      assert.deepEqual(m.graph.nodes.map((k) => k.opType), ['Flatten', 'Gemm', 'BatchNormalization', 'Relu', 'Gemm']);
      return [...m.graph.initializers.get('var')!.toFloat32()];
    };
    assert.equal(cli(args('train', 't.onnx')).code, 0);
    assert.ok(stats('t.onnx').every((v) => v !== 1), 'running variance updated');
    assert.equal(cli(args('frozen', 'f.onnx')).code, 0);
    assert.deepEqual(stats('f.onnx'), new Array(16).fill(1));
    const bad = cli(args('sometimes', 'x.onnx'));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--bn/);
    assertNoStack(bad.stderr);
  });

  it('refuses a model whose gradient path has an op without a rule, naming the op and the way out', () => {
    const b = new ModelBuilder(17);
    const x = b.input('input', ['n', 1, 8, 8]);
    const [f] = b.node('Flatten', [x]);
    const [h] = b.node('Gemm', [f, b.init('w0', [16, 64]), b.init('b0', [16])], { transB: 1 });
    const [c] = b.node('Cos', [h]);
    const [y] = b.node('Gemm', [c, b.init('w1', [10, 16]), b.init('b1', [10])], { transB: 1 });
    b.markOutput(y, 'output');
    const dir = tmpDir();
    const file = path.join(dir, 'cos.onnx');
    require('fs').writeFileSync(file, b.bytes());
    const args = ['train', file, '--train', fx('digits_train_x.npy'), '--train-labels', fx('digits_train_y.npy'), '--epochs', '1', '--no-bench', '-o', path.join(dir, 'o.onnx')];
    const r = cli(args);
    assert.equal(r.code, 2);
    assert.match(r.stderr.split('\n')[0], /cannot train through Cos .*--trainable\/--freeze/);
    assertNoStack(r.stderr);
    const ok = cli([...args, '--freeze', 'w0,b0', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual((JSON.parse(ok.stdout) as { trainable: string[] }).trainable, ['w1', 'b1']);
  });
});

describe('train: BatchNormalization train mode', function () {
  this.timeout(60000);
  const [N, C, HW] = [4, 3, 5];
  const x = randomFloats(N * C * HW, 21, 2).map((v, i) => v + Math.floor(i / HW) % C);
  const runMean = Float32Array.of(0.2, -0.1, 0.5);
  const runVar = Float32Array.of(1.5, 0.7, 2);
  const bnModel = (momentum: number) => {
    const b = new ModelBuilder(17);
    const inp = b.input('input', ['N', C, HW]);
    const [y] = b.node('BatchNormalization', [inp, b.init('s', [C], Float32Array.of(1.2, 0.8, -0.5)), b.init('bb', [C], Float32Array.of(0.1, 0, -0.3)), b.init('mean', [C], runMean), b.init('var', [C], runVar)], {
      epsilon: { float: 1e-5 },
      momentum: { float: momentum },
    });
    const [z] = b.node('ReduceMean', [y], { axes: [2], keepdims: 0 });
    b.output(z);
    return { model: b.build(), y, z };
  };
  /** Batch mean and biased variance per channel, in float64. */
  const batchStats = () => {
    const mean = new Float64Array(C);
    const v = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let k = 0; k < HW; k++) s += x[(n * C + c) * HW + k];
      mean[c] = s / (N * HW);
      let q = 0;
      for (let n = 0; n < N; n++) for (let k = 0; k < HW; k++) q += (x[(n * C + c) * HW + k] - mean[c]) ** 2;
      v[c] = q / (N * HW);
    }
    return { mean, v };
  };
  const xFeed: HostTensor = { dtype: DataType.FLOAT, dims: [N, C, HW], data: x };

  it('normalises with the batch statistics and updates the running ones (PyTorch: momentum 1 − ONNX momentum, unbiased running variance)', async () => {
    const { model, y, z } = bnModel(0.7);
    const tg = buildTrainingGraph(model, { losses: [{ kind: 'mse', prediction: z, target: 't' }], trainable: ['s', 'bb'], batchNorm: 'train', extraOutputs: [y] });
    assert.deepEqual([...tg.state.keys()], ['mean', 'var']);
    assert.deepEqual(
      tg.inputs.filter((i) => i.role === 'state').map((i) => i.name),
      ['mean', 'var'],
    );
    const s = await TrainingSession.create(tg);
    try {
      const values = new Map([
        ['s', Float32Array.of(1.2, 0.8, -0.5)],
        ['bb', Float32Array.of(0.1, 0, -0.3)],
        ['mean', Float32Array.from(runMean)],
        ['var', Float32Array.from(runVar)],
      ]);
      const r = await s.step({ input: xFeed, t: { dtype: DataType.FLOAT, dims: [N, C], data: new Float32Array(N * C) } }, values, [y]);
      const { mean, v } = batchStats();
      const got = r.extra[y].data as Float32Array;
      const gamma = [1.2, 0.8, -0.5];
      const beta = [0.1, 0, -0.3];
      let err = 0;
      for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let k = 0; k < HW; k++) {
        const i = (n * C + c) * HW + k;
        err = Math.max(err, Math.abs(got[i] - ((x[i] - mean[c]) / Math.sqrt(v[c] + 1e-5)) * gamma[c] - beta[c]));
      }
      assert.ok(err < 1e-4, `output max abs error ${err}`);
      const m = 0.3;
      const count = N * HW;
      for (let c = 0; c < C; c++) {
        assert.ok(Math.abs(r.state.get('mean')![c] - ((1 - m) * runMean[c] + m * mean[c])) < 1e-5, `running mean ${c}`);
        assert.ok(Math.abs(r.state.get('var')![c] - ((1 - m) * runVar[c] + (m * v[c] * count) / (count - 1))) < 1e-5, `running var ${c}`);
      }
      // The caller's arrays are inputs only: the step does not write into them.
      assert.deepEqual([...values.get('mean')!], [...runMean]);
    } finally {
      await s.release();
    }
  });

  it('fit writes the original inference graph with the updated running statistics and leaves the input alone', async () => {
    const { model, z } = bnModel(0.9);
    const before = model.graph.nodes.map((n) => n.opType);
    const data = tensorSampleSet({ input: xFeed, t: { dtype: DataType.FLOAT, dims: [N, C], data: new Float32Array(N * C) } });
    const epochs = 3;
    // BN reads the input, so every step (one batch of all samples) sees the same batch
    // statistics whatever the weights, and the running ones follow r_k = 0.9^k·r_0 + (1 − 0.9^k)·batch.
    const r = await fit(model, data, { losses: [{ kind: 'mse', prediction: z, target: 't' }], epochs, batchSize: N, optimizer: { kind: 'sgd', lr: 0.1 }, batchNorm: 'train' });
    assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), before);
    assert.deepEqual(r.model.graph.nodes.find((n) => n.opType === 'BatchNormalization')!.inputs.slice(3), ['mean', 'var']);
    const { mean, v } = batchStats();
    const keep = 0.9 ** epochs;
    const outMean = r.model.graph.initializers.get('mean')!.toFloat32();
    const outVar = r.model.graph.initializers.get('var')!.toFloat32();
    for (let c = 0; c < C; c++) {
      assert.ok(Math.abs(outMean[c] - (keep * runMean[c] + (1 - keep) * mean[c])) < 1e-5, `running mean ${c}: ${outMean[c]}`);
      assert.ok(Math.abs(outVar[c] - (keep * runVar[c] + ((1 - keep) * v[c] * N * HW) / (N * HW - 1))) < 1e-5, `running var ${c}: ${outVar[c]}`);
    }
    assert.deepEqual([...model.graph.initializers.get('mean')!.toFloat32()], [...runMean]);
    // Frozen mode keeps the statistics exactly.
    const frozen = await fit(model, data, { losses: [{ kind: 'mse', prediction: z, target: 't' }], epochs: 1, batchSize: N, optimizer: { kind: 'sgd', lr: 0.1 } });
    assert.deepEqual([...frozen.model.graph.initializers.get('var')!.toFloat32()], [...runVar]);
  });

  it('refuses a BN node whose running statistics are not initializers, naming the node', () => {
    const b = new ModelBuilder(17);
    const inp = b.input('input', ['N', C]);
    const [m] = b.node('Identity', [b.init('m0', [C])]);
    const [y] = b.node('BatchNormalization', [inp, b.init('s', [C]), b.init('bb', [C]), m, b.init('var', [C], Float32Array.of(1, 1, 1))], {}, 1, 'bn1');
    b.output(y);
    assert.throws(
      () => buildTrainingGraph(b.build(), { losses: [{ kind: 'mse', prediction: y, target: 't' }], trainable: ['s'], batchNorm: 'train' }),
      (e: Error) => e instanceof UsageError && /BatchNormalization node 'bn1'.*initializers.*--bn frozen/.test(e.message),
    );
  });
});

describe('train: fake quantization (QAT)', () => {
  it('passes gradients through QuantizeLinear → DequantizeLinear with the clipped straight-through estimator', async () => {
    const x = Float32Array.from({ length: 12 }, (_, i) => (i - 6) * 1.3 + 0.01); // some beyond ±127·s
    const s = 0.05;
    const xhat = x.map((v) => Math.max(-128, Math.min(127, Math.round(v / s))) * s);
    const mask = x.map((v) => (Math.round(v / s) >= -128 && Math.round(v / s) <= 127 ? 1 : 0));
    const grads = async (fake: boolean) => {
      const b = new ModelBuilder(17);
      let v = b.init('x', [2, 6], fake ? x : xhat);
      if (fake) {
        const [q] = b.node('QuantizeLinear', [v, b.init('s', [], Float32Array.of(s)), b.init('z', [], Int8Array.of(0), DataType.INT8)]);
        [v] = b.node('DequantizeLinear', [q, 's', 'z']);
      }
      const [y] = b.node('Mul', [v, b.init('w', [6], randomFloats(6, 3))]);
      const tg = buildTrainingGraph(b.build(), { losses: [{ kind: 'mse', prediction: y, target: 't' }], trainable: ['x', 'w'] });
      const sess = await TrainingSession.create(tg);
      const params = new Map([['x', fake ? x : xhat], ['w', b.graph.initializers.get('w')!.toFloat32()]]);
      const r = await sess.step({ t: { dtype: DataType.FLOAT, dims: [2, 6], data: randomFloats(12, 4) } }, params);
      await sess.release();
      return r;
    };
    const fake = await grads(true);
    const ref = await grads(false);
    assert.ok(mask.some((m) => m === 0) && mask.some((m) => m === 1));
    assert.ok(relErr(fake.grads.get('x')!, ref.grads.get('x')!.map((g, i) => g * mask[i])) < 1e-5);
    assert.ok(relErr(fake.grads.get('w')!, ref.grads.get('w')!) < 1e-5);
    assert.ok(Math.abs(fake.loss - ref.loss) < 1e-6);
  });

  it('computes the distillation loss as T²·KL(softmax(t/T) ‖ softmax(s/T)) averaged over the batch', async () => {
    const b = new ModelBuilder(17);
    const [z] = b.node('Identity', [b.init('s', [2, 3], Float32Array.of(1, 2, 3, -1, 0, 4))]);
    const tg = buildTrainingGraph(b.build(), { losses: [{ kind: 'distillation', logits: z, teacherLogits: 't', temperature: 2 }], trainable: ['s'] });
    const sess = await TrainingSession.create(tg);
    const t = Float32Array.of(0.5, 2.5, 1, 2, -1, 1);
    const r = await sess.step({ t: { dtype: DataType.FLOAT, dims: [2, 3], data: t } }, new Map([['s', Float32Array.of(1, 2, 3, -1, 0, 4)]]));
    await sess.release();
    const soft = (v: number[]) => {
      const e = v.map((a) => Math.exp(a / 2));
      const sum = e.reduce((a, c) => a + c, 0);
      return e.map((a) => a / sum);
    };
    let kl = 0;
    for (const [sv, tv] of [[[1, 2, 3], [0.5, 2.5, 1]], [[-1, 0, 4], [2, -1, 1]]]) {
      const p = soft(tv);
      const q = soft(sv);
      kl += p.reduce((a, pi, i) => a + pi * Math.log(pi / q[i]), 0);
    }
    assert.ok(Math.abs(r.loss - (4 * kl) / 2) < 1e-5, `${r.loss} vs ${(4 * kl) / 2}`);
  });
});
