import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { openModel, saveModel } from '../../src/core/formats/registry';
import type { Model } from '../../src/core/ir/graph';
import { finishJob, openJob, runStep } from '../../src/core/jobs';
import { compareModels, recordOutputs } from '../../src/core/runtime/compare';
import { bindDataset, type Dataset } from '../../src/core/runtime/data/dataset';
import { IN_MEMORY_SESSION_LIMIT, ModelSession, ort, sessionSource } from '../../src/core/runtime/session';
import type { QuantizeOutcome } from '../../src/core/transforms/quantize';
import { kernelFidelity } from '../../src/core/transforms/quantize/qdq-check';
import { quantizeOptions, quantizeStep } from '../../src/core/transforms/quantize/step';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';

/**
 * What a job keeps in memory at once: which ONNX Runtime sessions are open together, and in
 * what form a large in-memory model reaches ONNX Runtime. (Peak RSS itself is a benchmark,
 * `npm run bench -- memory`, never a test.)
 */

/** Records every session opened and released while `fn` runs; the most open at once. */
async function sessionsDuring<T>(fn: () => Promise<T>): Promise<{ result: T; maxOpen: number; created: number; open: number }> {
  const create = ModelSession.create.bind(ModelSession);
  const release = ModelSession.prototype.release;
  let open = 0;
  let maxOpen = 0;
  let created = 0;
  ModelSession.create = async (...args: Parameters<typeof ModelSession.create>) => {
    const s = await create(...args);
    created++;
    maxOpen = Math.max(maxOpen, ++open);
    return s;
  };
  ModelSession.prototype.release = async function (this: ModelSession) {
    open--;
    return release.call(this);
  };
  try {
    const result = await fn();
    return { result, maxOpen, created, open };
  } finally {
    ModelSession.create = create;
    ModelSession.prototype.release = release;
  }
}

/** y = x · W + b with W [k, n] random: a model whose weights take k·n·4 bytes. */
function matmulModel(k: number, n: number): Model {
  const b = new ModelBuilder(17);
  const x = b.input('x', ['N', k]);
  const [h] = b.node('MatMul', [x, b.init('W', [k, n], randomFloats(k * n, 3, 0.1))]);
  const [y] = b.node('Add', [h, b.init('b', [n], randomFloats(n, 4, 0.1))]);
  b.markOutput(y, 'y');
  return b.build();
}

function randomFor(model: Model, n: number, seed = 1): Dataset {
  const input = model.graph.inputs[0];
  const shape = input.type?.kind === 'tensor' && input.type.shape ? input.type.shape : [];
  return bindDataset([{ name: input.name, dtype: 1, shape: shape.map((d) => (typeof d === 'number' ? d : d === null ? null : String(d))) }], [], { randomSamples: n, seed });
}

