import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { ModelError } from '../../src/core/errors';
import { openModel, saveModel } from '../../src/core/formats/registry';
import { bindDataset } from '../../src/core/runtime/data/dataset';
import { modelInputs, TfjsRunner } from '../../src/core/runtime/tfjs';
import { pruneModel } from '../../src/core/transforms/prune';
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
    // Output shapes inferred from the Keras configs; MACs by hand: conv 6·6·4·9, depthwise 4·4·4·9, dense 64·10.
    assert.deepEqual(a.layers.map((l) => l.outputShapes[0]), [['batch', 6, 6, 4], ['batch', 6, 6, 4], ['batch', 4, 4, 4], ['batch', 64], ['batch', 10]]);
    assert.equal(a.totals.macs, 6 * 6 * 4 * 9 + 4 * 4 * 4 * 9 + 64 * 10);
    assert.equal(a.totals.unknownMacsNodes, 0);
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
    assert.equal(j.fileSizeBytes, fs.statSync(file).size + fs.statSync(path.join(path.dirname(file), 'group1-shard1of1.bin')).size, 'the size counts the shards');
    const { quickQuantize } = await import('../../src/core/jobs/quick-int8');
    await assert.rejects(quickQuantize(file, path.join(tmpDir(), 'x.onnx')), /works on ONNX models; TF.js models are quantized in their own manifest: use Compress Model… or `quantize --mode uint8`/);
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

/** A Conv2D/BatchNorm/DepthwiseConv2D/Dense classifier with non-trivial BN statistics. */
function convNet(seed = 1) {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed + s });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 16, kernelSize: 3, activation: 'relu', kernelInitializer: init(1) }));
  m.add(tf.layers.batchNormalization());
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, activation: 'relu', depthwiseInitializer: init(2) }));
  m.add(tf.layers.conv2d({ filters: 24, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(3) }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init(4) }));
  m.add(tf.layers.dense({ units: 10, kernelInitializer: init(5) }));
  const bn = m.layers[1];
  const [g, b] = [tf.randomUniform([16], 0.5, 1.5, 'float32', seed), tf.randomUniform([16], -0.2, 0.2, 'float32', seed + 1)];
  bn.setWeights([g, b, tf.randomUniform([16], -0.3, 0.3, 'float32', seed + 2), tf.randomUniform([16], 0.5, 2, 'float32', seed + 3)]);
  return m;
}

/** Random samples for a TF.js model's single input (its NHWC shape, batch 1 per sample). */
async function randomCalib(file: string, samples: number, seed: number) {
  const inputs = await modelInputs(file);
  const shape = inputs[0].shape.map((d) => (typeof d === 'number' ? d : 1));
  return bindDataset(inputs, [], { randomSamples: samples, seed, shapes: { [inputs[0].name]: shape } });
}

/** Cosine and max |diff| between tfjs predictions of two models on the same random batch. */
async function agreement(a: { predict(x: unknown): { dataSync(): Float32Array } }, file: string, shape: number[]) {
  const x = tf.randomUniform(shape, 0, 1, 'float32', 7);
  const ref = a.predict(x).dataSync();
  const r = await TfjsRunner.create(file, { backend: tf.getBackend() }); // the reference's backend: identical arithmetic
  const out = Object.values(await r.run({ [r.inputs[0].name]: { dtype: 1, dims: shape, data: x.dataSync() } }))[0].data as Float32Array;
  let dot = 0, na = 0, nb = 0, max = 0;
  for (let i = 0; i < ref.length; i++) {
    dot += ref[i] * out[i];
    na += ref[i] ** 2;
    nb += out[i] ** 2;
    max = Math.max(max, Math.abs(ref[i] - out[i]));
  }
  return { cosine: dot / Math.sqrt(na * nb), maxAbs: max, n: ref.length };
}

const shardBytes = (file: string) => {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  return j.weightsManifest.flatMap((g: { paths: string[] }) => g.paths).reduce((a: number, p: string) => a + fs.statSync(path.join(path.dirname(file), p)).size, 0);
};

describe('TF.js layers models (write, quantize)', () => {
  before(() => tf.setBackend('cpu'));

  it('writes a model back unchanged in several shards that tfjs loads, with identical outputs; the source is untouched', async () => {
    const m = convNet();
    const dir = tmpDir();
    const file = await save(m, dir);
    const before = fs.readFileSync(path.join(dir, 'group1-shard1of1.bin'));
    const out = path.join(dir, 'copy.json');
    saveModel(openModel(file), out, { shardBytes: 4000 });
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.ok(j.weightsManifest[0].paths.length > 3, 'split into shards');
    assert.ok(j.weightsManifest[0].paths.every((p: string) => p.startsWith('copy.group1-shard')));
    const a = await agreement(m, out, [2, 12, 12, 3]);
    assert.equal(a.maxAbs, 0);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'group1-shard1of1.bin')), before);
    assert.equal(analyzeModel(openModel(out)).totals.params, m.countParams());
  });

  it('uint8 manifest quantization: ≈0.25x the weight bytes, tfjs loads it, cosine ≥ 0.99; uint16 and float16 are closer still', async () => {
    const m = convNet();
    const dir = tmpDir();
    const file = await save(m, dir);
    const results: Record<string, { ratio: number; cosine: number; maxAbs: number }> = {};
    for (const mode of ['uint8', 'uint16', 'fp16']) {
      const out = path.join(dir, `model.${mode}.json`);
      const r = cli(['quantize', file, '--mode', mode, '-o', out, '--json', '--samples', '8']);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.ok(j.fidelity.outputs[0].cosine > 0.99, `${mode}: cosine ${j.fidelity.outputs[0].cosine}`);
      assert.match(j.fidelity.runtime, /^TensorFlow\.js \((wasm|tensorflow) backend\)$/, 'the written model is checked by TensorFlow.js itself');
      const a = await agreement(m, out, [4, 12, 12, 3]);
      results[mode] = { ratio: shardBytes(out) / shardBytes(file), cosine: a.cosine, maxAbs: a.maxAbs };
      const spec = JSON.parse(fs.readFileSync(out, 'utf8')).weightsManifest[0].weights[0];
      assert.equal(spec.quantization.dtype, mode === 'fp16' ? 'float16' : mode);
    }
    assert.ok(Math.abs(results.uint8.ratio - 0.25) < 0.01, `uint8 ratio ${results.uint8.ratio}`);
    assert.ok(results.uint8.cosine >= 0.99, `uint8 cosine ${results.uint8.cosine}`);
    assert.ok(Math.abs(results.uint16.ratio - 0.5) < 0.01 && Math.abs(results.fp16.ratio - 0.5) < 0.01);
    assert.ok(results.uint16.maxAbs < results.uint8.maxAbs / 50, JSON.stringify(results));
    assert.ok(results.fp16.cosine > 0.99999);
    // Reading the quantized model gives the dequantized weights; re-saving keeps its storage.
    const q = openModel(path.join(dir, 'model.uint8.json'));
    saveModel(q, path.join(dir, 'again.json'));
    assert.equal(shardBytes(path.join(dir, 'again.json')), shardBytes(path.join(dir, 'model.uint8.json')));
  });

  it('refuses ONNX-only modes on TF.js and TF.js-only modes on ONNX', () => {
    const file = path.resolve(__dirname, '../../../test/fixtures/tfjs/model.json');
    const r = cli(['quantize', file, '--mode', 'static', '--calib', 'random:4', '-o', path.join(tmpDir(), 'x.json')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TF.js models take --mode fp16, uint8, uint16/);
    const o = cli(['quantize', path.resolve(__dirname, '../../../test/fixtures/digits_mlp.onnx'), '--mode', 'uint8', '-o', path.join(tmpDir(), 'x.onnx')]);
    assert.equal(o.code, 2);
    assert.match(o.stderr, /TF.js weight storage/);
  });
});

