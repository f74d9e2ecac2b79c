import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { ModelError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { tmpDir } from './helpers/ort';
import { cli } from './cli.test';

// Pure-JS tfjs builds and saves the models (no native backend needed at this size).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const tf: any = require('@tensorflow/tfjs');

/** Saves a tfjs model as model.json + one shard, as tfjs's file handlers lay it out. */
async function save(model: { save(h: unknown): Promise<unknown> }, dir: string): Promise<string> {
  await model.save(
    tf.io.withSaveHandler(async (a: { modelTopology: unknown; weightSpecs: unknown; weightData: ArrayBuffer }) => {
      fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.from(a.weightData));
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', generatedBy: 'tests', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: a.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return path.join(dir, 'model.json');
}

describe('TF.js layers models (read)', () => {
  before(() => tf.setBackend('cpu'));

  it('reads a Sequential Conv2D/BatchNorm/DepthwiseConv2D/Dense model with params equal to countParams()', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, activation: 'relu' }));
    m.add(tf.layers.batchNormalization());
    m.add(tf.layers.depthwiseConv2d({ kernelSize: 3 }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 10 }));
    const file = await save(m, tmpDir());
    const model = openModel(file);
    assert.equal(model.format, 'tfjs-layers');
    const a = analyzeModel(model);
    assert.equal(a.totals.params, m.countParams());
    assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv2D', 'BatchNormalization', 'DepthwiseConv2D', 'Flatten', 'Dense']);
    assert.deepEqual(a.inputs[0].shape, ['batch', 8, 8, 1]);
    // Weights are the very values tfjs holds.
    const k = model.graph.initializers.get(m.layers[4].weights[0].name)!;
    assert.deepEqual(Array.from(k.toFloat32()).slice(0, 5), Array.from(m.layers[4].getWeights()[0].dataSync() as Float32Array).slice(0, 5));
  });

  it('reads a Functional model with a residual Add', async () => {
    const input = tf.input({ shape: [16] });
    const h = tf.layers.dense({ units: 16, activation: 'relu' }).apply(input);
    const sum = tf.layers.add().apply([input, h]);
    const out = tf.layers.dense({ units: 3 }).apply(sum);
    const m = tf.model({ inputs: input, outputs: out });
    const model = openModel(await save(m, tmpDir()));
    const add = model.graph.nodes.find((n) => n.opType === 'Add')!;
    assert.equal(add.inputs.length, 2, 'Add reads the input and the dense branch');
    assert.equal(analyzeModel(model).totals.params, m.countParams());
    assert.equal(model.graph.outputs.length, 1);
  });

  it('dequantizes uint8/uint16 weights from the manifest and reads float16', () => {
    const dir = tmpDir();
    const bin = Buffer.alloc(4 + 4 + 4);
    bin.set([0, 128, 255, 64], 0); // uint8 q
    bin.writeUInt16LE(0, 4);
    bin.writeUInt16LE(65535, 6); // uint16 q
    bin.writeUInt16LE(0x3c00, 8); // float16 1.0
    bin.writeUInt16LE(0xc000, 10); // float16 -2.0
    fs.writeFileSync(path.join(dir, 'w.bin'), bin);
    const topo = { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 2] } }] } };
    const weights = [
      { name: 'd/kernel', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8', min: -1, scale: 0.01 } },
      { name: 'd/x', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', min: 0, scale: 0.5 } },
      { name: 'd/bias', shape: [2], dtype: 'float16' },
    ];
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: topo, weightsManifest: [{ paths: ['w.bin'], weights }] }));
    const m = openModel(path.join(dir, 'model.json'));
    const v = (n: string) => Array.from(m.graph.initializers.get(n)!.toFloat32()).map((x) => +x.toFixed(4));
    assert.deepEqual(v('d/kernel'), [-1, 0.28, 1.55, -0.36]);
    assert.deepEqual(v('d/x'), [0, 32767.5]);
    assert.deepEqual(v('d/bias'), [1, -2]);
  });

  it('inspects the checked-in TF.js fixture from the CLI, and one-click INT8 refuses it clearly', async () => {
    const file = path.resolve(__dirname, '../../../test/fixtures/tfjs/model.json');
    const r = cli(['inspect', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.format, 'tfjs-layers');
    assert.equal(j.totals.params, 1482); // model.countParams() when the fixture was generated
    const { quickQuantize } = await import('../../src/core/recipe');
    await assert.rejects(quickQuantize(file, path.join(tmpDir(), 'x.onnx')), /works on ONNX models/);
  });

  it('rejects a missing shard, a short shard, an unknown dtype and a path escaping the folder (exit 3)', () => {
    const make = (weights: unknown[], paths: string[], binBytes: number | null) => {
      const dir = tmpDir();
      if (binBytes !== null) fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(binBytes));
      const topo = { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 2] } }] } };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: topo, weightsManifest: [{ paths, weights }] }));
      return path.join(dir, 'model.json');
    };
    const w = [{ name: 'd/kernel', shape: [2, 2], dtype: 'float32' }];
    const cases: Array<[string, RegExp]> = [
      [make(w, ['w.bin'], null), /weight shard 'w.bin' is missing/],
      [make(w, ['w.bin'], 8), /fewer than the manifest declares/],
      [make([{ name: 'd/kernel', shape: [2, 2], dtype: 'complex128' }], ['w.bin'], 64), /unknown dtype 'complex128'/],
      [make(w, ['../../etc/passwd'], 16), /points outside the model's folder/],
    ];
    for (const [file, re] of cases) {
      assert.throws(() => openModel(file), (e: Error) => e instanceof ModelError && re.test(e.message) && e.message.startsWith(file));
      const r = cli(['inspect', file]);
      assert.equal(r.code, 3);
      assert.match(r.stderr, re);
    }
  });
});
