import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { openModel } from '../../src/core/formats/registry';
import { DataType } from '../../src/core/ir/dtype';
import type { Model } from '../../src/core/ir/graph';
import { buildDependencyGraph, type Layout, type Member } from '../../src/core/transforms/prune/onnx/dependency';
import { pruneModel } from '../../src/core/transforms/prune';
import { applyPruning } from '../../src/core/transforms/prune/onnx/apply';
import { registerChannelRule } from '../../src/core/transforms/prune/onnx/rules';
import { ModelSession } from '../../src/core/runtime/session';
import { ModelBuilder } from './helpers/builder';
import { transformerEncoder } from './helpers/models';
import { FIXTURES } from './helpers/ort';
import { denseConcatChain, detector, ocrRecognizer, vad } from './helpers/standins';

/**
 * The channel dependency graph and structured pruning, pinned: for every fixture, stand-in
 * and one small model per op family, the groups (members, axes, layouts, unsafe reasons) and
 * the pruned weights at 50% (l1) must stay exactly what they were when the dependency graph
 * became a per-op registry. A change here is a change of behaviour: regenerate the file with
 * `UPDATE_GOLDEN=1 npx mocha out/test/unit/prune-golden.test.js` only on purpose.
 */

const GOLDEN = path.join(FIXTURES, 'prune-golden.json');

const seg = (l: Layout) => l.map((s) => `${s.group}@${s.offset}+${s.size}x${s.block}^${s.start}`).join(',');

function member(m: Member): string {
  switch (m.kind) {
    case 'producer':
      return `producer ${m.node.name} w=${m.weight.name}[${m.axis}]${m.bias ? ` b=${m.bias.name}` : ''}`;
    case 'params':
      return `params ${m.node.name} ${m.tensors.map((t) => `${t.input}:${t.tensor.name}[${t.axis}]`).join(' ')}${m.depthwise ? ' depthwise' : ''}`;
    case 'consumer':
      return `consumer ${m.node.name} w=${m.weight.name}[${m.axis}] (${seg(m.layout)})`;
    case 'reshape':
      return `reshape ${m.node.name} ${m.shape.name}[${m.featureAxis}] (${seg(m.layout)})`;
    case 'split':
      return `split ${m.node.name} ${m.bounds.join('/')} (${seg(m.layout)})`;
    case 'slice':
      return `slice ${m.node.name} ${m.start}:${m.end}@${m.axisIndex} (${seg(m.layout)})`;
  }
}