describe('TF.js layers models (structured pruning)', () => {
  before(() => tf.setBackend('cpu'));

  it('30% of the channels: a smaller model that tfjs loads and runs, params equal to its countParams()', async () => {
    const m = convNet();
    const dir = tmpDir();
    const file = await save(m, dir);
    const out = path.join(dir, 'model.pruned.json');
    const r = cli(['prune', file, '--structured', '--ratio', '0.3', '--round-to', '1', '-o', out, '--json', '--samples', '8']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.groups.map((g: { name: string; removed: number }) => [g.name, g.removed]), [
      [m.layers[0].name, 4], // 16 filters → 12 (BN and the depthwise conv follow)
      [m.layers[3].name, 7], // 24 → 17 (Flatten interleaves its rows into the dense kernel)
      [m.layers[5].name, 9], // 32 → 23
    ]);
    assert.match(j.skipped[0].reason, /model output/);
    const runner = await TfjsRunner.create(out);
    const y = Object.values(await runner.run({ [runner.inputs[0].name]: { dtype: 1, dims: [3, 12, 12, 3], data: new Float32Array(3 * 12 * 12 * 3).fill(0.5) } }))[0];
    assert.deepEqual(y.dims, [3, 10]);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(await (async () => {
      const mj = JSON.parse(fs.readFileSync(out, 'utf8'));
      const data = Buffer.concat(mj.weightsManifest[0].paths.map((p: string) => fs.readFileSync(path.join(dir, p))));
      return { modelTopology: mj.modelTopology, weightSpecs: mj.weightsManifest[0].weights, weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) };
    })()));
    assert.equal(j.after.params, loaded.countParams());
    assert.ok(j.after.params < 0.6 * m.countParams(), `${j.after.params} vs ${m.countParams()}`);
    assert.ok(j.after.macs < 0.75 * j.before.macs, `${j.after.macs} vs ${j.before.macs}`);
    assert.ok(j.after.sizeBytes < j.before.sizeBytes);
    // By default kept counts are multiples of 8 (groups of 16 or more), as for ONNX: 16 stays, 24 → 16, 32 → 24.
    const rounded = cli(['prune', file, '--structured', '--ratio', '0.3', '-o', path.join(dir, 'r.json'), '--json', '--no-bench', '--samples', '4']);
    assert.equal(rounded.code, 0, rounded.stderr);
    assert.deepEqual(JSON.parse(rounded.stdout).groups.map((g: { name: string; removed: number }) => [g.name, g.removed]), [[m.layers[3].name, 8], [m.layers[5].name, 8]]);
  });

  it('removing channels that are exactly zero leaves the outputs unchanged (slicing is right everywhere, Flatten included)', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [10, 10, 2], filters: 10, kernelSize: 3, activation: 'relu' }));
    m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, useBias: false }));
    m.add(tf.layers.conv2d({ filters: 10, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 10, activation: 'relu' }));
    m.add(tf.layers.dense({ units: 4 }));
    // Zero the kernels and biases of channels 1, 4, 7 in every producer: relu makes them exactly 0.
    for (const i of [0, 2, 4]) {
      const [k, b] = m.layers[i].getWeights();
      const kv = k.arraySync().flat(Infinity) as number[];
      const units = k.shape[k.shape.length - 1];
      const bv = b.arraySync() as number[];
      for (const c of [1, 4, 7]) {
        for (let e = c; e < kv.length; e += units) kv[e] = 0;
        bv[c] = 0;
      }
      // Nudge the rest away from zero so that the l1 order is certain.
      m.layers[i].setWeights([tf.tensor(kv.map((v, e) => ([1, 4, 7].includes(e % units) ? 0 : v + Math.sign(v) * 0.05)), k.shape), tf.tensor(bv)]);
    }
    const file = await save(m, tmpDir());
    const r = await pruneModel(openModel(file), { structured: true, ratio: 0.3 });
    assert.deepEqual(r.groups.map((g) => g.removed), [3, 3, 3]);
    const out = path.join(path.dirname(file), 'p.json');
    saveModel(r.model, out);
    const a = await agreement(m, out, [2, 10, 10, 2]);
    assert.ok(a.maxAbs < 1e-5, `max |diff| ${a.maxAbs}`);
    assert.equal(analyzeModel(openModel(out)).totals.params, analyzeModel(r.model).totals.params);
  });

  it('prunes a residual stream as one group: the producers joined by Add lose the same channels, outputs unchanged for zero channels', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const c0 = tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'same' });
    const bn0 = tf.layers.batchNormalization();
    const s0 = tf.layers.activation({ activation: 'relu' }).apply(bn0.apply(c0.apply(input)));
    const c1 = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' });
    const c2 = tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'same' });
    const bn2 = tf.layers.batchNormalization();
    const s1 = tf.layers.activation({ activation: 'relu' }).apply(tf.layers.add().apply([s0, bn2.apply(c2.apply(c1.apply(s0)))]));
    // A one-conv block: c3 both consumes and produces the stream's channels.
    const c3 = tf.layers.conv2d({ filters: 12, kernelSize: 1 });
    const s2 = tf.layers.add().apply([s1, c3.apply(s1)]);
    const out = tf.layers.dense({ units: 4 }).apply(tf.layers.globalAveragePooling2d({}).apply(s2));
    const m = tf.model({ inputs: input, outputs: out });
    // Stream channels 2, 5, 9 exactly zero: kernels, biases, BN beta and mean.
    const zero = [2, 5, 9];
    for (const conv of [c0, c2, c3]) {
      const [k] = conv.getWeights();
      const kv = Float32Array.from(k.dataSync()).map((v: number, e: number) => (zero.includes(e % 12) ? 0 : v + Math.sign(v) * 0.05));
      conv.setWeights([tf.tensor(kv, k.shape), tf.tensor(Array.from({ length: 12 }, (_, i) => (zero.includes(i) ? 0 : 0.1)))]);
    }
    for (const bn of [bn0, bn2]) {
      const per = (f: (i: number) => number) => tf.tensor(Array.from({ length: 12 }, (_, i) => f(i)));
      bn.setWeights([per((i) => 1 + i / 20), per((i) => (zero.includes(i) ? 0 : 0.05)), per((i) => (zero.includes(i) ? 0 : 0.02 * i)), per((i) => 1 + i / 10)]);
    }
    const file = await save(m, tmpDir());
    const r = await pruneModel(openModel(file), { structured: true, ratio: 0.25, exclude: [c1.name] });
    assert.equal(r.groups.length, 1, JSON.stringify(r.groups));
    assert.deepEqual([...r.groups[0].producers].sort(), [c0.name, c2.name, c3.name].sort());
    assert.equal(r.groups[0].removed, 3);
    const p = path.join(path.dirname(file), 'p.json');
    saveModel(r.model, p);
    const a = await agreement(m, p, [2, 8, 8, 3]);
    assert.ok(a.maxAbs < 1e-5, `max |diff| ${a.maxAbs}`);
    const j = JSON.parse(fs.readFileSync(p, 'utf8'));
    const filters = Object.fromEntries(j.modelTopology.config.layers.filter((l: { class_name: string }) => l.class_name === 'Conv2D').map((l: { config: { name: string; filters: number } }) => [l.config.name, l.config.filters]));
    assert.deepEqual(filters, { [c0.name]: 9, [c1.name]: 8, [c2.name]: 9, [c3.name]: 9 });
    // Without the exclusion every group is pruned, and tfjs still loads and runs it.
    const all = await pruneModel(openModel(file), { structured: true, ratio: 0.5 });
    assert.deepEqual(all.groups.map((g) => [g.producers.length, g.channels, g.removed]).sort(), [[1, 8, 4], [3, 12, 6]]);
    saveModel(all.model, p);
    const b = await agreement(m, p, [2, 8, 8, 3]);
    assert.ok(Number.isFinite(b.cosine) && b.cosine < 0.999999, `pruning real channels changes the outputs (cosine ${b.cosine})`);
  });

  it('follows a Concatenate at each producer\'s offset: BN, the next conv and Flatten → Dense lose the right rows', async () => {
    const input = tf.input({ shape: [6, 6, 2] });
    const a = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' });
    const b = tf.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'relu' });
    const bn = tf.layers.batchNormalization();
    const cat = tf.layers.concatenate().apply([a.apply(input), b.apply(input)]);
    const c = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' });
    const both = tf.layers.concatenate().apply([c.apply(bn.apply(cat)), cat]);
    const out = tf.layers.dense({ units: 3 }).apply(tf.layers.flatten().apply(both));
    const m = tf.model({ inputs: input, outputs: out });
    const zeroA = [1, 3];
    const zeroB = [0, 4];
    for (const [conv, zero, units] of [[a, zeroA, 8], [b, zeroB, 6]] as const) {
      const [k] = conv.getWeights();
      const kv = Float32Array.from(k.dataSync()).map((v: number, e: number) => ((zero as readonly number[]).includes(e % units) ? 0 : v + Math.sign(v) * 0.05));
      conv.setWeights([tf.tensor(kv, k.shape), tf.tensor(Array.from({ length: units }, (_, i) => ((zero as readonly number[]).includes(i) ? 0 : 0.1)))]);
    }
    const catZero = [...zeroA, ...zeroB.map((i) => 8 + i)];
    const per = (f: (i: number) => number) => tf.tensor(Array.from({ length: 14 }, (_, i) => f(i)));
    bn.setWeights([per((i) => 1 + i / 20), per((i) => (catZero.includes(i) ? 0 : 0.05)), per((i) => (catZero.includes(i) ? 0 : 0.02 * i)), per((i) => 1 + i / 10)]);
    const file = await save(m, tmpDir());
    const r = await pruneModel(openModel(file), { structured: true, ratio: 0.34, exclude: [c.name] });
    assert.deepEqual(r.groups.map((g) => [g.name, g.removed]), [[a.name, 2], [b.name, 2]]);
    const p = path.join(path.dirname(file), 'p.json');
    saveModel(r.model, p);
    const d = await agreement(m, p, [2, 6, 6, 2]);
    assert.ok(d.maxAbs < 1e-5, `max |diff| ${d.maxAbs}`);
    const pruned = openModel(p);
    assert.deepEqual(pruned.graph.initializers.get(`${bn.name}/gamma`)!.dims, [10]);
    assert.deepEqual(pruned.graph.initializers.get(`${c.name}/kernel`)!.dims, [3, 3, 10, 4]);
    assert.equal(analyzeModel(pruned).totals.params, analyzeModel(r.model).totals.params);
  });

  it('measures sensitivity curves per group (ORT on the export), matching TensorFlow.js: each point is that group pruned alone', async () => {
    const m = convNet(3);
    const file = await save(m, tmpDir());
    const { pruningSensitivity } = await import('../../src/core/transforms/prune/sensitivity');
    const data = await randomCalib(file, 12, 5);
    const model = openModel(file);
    const r = await pruningSensitivity(model, { data, ratios: [0.25, 0.75], samples: 12, metric: 'cosine' });
    assert.equal(r.runtime, 'ONNX Runtime (on the ONNX export)');
    const names = [m.layers[0].name, m.layers[3].name, m.layers[5].name];
    assert.deepEqual(r.curves.map((c) => [c.group, c.channels, c.points.map((p) => p.removed)]), [[names[0], 16, [4, 12]], [names[1], 24, [6, 18]], [names[2], 32, [8, 24]]]);
    for (const c of r.curves) assert.ok(c.points[1].drop > c.points[0].drop && c.points[0].drop > 0, `${c.group}: ${c.points.map((p) => p.drop)}`);
    // The second group at 75%, independently: prune it alone, run both in tfjs, cosine over the same samples.
    const alone = await pruneModel(model, { structured: true, ratio: 0.75, exclude: [names[0], names[2]], roundTo: 1 });
    const out = path.join(path.dirname(file), 'alone.json');
    saveModel(alone.model, out);
    const [a, b] = [await TfjsRunner.create(file), await TfjsRunner.create(out)];
    let dot = 0, na = 0, nb = 0;
    for (const { feeds } of data.batches(16, 12)) {
      const x = Object.values(await a.run(feeds))[0].data as Float32Array;
      const y = Object.values(await b.run(feeds))[0].data as Float32Array;
      for (let i = 0; i < x.length; i++) {
        dot += x[i] * y[i];
        na += x[i] ** 2;
        nb += y[i] ** 2;
      }
    }
    await a.release();
    await b.release();
    assert.ok(Math.abs(r.curves[1].points[1].value - dot / Math.sqrt(na * nb)) < 1e-6);
    assert.equal(r.curves[1].points[1].paramsSaved, analyzeModel(model).totals.params - analyzeModel(alone.model).totals.params);
  });

  it('entropy importance (activations in TensorFlow.js) removes dead channels that the l1 norm would keep', async () => {
    // Seeded initial weights: with unseeded ones, a draw where the removed live channels barely
    // matter made the l1 assertion flaky.
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 8, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }));
    const [k] = m.layers[0].getWeights();
    const dead = [1, 6];
    // Dead channels: the largest kernels, but a bias so negative that relu always gives 0.
    m.layers[0].setWeights([tf.tensor(Float32Array.from(k.dataSync()).map((v: number, e: number) => (dead.includes(e % 8) ? 3 * Math.sign(v) : v)), k.shape), tf.tensor(Array.from({ length: 8 }, (_, i) => (dead.includes(i) ? -1000 : 0.1)))]);
    const file = await save(m, tmpDir());
    const calib = await randomCalib(file, 20, 2);
    const diff = async (criterion: 'entropy' | 'l1') => {
      const r = await pruneModel(openModel(file), { structured: true, ratio: 0.25, criterion, calib });
      assert.equal(r.groups[0].removed, 2);
      const out = path.join(path.dirname(file), `${criterion}.json`);
      saveModel(r.model, out);
      return (await agreement(m, out, [3, 6, 6, 2])).maxAbs;
    };
    assert.ok((await diff('entropy')) < 1e-5, 'the dead channels went');
    assert.ok((await diff('l1')) > 1e-3, 'l1 keeps the dead channels and removes live ones');
    await assert.rejects(pruneModel(openModel(file), { structured: true, ratio: 0.25, criterion: 'entropy' }), /needs calibration data/);
  });

  it('reconstruction refits the next layer by least squares: exact when the removed units are linear in the kept ones', async () => {
    const m = tf.sequential();
    m.add(tf.layers.dense({ inputShape: [4], units: 8 })); // linear: every unit is a combination of 4 inputs
    m.add(tf.layers.dense({ units: 3 }));
    const file = await save(m, tmpDir());
    const calib = await randomCalib(file, 64, 4);
    const diff = async (recover: 'none' | 'reconstruct') => {
      const r = await pruneModel(openModel(file), { structured: true, ratio: 0.25, recover, calib, exclude: [m.layers[1].name] });
      assert.equal(r.groups[0].removed, 2);
      const out = path.join(path.dirname(file), `${recover}.json`);
      saveModel(r.model, out);
      return { maxAbs: (await agreement(m, out, [5, 4])).maxAbs, reports: r.reconstruction };
    };
    const plain = await diff('none');
    const refit = await diff('reconstruct');
    assert.equal(refit.reports.length, 1);
    assert.equal(refit.reports[0].layer, m.layers[1].name);
    // Exact up to the solver's 1e-6 relative damping of the (rank-deficient) normal equations.
    assert.ok(refit.reports[0].errorAfter < 1e-3 * refit.reports[0].errorBefore, JSON.stringify(refit.reports));
    assert.ok(plain.maxAbs > 0.05 && refit.maxAbs < 0.01 * plain.maxAbs, `without ${plain.maxAbs}, with ${refit.maxAbs}`);
  });

  it('reconstruction of a strided SAME conv is exact when the removed channels are linear in the kept ones (im2col geometry)', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [7, 7, 2], filters: 6, kernelSize: 1 })); // linear 1×1: 6 channels in a 2-D space
    m.add(tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', dilationRate: 1 }));
    m.add(tf.layers.conv2d({ filters: 2, kernelSize: 2, padding: 'valid' }));
    const file = await save(m, tmpDir());
    const calib = await randomCalib(file, 16, 8);
    const r = await pruneModel(openModel(file), { structured: true, ratio: 0.34, recover: 'reconstruct', calib, exclude: [m.layers[1].name] });
    assert.equal(r.groups[0].removed, 2);
    assert.equal(r.reconstruction.length, 1);
    assert.ok(r.reconstruction[0].errorAfter < 1e-3 * r.reconstruction[0].errorBefore, JSON.stringify(r.reconstruction));
    const out = path.join(path.dirname(file), 'refit.json');
    saveModel(r.model, out);
    const d = await agreement(m, out, [3, 7, 7, 2]);
    assert.ok(d.cosine > 0.99999, `cosine ${d.cosine}`);
  });

  it('reconstruction on a conv net (NHWC im2col, SAME padding, strides) lowers every refitted layer\'s error and the output error', async () => {
    const m = convNet(5);
    const file = await save(m, tmpDir());
    const calib = await randomCalib(file, 320, 6); // > 273 features of the dense layer after Flatten
    const cos: number[] = [];
    for (const recover of ['none', 'reconstruct'] as const) {
      const r = await pruneModel(openModel(file), { structured: true, ratio: 0.3, recover, calib, roundTo: 1 });
      if (recover === 'reconstruct') {
        assert.deepEqual(r.reconstruction.map((x) => x.layer), [m.layers[3].name, m.layers[5].name, m.layers[6].name]);
        for (const x of r.reconstruction) assert.ok(x.errorAfter < x.errorBefore, JSON.stringify(x));
      }
      const out = path.join(path.dirname(file), `${recover}.json`);
      saveModel(r.model, out);
      cos.push((await agreement(m, out, [8, 12, 12, 3])).cosine);
    }
    assert.ok(cos[1] > cos[0], `cosine without ${cos[0]}, with ${cos[1]}`);
  });

  it('runs an iterative prune → reconstruct schedule (--steps 3), refitting against the original each step', async () => {
    const m = convNet(6);
    const file = await save(m, tmpDir());
    const calib = await randomCalib(file, 320, 9);
    const cos: number[] = [];
    for (const recover of ['none', 'reconstruct'] as const) {
      const r = await pruneModel(openModel(file), { structured: true, ratio: 0.5, steps: 3, recover, calib, roundTo: 1 });
      // 16 → 13 → 11 → 8: each step's cumulative share is counted on the 16 channels before step 1.
      const out = path.join(path.dirname(file), `steps-${recover}.json`);
      saveModel(r.model, out);
      const layers = JSON.parse(fs.readFileSync(out, 'utf8')).modelTopology.config.layers;
      assert.equal(layers[0].config.filters, 8);
      if (recover === 'reconstruct') {
        // Every step refits the conv and the last dense; the dense after Flatten once it has fewer inputs than samples.
        const refits = r.reconstruction.map((x) => x.layer);
        assert.equal(refits.filter((l) => l === m.layers[3].name).length, 3, JSON.stringify(refits));
        assert.equal(refits.filter((l) => l === m.layers[6].name).length, 3, JSON.stringify(refits));
        assert.ok(refits.includes(m.layers[5].name), JSON.stringify(refits));
        for (const x of r.reconstruction) assert.ok(x.errorAfter <= x.errorBefore, JSON.stringify(x));
      }
      cos.push((await agreement(m, out, [8, 12, 12, 3])).cosine);
    }
    assert.ok(cos[1] > cos[0], `cosine without ${cos[0]}, with ${cos[1]}`);
  });

  it('--ratio r --steps s removes r of the prunable channels in the end, as one shot and as the ONNX path do (any schedule, any rounding)', async () => {
    const file = await save(convNet(7), tmpDir());
    const filters = (r: { model: Parameters<typeof saveModel>[0] }) => {
      const out = path.join(tmpDir(), 'model.json');
      saveModel(r.model, out);
      return JSON.parse(fs.readFileSync(out, 'utf8')).modelTopology.config.layers.filter((l: { config: { filters?: number; units?: number } }) => l.config.filters ?? l.config.units).map((l: { config: { filters?: number; units?: number } }) => l.config.filters ?? l.config.units);
    };
    for (const [ratio, roundTo, want] of [[0.5, 1, [8, 12, 16, 10]], [0.3, 1, [12, 17, 23, 10]], [0.5, 8, [8, 16, 16, 10]]] as const) {
      const once = filters(await pruneModel(openModel(file), { structured: true, ratio, roundTo }));
      assert.deepEqual(once, want, `one shot at ${ratio}`);
      for (const steps of [2, 3]) {
        for (const schedule of [undefined, 'linear', 'cubic'] as const) {
          const r = await pruneModel(openModel(file), { structured: true, ratio, steps, schedule, roundTo });
          assert.deepEqual(filters(r), want, `ratio ${ratio}, ${steps} steps, schedule ${schedule}, round to ${roundTo}`);
        }
      }
    }
  });

  it('prune --allocate sensitivity gives each group its own ratio from TensorFlow.js curves', async () => {
    const m = convNet(4);
    const file = await save(m, tmpDir());
    const out = path.join(path.dirname(file), 'alloc.json');
    const r = cli(['prune', file, '--structured', '--target-macs', '0.4', '--allocate', 'sensitivity', '--round-to', '1', '-o', out, '--json', '--samples', '8']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const ratios = Object.values(j.allocation) as number[];
    assert.ok(ratios.length >= 1 && j.groups.length === ratios.length, JSON.stringify(j.allocation));
    for (const g of j.groups) assert.equal(g.removed, Math.floor(g.channels * j.allocation[g.name] + 1e-9), g.name);
    assert.ok(j.after.macs < 0.8 * j.before.macs, `${j.after.macs} of ${j.before.macs}`);
    assert.equal(cli(['prune', file, '--structured', '--target-latency', '0.2', '-o', out]).code, 2);
  });

  it('follows a residual Add no further when it carries the model input; unstructured zeroes kernels', async () => {
    const input = tf.input({ shape: [16] });
    const h = tf.layers.dense({ units: 16, activation: 'relu' }).apply(input);
    const sum = tf.layers.add().apply([input, h]);
    const h2 = tf.layers.dense({ units: 12, activation: 'relu' }).apply(sum);
    const out = tf.layers.dense({ units: 3 }).apply(h2);
    const m = tf.model({ inputs: input, outputs: out });
    const model = openModel(await save(m, tmpDir()));
    const r = await pruneModel(model, { structured: true, ratio: 0.5 });
    assert.equal(r.groups.length, 1);
    assert.equal(r.groups[0].removed, 6);
    assert.match(r.skipped.find((s) => s.name === m.layers[1].name)!.reason, /model input/);
    const u = await pruneModel(model, { structured: false, ratio: 0.5 });
    assert.ok(u.sparsity!.every((s) => Math.abs(s.sparsity - 0.5) < 0.02));
  });
});

