import * as fs from 'fs';
import * as path from 'path';
import { writeWeights } from '../src/core/formats/tfjs/manifest';
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

export function benchTfjs(): void {
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
