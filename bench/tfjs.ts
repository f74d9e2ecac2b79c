import * as fs from 'fs';
import * as path from 'path';
import { writeWeights } from '../src/core/formats/tfjs/manifest';
import { openModel, saveModel } from '../src/core/formats/registry';
import { quantizeTfjsWeights } from '../src/core/transforms/quantize/tfjs';
import { DataType } from '../src/core/ir/dtype';
import { Tensor } from '../src/core/ir/tensor';
import { benchDir, child, median, report } from './util';

/** A TF.js layers model (a stack of 2048-wide Dense layers) of about `mb` MB in 4 MiB shards. */
export function largeTfjs(mb: number): string {
  const dir = path.join(benchDir(), `tfjs-${mb}mb`);
  const file = path.join(dir, 'model.json');
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(dir, { recursive: true });
  const width = 2048;
  const count = Math.max(1, Math.round((mb * 2 ** 20) / (width * width * 4)));
  const layers: unknown[] = [];
  const weights: Array<[string, Tensor]> = [];
  let seed = 1;
  for (let i = 0; i < count; i++) {
    const w = new Float32Array(width * width);
    for (let j = 0; j < w.length; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      w[j] = ((seed >>> 8) / 16777216 - 0.5) * 0.05;
    }
    const name = `dense_${i}`;
    layers.push({ class_name: 'Dense', config: { name, units: width, activation: 'relu', use_bias: true, ...(i === 0 ? { batch_input_shape: [null, width] } : {}) } });
    weights.push([`${name}/kernel`, Tensor.fromArray(`${name}/kernel`, DataType.FLOAT, [width, width], w)]);
    weights.push([`${name}/bias`, Tensor.fromArray(`${name}/bias`, DataType.FLOAT, [width], new Float32Array(width))]);
  }
  const w = writeWeights(weights, { dir, prefix: '', quantizationOf: () => undefined });
  fs.writeFileSync(file, JSON.stringify({ format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 'bench', layers } }, weightsManifest: w.manifest }));
  return file;
}

/**
 * MobileNetV2 (Sandler et al. 2018, alpha 1.0, 224x224x3, Keras layer names and structure) with a
 * 5-class head like the image classifier of issue 20, built and saved by TensorFlow.js itself with
 * random weights, then stored as uint8 by this tool: about 2.3M params, 2.4 MB.
 * Returns { float, uint8 } model.json paths.
 */
