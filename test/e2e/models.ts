import { saveModel } from '../../src/core/formats/registry';
import type { Model } from '../../src/core/ir/graph';
import { ModelBuilder } from '../unit/helpers/builder';

/**
 * A DenseNet-121-like ONNX model named as PyTorch exports it (`/features/denseblock3/denselayer12/conv1/Conv`):
 * 4 dense blocks of 6, 12, 24 and 16 layers (BN → ReLU → 1×1 Conv → BN → ReLU → 3×3 Conv → Concat),
 * transitions between them, and every conv weight (and 3×3 conv bias) read through an Identity node, as exported models often do.
 * `unknownOp`: an op in a custom domain after the second transition, so shapes (and MACs) downstream are unknown.
 * About 650 nodes; small channel counts keep the file small.
 *
 *   x[1,3,32,32] → conv0 → norm0 → relu0 → pool0 → block1 → trans1 → block2 → trans2 → (custom op) → block3 → trans3 → block4 → norm5 → pool → Gemm
 */
export function denseNetLike(opts: { unknownOp?: boolean } = {}): Model {
  const b = new ModelBuilder(17);
  const growth = 8;
  const g = b.graph;
  const named = (op: string, inputs: string[], name: string, attrs: Parameters<ModelBuilder['node']>[2] = {}) => {
    return b.node(op, inputs, attrs, 1, name)[0];
  };
  const conv = (x: string, cin: number, cout: number, k: number, scope: string, stride = 1) => {
    const w = b.init(`${scope}.weight`, [cout, cin, k, k]);
    const read = [named('Identity', [w], `${scope}/weight/Identity`)];
    if (k === 3) read.push(named('Identity', [b.init(`${scope}.bias`, [cout])], `${scope}/bias/Identity`));
    const p = Math.floor(k / 2);
    return named('Conv', [x, ...read], `${scope}/Conv`, { kernel_shape: [k, k], pads: [p, p, p, p], strides: [stride, stride] });
  };
  const bn = (x: string, c: number, scope: string) => {
    const ps = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => b.init(`${scope}.${k}`, [c], Float32Array.from({ length: c }, (_, i) => (k === 'running_var' || k === 'weight' ? 1 + i * 1e-3 : 0))));
    return named('BatchNormalization', [x, ...ps], `${scope}/BatchNormalization`);
  };
  const relu = (x: string, scope: string) => named('Relu', [x], `${scope}/Relu`);
  let x = b.input('input', [1, 3, 32, 32]);
  x = conv(x, 3, 16, 3, '/features/conv0', 2);
  x = relu(bn(x, 16, '/features/norm0'), '/features/relu0');
  x = named('MaxPool', [x], '/features/pool0/MaxPool', { kernel_shape: [2, 2], strides: [2, 2] });
  let c = 16;
  [6, 12, 24, 16].forEach((layers, k) => {
    const block = `/features/denseblock${k + 1}`;
    for (let j = 1; j <= layers; j++) {
      const s = `${block}/denselayer${j}`;
      let y = relu(bn(x, c, `${s}/norm1`), `${s}/relu1`);
      y = conv(y, c, 2 * growth, 1, `${s}/conv1`);
      y = relu(bn(y, 2 * growth, `${s}/norm2`), `${s}/relu2`);
      y = conv(y, 2 * growth, growth, 3, `${s}/conv2`);
      x = named('Concat', [x, y], `${s}/Concat`, { axis: 1 });
      c += growth;
    }
    if (k < 3) {
      const t = `/features/transition${k + 1}`;
      x = relu(bn(x, c, `${t}/norm`), `${t}/relu`);
      x = conv(x, c, c / 2, 1, `${t}/conv`);
      c /= 2;
      x = named('AveragePool', [x], `${t}/pool/AveragePool`, { kernel_shape: [2, 2], strides: [2, 2] });
      if (k === 1 && opts.unknownOp) {
        x = named('Resample', [x], '/features/transition2/resample/Resample');
        g.nodes[g.nodes.length - 1].domain = 'com.example';
      }
    }
  });
  x = relu(bn(x, c, '/features/norm5'), '/features/relu5');
  x = named('GlobalAveragePool', [x], '/GlobalAveragePool');
  x = named('Flatten', [x], '/Flatten');
  const w = b.init('classifier.weight', [10, c]);
  const bias = b.init('classifier.bias', [10]);
  x = named('Gemm', [x, w, bias], '/classifier/Gemm', { transB: 1 });
  b.markOutput(x, 'logits');
  if (opts.unknownOp) b.model.opsetImports.push({ domain: 'com.example', version: 1 });
  return b.build();
}

/** Writes `denseNetLike(opts)` to `file` (the e2e suite and the UI bench both use it). */
export function writeDenseNetLike(file: string, opts: { unknownOp?: boolean } = {}): string {
  saveModel(denseNetLike(opts), file);
  return file;
}
