import { strict as assert } from 'assert';
import * as path from 'path';
import { openModel } from '../../src/core/formats/registry';
import { readNpy } from '../../src/core/runtime/data/npy';
import { DataType } from '../../src/core/ir/dtype';
import type { HostTensor } from '../../src/core/runtime/session';
import { TrainingSession, buildTrainingGraph, floatWeights, labelsTensor } from '../../src/core/train';
import { FIXTURES } from './helpers/ort';

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
