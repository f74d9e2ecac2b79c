import { DataType } from '../ir/dtype';
import type { Dim } from '../ir/graph';
import type { LossTerm, TrainingInput } from './api';
import type { Emitter } from './emitter';

/**
 * Loss terms as ONNX nodes: each emits its forward value (a float scalar) and seeds the
 * gradient of the tensors it reads. The total loss is Σ weight·term.
 */

export interface LossContext {
  shape(name: string): Dim[] | null;
  exists(name: string): boolean;
  addGrad(value: string, grad: string): void;
  refuse(why: string): never;
}

export interface EmittedLosses {
  lossOutput: string;
  termOutputs: string[];
  extraInputs: Array<Omit<TrainingInput, 'role'>>;
}

const FLOAT = DataType.FLOAT;

function checkWeight(w: number, what: string, refuse: (why: string) => never): void {
  if (!Number.isFinite(w)) refuse(`the weight of the ${what} loss must be a finite number`);
}

export function emitLosses(e: Emitter, losses: LossTerm[], c: LossContext): EmittedLosses {
  const extraInputs: EmittedLosses['extraInputs'] = [];
  const terms: string[] = [];
  const weighted: string[] = [];
  const needTensor = (name: string, what: string) => {
    if (!c.exists(name)) c.refuse(`the ${what} '${name}' is not a tensor of the model`);
  };
  const rank2 = (name: string, what: string): Dim[] => {
    const s = c.shape(name);
    if (s && s.length !== 2) c.refuse(`the ${what} '${name}' must be [batch, classes], it is [${s.map((d) => d ?? '?').join(', ')}]`);
    return s ?? ['batch', null];
  };
  const batchCount = (x: string) => e.op('Cast', [e.op('Gather', [e.shapeOf(x), e.intScalar(0)], { axis: 0 })], { to: FLOAT });

  for (const l of losses) {
    const w = l.weight ?? 1;
    checkWeight(w, l.kind, c.refuse);
    let value: string;
    switch (l.kind) {
      case 'cross-entropy': {
        needTensor(l.logits, 'logits');
        const s = rank2(l.logits, 'logits');
        extraInputs.push({ name: l.labels, dtype: DataType.INT64, shape: [s[0]] });
        const classes = typeof s[1] === 'number' ? e.intScalar(s[1]) : e.op('Gather', [e.shapeOf(l.logits), e.intScalar(1)], { axis: 0 });
        const onehot = e.op('OneHot', [l.labels, classes, e.floats([0, 1])], { axis: -1 });
        const n = e.op('Cast', [e.op('Size', [l.labels])], { to: FLOAT });
        const ls = e.op('LogSoftmax', [l.logits], { axis: -1 });
        value = e.op('Div', [e.op('Neg', [e.op('ReduceSum', [e.op('Mul', [onehot, ls])], { keepdims: 0 })]), n]);
        const grad = e.op('Mul', [e.op('Sub', [e.op('Softmax', [l.logits], { axis: -1 }), onehot]), e.op('Div', [e.float(w), n])]);
        c.addGrad(l.logits, grad);
        break;
      }
      case 'distillation': {
        needTensor(l.logits, 'logits');
        const s = rank2(l.logits, 'logits');
        const t = l.temperature;
        if (!(t > 0) || !Number.isFinite(t)) c.refuse(`the distillation temperature must be a positive number, got ${t}`);
        // A tensor of the graph (e.g. the full width in slimmable training) acts as a constant teacher.
        if (!c.exists(l.teacherLogits)) extraInputs.push({ name: l.teacherLogits, dtype: FLOAT, shape: [...s] });
        const invT = e.float(1 / t);
        const lq = e.op('LogSoftmax', [e.op('Mul', [l.logits, invT])], { axis: -1 });
        const lp = e.op('LogSoftmax', [e.op('Mul', [l.teacherLogits, invT])], { axis: -1 });
        const p = e.op('Exp', [lp]);
        const n = batchCount(l.logits);
        const kl = e.op('ReduceSum', [e.op('Mul', [p, e.op('Sub', [lp, lq])])], { keepdims: 0 });
        value = e.op('Mul', [e.op('Div', [kl, n]), e.float(t * t)]);
        // ∂/∂z_s of T²·KL/N = T·(softmax(z_s/T) − p)/N.
        const grad = e.op('Mul', [e.op('Sub', [e.op('Exp', [lq]), p]), e.op('Div', [e.float(w * t), n])]);
        c.addGrad(l.logits, grad);
        break;
      }
      case 'mse': {
        needTensor(l.prediction, 'prediction');
        if (!c.exists(l.target)) extraInputs.push({ name: l.target, dtype: FLOAT, shape: [...(c.shape(l.prediction) ?? [])] });
        const diff = e.op('Sub', [l.prediction, l.target]);
        value = e.op('ReduceMean', [e.op('Mul', [diff, diff])], { keepdims: 0 });
        const numel = e.op('Cast', [e.op('Size', [diff])], { to: FLOAT });
        const grad = e.op('Mul', [diff, e.op('Div', [e.float(2 * w), numel])]);
        c.addGrad(l.prediction, grad);
        if (c.exists(l.target)) c.addGrad(l.target, e.op('Neg', [grad]));
        break;
      }
      case 'l1':
      case 'l2': {
        if (!l.weights.length) c.refuse(`the ${l.kind.toUpperCase()} penalty names no weights`);
        const parts: string[] = [];
        for (const name of l.weights) {
          needTensor(name, 'weight');
          if (l.kind === 'l1') {
            parts.push(e.op('ReduceSum', [e.op('Abs', [name])], { keepdims: 0 }));
            c.addGrad(name, e.op('Mul', [e.op('Sign', [name]), e.float(w)]));
          } else {
            parts.push(e.op('Mul', [e.op('ReduceSum', [e.op('Mul', [name, name])], { keepdims: 0 }), e.float(0.5)]));
            c.addGrad(name, e.op('Mul', [name, e.float(w)]));
          }
        }
        value = parts.length === 1 ? parts[0] : e.op('Sum', parts);
        break;
      }
    }
    const term = e.fresh(`loss_${l.kind}`);
    e.emitNamed('Identity', [value], term);
    terms.push(term);
    weighted.push(w === 1 ? term : e.op('Mul', [term, e.float(w)]));
  }
  const lossOutput = e.fresh('loss');
  e.emitNamed(weighted.length === 1 ? 'Identity' : 'Sum', weighted, lossOutput);
  return { lossOutput, termOutputs: terms, extraInputs };
}
