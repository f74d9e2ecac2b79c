import * as fs from 'fs';
import * as path from 'path';
import { saveModel } from '../src/core/formats/registry';
import { DataType } from '../src/core/ir/dtype';
import { Graph, Model, Node } from '../src/core/ir/graph';
import { Tensor } from '../src/core/ir/tensor';
import { benchmarkModels } from '../src/core/runtime/bench';
import { quantizeDynamic, type DynamicForm } from '../src/core/transforms/quantize/dynamic';
import { benchDir, child, median, report } from './util';

/** MatMul chain with about `params` weights (width 4096). */
function matmulModel(params: number, width = 4096): string {
  const layers = Math.max(1, Math.round(params / (width * width)));
  const file = path.join(benchDir(), `matmul-${layers}x${width}.onnx`);
  if (fs.existsSync(file)) return file;
  const g = new Graph('mm');
  g.inputs.push({ name: 'x', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['n', width] } });
  let cur = 'x';
  let seed = 7;
  for (let i = 0; i < layers; i++) {
    const w = new Float32Array(width * width);
    for (let j = 0; j < w.length; j++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      w[j] = (seed / 4294967296 - 0.5) * 0.03;
    }
    g.initializers.set(`w${i}`, Tensor.fromArray(`w${i}`, DataType.FLOAT, [width, width], w));
    const o = i === layers - 1 ? 'y' : `h${i}`;
    g.nodes.push(new Node('MatMul', [cur, `w${i}`], [o], `mm${i}`));
    cur = o;
  }
  g.outputs.push({ name: 'y', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['n', width] } });
  const m = new Model(g);
  m.opsetImports = [{ domain: '', version: 17 }];
  saveModel(m, file);
  return file;
}

/** Quantizing 100M MatMul params against reading and writing the same file. */
export function benchQuantizeSpeed(): void {
  const file = matmulModel(100e6);
  const out = path.join(benchDir(), 'q-out.onnx');
  const copy = path.join(benchDir(), 'copy-out.onnx');
  const base: number[] = [];
  const q: number[] = [];
  for (let i = 0; i < 3; i++) {
    base.push(child<{ ms: number }>('copy-file', [file, copy]).ms);
    q.push(child<{ ms: number }>('quantize-dynamic', [file, out]).ms);
  }
  const b = median(base);
  const t = median(q);
  report(`dynamic int8 quantization of a ${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MiB MatMul model (~100M params), median of 3 interleaved`, [
    ['read + write the file', `${b.toFixed(0)} ms`],
    ['open + quantize + save', `${t.toFixed(0)} ms`],
    ['ratio', `${(t / b).toFixed(2)}x   (target <= 3x)`],
    ['output size', `${(fs.statSync(out).size / fs.statSync(file).size).toFixed(3)}x`],
  ]);
  fs.rmSync(out, { force: true });
  fs.rmSync(copy, { force: true });
}

/** Which dynamic-quantization form ORT runs fastest on this CPU. */
export async function benchDynamicForms(): Promise<void> {
  const g = new Graph('mlp');
  const width = 1024;
  g.inputs.push({ name: 'x', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['n', width] } });
  let cur = 'x';
  for (let i = 0; i < 4; i++) {
    const w = Float32Array.from({ length: width * width }, (_, j) => Math.sin(j * 0.37 + i) * 0.03);
    g.initializers.set(`w${i}`, Tensor.fromArray(`w${i}`, DataType.FLOAT, [width, width], w));
    g.nodes.push(new Node('MatMul', [cur, `w${i}`], [`h${i}`], `mm${i}`));
    g.nodes.push(new Node('Relu', [`h${i}`], [i === 3 ? 'y' : `r${i}`], `relu${i}`));
    cur = `r${i}`;
  }
  g.outputs.push({ name: 'y', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['n', width] } });
  const m = new Model(g);
  m.opsetImports = [{ domain: '', version: 17 }];
  const dir = benchDir();
  const files = [path.join(dir, 'mlp-float.onnx')];
  saveModel(m, files[0]);
  for (const form of ['integer', 'fused', 'weights'] as DynamicForm[]) {
    const f = path.join(dir, `mlp-dyn-${form}.onnx`);
    saveModel(quantizeDynamic(m, { form }).model, f);
    files.push(f);
  }
  for (const batch of [1, 32]) {
    const r = await benchmarkModels(files, { runs: 50, batch });
    report(`dynamic int8 forms, 4×1024² MatMul+Relu, batch ${batch}, interleaved (p50 vs float)`, r.models.map((x) => [path.basename(x.path), `${x.latencyMs.p50.toFixed(3)} ms  (${x.ratioP50.toFixed(2)}x)`]));
  }
}
