import type { Dim, Node } from '../../ir/graph';
import type { Tensor } from '../../ir/tensor';

/**
 * Gradient rules, one per op type, registered by one file per op family (like the
 * quantizer's rules). A rule receives the forward node and the gradients of its outputs and
 * emits standard ONNX nodes computing the gradient of each input that needs one.
 *
 * An op with no rule is never a crash: `buildTrainingGraph` refuses with the op's name and
 * the way out (freeze everything before it, or train only the layers after it).
 */

/** Attribute values for emitted nodes: integers, int lists, strings, `{ f }` floats, tensors. */
export type AttrSpec = number | number[] | string | { f: number } | { fs: number[] } | Tensor;

export interface GradContext {
  readonly node: Node;
  /** The opset of the training graph's default domain. */
  readonly opset: number;
  /** Name of input i ('' when absent). */
  x(i: number): string;
  /** Name of output i. */
  y(i: number): string;
  /** Gradient of output i, or undefined when nothing downstream depends on it. */
  dy(i: number): string | undefined;
  /** Gradient of output i, or zeros of its shape. */
  dyOrZeros(i: number): string;
  /** Whether input i needs a gradient (it depends on a trainable weight). */
  needs(i: number): boolean;
  /** Inferred shape of a forward value (null when unknown). */
  shape(name: string): Dim[] | null;
  /** Static dims of a forward value, or a refusal naming the node when any is unknown. */
  staticShape(name: string, what: string): number[];
  /** Known contents of a constant (initializer or Constant node), if any. */
  constant(name: string): Tensor | undefined;
  /** Emits one node and returns its outputs. */
  emit(op: string, inputs: string[], attrs?: Record<string, AttrSpec>, nOut?: number): string[];
  /** Emits one node and returns its only output. */
  op(op: string, inputs: string[], attrs?: Record<string, AttrSpec>): string;
  /** An int64 1-D constant. */
  ints(values: number[]): string;
  /** A float32 constant (a scalar when dims is omitted). */
  float(value: number, dims?: number[]): string;
  /** Sums a broadcast gradient back to the shape of `operand` (numpy broadcasting). */
  reduceTo(grad: string, operand: string, result: string): string;
  /** The `Shape` of a forward value (emitted once). */
  shapeOf(name: string): string;
  /** Refuses the node with a one-line reason (thrown as a UsageError). */
  refuse(why: string): never;
}

/** Returns the gradient name per input index (undefined where none is needed). */
export type GradRule = (c: GradContext) => Array<string | undefined>;

export interface GradRuleEntry {
  rule: GradRule;
  /** Outputs that carry no gradient (e.g. MaxPool's indices). */
  nonDifferentiableOutputs?: number[];
  /** Inputs that never receive a gradient (shapes, indices, running statistics). */
  nonDifferentiableInputs?: number[];
  /**
   * Lets a rule change the forward node in the training graph before differentiation,
   * e.g. MaxPool gains its Indices output. Must not change the node's existing outputs.
   */
  prepare?: (n: Node, fresh: (hint: string) => string) => void;
}

const RULES = new Map<string, GradRuleEntry>();

/** Registers the rule of an op type of the default ONNX domain (later registrations win). */
export function registerGradient(opType: string, entry: GradRuleEntry | GradRule): void {
  RULES.set(opType, typeof entry === 'function' ? { rule: entry } : entry);
}

export function gradientRule(n: Node): GradRuleEntry | undefined {
  if (n.domain !== '' && n.domain !== 'ai.onnx') return undefined;
  return RULES.get(n.opType);
}

/** Op types with a gradient rule. */
export function differentiableOps(): string[] {
  return [...RULES.keys()].sort();
}

/** Ops whose outputs never depend differentiably on their inputs. */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'ArgMax', 'ArgMin', 'Equal', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor',
  'NonZero', 'ConstantOfShape', 'Constant', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'EyeLike',
  'Floor', 'Ceil', 'Round', 'Sign', 'IsNaN', 'IsInf', 'TopK_indices', 'OneHot', 'Range',
]);

/** Normalises a possibly negative axis. */
export function axis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

/** ReduceMean over `axes` with keepdims, in the form of the training opset (axes input from 18). */
export function reduceMean(c: GradContext, x: string, axes: number[]): string {
  return c.opset >= 18 ? c.op('ReduceMean', [x, c.ints(axes)], { keepdims: 1 }) : c.op('ReduceMean', [x], { axes, keepdims: 1 });
}