describe('TF.js layers models (depthwise-separable substitution)', () => {
  before(() => tf.setBackend('cpu'));

  it('turns an exactly separable Conv2D into a SeparableConv2D that tfjs loads, with the same outputs', async () => {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [9, 9, 4], filters: 12, kernelSize: 3, padding: 'same', strides: 2, activation: 'relu' }));
    m.add(tf.layers.conv2d({ filters: 6, kernelSize: 1 }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 3 }));
    // W[k, i, o] = d[k, i] · p[i, o]: rank one per input channel, so multiplier 1 is exact.
    const d = tf.randomNormal([9, 4], 0, 1, 'float32', 3).arraySync() as number[][];
    const p = tf.randomNormal([4, 12], 0, 1, 'float32', 4).arraySync() as number[][];
    const w = new Float32Array(9 * 4 * 12);
    for (let k = 0; k < 9; k++) for (let i = 0; i < 4; i++) for (let o = 0; o < 12; o++) w[(k * 4 + i) * 12 + o] = d[k][i] * p[i][o];
    m.layers[0].setWeights([tf.tensor(w, [3, 3, 4, 12]), tf.randomUniform([12], -0.1, 0.1, 'float32', 5)]);
    const dir = tmpDir();
    const file = await save(m, dir);
    const out = path.join(dir, 'sep.json');
    const r = cli(['substitute', file, '--depthwise', '-o', out, '--json', '--samples', '4']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.layers.map((l: { name: string; paramsBefore: number; paramsAfter: number }) => [l.name, l.paramsBefore, l.paramsAfter]), [[m.layers[0].name, 9 * 4 * 12 + 12, 9 * 4 + 4 * 12 + 12]]);
    assert.match(j.skipped[0].reason, /1×1/);
    const layer = JSON.parse(fs.readFileSync(out, 'utf8')).modelTopology.config.layers[0];
    assert.equal(layer.class_name, 'SeparableConv2D');
    assert.equal(layer.config.depth_multiplier, 1);
    const a = await agreement(m, out, [2, 9, 9, 4]);
    assert.ok(a.maxAbs < 1e-4, `max |diff| ${a.maxAbs}`);
    assert.equal(analyzeModel(openModel(out)).totals.params, m.countParams() - 9 * 4 * 12 + 9 * 4 + 4 * 12);
  });

  it('on random weights: fewer params, a valid model, and multiplier m keeps more of the kernel', async () => {
    const m = convNet();
    const file = await save(m, tmpDir());
    const { substituteDepthwise } = await import('../../src/core/transforms/substitute');
    const cos: number[] = [];
    for (const mult of [1, 4]) {
      const r = await substituteDepthwise(openModel(file), { multiplier: mult });
      assert.equal(r.layers.length, 2);
      const out = path.join(path.dirname(file), `m${mult}.json`);
      saveModel(r.model, out);
      cos.push((await agreement(m, out, [4, 12, 12, 3])).cosine);
    }
    assert.ok(cos[1] > cos[0], `cosine m=1 ${cos[0]}, m=4 ${cos[1]}`);
  });
});

