import * as fs from 'fs';
import * as path from 'path';
import { saveModel } from '../src/core/formats/registry';
import { DataType } from '../src/core/ir/dtype';
import { Graph, Model, Node } from '../src/core/ir/graph';
import { Tensor } from '../src/core/ir/tensor';
import { benchDir, child, median, report } from './util';

/** An MLP whose weights total about `mb` megabytes, written once and reused. */
export function largeModel(mb: number): string {
  const file = path.join(benchDir(), `mlp-${mb}mb.onnx`);
  if (fs.existsSync(file)) return file;
  const g = new Graph('large');
  const width = 4096;
  const layers = Math.max(1, Math.round((mb * 1024 * 1024) / (width * width * 4)));
  g.inputs.push({ name: 'x', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['batch', width] } });
  let cur = 'x';
  let seed = 1;
  for (let i = 0; i < layers; i++) {
    const w = new Float32Array(width * width);
    for (let j = 0; j < w.length; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      w[j] = ((seed >>> 8) / 16777216 - 0.5) * 0.02;
    }
    g.initializers.set(`w${i}`, Tensor.fromArray(`w${i}`, DataType.FLOAT, [width, width], w));
    const o = i === layers - 1 ? 'y' : `h${i}`;
    g.nodes.push(new Node('MatMul', [cur, `w${i}`], [o], `mm${i}`));
    cur = o;
  }
  g.outputs.push({ name: 'y', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['batch', width] } });
  const m = new Model(g);
  m.opsetImports = [{ domain: '', version: 17 }];
  saveModel(m, file);
  return file;
}

export function benchInspect(): void {
  const file = largeModel(512);
  const size = fs.statSync(file).size;
  type R = { ms: number; maxRssBytes: number };
  const raw: R[] = [];
  const ins: R[] = [];
  for (let i = 0; i < 3; i++) {
    raw.push(child<R>('raw-read', [file]));
    ins.push(child<R>('inspect', [file]));
  }
  const rawMs = median(raw.map((r) => r.ms));
  const insMs = median(ins.map((r) => r.ms));
  const rss = Math.max(...ins.map((r) => r.maxRssBytes));
  report(`inspect a ${(size / 2 ** 20).toFixed(0)} MiB model (full weight stats), 3 interleaved runs, median`, [
    ['raw file read', `${rawMs.toFixed(0)} ms`],
    ['inspect', `${insMs.toFixed(0)} ms`],
    ['ratio inspect / raw read', `${(insMs / rawMs).toFixed(2)}x   (target <= 3x)`],
    ['peak RSS', `${(rss / 2 ** 20).toFixed(0)} MiB = ${(rss / size).toFixed(2)}x file size   (target <= 1.5x)`],
  ]);
}
