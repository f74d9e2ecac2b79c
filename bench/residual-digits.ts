/**
 * Writes a small residual CNN for the 8×8 digits (untrained, He-uniform weights) to the path
 * given, for the early-exit figure of a residual model: train it with `model-compressor train`,
 * then add exits with `model-compressor early-exit` (commands in README, "early-exit").
 *
 *   x[N,1,8,8] → Conv 16 → Relu ─┬→ Conv → Relu → Conv ─(+)→ Relu → Conv 32 s2 → Relu ─┬→ Conv → Relu → Conv ─(+)→ Relu → GAP → Flatten → Gemm 10
 *                                └──────────────────────┘                              └──────────────────────┘
 *
 * Usage: node out/bench/residual-digits.js out.onnx
 */
import { DataType } from '../src/core/ir/dtype';
import { saveModel } from '../src/core/formats/registry';
import { ModelBuilder } from '../test/unit/helpers/builder';

function heUniform(n: number, fanIn: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const bound = Math.sqrt(6 / fanIn);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32) * 2 * bound - bound;
  }
  return a;
}

export function residualDigits() {
  const b = new ModelBuilder(13);
  let seed = 7;
  let id = 0;
  const conv = (x: string, cin: number, cout: number, stride = 1) => {
    const w = b.init(`conv${id}.weight`, [cout, cin, 3, 3], heUniform(cout * cin * 9, cin * 9, seed++));
    const bias = b.init(`conv${id++}.bias`, [cout], new Float32Array(cout));
    return b.node('Conv', [x, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [stride, stride] })[0];
  };
  const relu = (x: string) => b.node('Relu', [x])[0];
  const block = (x: string, c: number) => relu(b.node('Add', [conv(relu(conv(x, c, c)), c, c), x])[0]);
  const x = b.input('input', ['batch', 1, 8, 8]);
  const s1 = block(relu(conv(x, 1, 16)), 16);
  const s2 = block(relu(conv(s1, 16, 32, 2)), 32);
  const f = b.node('Flatten', [b.node('GlobalAveragePool', [s2])[0]], { axis: 1 })[0];
  const w = b.init('fc.weight', [10, 32], heUniform(320, 32, seed++));
  const y = b.node('Gemm', [f, w, b.init('fc.bias', [10], new Float32Array(10))], { transB: 1 })[0];
  b.markOutput(y, 'output', DataType.FLOAT);
  return b.build();
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node out/bench/residual-digits.js out.onnx\n');
    process.exit(2);
  }
  saveModel(residualDigits(), out);
  process.stdout.write(`wrote ${out}\n`);
}