/** A graph model written the way tfjs-converter lays it out: x·W + b → Relu, weights in the manifest. */
function writeGraphModel(dir: string) {
  const W = Float32Array.from({ length: 4 * 3 }, (_, i) => Math.sin(i + 1));
  const b = Float32Array.from([0.1, -0.2, 0.3]);
  const dt = { type: 'DT_FLOAT' };
  const topo = {
    node: [
      { name: 'x', op: 'Placeholder', attr: { dtype: dt, shape: { shape: { dim: [{ size: '-1' }, { size: '4' }] } } } },
      { name: 'dense/W', op: 'Const', attr: { dtype: dt, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '4' }, { size: '3' }] } } } } },
      { name: 'dense/b', op: 'Const', attr: { dtype: dt, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }] } } } } },
      { name: 'dense/MatMul', op: 'MatMul', input: ['x', 'dense/W'], attr: { T: dt, transpose_a: { b: false }, transpose_b: { b: false } } },
      { name: 'dense/BiasAdd', op: 'BiasAdd', input: ['dense/MatMul', 'dense/b'], attr: { T: dt, data_format: { s: Buffer.from('NHWC').toString('base64') } } },
      { name: 'y', op: 'Relu', input: ['dense/BiasAdd', '^dense/MatMul'], attr: { T: dt } },
    ],
    library: {},
    versions: { producer: 1482 },
  };
  fs.writeFileSync(path.join(dir, 'g.bin'), Buffer.concat([Buffer.from(W.buffer), Buffer.from(b.buffer)]));
  const weights = [{ name: 'dense/W', shape: [4, 3], dtype: 'float32' }, { name: 'dense/b', shape: [3], dtype: 'float32' }];
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'graph-model', generatedBy: 'tests', convertedBy: 'tests', modelTopology: topo, weightsManifest: [{ paths: ['g.bin'], weights }] }));
  return { file: path.join(dir, 'model.json'), W, b };
}