function dependencySummary(model: Model) {
  const dg = buildDependencyGraph(model);
  return {
    groups: dg.groups.map((g) => ({ id: g.id, size: g.size, tensor: g.tensor, unsafe: g.unsafe ?? null, members: g.members.map(member) })),
    layouts: Object.fromEntries([...dg.layouts].map(([t, l]) => [t, seg(l)]).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
}

/** A digest of the weights and of the nodes' wiring and attributes. */
function modelDigest(model: Model): string {
  const h = createHash('sha256');
  for (const [name, t] of [...model.graph.initializers].sort(([a], [b]) => (a < b ? -1 : 1))) {
    h.update(`${name} ${t.dtype} ${t.dims.join('x')}\n`);
    const v = t.toFloat32();
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  for (const n of model.graph.nodes) {
    h.update(`${n.opType} ${n.inputs.join(',')} ${n.outputs.join(',')}\n`);
    for (const [k, a] of n.attributes) if (typeof a.value === 'number' || Array.isArray(a.value)) h.update(`${k}=${JSON.stringify(a.value)}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

async function pruneSummary(model: Model, roundTo: number) {
  try {
    const r = await pruneModel(model, { structured: true, ratio: 0.5, criterion: 'l1', roundTo });
    return { digest: modelDigest(r.model), groups: r.groups.map((g) => `${g.name} ${g.removed}/${g.channels}`), skipped: r.skipped.map((s) => `${s.name}: ${s.reason}`) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

// ---- one small model per op family -------------------------------------------------------

/** x ─ Conv(3→16) ─ Relu ─┬─ DWConv ─ Relu ─ Conv(16→16) ─ Add ─ Conv(16→8) ─ GAP ─ Flatten ─ Gemm → y */
function residual(): Model {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['n', 3, 8, 8]);
  const [a] = b.node('Relu', [b.conv(x, 3, 16, 3)]);
  const [d] = b.node('Relu', [b.conv(a, 16, 16, 3, { group: 16 })]);
  const [sum] = b.node('Add', [a, b.conv(d, 16, 16, 1)]);
  const [gap] = b.node('GlobalAveragePool', [b.conv(sum, 16, 8, 1)]);
  const [flat] = b.node('Flatten', [gap]);
  b.markOutput(b.gemm(flat, 8, 4), 'y');
  return b.build();
}

/** x ─ Conv(3→16) ─┬─ Split[8,8] ─ Conv, Conv ─┐
 *                   └─ Slice[4:12] ─ Conv ───────┴─ Concat ─ GAP ─ Flatten ─ Gemm → y */
function splitSlice(): Model {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['n', 3, 6, 6]);
  const a = b.conv(x, 3, 16, 3);
  const [p1, p2] = b.node('Split', [a, b.ints('sizes', [8, 8])], { axis: 1 }, 2);
  const [sl] = b.node('Slice', [a, b.ints('st', [4]), b.ints('en', [12]), b.ints('ax', [1])]);
  const [cat] = b.node('Concat', [b.conv(p1, 8, 4, 1), b.conv(p2, 8, 4, 1), b.conv(sl, 8, 4, 1)], { axis: 1 });
  const [gap] = b.node('GlobalAveragePool', [cat]);
  const [flat] = b.node('Flatten', [gap]);
  b.markOutput(b.gemm(flat, 12, 2), 'y');
  return b.build();
}

/**
 * x ─ Conv(3→16) ─ BN ─ Relu ─ Pad(H,W) ─ MaxPool ─ Mul(const [1,16,1,1]) ─ Conv(16→16) ─ Clip ─
 * Reshape[n, 16·4·4] ─ MatMul(256→32) ─ Add(const [32]) ─ Relu ─ Gemm(32→10, transB 0) ─ Relu ─ Gemm → y
 * plus a squeeze-excitation branch: GAP ─ Conv(16→4) ─ Relu ─ Conv(4→16) ─ Sigmoid ─ Mul.
 */
function chain(): Model {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['n', 3, 8, 8]);
  const c = b.conv(x, 3, 16, 3);
  const [bn] = b.node('BatchNormalization', [c, b.init('g', [16]), b.init('be', [16]), b.init('mu', [16]), b.init('var', [16], new Float32Array(16).fill(1))]);
  const [r] = b.node('Relu', [bn]);
  const [p] = b.node('Pad', [r, b.ints('pads', [0, 0, 1, 1, 0, 0, 1, 1])]);
  const [mp] = b.node('MaxPool', [p], { kernel_shape: [2, 2], strides: [2, 2] });
  const [scaled] = b.node('Mul', [mp, b.init('scale', [1, 16, 1, 1])]);
  const [gap] = b.node('GlobalAveragePool', [scaled]);
  const [sq] = b.node('Relu', [b.conv(gap, 16, 4, 1)]);
  const [ex] = b.node('Sigmoid', [b.conv(sq, 4, 16, 1)]);
  const [se] = b.node('Mul', [scaled, ex]);
  const [cl] = b.node('Clip', [b.conv(se, 16, 16, 3)]);
  const [flat] = b.node('Reshape', [cl, b.ints('shape', [0, 16 * 5 * 5])]);
  const [mm] = b.node('MatMul', [flat, b.init('wmm', [400, 32])]);
  const [add] = b.node('Add', [mm, b.init('bmm', [32])]);
  const [r2] = b.node('Relu', [add]);
  const [g0] = b.node('Gemm', [r2, b.init('wg0', [32, 10]), b.init('bg0', [10])]);
  const [r3] = b.node('Relu', [g0]);
  b.markOutput(b.gemm(r3, 10, 4), 'y');
  return b.build();
}

/** x ─ ConvTranspose(4→8) ─ Relu ─ ConvTranspose(8→6) ─ Relu ─ Conv(6→2) → y */
function transposed(): Model {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['n', 4, 5, 5]);
  const [t1] = b.node('ConvTranspose', [x, b.init('wt1', [4, 8, 3, 3]), b.init('bt1', [8])], { kernel_shape: [3, 3] });
  const [r1] = b.node('Relu', [t1]);
  const [t2] = b.node('ConvTranspose', [r1, b.init('wt2', [8, 6, 3, 3])], { kernel_shape: [3, 3], strides: [2, 2] });
  const [r2] = b.node('Relu', [t2]);
  b.markOutput(b.conv(r2, 6, 2, 1), 'y');
  return b.build();
}

/** Ops the graph does not follow, each on its own producer: every group is unsafe, with its reason. */
function unfollowed(): Model {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['n', 8, 6, 6]);
  const outs: string[] = [];
  const [t] = b.node('Transpose', [b.conv(x, 8, 8, 1)], { perm: [0, 2, 3, 1] });
  outs.push(t);
  outs.push(b.conv(b.conv(x, 8, 8, 1), 8, 8, 3, { group: 2 })); // grouped conv
  const [mp] = b.node('MaxPool', [b.conv(x, 8, 8, 1)], { kernel_shape: [2, 2] }, 2); // with Indices
  outs.push(mp);
  const [cat] = b.node('Concat', [b.conv(x, 8, 8, 1), b.conv(x, 8, 8, 1)], { axis: 2 });
  outs.push(cat);
  const [custom] = b.node('Relu', [b.conv(x, 8, 8, 1)]);
  const cn = b.graph.nodes[b.graph.nodes.length - 1];
  cn.domain = 'com.example';
  outs.push(custom);
  const [pc] = b.node('Pad', [b.conv(x, 8, 8, 1), b.ints('padc', [0, 1, 0, 0, 0, 1, 0, 0])]);
  outs.push(pc);
  outs.push(b.conv(x, 8, 8, 1)); // reaches a graph output
  outs.forEach((o, k) => b.markOutput(o, `y${k}`));
  return b.build();
}

/** MatMul on rank 3 and Gemm with transA: features not where the graph follows them. */
function matmuls(): Model {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['n', 4, 8]);
  const [m1] = b.node('MatMul', [x, b.init('w1', [8, 16])]);
  const [r] = b.node('Relu', [m1]);
  const [m2] = b.node('MatMul', [r, b.init('w2', [16, 8])]);
  const x2 = b.input('x2', [8, 6]);
  const [g1] = b.node('Gemm', [x2, b.init('wa', [6, 12])]);
  const [g2] = b.node('Gemm', [g1, b.init('wb', [12, 5])], { transA: 1 });
  b.markOutput(m2, 'y');
  b.markOutput(g2, 'y2');
  return b.build();
}

const BUILT: Record<string, () => Model> = { residual, splitSlice, chain, transposed, unfollowed, matmuls, ocrRecognizer, detector, denseConcatChain, vad, transformerEncoder: () => transformerEncoder() };

function fixtureFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.onnx') || e.name === 'model.json') out.push(p);
    }
  };
  walk(FIXTURES);
  return out.sort();
}

async function summarize(): Promise<Record<string, unknown>> {
  const all: Record<string, unknown> = {};
  const entries: Array<[string, () => Model]> = [
    ...Object.entries(BUILT).map(([k, f]) => [`built:${k}`, f] as [string, () => Model]),
    ...fixtureFiles().map((f) => [`fixture:${path.relative(FIXTURES, f)}`, () => openModel(f)] as [string, () => Model]),
  ];
  for (const [name, make] of entries) {
    let model: Model;
    try {
      model = make();
    } catch {
      continue; // hostile fixtures that do not open are another test's business
    }
    all[name] = {
      dependency: model.format === 'onnx' ? dependencySummary(model) : null,
      prune8: await pruneSummary(make(), 8),
      prune1: await pruneSummary(make(), 1),
    };
  }
  return all;
}

describe('structured pruning, pinned (dependency registry)', function () {
  this.timeout(120_000);
  it('gives the same groups and the same pruned weights on every fixture, stand-in and op family as before', async () => {
    const now = await summarize();
    if (process.env.UPDATE_GOLDEN) fs.writeFileSync(GOLDEN, JSON.stringify(now, null, 1) + '\n');
    const before = JSON.parse(fs.readFileSync(GOLDEN, 'utf8'));
    assert.deepEqual(Object.keys(now).sort(), Object.keys(before).sort());
    for (const k of Object.keys(before)) assert.deepEqual(now[k], before[k], k);
  });
});

describe('structured pruning: the per-op registry', () => {
  /** x ─ Conv(3→8) ─ Softsign ─ Conv(8→4) ─ GAP ─ Flatten ─ Gemm → y (Softsign has no rule of its own) */
  function softsignModel(): Model {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 3, 6, 6]);
    const [s] = b.node('Softsign', [b.conv(x, 3, 8, 3)]);
    const [gap] = b.node('GlobalAveragePool', [b.conv(s, 8, 4, 1)]);
    const [flat] = b.node('Flatten', [gap]);
    b.markOutput(b.gemm(flat, 4, 2), 'y');
    return b.build();
  }

  it('an op without a rule makes its groups unsafe; one registered entry makes them prunable, and the result runs in ORT', async () => {
    const before = buildDependencyGraph(softsignModel());
    assert.match(before.groups.find((g) => g.tensor === 'conv0')!.unsafe!, /Softsign reads the channels and is not followed/);
    const undo = registerChannelRule(['Softsign'], {
      trace(n, t) {
        const x = t.layout(n.inputs[0]);
        if (x) t.setLayout(n.outputs[0], x);
      },
    });
    try {
      const model = softsignModel();
      const g = buildDependencyGraph(model).groups.find((grp) => grp.tensor === 'conv0')!;
      assert.equal(g.unsafe, undefined);
      assert.deepEqual(g.members.map((m) => `${m.kind} ${m.node.opType}`), ['producer Conv', 'consumer Conv']);
      const pruned = applyPruning(model, [{ group: g, remove: [1, 4, 6] }]);
      const convs = pruned.graph.nodes.filter((n) => n.opType === 'Conv').map((n) => pruned.graph.initializers.get(n.inputs[1])!.dims);
      assert.deepEqual(convs, [[5, 3, 3, 3], [4, 5, 1, 1]]);
      const s = await ModelSession.create(pruned);
      try {
        const out = await s.run({ x: { dtype: DataType.FLOAT, dims: [2, 3, 6, 6], data: new Float32Array(216).fill(0.5) } });
        assert.deepEqual(out.y.dims, [2, 2]);
      } finally {
        await s.release();
      }
    } finally {
      undo();
    }
    assert.ok(buildDependencyGraph(softsignModel()).groups.find((g) => g.tensor === 'conv0')!.unsafe, 'the registration is undone');
  });
});
