import { UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import { AttrType, Graph, Node, type Model, type ValueInfo } from '../../ir/graph';
import { Tensor } from '../../ir/tensor';
import { cloneModel } from '../graph-edit';
import type { ExitScore } from './calibrate';
import type { Head } from './heads';

/**
 * Writes early exits as ONE ONNX model that ONNX Runtime runs (nested `If`, ONNX spec
 * "If"): the main graph computes the backbone up to the first exit and its head; if every
 * sample of the batch is confident (min over the batch of the confidence > threshold), the
 * `then` branch returns the head's logits; otherwise the `else` branch computes the next part
 * of the backbone and the next exit, and so on; the last `else` computes the rest of the
 * original network. Outputs: the original output (same name, dtype and shape) and
 * `exit_index` (int64 [1]: 0-based exit, or the number of exits for the final output).
 *
 * Subgraph nodes read weights and earlier activations from the enclosing scopes (ONNX IR
 * "outer scope" references), so nothing is computed twice and the weights are stored once.
 * Per-sample semantics hold at batch 1; at batch > 1 a batch leaves only when every sample in
 * it is confident.
 */

export const EXIT_INDEX_OUTPUT = 'exit_index';

function constInt64(name: string, output: string, value: number): Node {
  const n = new Node('Constant', [], [output], name);
  n.attributes.set('value', { name: 'value', type: AttrType.TENSOR, value: Tensor.fromArray(`${output}_value`, DataType.INT64, [1], BigInt64Array.of(BigInt(value))) });
  return n;
}

function floatOut(name: string, shape: ValueInfo['type']): ValueInfo {
  return { name, type: shape };
}

/** Confidence nodes for one head: [N, K] logits → bool [1, 1] "every sample is confident". */
function confidenceNodes(model: Model, head: Head, score: ExitScore, classes: number): { nodes: Node[]; cond: string; inits: Tensor[] } {
  const p = `early_exit_${head.index + 1}`;
  const opset = model.opset('') ?? 13;
  const nodes: Node[] = [];
  const inits: Tensor[] = [];
  const sm = new Node('Softmax', [head.logits], [`${p}/prob`], `${p}/Softmax`);
  sm.setInt('axis', 1);
  nodes.push(sm);
  let conf: string;
  if (score === 'max-prob') {
    inits.push(Tensor.fromArray(`${p}.k`, DataType.INT64, [1], BigInt64Array.of(1n)));
    const top = new Node('TopK', [`${p}/prob`, `${p}.k`], [`${p}/conf`, `${p}/conf_index`], `${p}/TopK`);
    top.setInt('axis', 1);
    nodes.push(top);
    conf = `${p}/conf`;
  } else {
    // 1 − H(p)/log K with H = −Σ p·log p, log p from LogSoftmax (finite where p underflows).
    const ls = new Node('LogSoftmax', [head.logits], [`${p}/logprob`], `${p}/LogSoftmax`);
    ls.setInt('axis', 1);
    const mul = new Node('Mul', [`${p}/prob`, `${p}/logprob`], [`${p}/plogp`], `${p}/Mul`);
    const sumInputs = [`${p}/plogp`];
    if (opset >= 13) {
      inits.push(Tensor.fromArray(`${p}.axes`, DataType.INT64, [1], BigInt64Array.of(1n)));
      sumInputs.push(`${p}.axes`);
    }
    const sum = new Node('ReduceSum', sumInputs, [`${p}/neg_entropy`], `${p}/ReduceSum`);
    if (opset < 13) sum.setInts('axes', [1]);
    inits.push(Tensor.fromArray(`${p}.inv_log_k`, DataType.FLOAT, [], Float32Array.of(1 / Math.log(classes))));
    inits.push(Tensor.fromArray(`${p}.one`, DataType.FLOAT, [], Float32Array.of(1)));
    const scale = new Node('Mul', [`${p}/neg_entropy`, `${p}.inv_log_k`], [`${p}/neg_entropy_scaled`], `${p}/Scale`);
    const add = new Node('Add', [`${p}/neg_entropy_scaled`, `${p}.one`], [`${p}/conf`], `${p}/Add`);
    nodes.push(ls, mul, sum, scale, add);
    conf = `${p}/conf`;
  }
  const min = new Node('ReduceMin', [conf], [`${p}/batch_conf`], `${p}/ReduceMin`);
  min.setInt('keepdims', 1);
  nodes.push(min);
  const gt = new Node('Greater', [`${p}/batch_conf`, `${p}.threshold`], [`${p}/confident`], `${p}/Greater`);
  nodes.push(gt);
  return { nodes, cond: `${p}/confident`, inits };
}

/**
 * The nested-If model. `withHeads` is the model with every head added (from `addHeads`, with
 * trained weights); `enabled` are the heads to keep (in order), `thresholds` theirs.
 */
export function exportIfModel(original: Model, withHeads: Model, enabled: Head[], thresholds: number[], score: ExitScore, classes: number): Model {
  if (original.graph.outputs.length !== 1) throw new UsageError('early exits need a model with one [N, classes] output');
  if ((original.opset('') ?? 13) < 11) throw new UsageError(`early exits need opset ≥ 11 (TopK with a K input, Greater on floats); this model has opset ${original.opset('')}`);
  const m = cloneModel(original);
  const g = m.graph;
  const out = g.outputs[0];
  const order = g.topoOrder();
  const { producer } = g.index();
  // Ancestors of each exit tensor, in topological order.
  const assigned = new Set<Node>();
  const segments: Node[][] = [];
  for (const h of enabled) {
    const anc = new Set<Node>();
    const stack = [h.exit.tensor];
    while (stack.length) {
      const v = stack.pop()!;
      const p = producer.get(v);
      if (!p || anc.has(p) || assigned.has(p)) continue;
      anc.add(p);
      for (const i of p.inputs) if (i) stack.push(i);
    }
    const seg = order.filter((n) => anc.has(n));
    seg.forEach((n) => assigned.add(n));
    segments.push(seg);
  }
  const finalSeg = order.filter((n) => !assigned.has(n));
  // Inside the last branch the original output gets a fresh name (names are unique model-wide).
  const finalName = `${out.name}/final`;
  for (const n of finalSeg) {
    n.outputs = n.outputs.map((o) => (o === out.name ? finalName : o));
    n.inputs = n.inputs.map((i) => (i === out.name ? finalName : i));
  }
  // The backbone's weights come from the trained model too: with joint training (`joint`) they
  // were fine-tuned with the heads, and the thresholds were calibrated on them.
  for (const name of [...g.initializers.keys()]) {
    const t = withHeads.graph.initializers.get(name);
    if (t) g.initializers.set(name, t);
  }
  // Head weights live in the main graph (read from the branches as outer-scope values).
  for (const h of enabled) for (const w of h.weights) g.initializers.set(w, withHeads.graph.initializers.get(w)!);
  const logitsType: ValueInfo['type'] = { kind: 'tensor', dtype: DataType.FLOAT, shape: out.type?.kind === 'tensor' ? out.type.shape : null };
  const indexType: ValueInfo['type'] = { kind: 'tensor', dtype: DataType.INT64, shape: [1] };

  const level = (k: number, outNames: [string, string]): Node[] => {
    if (k === enabled.length) {
      const nodes = [...finalSeg];
      nodes.push(new Node('Identity', [finalName], [outNames[0]], `early_exit_final/Identity`));
      nodes.push(constInt64(`early_exit_final/index`, outNames[1], enabled.length));
      return nodes;
    }
    const h = enabled[k];
    const p = `early_exit_${h.index + 1}`;
    g.initializers.set(`${p}.threshold`, Tensor.fromArray(`${p}.threshold`, DataType.FLOAT, [], Float32Array.of(thresholds[k])));
    const conf = confidenceNodes(m, h, score, classes);
    for (const t of conf.inits) g.initializers.set(t.name, t);
    const thenG = new Graph(`${p}_then`);
    thenG.nodes.push(new Node('Identity', [h.logits], [`${p}/then_logits`], `${p}/then/Identity`), constInt64(`${p}/then/index`, `${p}/then_index`, k));
    thenG.outputs.push(floatOut(`${p}/then_logits`, logitsType), floatOut(`${p}/then_index`, indexType));
    const elseG = new Graph(`${p}_else`);
    const inner: [string, string] = [`${p}/else_logits`, `${p}/else_index`];
    elseG.nodes.push(...level(k + 1, inner));
    elseG.outputs.push(floatOut(inner[0], logitsType), floatOut(inner[1], indexType));
    const ifNode = new Node('If', [conf.cond], [...outNames], `${p}/If`);
    ifNode.attributes.set('then_branch', { name: 'then_branch', type: AttrType.GRAPH, value: thenG });
    ifNode.attributes.set('else_branch', { name: 'else_branch', type: AttrType.GRAPH, value: elseG });
    return [...segments[k], ...h.nodes.map(copyNode), ...conf.nodes, ifNode];
  };
  g.nodes = level(0, [out.name, EXIT_INDEX_OUTPUT]);
  g.outputs = [out, { name: EXIT_INDEX_OUTPUT, type: indexType }];
  // Value infos of tensors now inside branches stay valid (names are unique); drop the renamed output's.
  g.valueInfo.delete(out.name);
  m.metadata = [...m.metadata.filter(([k]) => k !== 'early_exit'), ['early_exit', JSON.stringify({ exits: enabled.map((h, k) => ({ tensor: h.exit.tensor, threshold: thresholds[k] })), score })]];
  return m;
}

function copyNode(n: Node): Node {
  const c = new Node(n.opType, [...n.inputs], [...n.outputs], n.name);
  for (const [k, v] of n.attributes) c.attributes.set(k, v);
  c.domain = n.domain;
  return c;
}