/** A small CNN as tfjs-converter writes it: fused conv, depthwise, pooling, reshape, mean, fused MatMul. */
function writeGraphCnn(dir: string) {
  const dt = { type: 'DT_FLOAT' };
  const s = (x: string) => ({ s: Buffer.from(x).toString('base64') });
  const ints = (...v: number[]) => ({ list: { i: v.map(String) } });
  const weights: Array<{ name: string; shape: number[]; dtype: string }> = [];
  const data: Buffer[] = [];
  let seed = 1;
  const konst = (name: string, shape: number[], values?: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const int = values !== undefined;
    data.push(Buffer.from((int ? Int32Array.from(values) : Float32Array.from({ length: n }, () => Math.sin(seed++) * 0.5)).buffer));
    weights.push({ name, shape, dtype: int ? 'int32' : 'float32' });
    return { name, op: 'Const', attr: { dtype: { type: int ? 'DT_INT32' : 'DT_FLOAT' }, value: { tensor: { dtype: int ? 'DT_INT32' : 'DT_FLOAT', tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } } } };
  };
  const conv = { T: dt, data_format: s('NHWC'), dilations: ints(1, 1, 1, 1) };
  const node = [
    { name: 'x', op: 'Placeholder', attr: { dtype: dt, shape: { shape: { dim: [{ size: '-1' }, { size: '9' }, { size: '9' }, { size: '3' }] } } } },
    konst('c1/filter', [3, 3, 3, 8]),
    konst('c1/bias', [8]),
    { name: 'c1', op: '_FusedConv2D', input: ['x', 'c1/filter', 'c1/bias'], attr: { ...conv, strides: ints(1, 2, 2, 1), padding: s('SAME'), fused_ops: { list: { s: [s('BiasAdd').s, s('Relu').s] } }, num_args: { i: '1' }, epsilon: { f: 0 }, explicit_paddings: { list: {} } } },
    konst('dw/filter', [3, 3, 8, 2]),
    { name: 'dw', op: 'DepthwiseConv2dNative', input: ['c1', 'dw/filter'], attr: { ...conv, strides: ints(1, 1, 1, 1), padding: s('VALID'), explicit_paddings: { list: {} } } },
    { name: 'dw/relu6', op: 'Relu6', input: ['dw'], attr: { T: dt } },
    konst('pw/filter', [1, 1, 16, 12]),
    { name: 'pw', op: 'Conv2D', input: ['dw/relu6', 'pw/filter'], attr: { ...conv, strides: ints(1, 1, 1, 1), padding: s('SAME'), explicit_paddings: { list: {} }, use_cudnn_on_gpu: { b: true } } },
    { name: 'pool', op: 'MaxPool', input: ['pw'], attr: { T: dt, data_format: s('NHWC'), ksize: ints(1, 2, 2, 1), strides: ints(1, 2, 2, 1), padding: s('VALID') } },
    konst('flat/shape', [2], [-1, 12]),
    { name: 'flat', op: 'Reshape', input: ['pool', 'flat/shape'], attr: { T: dt, Tshape: { type: 'DT_INT32' } } },
    konst('gap/axes', [2], [1, 2]),
    { name: 'gap', op: 'Mean', input: ['pw', 'gap/axes'], attr: { T: dt, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } } },
    { name: 'sum', op: 'AddV2', input: ['flat', 'gap'], attr: { T: dt } },
    konst('fc/W', [12, 5]),
    konst('fc/b', [5]),
    { name: 'fc', op: '_FusedMatMul', input: ['sum', 'fc/W', 'fc/b'], attr: { T: dt, transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: { list: { s: [s('BiasAdd').s] } }, num_args: { i: '1' }, epsilon: { f: 0 } } },
    { name: 'y', op: 'Softmax', input: ['fc'], attr: { T: dt } },
  ];
  fs.writeFileSync(path.join(dir, 'g.bin'), Buffer.concat(data));
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'graph-model', generatedBy: 'tests', convertedBy: 'tests', modelTopology: { node, library: {}, versions: { producer: 1482 } }, weightsManifest: [{ paths: ['g.bin'], weights }] }));
  return path.join(dir, 'model.json');
}

