import { DataType, float32ToFloat16, isFloatType } from '../../ir/dtype';
import { AttrType, allGraphs, type Model, type Node } from '../../ir/graph';
import { Tensor } from '../../ir/tensor';
import { GraphEditor, cloneModel } from '../graph-edit';

/**
 * Constant folding of the two ops exporters put between a weight and the layer that reads it:
 * - `Cast` of a constant float tensor to float32 (float16 weights stored by an fp16 export, or
 *   by `onnxconverter-common`'s "keep io types"): replaced by a float32 initializer of the same
 *   name, so the layer's weight is a plain initializer again;
 * - `Identity` of an initializer (tied weights, e.g. a language model's embedding and output
 *   layer): its readers are pointed at the initializer itself, so the weight stays one tensor
 *   and every transform that caches by weight name transforms it once.
 * The input model is never modified; a folded copy is returned when anything was folded.
 * Values read by a subgraph or listed as graph outputs are left as they are.
 */
export interface FoldResult {
  model: Model;
  /** One line per folded node, e.g. "Cast W1_fp16 → W1 (float16 → float32)". */
  folded: string[];
}

export function foldWeightCasts(model: Model): FoldResult {
  const g = model.graph;
  const isConst = (name: string) => g.initializers.has(name) || g.nodes.some((n) => n.opType === 'Constant' && n.outputs[0] === name);
  const pinned = new Set(g.outputs.map((o) => o.name));
  for (const sub of allGraphs(g)) {
    if (sub === g) continue;
    for (const n of sub.nodes) for (const i of n.inputs) pinned.add(i);
  }
  const foldable = (n: Node) =>
    !n.domain &&
    !pinned.has(n.outputs[0]) &&
    ((n.opType === 'Identity' && g.initializers.has(n.inputs[0])) ||
      (n.opType === 'Cast' && n.int('to', 0) === DataType.FLOAT && isConst(n.inputs[0]) && isFloatType(constTensor(model, n.inputs[0])?.dtype ?? DataType.UNDEFINED)));
  if (!g.nodes.some(foldable)) return { model, folded: [] };

  const out = cloneModel(model);
  const og = out.graph;
  const ed = new GraphEditor(og);
  const folded: string[] = [];
  const drop = new Set<Node>();
  for (const n of og.nodes) {
    if (!foldable(n)) continue;
    if (n.opType === 'Identity') {
      ed.rewire(n.outputs[0], n.inputs[0]);
      folded.push(`Identity ${n.outputs[0]} → ${n.inputs[0]} (readers share the initializer)`);
    } else {
      const src = constTensor(out, n.inputs[0])!;
      const t = Tensor.fromArray(n.outputs[0], DataType.FLOAT, [...src.dims], src.toFloat32());
      t.modified = true;
      og.initializers.set(n.outputs[0], t);
      folded.push(`Cast ${n.inputs[0]} → ${n.outputs[0]} (${DataType[src.dtype].toLowerCase()} → float32)`);
    }
    drop.add(n);
  }
  og.nodes = og.nodes.filter((n) => !drop.has(n));
  ed.dropUnusedInitializers();
  return { model: out, folded };
}

function constTensor(model: Model, name: string): Tensor | undefined {
  const g = model.graph;
  const init = g.initializers.get(name);
  if (init) return init;
  const c = g.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name);
  const a = c?.attr('value');
  return a?.type === AttrType.TENSOR ? a.value : undefined;
}

/**
 * Undoes the storage change of `foldWeightCasts` on a transformed model: a folded float16
 * weight that is still a float32 initializer (pruned, or left alone) is stored as float16
 * again behind a Cast, so the output keeps the input's weight precision and size.
 * Returns the number of weights restored. Edits `model` (a transform's own output) in place.
 */
export function restoreWeightCasts(model: Model, folded: Model, original: Model): number {
  const og = original.graph;
  let restored = 0;
  for (const n of og.nodes) {
    if (n.opType !== 'Cast' || folded.graph.nodes.some((m) => m.outputs[0] === n.outputs[0])) continue;
    const src = constTensor(original, n.inputs[0]);
    const t = model.graph.initializers.get(n.outputs[0]);
    if (!src || !t || t.dtype !== DataType.FLOAT || src.dtype === DataType.FLOAT || model.graph.nodes.some((m) => m.outputs.includes(n.outputs[0]))) continue;
    if (src.dtype !== DataType.FLOAT16) continue;
    const ed = new GraphEditor(model.graph);
    const v = t.toFloat32();
    const h = new Uint16Array(v.length);
    for (let i = 0; i < v.length; i++) h[i] = float32ToFloat16(v[i]);
    const store = ed.initializer(n.inputs[0], DataType.FLOAT16, [...t.dims], h);
    model.graph.initializers.delete(n.outputs[0]);
    const cast = ed.node('Cast', [store], [n.outputs[0]]);
    cast.outputs = [n.outputs[0]];
    cast.name = n.name;
    cast.setInt('to', DataType.FLOAT);
    ed.append(cast);
    ed.sort();
    restored++;
  }
  return restored;
}

/** The report line for folded weights. */
export function foldNote(folded: string[]): string {
  return `${folded.length} Cast/Identity of constant weights folded so the layers reading them are transformed: ${folded.slice(0, 4).join('; ')}${folded.length > 4 ? '; …' : ''}`;
}

/**
 * Runs `transform` on the folded copy when any weight was folded (undefined otherwise: run it
 * on the model itself), restores float16 storage on the result, and adds the fold's report line
 * to the list `notes` returns (if any).
 */
export async function onFoldedWeights<R extends { model: Model }>(model: Model, transform: (folded: Model) => Promise<R>, notes?: (r: R) => string[]): Promise<R | undefined> {
  const fold = foldWeightCasts(model);
  if (!fold.folded.length) return undefined;
  const r = await transform(fold.model);
  restoreWeightCasts(r.model, fold.model, model);
  notes?.(r).push(foldNote(fold.folded));
  return r;
}