export async function mobileNetV2Tfjs(): Promise<{ float: string; uint8: string }> {
  const dir = path.join(benchDir(), 'tfjs-mobilenetv2');
  const float = path.join(dir, 'float', 'model.json');
  const uint8 = path.join(dir, 'uint8', 'model.json');
  if (fs.existsSync(uint8)) return { float, uint8 };
  fs.mkdirSync(path.dirname(float), { recursive: true });
  fs.mkdirSync(path.dirname(uint8), { recursive: true });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const tf: any = require('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  type T = { shape: number[] };
  const bnRelu6 = (x: T): T => tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.999 }).apply(x));
  const block = (x: T, expand: number, out: number, stride: number): T => {
    const inC = x.shape[3];
    let h = x;
    if (expand !== 1) h = bnRelu6(tf.layers.conv2d({ filters: inC * expand, kernelSize: 1, useBias: false }).apply(h));
    h = bnRelu6(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: 'same', useBias: false }).apply(h));
    h = tf.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.999 }).apply(tf.layers.conv2d({ filters: out, kernelSize: 1, useBias: false }).apply(h));
    return stride === 1 && inC === out ? tf.layers.add().apply([x, h]) : h;
  };
  const input = tf.input({ shape: [224, 224, 3] });
  let x: T = bnRelu6(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(input));
  for (const [t, c, n, s] of [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]) {
    for (let i = 0; i < n; i++) x = block(x, t, c, i === 0 ? s : 1);
  }
  x = tf.layers.globalAveragePooling2d({}).apply(bnRelu6(tf.layers.conv2d({ filters: 1280, kernelSize: 1, useBias: false }).apply(x)));
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 5, activation: 'softmax' }).apply(x) });
  // Trained-looking BatchNorm statistics (random init leaves them at 0/1, which hides pruning error).
  let seed = 1;
  for (const l of model.layers) {
    if (l.getClassName() !== 'BatchNormalization') continue;
    const c = l.getWeights()[0].shape[0];
    l.setWeights([tf.randomUniform([c], 0.5, 1.5, 'float32', seed++), tf.randomUniform([c], -0.2, 0.2, 'float32', seed++), tf.randomUniform([c], -0.3, 0.3, 'float32', seed++), tf.randomUniform([c], 0.5, 2, 'float32', seed++)]);
  }
  await model.save(
    tf.io.withSaveHandler(async (a: { modelTopology: unknown; weightSpecs: unknown; weightData: ArrayBuffer }) => {
      fs.writeFileSync(path.join(path.dirname(float), 'group1-shard1of1.bin'), Buffer.from(a.weightData));
      fs.writeFileSync(float, JSON.stringify({ format: 'layers-model', generatedBy: 'bench', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: a.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  saveModel(quantizeTfjsWeights(openModel(float), 'uint8').model, uint8);
  return { float, uint8 };
}

/**
 * The real-size case of issue 20: a MobileNetV2 (uint8 storage, 2.3M params, 300M MACs) run by
 * TensorFlow.js on its cpu and wasm backends and by ONNX Runtime on the model's ONNX export,
 * each in its own process; then the CLI commands a user runs on it, with time and peak RSS.
 */
async function benchTfjsReal(): Promise<void> {
  const { uint8 } = await mobileNetV2Tfjs();
  type P = { msPerSample: number; first: number[]; maxRssBytes: number };
  const cpu = child<P>('tfjs-predict', [uint8, '1', '1', 'cpu']);
  const wasm = child<P>('tfjs-predict', [uint8, '8', '2', 'wasm']);
  const ort = child<P>('ort-export-predict', [uint8, '8', '5']);
  const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  report('TF.js MobileNetV2 (224x224, uint8 storage), time per sample, same run', [
    ['TensorFlow.js cpu backend (batch 1)', `${cpu.msPerSample.toFixed(0)} ms (baseline)`],
    ['TensorFlow.js wasm backend (batch 8)', `${wasm.msPerSample.toFixed(1)} ms = ${(cpu.msPerSample / wasm.msPerSample).toFixed(1)}x faster than cpu`],
    ['ONNX Runtime on the ONNX export (batch 8)', `${ort.msPerSample.toFixed(1)} ms = ${(wasm.msPerSample / ort.msPerSample).toFixed(1)}x faster than wasm`],
    ['backend parity, first sample: max |wasm - cpu|', maxDiff(wasm.first, cpu.first).toExponential(2)],
    ['max |ORT export - wasm|', maxDiff(ort.first, wasm.first).toExponential(2)],
  ]);
  type C = { ms: number; code: number; maxRssBytes: number };
  const out = path.join(path.dirname(path.dirname(uint8)), 'out');
  fs.mkdirSync(out, { recursive: true });
  const commands: Array<[string, string[]]> = [
    ['quantize --mode uint8 (fidelity + latency)', ['quantize', uint8, '--mode', 'uint8', '-o', path.join(out, 'q.json')]],
    ['prune --structured --ratio 0.3', ['prune', uint8, '--structured', '--ratio', '0.3', '-o', path.join(out, 'p.json')]],
    ['sensitivity --ratios 0.3,0.6 --samples 8', ['sensitivity', uint8, '--ratios', '0.3,0.6', '--samples', '8']],
  ];
  const rows: Array<[string, string]> = [];
  for (const [label, argv] of commands) {
    const r = child<C>('cli', argv);
    if (r.code !== 0) throw new Error(`${label}: exit ${r.code}`);
    rows.push([label, `${(r.ms / 1000).toFixed(1)} s, peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB = ${(r.ms / wasm.msPerSample).toFixed(0)} wasm samples`]);
  }
  report('CLI on that MobileNetV2 (default options; issue 20 measured 215 s and 209 s on the cpu backend)', rows);
}

export async function benchTfjs(): Promise<void> {
  await benchTfjsReal();
  const file = largeTfjs(256);
  const dir = path.dirname(file);
  const shards = fs.readdirSync(dir).filter((f) => f.startsWith('group1-shard')).map((f) => path.join(dir, f));
  const bytes = shards.reduce((a, f) => a + fs.statSync(f).size, 0);
  type R = { ms: number; maxRssBytes: number };
  const raw: R[] = [];
  const ins: R[] = [];
  const copy: R[] = [];
  const q: R[] = [];
  const out = path.join(dir, 'out');
  for (let i = 0; i < 3; i++) {
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out);
    raw.push(child<R>('raw-read', [file, ...shards]));
    ins.push(child<R>('inspect', [file]));
    copy.push(child<R>('copy-files', [out, file, ...shards]));
    q.push(child<R>('tfjs-uint8', [file, path.join(out, 'model.uint8.json')]));
  }
  const m = (rs: R[]) => median(rs.map((r) => r.ms));
  report(`TF.js layers model, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${shards.length} shards, 3 interleaved runs, median`, [
    ['raw read of model.json + shards', `${m(raw).toFixed(0)} ms`],
    ['inspect (full weight stats)', `${m(ins).toFixed(0)} ms = ${(m(ins) / m(raw)).toFixed(2)}x raw read   (ONNX target <= 3x)`],
    ['peak RSS, inspect', `${(Math.max(...ins.map((r) => r.maxRssBytes)) / 2 ** 20).toFixed(0)} MiB = ${(Math.max(...ins.map((r) => r.maxRssBytes)) / bytes).toFixed(2)}x weights`],
    ['copy all files (read + write)', `${m(copy).toFixed(0)} ms`],
    ['uint8 quantize + write', `${m(q).toFixed(0)} ms = ${(m(q) / m(copy)).toFixed(2)}x copying the files`],
  ]);
}