describe('TF.js graph models', () => {
  before(() => tf.setBackend('cpu'));

  it('infers every op\'s output shape exactly as TensorFlow.js computes it, and counts MACs from them', async () => {
    const file = writeGraphCnn(tmpDir());
    const m = openModel(file);
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    const bin = fs.readFileSync(path.join(path.dirname(file), 'g.bin'));
    const g = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: j.weightsManifest[0].weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), format: 'graph-model' }));
    const names = m.graph.nodes.map((n) => n.name);
    const outs = g.execute(tf.zeros([2, 9, 9, 3]), names) as Array<{ shape: number[] }>;
    names.forEach((name, i) => {
      const vi = m.graph.valueInfo.get(name)!.type;
      const ours = vi?.kind === 'tensor' && vi.shape ? vi.shape.map((d) => (d === 'batch' ? 2 : d)) : null;
      assert.deepEqual(ours, outs[i].shape, `shape of ${name}`);
    });
    const a = analyzeModel(m);
    const macs = Object.fromEntries(a.layers.filter((l) => l.macs).map((l) => [l.name, l.macs]));
    // Per sample: output elements × the filter's reduction size.
    assert.deepEqual(macs, { c1: 5 * 5 * 8 * 27, dw: 3 * 3 * 16 * 9, pw: 3 * 3 * 12 * 16, fc: 5 * 12 });
    assert.equal(a.totals.unknownMacsNodes, 0);
    assert.equal(a.totals.params, 3 * 3 * 3 * 8 + 8 + 3 * 3 * 8 * 2 + 16 * 12 + 12 * 5 + 5);
  });

  it('a transposed convolution (Conv2DBackpropInput): output shape as tfjs computes it, MACs per input element', async () => {
    const dir = tmpDir();
    const dt = { type: 'DT_FLOAT' };
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    const node = [
      { name: 'x', op: 'Placeholder', attr: { dtype: dt, shape: { shape: { dim: [{ size: '2' }, { size: '4' }, { size: '4' }, { size: '3' }] } } } },
      { name: 'up/shape', op: 'Const', attr: { dtype: { type: 'DT_INT32' }, value: { tensor: { dtype: 'DT_INT32', tensorShape: { dim: [{ size: '4' }] } } } } },
      { name: 'up/filter', op: 'Const', attr: { dtype: dt, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }, { size: '3' }, { size: '5' }, { size: '3' }] } } } } },
      { name: 'up', op: 'Conv2DBackpropInput', input: ['up/shape', 'up/filter', 'x'], attr: { T: dt, strides: { list: { i: ['1', '2', '2', '1'] } }, padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } }, explicit_paddings: { list: {} } } },
    ];
    const filter = Float32Array.from({ length: 3 * 3 * 5 * 3 }, (_, i) => Math.cos(i));
    const bin = Buffer.concat([Buffer.from(Int32Array.of(2, 8, 8, 5).buffer), Buffer.from(filter.buffer)]);
    fs.writeFileSync(path.join(dir, 'g.bin'), bin);
    const weights = [{ name: 'up/shape', shape: [4], dtype: 'int32' }, { name: 'up/filter', shape: [3, 3, 5, 3], dtype: 'float32' }];
    const j = { format: 'graph-model', modelTopology: { node, library: {}, versions: { producer: 1 } }, weightsManifest: [{ paths: ['g.bin'], weights }] };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(j));
    const m = openModel(path.join(dir, 'model.json'));
    const g = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), format: 'graph-model' }));
    const y = g.execute(tf.ones([2, 4, 4, 3]), 'up') as { shape: number[] };
    const vi = m.graph.valueInfo.get('up')!.type;
    assert.deepEqual(vi?.kind === 'tensor' ? vi.shape : null, y.shape);
    assert.equal(analyzeModel(m).layers.find((l) => l.name === 'up')!.macs, 2 * 4 * 4 * 3 * 3 * 3 * 5);
  });

  it('reads a graph model: ops, inputs, outputs and weights', () => {
    const { file, W } = writeGraphModel(tmpDir());
    const m = openModel(file);
    assert.equal(m.format, 'tfjs-graph');
    assert.deepEqual(m.graph.nodes.map((n) => n.opType), ['MatMul', 'BiasAdd', 'Relu']);
    assert.deepEqual(m.graph.nodes[2].inputs, ['dense/BiasAdd'], 'control inputs are not data');
    assert.deepEqual(m.graph.inputs.map((i) => [i.name, i.type?.kind === 'tensor' ? i.type.shape : null]), [['x', ['batch', 4]]]);
    assert.deepEqual(m.graph.outputs.map((o) => o.name), ['y']);
    assert.deepEqual(Array.from(m.graph.initializers.get('dense/W')!.toFloat32()), Array.from(W));
    const a = analyzeModel(m);
    assert.equal(a.totals.params, 15);
  });

  it('writes uint8 weights into the graph model; tfjs executes it close to the original', async () => {
    const { file } = writeGraphModel(tmpDir());
    const out = path.join(path.dirname(file), 'model.uint8.json');
    const r = cli(['quantize', file, '--mode', 'uint8', '-o', out, '--json', '--samples', '16']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(j.fidelity.outputs[0].cosine > 0.999, String(j.fidelity.outputs[0].cosine));
    assert.ok(j.fidelity.outputs[0].maxAbsDiff > 0, 'really quantized');
    const written = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(written.format, 'graph-model');
    assert.equal(written.weightsManifest[0].weights[0].quantization.dtype, 'uint8');
    assert.equal(openModel(out).graph.nodes.length, 3);
  });

  it('a hostile reshape target (negative, fractional sizes) leaves the shape unknown instead of inventing one', () => {
    const dir = tmpDir();
    const { file } = writeGraphModel(dir);
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    j.modelTopology.node.push({ name: 'r/shape', op: 'Const', attr: { dtype: { type: 'DT_INT32' } } }, { name: 'r', op: 'Reshape', input: ['y', 'r/shape'], attr: {} });
    j.weightsManifest.push({ paths: ['r.bin'], weights: [{ name: 'r/shape', shape: [2], dtype: 'int32' }] });
    fs.writeFileSync(path.join(dir, 'r.bin'), Buffer.from(Int32Array.of(2147483647, -2147483648).buffer));
    fs.writeFileSync(file, JSON.stringify(j));
    const m = openModel(file);
    const vi = m.graph.valueInfo.get('r')!.type;
    assert.equal(vi?.kind === 'tensor' ? vi.shape : 'none', null);
    assert.equal(analyzeModel(m).totals.params, 15);
  });

  it('rejects a graph model whose node reads a value nobody produces', () => {
    const dir = tmpDir();
    const { file } = writeGraphModel(dir);
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    j.modelTopology.node[5].input = ['nowhere'];
    fs.writeFileSync(file, JSON.stringify(j));
    assert.throws(() => openModel(file), /node 'y' reads 'nowhere', which no node produces/);
  });
});

