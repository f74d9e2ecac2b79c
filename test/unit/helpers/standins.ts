import { DataType } from '../../../src/core/ir/dtype';
import { AttrType, Graph, Node, type Model } from '../../../src/core/ir/graph';
import { Tensor } from '../../../src/core/ir/tensor';
import { ModelBuilder, randomFloats } from './builder';

/**
 * Stand-ins for the kinds of real models that refuse to be downloaded in tests: symbolic
 * spatial/sequence dims, LSTM weights inside If branches, DenseNet-style Pad + Concat.
 * Each one runs in ONNX Runtime.
 */

/**
 * An OCR recognizer: x[N, 3, 48, W] ─ Conv s2 ─ Relu ─ Conv s2 ─ Relu ─ ReduceMean(H) ─
 * Transpose ─ MatMul → logits[N, W/4, 40].
 */
export function ocrRecognizer(): Model {
  const b = new ModelBuilder(17);
  const x = b.input('x', ['N', 3, 48, 'W']);
  const [r1] = b.node('Relu', [b.conv(x, 3, 16, 3, { stride: 2 })]);
  const [r2] = b.node('Relu', [b.conv(r1, 16, 32, 3, { stride: 2 })]);
  const [m] = b.node('ReduceMean', [r2], { axes: [2], keepdims: 0 }); // [N, 32, W/4]
  const [t] = b.node('Transpose', [m], { perm: [0, 2, 1] });
  const [y] = b.node('MatMul', [t, b.init('proj', [32, 40])]);
  b.markOutput(y, 'logits');
  return b.build();
}

/** A detector: x[N, 3, H, W] ─ Conv s2 ─ Relu ─ Conv ─ Sigmoid → a score map [N, 1, H/2, W/2]. */
export function detector(): Model {
  const b = new ModelBuilder(17);
  const x = b.input('x', ['N', 3, 'H', 'W']);
  const [r1] = b.node('Relu', [b.conv(x, 3, 8, 3, { stride: 2 })]);
  const [s] = b.node('Sigmoid', [b.conv(r1, 8, 1, 3)]);
  b.markOutput(s, 'score');
  return b.build();
}

/**
 * DenseNet-style: a transition block pads with a constant `pads` input of zeros (as the
 * torchvision export does), then two dense layers concatenate onto the running features.
 *
 *   x[N,3,32,32] ─ Conv(3→8) ─ Pad(zeros) ─┬─ Conv(8→4) ─ Concat ─┬─ Conv(12→4) ─ Concat ─ Conv 1x1 (16→8) ─ GlobalAveragePool
 *                                           └──────────────────────┘└───────────────────┘
 */
export function denseConcatChain(blocks = 2): Model {
  const b = new ModelBuilder(17);
  const x = b.input('x', ['N', 3, 32, 32]);
  const c0 = b.conv(x, 3, 8, 3);
  const [p] = b.node('Pad', [c0, b.ints('zero_pads', [0, 0, 0, 0, 0, 0, 0, 0])]);
  let feats = p;
  let ch = 8;
  for (let i = 0; i < blocks; i++) {
    const [r] = b.node('Relu', [feats]);
    const c = b.conv(r, ch, 4, 3);
    [feats] = b.node('Concat', [feats, c], { axis: 1 });
    ch += 4;
  }
  const t = b.conv(feats, ch, 8, 1);
  const [gap] = b.node('GlobalAveragePool', [t]);
  b.markOutput(gap, 'y');
  return b.build();
}

const HIDDEN = 32;
const FEATURES = 16;

function lstmWeights(prefix: string, seed: number): Tensor[] {
  return [
    Tensor.fromArray(`${prefix}_W`, DataType.FLOAT, [1, 4 * HIDDEN, FEATURES], randomFloats(4 * HIDDEN * FEATURES, seed, 0.2)),
    Tensor.fromArray(`${prefix}_R`, DataType.FLOAT, [1, 4 * HIDDEN, HIDDEN], randomFloats(4 * HIDDEN * HIDDEN, seed + 1, 0.2)),
    Tensor.fromArray(`${prefix}_B`, DataType.FLOAT, [1, 8 * HIDDEN], randomFloats(8 * HIDDEN, seed + 2, 0.1)),
  ];
}