describe('memory: sessions and what they hold', () => {
  it('a large in-memory model reaches ORT as a temporary external-data file, deleted on release; a small one as bytes', async () => {
    const k = 1024;
    const n = Math.ceil(IN_MEMORY_SESSION_LIMIT / (4 * k)) + 16;
    const big = matmulModel(k, n);
    const small = matmulModel(16, 8);
    const o = ort();
    const orig = o.InferenceSession.create;
    const args: unknown[] = [];
    const seen: string[][] = [];
    o.InferenceSession.create = (async (arg: unknown, ...rest: unknown[]) => {
      args.push(arg);
      if (typeof arg === 'string') seen.push(fs.readdirSync(path.dirname(arg)).sort());
      return (orig as (...a: unknown[]) => Promise<unknown>).call(o.InferenceSession, arg, ...rest);
    }) as typeof orig;
    try {
      const s = await ModelSession.create(big);
      const file = args[0];
      assert.equal(typeof file, 'string', 'a path, not a serialized buffer');
      assert.deepEqual(seen[0], ['model.onnx', 'model.onnx.data']);
      // The model file holds the graph only; the weights are in the external data.
      assert.ok(fs.statSync(file as string).size < 64 * 1024, `${fs.statSync(file as string).size} bytes`);
      const x = new Float32Array(2 * k).fill(0.5);
      const y = (await s.run({ x: { dtype: 1, dims: [2, k], data: x } })).y;
      assert.deepEqual(y.dims, [2, n]);
      await s.release();
      assert.ok(!fs.existsSync(path.dirname(file as string)), 'the temporary folder is removed on release');
      const t = await ModelSession.create(small);
      assert.ok(args[1] instanceof Uint8Array);
      await t.release();
    } finally {
      o.InferenceSession.create = orig;
    }
    // A file that keeps its weights inline is opened from the IR above the limit, from the file below it.
    const dir = tmpDir();
    const bigFile = path.join(dir, 'big.onnx');
    const extFile = path.join(dir, 'ext.onnx');
    saveModel(big, bigFile);
    saveModel(big, extFile, { externalData: 'always' });
    const opened = openModel(bigFile);
    assert.equal(sessionSource(opened, bigFile), opened);
    assert.equal(sessionSource(openModel(extFile), extFile), extFile);
    assert.equal(sessionSource(small, bigFile), bigFile);
  });

  it('recorded reference outputs compare exactly as the live reference does', async () => {
    const model = openModel(path.join(FIXTURES, 'digits_mlp.onnx'));
    const data = bindDataset([{ name: 'input', dtype: 1, shape: ['N', 1, 8, 8] }], [], { randomSamples: 20, seed: 3 });
    // A perturbed copy of the model: every 7th weight of its largest tensor 10% larger.
    const perturbed = openModel(path.join(FIXTURES, 'digits_mlp.onnx'));
    const w = [...perturbed.graph.initializers.values()].sort((a, b) => b.numel - a.numel)[0];
    const vals = w.toFloat32().slice();
    for (let i = 0; i < vals.length; i += 7) vals[i] *= 1.1;
    w.setData(w.dtype, [...w.dims], vals);
    const ref = await ModelSession.create(model);
    const c = await ModelSession.create(perturbed);
    try {
      const live = await compareModels(ref, c, data, { batchSize: 6, limit: 17 });
      const rec = await recordOutputs(ref, data, { batchSize: 6, limit: 17 });
      assert.deepEqual(await compareModels(rec.replay(), c, data, { batchSize: 6, limit: 17 }), live);
      // Each replay starts from the first batch; a replay over other batches is refused.
      assert.deepEqual(await compareModels(rec.replay(), c, data, { batchSize: 6, limit: 17 }), live);
      await assert.rejects(compareModels(rec.replay(), c, data, { batchSize: 4, limit: 17 }), /replayed over other batches/);
      assert.ok(live.outputs[0].sqnrDb! > 0 && live.outputs[0].sqnrDb! < 100);
    } finally {
      await ref.release();
      await c.release();
    }
  });

  it('the int8 kernel check opens one session at a time and measures what the sessions measure side by side', async () => {
    const model = matmulModel(64, 32);
    const data = randomFor(model, 12);
    const q = await runStep<QuantizeOutcome>(
      { input: 'mem.onnx', model, inputs: [], evalData: { data, label: 'random', random: true }, calib: { data, label: 'random', random: true } },
      quantizeStep,
      quantizeOptions.parse({ mode: 'static', options: { reduceRange: true } }),
    );
    const { result, maxOpen, created, open } = await sessionsDuring(() => kernelFidelity(model, q.model, data));
    assert.deepEqual([maxOpen, created, open], [1, 3, 0]);
    // The same figures as the reference and each quantized session run together.
    const side = async (graphOptimization?: 'disabled') => {
      const r = await ModelSession.create(model, { allowSpinning: false });
      const s = await ModelSession.create(q.model, { allowSpinning: false, graphOptimization });
      try {
        return (await compareModels(r, s, data, { batchSize: 1, limit: 8 })).outputs[0].sqnrDb ?? Infinity;
      } finally {
        await r.release();
        await s.release();
      }
    };
    assert.deepEqual(result, { measuredDb: await side(), exactDb: await side('disabled') });
  });

  it('static int8 of a job: one session at a time up to the written output, at most the two compared ones after', async () => {
    const dir = tmpDir();
    const input = path.join(FIXTURES, 'digits_mlp.onnx');
    const job = await openJob(input, { calib: path.join(FIXTURES, 'digits_calib_x.npy') });
    const step = await sessionsDuring(() => runStep<QuantizeOutcome>(job, quantizeStep, quantizeOptions.parse({ mode: 'static' })));
    assert.equal(step.maxOpen, 1);
    assert.equal(step.open, 0);
    const out = path.join(dir, 'q.onnx');
    const byLabel = new Map(job.model.graph.nodes.map((n) => [n.label, n]));
    const layerOutputs = step.result.outcome.quantizedNodes.map((l) => ({ name: l, output: byLabel.get(l)!.outputs[0] }));
    const fin = await sessionsDuring(() => finishJob(job, step.result.model, out, { benchRuns: false, layerOutputs }));
    assert.equal(fin.maxOpen, 2);
    assert.equal(fin.open, 0);
    assert.ok(fin.result.fidelity && fin.result.layers?.length);
  });
});