describe('TF.js → ONNX export', () => {
  before(() => tf.setBackend('cpu'));

  /** ORT on the exported model vs tfjs on the original: max |diff| over a random NHWC batch. */
  async function exportDiff(m: { predict(x: unknown): { dataSync(): Float32Array; shape: number[] } }, shape: number[]) {
    const { exportKerasToOnnx } = await import('../../src/core/formats/tfjs/to-onnx');
    const { ModelSession } = await import('../../src/core/runtime/session');
    const onnx = exportKerasToOnnx(openModel(await save(m as never, tmpDir())));
    const x = tf.randomUniform(shape, -1, 1, 'float32', 11);
    const ref = m.predict(x);
    const s = await ModelSession.create(onnx);
    const y = Object.values(await s.run({ [s.inputs[0].name]: { dtype: 1, dims: shape, data: x.dataSync() } }))[0];
    await s.release();
    assert.deepEqual(y.dims, ref.shape);
    const r = ref.dataSync();
    let max = 0;
    for (let i = 0; i < r.length; i++) max = Math.max(max, Math.abs(r[i] - (y.data as Float32Array)[i]));
    return max;
  }

  it('Sequential Conv2D/BN/DepthwiseConv2D/strided same Conv2D/Flatten/Dense: ORT matches tfjs', async () => {
    assert.ok((await exportDiff(convNet(), [3, 12, 12, 3])) < 1e-4);
  });

  it('Functional with SeparableConv2D, pooling, ZeroPadding, UpSampling, residual Add, Concatenate, GlobalAveragePooling, softmax', async () => {
    const input = tf.input({ shape: [10, 10, 4] });
    const a = tf.layers.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', depthMultiplier: 2, activation: 'relu' }).apply(input);
    const b = tf.layers.conv2d({ filters: 8, kernelSize: 1 }).apply(input);
    const s = tf.layers.add().apply([a, b]);
    const p = tf.layers.maxPooling2d({ poolSize: 2 }).apply(s);
    const z = tf.layers.zeroPadding2d({ padding: 1 }).apply(p);
    const c = tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(z);
    const u = tf.layers.upSampling2d({ size: [2, 2] }).apply(c);
    const cat = tf.layers.concatenate().apply([u, tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(u)]);
    const bn = tf.layers.batchNormalization().apply(cat);
    const g = tf.layers.globalAveragePooling2d({}).apply(bn);
    const d = tf.layers.dense({ units: 5, activation: 'softmax' }).apply(tf.layers.dropout({ rate: 0.5 }).apply(g));
    const m = tf.model({ inputs: input, outputs: d });
    assert.ok((await exportDiff(m, [2, 10, 10, 4])) < 1e-5);
  });

  it('names the layer it cannot export', async () => {
    const m = tf.sequential();
    m.add(tf.layers.lstm({ inputShape: [5, 3], units: 4 }));
    const { exportKerasToOnnx } = await import('../../src/core/formats/tfjs/to-onnx');
    const model = openModel(await save(m, tmpDir()));
    assert.throws(() => exportKerasToOnnx(model), /cannot export layer lstm\w* \(LSTM\) to ONNX/);
    // LSTM reads fine, with its MACs: 5 steps × (3·16 + 4·16).
    assert.equal(analyzeModel(model).totals.macs, 5 * (3 * 16 + 4 * 16));
    assert.equal(analyzeModel(model).totals.params, m.countParams());
  });
});

describe('TF.js through ONNX Runtime (CLI)', () => {
  before(() => tf.setBackend('cpu'));

  it('export checks itself against tfjs; bench and compare take TF.js models; prune reports ORT latency of both', async () => {
    const dir = tmpDir();
    const file = await save(convNet(), dir);
    const e = cli(['export', file, '-o', path.join(dir, 'm.onnx'), '--json']);
    assert.equal(e.code, 0, e.stderr);
    const ej = JSON.parse(e.stdout);
    assert.ok(ej.check.outputs[0].cosine > 0.99999 && ej.check.outputs[0].maxAbsDiff < 1e-4, JSON.stringify(ej.check));
    const c = cli(['compare', file, path.join(dir, 'm.onnx'), '--json', '--samples', '8']);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(JSON.parse(c.stdout).outputs[0].maxAbsDiff < 1e-4);
    const p = cli(['prune', file, '--structured', '--ratio', '0.5', '-o', path.join(dir, 'p.json'), '--json', '--samples', '4', '--runs', '10']);
    assert.equal(p.code, 0, p.stderr);
    const pj = JSON.parse(p.stdout);
    assert.ok(pj.latencyMs.before.p50 > 0 && pj.latencyMs.after.p50 > 0);
    const b = cli(['bench', file, path.join(dir, 'p.json'), '--runs', '5', '--json']);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(JSON.parse(b.stdout).models.length, 2);
    const t = cli(['export', path.resolve(__dirname, '../../../test/fixtures/digits_mlp.onnx')]);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /converts TF.js layers models/);
  });
});

describe('TF.js layers models: Keras 3 style, RNNs and custom layers', () => {
  before(() => tf.setBackend('cpu'));

  it('reads Embedding → GRU → Dense with params equal to countParams() and RNN MACs by hand', async () => {
    const m = tf.sequential();
    m.add(tf.layers.embedding({ inputDim: 20, outputDim: 8, inputLength: 5 }));
    m.add(tf.layers.gru({ units: 6, returnSequences: true }));
    m.add(tf.layers.lstm({ units: 4 }));
    m.add(tf.layers.dense({ units: 3 }));
    const model = openModel(await save(m, tmpDir()));
    const a = analyzeModel(model);
    assert.equal(a.totals.params, m.countParams());
    assert.deepEqual(a.layers.map((l) => l.outputShapes[0]), [['batch', 5, 8], ['batch', 5, 6], ['batch', 4], ['batch', 3]]);
    assert.equal(a.layers[1].macs, 5 * (8 * 18 + 6 * 18));
    assert.equal(a.layers[2].macs, 5 * (6 * 16 + 4 * 16));
  });

  it('reads a Keras 3 Functional topology with a custom layer: opaque, weights counted, never a crash', () => {
    const dir = tmpDir();
    const tensor = (from: string, shape: Array<number | null>) => ({ args: [{ class_name: '__keras_tensor__', config: { shape, dtype: 'float32', keras_history: [from, 0, 0] } }], kwargs: {} });
    const policy = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };
    const layers = [
      { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 6], dtype: 'float32', name: 'input_layer' }, registered_name: null, name: 'input_layer', inbound_nodes: [] },
      { module: 'keras.layers', class_name: 'Dense', config: { name: 'dense', dtype: policy, units: 4, activation: 'relu', use_bias: true }, registered_name: null, name: 'dense', inbound_nodes: [tensor('input_layer', [null, 6])] },
      { module: null, class_name: 'MyCustomLayer', config: { name: 'custom', dtype: policy, scale: 0.5 }, registered_name: 'Custom>MyCustomLayer', name: 'custom', inbound_nodes: [tensor('dense', [null, 4])] },
      { module: 'keras.layers', class_name: 'Dense', config: { name: 'out', dtype: policy, units: 2 }, registered_name: null, name: 'out', inbound_nodes: [tensor('custom', [null, 4])] },
    ];
    const topo = { class_name: 'Functional', config: { name: 'functional', layers, input_layers: [['input_layer', 0, 0]], output_layers: [['out', 0, 0]] } };
    const weights = [
      { name: 'dense/kernel', shape: [6, 4], dtype: 'float32' },
      { name: 'dense/bias', shape: [4], dtype: 'float32' },
      { name: 'custom/w', shape: [4], dtype: 'float32' },
      { name: 'out/kernel', shape: [4, 2], dtype: 'float32' },
      { name: 'out/bias', shape: [2], dtype: 'float32' },
    ];
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(4 * (24 + 4 + 4 + 8 + 2)));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: { keras_version: '3.5.0', backend: 'tensorflow', model_config: topo }, weightsManifest: [{ paths: ['w.bin'], weights }] }));
    const file = path.join(dir, 'model.json');
    const model = openModel(file);
    assert.deepEqual(model.graph.nodes.map((n) => [n.opType, n.inputs.filter((i) => !model.graph.initializers.has(i))]), [
      ['Dense', ['input_layer:0']],
      ['MyCustomLayer', ['dense:0']],
      ['Dense', ['custom:0']],
    ]);
    const a = analyzeModel(model);
    assert.equal(a.totals.params, 42);
    assert.equal(a.layers[1].params, 4, 'the custom layer\'s weights are counted');
    assert.equal(a.layers[1].outputShapes[0], null, 'its output shape is unknown, not guessed');
    assert.equal(a.layers[1].macs, null, 'and so are its MACs');
    assert.equal(a.totals.unknownMacsNodes, 2, 'the custom layer and the Dense after it');
    const r = cli(['inspect', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /MyCustomLayer/);
    return (async () => {
      const p = await pruneModel(model, { structured: true, ratio: 0.5 });
      assert.equal(p.groups.length, 0);
      assert.match(p.skipped.find((s) => s.name === 'dense')!.reason, /custom \(MyCustomLayer\)/);
      const { exportKerasToOnnx } = await import('../../src/core/formats/tfjs/to-onnx');
      assert.throws(() => exportKerasToOnnx(model), /cannot export layer custom \(MyCustomLayer\)/);
    })();
  });

  it('runs a whole recipe (prune → depthwise → uint8) on a TF.js model and writes TF.js', async () => {
    const dir = tmpDir();
    const file = await save(convNet(), dir);
    fs.writeFileSync(path.join(dir, 'r.json'), JSON.stringify({ steps: [{ step: 'prune', structured: true, ratio: 0.3 }, { step: 'substitute', kind: 'depthwise' }, { step: 'quantize', mode: 'uint8' }] }));
    const r = cli(['compress', file, '--recipe', path.join(dir, 'r.json'), '--json', '--samples', '4', '--no-bench']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout).output as string;
    assert.match(out, /model\.compressed\.json$/);
    const written = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.ok(written.modelTopology.config.layers.some((l: { class_name: string }) => l.class_name === 'SeparableConv2D'));
    assert.ok(written.weightsManifest[0].weights.every((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'uint8'));
    const runner = await TfjsRunner.create(out);
    assert.deepEqual(Object.values(await runner.run({ [runner.inputs[0].name]: { dtype: 1, dims: [1, 12, 12, 3], data: new Float32Array(432).fill(0.1) } }))[0].dims, [1, 10]);
  });
});