/** Parameters of one LSTM set in `vad()`. */
export const VAD_LSTM_PARAMS = 4 * HIDDEN * FEATURES + 4 * HIDDEN * HIDDEN + 8 * HIDDEN;
/** MACs per sample of one LSTM of `vad()` at 16000 samples (1000 steps of 16). */
export const VAD_LSTM_MACS = 1000 * 4 * HIDDEN * (FEATURES + HIDDEN);

function branch(name: string, nodes: Node[], out: string, initializers: Tensor[] = []): Graph {
  const g = new Graph(name);
  g.nodes = nodes;
  for (const t of initializers) g.initializers.set(t.name, t);
  g.outputs = [{ name: out, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [1, null, HIDDEN] } }];
  return g;
}

function lstm(x: string, w: string[], out: string, name: string): Node[] {
  const n = new Node('LSTM', [x, ...w], ['', `${out}_h`], name);
  n.setInt('hidden_size', HIDDEN);
  return [n, new Node('Identity', [`${out}_h`], [out], `${name}_out`)];
}

function ifNode(cond: string, thenG: Graph, elseG: Graph, out: string, name: string): Node {
  const n = new Node('If', [cond], [out], name);
  n.attributes.set('then_branch', { name: 'then_branch', type: AttrType.GRAPH, value: thenG });
  n.attributes.set('else_branch', { name: 'else_branch', type: AttrType.GRAPH, value: elseG });
  return n;
}

function constant(t: Tensor): Node {
  const n = new Node('Constant', [], [t.name], `const_${t.name}`);
  n.attributes.set('value', { name: 'value', type: AttrType.TENSOR, value: t });
  return n;
}

/**
 * A speech VAD like the public one: audio[?, ?] (batch and samples both unknown), framed
 * into [steps, batch, 16] for an LSTM. The LSTM weights (set A) are Constants inside the
 * outer If's then-branch, read through outer-scope references by LSTMs inside both branches
 * of a nested If; the outer else-branch has its own set (B) as subgraph initializers.
 *
 *   audio ─ Reshape[0,-1,16] ─ Transpose ─ xt ─┐
 *   cond (Constant) ─ If ─ then: Constant W,R,B(A) ─ If ─ then: LSTM(xt, A)
 *                     │                               └ else: LSTM(xt, A)
 *                     └ else: LSTM(xt, B initializers)
 */
export function vad(): Model {
  const b = new ModelBuilder(17);
  const audio = b.input('audio', [null, null]);
  const [framed] = b.node('Reshape', [audio, b.ints('frame_shape', [0, -1, FEATURES])]);
  const [xt] = b.node('Transpose', [framed], { perm: [1, 0, 2] });
  const condT = Tensor.fromArray('cond', DataType.BOOL, [], Uint8Array.of(1));
  b.graph.nodes.push(constant(condT));
  const a = lstmWeights('A', 11);
  const bw = lstmWeights('B', 21);
  const innerThen = branch('inner_then', lstm(xt, a.map((t) => t.name), 'it', 'lstm_inner_then'), 'it');
  const innerElse = branch('inner_else', lstm(xt, a.map((t) => t.name), 'ie', 'lstm_inner_else'), 'ie');
  const outerThen = branch('outer_then', [...a.map(constant), ifNode('cond', innerThen, innerElse, 'ot', 'inner_if')], 'ot');
  const outerElse = branch('outer_else', lstm(xt, bw.map((t) => t.name), 'oe', 'lstm_outer_else'), 'oe', bw);
  b.graph.nodes.push(ifNode('cond', outerThen, outerElse, 'state', 'outer_if'));
  b.output('state', DataType.FLOAT, [1, null, HIDDEN]);
  return b.build();
}