/** A MobileNetV2-style Functional model: inverted residuals, ReLU6, BN, depthwise, residual Adds. */
function mobileNetLike() {
  const block = (x: { shape: number[] }, expand: number, out: number, stride: number) => {
    const inC = x.shape[x.shape.length - 1];
    let h = x;
    if (expand !== 1) {
      h = tf.layers.conv2d({ filters: inC * expand, kernelSize: 1, useBias: false }).apply(h);
      h = tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization().apply(h));
    }
    h = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: 'same', useBias: false }).apply(h);
    h = tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization().apply(h));
    h = tf.layers.batchNormalization().apply(tf.layers.conv2d({ filters: out, kernelSize: 1, useBias: false }).apply(h));
    return stride === 1 && inC === out ? tf.layers.add().apply([x, h]) : h;
  };
  const input = tf.input({ shape: [24, 24, 3] });
  let x = tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization().apply(tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(input)));
  for (const [e, o, s] of [[1, 16, 1], [6, 24, 2], [6, 24, 1], [6, 32, 2], [6, 32, 1]]) x = block(x, e, o, s);
  x = tf.layers.globalAveragePooling2d({}).apply(tf.layers.conv2d({ filters: 64, kernelSize: 1, activation: 'relu' }).apply(x));
  const m = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 10 }).apply(x) });
  for (const l of m.layers) {
    if (l.getClassName() !== 'BatchNormalization') continue;
    const c = l.getWeights()[0].shape[0];
    l.setWeights([tf.randomUniform([c], 0.5, 1.5, 'float32', 1), tf.randomUniform([c], -0.2, 0.2, 'float32', 2), tf.randomUniform([c], -0.3, 0.3, 'float32', 3), tf.randomUniform([c], 0.5, 2, 'float32', 4)]);
  }
  return m;
}

describe('TF.js: a MobileNetV2-style model through the whole toolchain', () => {
  before(() => tf.setBackend('cpu'));

  it('prunes residual streams as groups (channels rounded to 8), exports the result to ONNX that matches tfjs, and stores it uint8', async () => {
    const m = mobileNetLike();
    const dir = tmpDir();
    const file = await save(m, dir);
    assert.equal(analyzeModel(openModel(file)).totals.params, m.countParams());
    const pruned = path.join(dir, 'p.json');
    const r = cli(['prune', file, '--structured', '--ratio', '0.3', '-o', pruned, '--json', '--no-bench', '--samples', '8']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const coupled = j.groups.filter((g: { producers: string[] }) => g.producers.length > 1);
    // The 24- and 32-channel residual streams: each block's projection joins the stream's producer.
    assert.deepEqual(coupled.map((g: { producers: string[]; channels: number; removed: number }) => [g.producers.length, g.channels, g.removed]), [[2, 24, 8], [2, 32, 8]]);
    assert.ok(j.after.params < 0.85 * j.before.params, `${j.after.params} of ${j.before.params}`);
    // The pruned model: ORT on its ONNX export agrees with tfjs on it.
    const e = cli(['export', pruned, '-o', path.join(dir, 'p.onnx'), '--json']);
    assert.equal(e.code, 0, e.stderr);
    assert.ok(JSON.parse(e.stdout).check.outputs[0].maxAbsDiff < 1e-4, e.stdout);
    const q = cli(['quantize', pruned, '--mode', 'uint8', '-o', path.join(dir, 'q.json'), '--json', '--no-bench', '--samples', '8']);
    assert.equal(q.code, 0, q.stderr);
    assert.ok(JSON.parse(q.stdout).fidelity.outputs[0].cosine > 0.99);
  });
});

describe('TF.js backends', () => {
  it('wasm and cpu give the same outputs on a MobileNetV2-style model (backend parity), and each runner reports its backend', async () => {
    const m = mobileNetLike();
    const file = await save(m, tmpDir());
    const data = await randomCalib(file, 4, 5);
    const outs: Record<string, Float32Array> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      const r = await TfjsRunner.create(file, { backend });
      assert.equal(r.backend, backend);
      const parts: number[] = [];
      for (const { feeds } of data.batches(2)) parts.push(...(Object.values(await r.run(feeds))[0].data as Float32Array));
      outs[backend] = Float32Array.from(parts);
      await r.release();
    }
    let max = 0;
    let scale = 0;
    for (let i = 0; i < outs.cpu.length; i++) {
      max = Math.max(max, Math.abs(outs.cpu[i] - outs.wasm[i]));
      scale = Math.max(scale, Math.abs(outs.cpu[i]));
    }
    assert.equal(outs.cpu.length, 40);
    assert.ok(scale > 0 && max <= 1e-3 * scale, `max |Δ| ${max} for outputs up to ${scale}`);
  });

  it('the bundled CLI loads TensorFlow.js and its .wasm files from its own folder', function () {
    this.timeout(300_000);
    const root = path.resolve(__dirname, '../../..');
    const out = path.join(root, 'out', 'dist-test');
    const b = spawnSync(process.execPath, ['scripts/build.mjs', '--outdir', out, '--cli-only'], { cwd: root, encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    assert.ok(fs.existsSync(path.join(out, 'tfjs-backend-wasm-simd.wasm')));
    const dir = tmpDir();
    return save(convNet(), dir).then(() => {
      const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(out, 'cli.js'))}).main()`, 'cli', 'quantize', path.join(dir, 'model.json'), '--mode', 'uint8', '-o', path.join(dir, 'q.json'), '--no-bench', '--json', '--samples', '2'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).fidelity.runtime, 'TensorFlow.js (wasm backend)');
    });
  });
});

describe('TF.js hostile input', () => {
  it('rejects a JSON array, absurd nesting, a shard that is a folder and a 2^40-element weight, without allocating', () => {
    const dir = tmpDir();
    const write = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const topo = { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 2] } }] } };
    fs.mkdirSync(path.join(dir, 'shard.bin'));
    fs.writeFileSync(path.join(dir, 'tiny.bin'), Buffer.alloc(16));
    const cases: Array<[string, RegExp]> = [
      [write('a.json', '[{"modelTopology": 1}]'), /not a TF.js model.json|unrecognised|not a valid/],
      [write('b.json', `{"modelTopology": ${'['.repeat(200000)}${']'.repeat(200000)}, "weightsManifest": []}`), /modelTopology|not valid JSON/],
      [write('c.json', JSON.stringify({ modelTopology: topo, weightsManifest: [{ paths: ['shard.bin'], weights: [{ name: 'd/kernel', shape: [2, 2], dtype: 'float32' }] }] })), /weight shard 'shard.bin' is missing/],
      [write('d.json', JSON.stringify({ modelTopology: topo, weightsManifest: [{ paths: ['tiny.bin'], weights: [{ name: 'd/kernel', shape: [1 << 20, 1 << 20], dtype: 'float32' }] }] })), /fewer than the manifest declares/],
    ];
    for (const [file, re] of cases) {
      assert.throws(() => openModel(file), (e: Error) => e instanceof ModelError && re.test(e.message), file);
    }
  });
});
