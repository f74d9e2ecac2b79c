import { strict as assert } from 'assert';
import * as path from 'path';
import * as fs from 'fs';
import { ModelError, UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { DataType } from '../../src/core/ir/dtype';
import type { Graph, Model, Node } from '../../src/core/ir/graph';
import { bindDataset, parseDataSpecs, readLabels, type Dataset } from '../../src/core/runtime/data/dataset';
import { evaluateCompression, fullWidthSelector } from '../../src/core/runtime/evaluate';
import { ModelSession } from '../../src/core/runtime/session';
import { saveVerified } from '../../src/core/runtime/verified-save';
import { BUDGET_INPUT, runtimeWidths, WIDTH_INPUT } from '../../src/core/transforms/widths';
import { ModelBuilder } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { assertNoStack, cli } from './cli.test';

const fx = (f: string) => path.join(FIXTURES, f);
const digitsInput = [{ name: 'input', dtype: DataType.FLOAT, shape: ['batch', 1, 8, 8] as Array<string | number> }];
const data = (f: string): Dataset => bindDataset(digitsInput, parseDataSpecs([fx(f)]));

describe('runtime widths', function () {
  this.timeout(300000);

  it('digits CNN: one file whose full width computes the original (reordering is exact) and whose narrower widths are Slices of the shared weights', async () => {
    // lr 1e-12: training leaves the weights as they were, so the full width must equal the original.
    const r = await runtimeWidths(openModel(fx('digits_cnn.onnx')), {
      widths: [0.5, 0.75],
      train: data('digits_calib_x.npy'),
      eval: data('digits_test_x.npy'),
      labels: readLabels(fx('digits_test_y.npy')),
      training: { epochs: 1, lr: 1e-12, batchSize: 64 },
      latencySamples: 0,
    });
    assert.deepEqual(r.widths.map((w) => w.width), [0.5, 0.75, 1]);
    // Conv 1→32→64→128 (8×8, 8×8, 4×4 maps), Gemm 2048→128→10: at half width every hidden
    // layer keeps half its outputs and reads half its inputs.
    const half = 18432 / 2 + 1179648 / 4 + 1179648 / 4 + 262144 / 4 + 1280 / 2;
    assert.equal(r.widths[0].macs, half);
    assert.ok(r.widths[0].macs < r.widths[1].macs && r.widths[1].macs < r.widths[2].macs);
    assert.equal(r.widths[2].macs, r.original.macs);
    assert.ok(Math.abs(r.widths[2].score - r.original.score) < 1e-9);
    assert.equal(r.groups, 4);
    // Weights are stored once: the file holds the original's float weights plus two width bounds.
    const floats = [...r.model.graph.initializers.values()].filter((t) => t.isFloat()).reduce((a, t) => a + t.numel, 0);
    assert.equal(floats, r.original.params + 2);
    const branchOps = r.model.graph.nodes.filter((n) => n.opType === 'If').flatMap((n) => n.subgraphs().flatMap((g) => g.nodes.map((m) => m.opType)));
    assert.ok(branchOps.includes('Slice'));

    const orig = await ModelSession.create(fx('digits_cnn.onnx'));
    const s = await ModelSession.create(r.model);
    try {
      const ds = data('digits_test_x.npy');
      for (let i = 0; i < 8; i++) {
        const feeds = ds.batch(i, 1);
        const want = (await orig.run(feeds)).output.data as Float32Array;
        const width = (w: number) => ({ ...feeds, [WIDTH_INPUT]: { dtype: DataType.FLOAT, dims: [1], data: Float32Array.of(w) } });
        const full = (await s.run(width(1))).output.data as Float32Array;
        for (let c = 0; c < 10; c++) assert.ok(Math.abs(full[c] - want[c]) <= 1e-4 * (1 + Math.abs(want[c])), `sample ${i} class ${c}: ${full[c]} vs ${want[c]}`);
        const narrow = (await s.run(width(0.5))).output;
        assert.deepEqual(narrow.dims, [1, 10]);
        assert.ok(Array.from(narrow.data as Float32Array).some((v, c) => Math.abs(v - want[c]) > 1e-3), 'half width computes a different function');
      }
    } finally {
      await orig.release();
      await s.release();
    }
  });

  it('refuses what it does not support, clearly', async () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 8]);
    b.markOutput(b.gemm(x, 8, 4), 'y');
    const ds = bindDataset([{ name: 'x', dtype: DataType.FLOAT, shape: [4, 8] }], [], { randomSamples: 4, seed: 0 });
    await assert.rejects(runtimeWidths(b.build(), { widths: [0.5], train: ds, eval: ds, training: { epochs: 1 }, latencySamples: 0 }), (e: Error) => e instanceof UsageError && /runtime widths slice a leading block of each layer's channels, and here no layer has output channels that can be narrowed/.test(e.message) && /use prune --structured, or early exits/.test(e.message));
    await assert.rejects(runtimeWidths(openModel(fx('digits_cnn.onnx')), { widths: [1.5], train: data('digits_calib_x.npy'), eval: data('digits_test_x.npy'), latencySamples: 0 }), /fractions in \(0, 1\]/);
    await assert.rejects(runtimeWidths(openModel(fx('digits_cnn.onnx')), { widths: [0.5], train: data('digits_calib_x.npy'), eval: data('digits_test_x.npy'), training: { epochs: -1 }, latencySamples: 0 }), /--epochs is a whole number ≥ 0/);
  });

  /** Runs `m` at each width (or budget) on a few samples of `ds`; returns the outputs, and the original's. */
  async function outputsAt(m: Model, original: Model, ds: Dataset, input: string, values: number[], samples = 2): Promise<{ at: Float32Array[][]; want: Float32Array[] }> {
    const s = await ModelSession.create(m);
    const o = await ModelSession.create(original);
    const name = original.graph.outputs[0].name;
    try {
      const at: Float32Array[][] = values.map(() => []);
      const want: Float32Array[] = [];
      for (let i = 0; i < samples; i++) {
        const feeds = ds.batch(i, 1);
        want.push(Float32Array.from((await o.run(feeds))[name].data as Float32Array));
        for (let j = 0; j < values.length; j++) at[j].push(Float32Array.from((await s.run({ ...feeds, [input]: { dtype: DataType.FLOAT, dims: [1], data: Float32Array.of(values[j]) } }))[name].data as Float32Array));
      }
      return { at, want };
    } finally {
      await s.release();
      await o.release();
    }
  }
  const close = (a: Float32Array, b: Float32Array, tol = 1e-4) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol * (1 + Math.abs(b[i])));
  const randomData = (input: string, shape: number[], n = 4) => bindDataset([{ name: input, dtype: DataType.FLOAT, shape: [n, ...shape] }], [], { randomSamples: n, seed: 3 });

  /** MACs of a Conv: out channels × in channels per group × k² × output positions. */
  const convMacs = (cout: number, cinPerGroup: number, k: number, hw: number) => cout * cinPerGroup * k * k * hw;

  it('a residual CNN: the channels of each residual Add stay one slice; full width = the original; MACs per width', async () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 3, 8, 8]);
    const [s0] = b.node('Relu', [b.conv(x, 3, 8, 3)]);
    const [a1] = b.node('Add', [b.conv(b.node('Relu', [b.conv(s0, 8, 8, 3)])[0], 8, 8, 3), s0]);
    const [e1] = b.node('Relu', [a1]);
    const [d] = b.node('Relu', [b.conv(e1, 8, 16, 3, { stride: 2 })]);
    const [a2] = b.node('Add', [b.conv(b.node('Relu', [b.conv(d, 16, 16, 3)])[0], 16, 16, 3), d]);
    const [f] = b.node('Flatten', [b.node('GlobalAveragePool', [b.node('Relu', [a2])[0]])[0]], { axis: 1 });
    b.markOutput(b.gemm(f, 16, 4), 'y');
    const model = b.build();
    const ds = randomData('x', [3, 8, 8]);
    const r = await runtimeWidths(model, { widths: [0.5, 0.75], train: ds, eval: ds, training: { epochs: 0 }, latencySamples: 0 });
    // Stage 1 (8 channels, 8×8) and stage 2 (16 channels, 4×4): the Add's two inputs share a group,
    // so one channel count per stage. Only Conv and Gemm MACs scale with the width.
    const weighted = (c8: number, c16: number) => convMacs(c8, 3, 3, 64) + 2 * convMacs(c8, c8, 3, 64) + convMacs(c16, c8, 3, 16) + 2 * convMacs(c16, c16, 3, 16) + c16 * 4;
    const at = (c8: number, c16: number) => r.original.macs - weighted(8, 16) + weighted(c8, c16);
    assert.deepEqual(r.widths.map((w) => w.macs), [at(4, 8), at(6, 12), r.original.macs]);
    assert.deepEqual(r.widths.map((w) => w.budget), [at(4, 8) / r.original.macs, at(6, 12) / r.original.macs, 1]);
    assert.equal(r.training.epochs, 0);
    const run = await outputsAt(r.model, model, ds, WIDTH_INPUT, [0.5, 0.75, 1]);
    for (let i = 0; i < run.want.length; i++) {
      assert.ok(close(run.at[2][i], run.want[i]), `full width, sample ${i}`);
      assert.ok(!close(run.at[0][i], run.want[i], 1e-3) && !close(run.at[1][i], run.want[i], 1e-3), 'narrower widths compute other functions');
    }
  });

  it('a fire module (SqueezeNet): the Concat\'s first branch stays at full width, the rest narrow; where nothing can narrow, one line says why and what works', async () => {
    // squeeze 1×1 (3→4) → expand 1×1 (4→8) ‖ expand 3×3 (4→8) → Concat → 1×1 (16→6) → GAP → Gemm.
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 3, 8, 8]);
    const [sq] = b.node('Relu', [b.conv(x, 3, 4, 1)]);
    const [e1] = b.node('Relu', [b.conv(sq, 4, 8, 1)]);
    const [e3] = b.node('Relu', [b.conv(sq, 4, 8, 3, { pad: 1 })]);
    const [cat] = b.node('Concat', [e1, e3], { axis: 1 });
    const [c] = b.node('Relu', [b.conv(cat, 16, 6, 1)]);
    const [f] = b.node('Flatten', [b.node('GlobalAveragePool', [c])[0]], { axis: 1 });
    b.markOutput(b.gemm(f, 6, 4), 'y');
    const model = b.build();
    const ds = randomData('x', [3, 8, 8]);
    const r = await runtimeWidths(model, { widths: [0.5], train: ds, eval: ds, training: { epochs: 0 }, latencySamples: 0 });
    assert.equal(r.groups, 3, 'squeeze, the second expand and the last conv narrow');
    assert.ok(r.notes.some((n) => /^1 of 4 channel groups stay at full width at every width: .*reads its channels followed by other layers' channels \(a Concat\)/.test(n)), r.notes.join('\n'));
    // At half width: squeeze 2, expand1×1 8 (full) reading 2, expand3×3 4, the 1×1 reads 8 + 4 and writes 3, the Gemm reads 3.
    const conv = (cout: number, cin: number, k: number) => convMacs(cout, cin, k, 64);
    const weighted = (s: number, a: number, e: number, o: number) => conv(s, 3, 1) + conv(a, s, 1) + conv(e, s, 3) + conv(o, a + e, 1) + o * 4;
    assert.equal(r.widths[0].macs, r.original.macs - weighted(4, 8, 8, 6) + weighted(2, 8, 4, 3));
    const run = await outputsAt(r.model, model, ds, WIDTH_INPUT, [0.5, 1]);
    for (let i = 0; i < run.want.length; i++) {
      assert.ok(close(run.at[1][i], run.want[i]), `full width, sample ${i}`);
      assert.equal(run.at[0][i].length, 4);
      assert.ok(!close(run.at[0][i], run.want[i], 1e-3), 'half width computes another function');
    }
    // Both expands feeding the Concat twice (e1 ‖ e3 ‖ e1) and the last layer writing the output: nothing can narrow.
    const b2 = new ModelBuilder(13);
    const x2 = b2.input('x', ['n', 3, 8, 8]);
    const [p] = b2.node('Relu', [b2.conv(x2, 3, 8, 1)]);
    const [q] = b2.node('Relu', [b2.conv(x2, 3, 8, 1)]);
    const [cat2] = b2.node('Concat', [p, q, p], { axis: 1 });
    b2.markOutput(b2.node('Flatten', [b2.node('GlobalAveragePool', [b2.conv(cat2, 24, 4, 1)])[0]], { axis: 1 })[0], 'y');
    const m2 = b2.build();
    m2.path = 'fire.onnx';
    await assert.rejects(
      runtimeWidths(m2, { widths: [0.5], train: ds, eval: ds, training: { epochs: 0 }, latencySamples: 0 }),
      (e: Error) =>
        e instanceof UsageError &&
        /^fire\.onnx: runtime widths slice a leading block of each layer's channels, and here every channel group either feeds a Concat together with other layers' channels \(as in SqueezeNet's fire modules, Inception or DenseNet blocks\).*; for a smaller model use prune --structured, or early exits \(early-exit without --widths\)/.test(e.message) &&
        !e.message.includes('\n'),
    );
  });

  it('depthwise convs in an inverted residual block: the group count follows the channel slice', async () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 3, 8, 8]);
    const [s0] = b.node('Relu', [b.conv(x, 3, 8, 1)]);
    const [e] = b.node('Relu', [b.conv(s0, 8, 16, 1)]);
    const [dw] = b.node('Relu', [b.conv(e, 16, 16, 3, { group: 16 })]);
    const [a] = b.node('Add', [b.conv(dw, 16, 8, 1), s0]);
    const [f] = b.node('Flatten', [b.node('GlobalAveragePool', [a])[0]], { axis: 1 });
    b.markOutput(b.gemm(f, 8, 4), 'y');
    const model = b.build();
    const ds = randomData('x', [3, 8, 8]);
    const r = await runtimeWidths(model, { widths: [0.5, 0.75], train: ds, eval: ds, training: { epochs: 0 }, latencySamples: 0 });
    const weighted = (c8: number, c16: number) => convMacs(c8, 3, 1, 64) + convMacs(c16, c8, 1, 64) + convMacs(c16, 1, 3, 64) + convMacs(c8, c16, 1, 64) + c8 * 4;
    const at = (c8: number, c16: number) => r.original.macs - weighted(8, 16) + weighted(c8, c16);
    assert.deepEqual(r.widths.map((w) => w.macs), [at(4, 8), at(6, 12), r.original.macs]);
    // The depthwise Conv of each narrower width has one group per kept channel.
    const convs = (g: Graph): Node[] => g.nodes.flatMap((n) => [...(n.opType === 'Conv' ? [n] : []), ...n.subgraphs().flatMap(convs)]);
    const groups = convs(r.model.graph).map((n) => n.int('group', 1)).filter((v) => v > 1).sort((p, q) => p - q);
    assert.deepEqual(groups, [8, 12, 16]);
    const run = await outputsAt(r.model, model, ds, WIDTH_INPUT, [0.5, 0.75, 1]);
    for (let i = 0; i < run.want.length; i++) {
      assert.ok(close(run.at[2][i], run.want[i]), `full width, sample ${i}`);
      assert.ok(!close(run.at[0][i], run.want[i], 1e-3), 'half width computes another function');
    }
  });

  it('fine-tunes a Conv→BatchNormalization→Relu model: the running statistics are not trained (they stay as they were), the weights are', async () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 3, 8, 8]);
    const mean = Float32Array.from({ length: 8 }, (_, i) => 0.1 * i - 0.3);
    const variance = Float32Array.from({ length: 8 }, (_, i) => 0.5 + 0.25 * i);
    const [bn] = b.node('BatchNormalization', [b.conv(x, 3, 8, 3), b.init('gamma', [8]), b.init('beta', [8]), b.init('bn_mean', [8], mean), b.init('bn_var', [8], variance)]);
    const [f] = b.node('Flatten', [b.node('GlobalAveragePool', [b.node('Relu', [bn])[0]])[0]], { axis: 1 });
    b.markOutput(b.gemm(f, 8, 4), 'y');
    const model = b.build();
    const ds = randomData('x', [3, 8, 8], 8);
    const r = await runtimeWidths(model, { widths: [0.5, 1], train: ds, eval: ds, training: { epochs: 1, batchSize: 4, lr: 1e-2 }, latencySamples: 0 });
    assert.equal(r.training.epochs, 1);
    assert.deepEqual(r.widths.map((w) => w.width), [0.5, 1]);
    const out = r.model.graph.initializers;
    // Reordering permutes channels, so compare the statistics as multisets.
    const sorted = (a: ArrayLike<number>) => Array.from(a).sort((p, q) => p - q);
    assert.deepEqual(sorted(out.get('bn_mean')!.toFloat32()), sorted(mean));
    assert.deepEqual(sorted(out.get('bn_var')!.toFloat32()), sorted(variance));
    assert.notDeepEqual(sorted(out.get('gamma')!.toFloat32()), sorted(model.graph.initializers.get('gamma')!.toFloat32()), 'the BN scale was trained');
  });

  it('a budget input (fraction of MACs) selects the widest width within it, in ORT', async () => {
    const cnn = openModel(fx('digits_cnn.onnx'));
    const opts = { widths: [0.5, 0.75], train: data('digits_calib_x.npy'), eval: data('digits_test_x.npy'), training: { epochs: 0 }, latencySamples: 0 };
    const byWidth = await runtimeWidths(cnn, opts);
    const byBudget = await runtimeWidths(cnn, { ...opts, selector: 'budget' });
    assert.equal(byBudget.selector, 'budget');
    assert.deepEqual(byBudget.model.graph.inputs.map((i) => i.name), ['input', BUDGET_INPUT]);
    const [r50, r75] = byBudget.widths.map((w) => w.budget);
    assert.ok(r50 > 0.2 && r50 < r75 && r75 < 1, `${r50} ${r75}`);
    // Same weights (no fine-tuning, deterministic ordering): a budget must give exactly the chosen width's output.
    const ds = data('digits_test_x.npy');
    const widths = await outputsAt(byWidth.model, cnn, ds, WIDTH_INPUT, [0.5, 0.75, 1]);
    const cases: Array<[number, number]> = [
      [0, 0], // below every width: the narrowest
      [r50 / 2, 0],
      [r50, 0],
      [(r50 + r75) / 2, 0],
      [r75, 1],
      [0.99, 1],
      [1, 2],
      [3, 2],
    ];
    const budgets = await outputsAt(byBudget.model, cnn, ds, BUDGET_INPUT, cases.map((c) => c[0]));
    cases.forEach(([budget, w], j) => {
      for (let i = 0; i < budgets.want.length; i++) assert.deepEqual(Array.from(budgets.at[j][i]), Array.from(widths.at[w][i]), `budget ${budget} runs width ${[0.5, 0.75, 1][w]}`);
    });
    assert.ok(!close(widths.at[0][0], widths.at[1][0], 1e-3), 'the widths differ, so the comparison can fail');
  });

  it('MobileNetV2 runs at 0.5 and 1 in ORT; the full width equals the original', async () => {
    const model = openModel(fx('mobilenet_v2.onnx'));
    const ds = randomData('input', [3, 224, 224], 2);
    const r = await runtimeWidths(model, { widths: [0.5], train: ds, eval: ds, training: { epochs: 0 }, latencySamples: 0 });
    assert.deepEqual(r.widths.map((w) => w.width), [0.5, 1]);
    assert.ok(r.widths[0].macs < 0.5 * r.original.macs, `${r.widths[0].macs} of ${r.original.macs}`);
    const run = await outputsAt(r.model, model, ds, WIDTH_INPUT, [0.5, 1], 1);
    assert.equal(run.at[0][0].length, 1000);
    assert.ok(close(run.at[1][0], run.want[0], 1e-3), 'full width = original');
    assert.ok(run.at[0][0].every(Number.isFinite));
  });

  it('SqueezeNet 1.1 (fire modules) runs at 0.5 and 1: the first expand branch of each Concat stays at full width, the rest narrow', async () => {
    const model = openModel(fx('squeezenet1_1.onnx'));
    const input = model.graph.inputs[0].name;
    const ds = randomData(input, [3, 224, 224], 2);
    const r = await runtimeWidths(model, { widths: [0.5], train: ds, eval: ds, training: { epochs: 0 }, latencySamples: 0 });
    assert.equal(r.groups, 17);
    assert.ok(r.notes.some((n) => /^8 of 25 channel groups stay at full width at every width/.test(n)), r.notes.join('\n'));
    assert.ok(r.widths[0].macs < 0.5 * r.original.macs, `${r.widths[0].macs} of ${r.original.macs}`);
    const run = await outputsAt(r.model, model, ds, WIDTH_INPUT, [0.5, 1], 1);
    assert.equal(run.at[0][0].length, 1000);
    assert.ok(close(run.at[1][0], run.want[0], 1e-3), 'full width = original');
    assert.ok(run.at[0][0].every(Number.isFinite));
  });

  it('CLI: --widths writes the model and reports each width in JSON; wrong combinations exit 2', () => {
    const out = path.join(tmpDir(), 'w.onnx');
    const base = ['early-exit', fx('digits_cnn.onnx'), '--train', fx('digits_calib_x.npy'), '--eval', fx('digits_test_x.npy')];
    const r = cli([...base, '--labels', fx('digits_test_y.npy'), '--widths', '0.5,1', '--selector', 'budget', '--epochs', '1', '--latency-samples', '5', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      output: string;
      selector: string;
      metric: string;
      widths: Array<{ width: number; macs: number; budget: number; before: number; score: number; latencyMs: { p50: number } }>;
      original: { macs: number; score: number };
      training: { epochs: number; rule: string };
    };
    assert.equal(j.output, out);
    assert.equal(j.selector, 'budget');
    assert.deepEqual(openModel(out).graph.inputs.map((i) => i.name), ['input', BUDGET_INPUT]);
    assert.equal(j.widths[0].budget, j.widths[0].macs / j.original.macs);
    assert.match(j.training.rule, /sandwich/);
    // Sliced without training the half width is far off (about 0.44 here); one epoch of the sandwich rule lifts it.
    assert.ok(j.widths[0].score > j.widths[0].before + 0.1, `${j.widths[0].before} → ${j.widths[0].score}`);
    // Before fine-tuning the full width is the original (exact reordering).
    assert.ok(Math.abs(j.widths[1].before - j.original.score) < 1e-9);
    assert.equal(j.metric, 'accuracy');
    assert.deepEqual(j.widths.map((w) => w.width), [0.5, 1]);
    assert.ok(j.widths.every((w) => w.score > 0 && w.latencyMs.p50 > 0));
    assert.equal(j.widths[1].macs, j.original.macs);
    for (const [args, re] of [
      [[...base, '--widths', '0,1'], /--widths must be > 0/],
      [[...base, '--widths', '0.5,x'], /--widths must be a number/],
      [[...base, '--widths', '0.5', '--threshold', '0.9'], /--threshold belongs to early exits/],
      [[...base, '--widths', '0.5', '--selector', 'flops'], /flops/],
    ] as Array<[string[], RegExp]>) {
      const x = cli([...args, '-o', path.join(tmpDir(), 'o.onnx')]);
      assert.equal(x.code, 2, x.stderr);
      assert.match(x.stderr, re);
      assertNoStack(x.stderr);
    }
  });

  it('compare feeds a runtime-widths model its selector: full width by default, --width to choose; --width without such a model is refused', async () => {
    const dir = tmpDir();
    const ref = fx('digits_cnn.onnx');
    const files: Record<string, string> = {};
    for (const selector of ['width', 'budget'] as const) {
      const r = await runtimeWidths(openModel(ref), { widths: [0.5], selector, train: data('digits_calib_x.npy'), eval: data('digits_test_x.npy'), training: { epochs: 0 }, latencySamples: 0 });
      files[selector] = path.join(dir, `${selector}.onnx`);
      await saveVerified(r.model, files[selector]);
    }
    const DATA = ['--data', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy')];
    type Out = { widths: { reference: { input: string; value: number } | null; candidate: { input: string; value: number } | null }; outputs: Array<{ cosine: number; top1Agreement: number }> };
    const run = (args: string[]) => {
      const r = cli(['compare', ...args, ...DATA, '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Out;
    };
    // Not fine-tuned: the full width is the original (exact reordering).
    const full = run([ref, files.width]);
    assert.deepEqual(full.widths, { reference: null, candidate: { input: 'width', value: 1 } });
    assert.ok(full.outputs[0].cosine > 0.99999 && full.outputs[0].top1Agreement === 1, JSON.stringify(full.outputs[0]));
    const half = run([ref, files.width, '--width', '0.5']);
    assert.ok(half.outputs[0].cosine < 0.999, 'half width computes another function');
    // As the reference, and with a budget selector.
    assert.deepEqual(run([files.budget, ref]).widths, { reference: { input: 'budget', value: 1 }, candidate: null });
    assert.ok(run([files.budget, ref]).outputs[0].cosine > 0.99999);
    const text = cli(['compare', ref, files.width, ...DATA]);
    assert.match(text.stdout, /note: candidate runs at width 1 \(a runtime-widths model; --width picks another width\)/);
    for (const [args, re] of [
      [[ref, ref, '--width', '0.5'], /^error: --width runs a runtime-widths model \(written by early-exit --widths\) at a width, and neither model is one$/],
      [[ref, files.width, '--width', '1.5'], /^error: --width is a fraction in \(0, 1\], got 1\.5$/],
    ] as Array<[string[], RegExp]>) {
      const x = cli(['compare', ...args]);
      assert.equal(x.code, 2, x.stderr);
      assert.match(x.stderr.trim(), re);
    }
  });

  it('compress --recipe with an early-exit widths step: the report runs the output at full width (width and budget selectors)', () => {
    for (const selector of ['width', 'budget']) {
      const dir = tmpDir();
      const recipe = path.join(dir, 'r.json');
      fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'early-exit', widths: [0.5, 1], epochs: 1, selector }] }));
      const out = path.join(dir, 'o.onnx');
      const r = cli(['compress', fx('digits_cnn.onnx'), '--recipe', recipe, '--train', fx('digits_calib_x.npy'), '--eval', fx('digits_test_x.npy'), '--labels', fx('digits_test_y.npy'), '--runs', '3', '-o', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`note: measured at full width \\('${selector}' = 1\\)`));
      assert.match(r.stdout, /accuracy\s+0\.\d+\s+0\.\d+/);
      assert.match(r.stdout, /latency p50/);
      // Fine-tuning moves the full width's logits by design: judged by decisions, never a cosine collapse.
      assert.doesNotMatch(r.stdout, /fidelity collapsed: cosine/);
      assert.deepEqual(openModel(out).graph.inputs.map((i) => i.name), ['input', selector]);
      assert.equal(fullWidthSelector(openModel(out), openModel(fx('digits_cnn.onnx')))?.input, selector);
    }
  });

  it('a failure to run the written output while verifying it is an internal error (exit 1), not a bad input file (exit 3)', async () => {
    // A widths model whose selector is not recognised (metadata removed) cannot run without it.
    const r = await runtimeWidths(openModel(fx('digits_cnn.onnx')), { widths: [0.5], train: data('digits_calib_x.npy'), eval: data('digits_test_x.npy'), training: { epochs: 0 }, latencySamples: 0 });
    r.model.metadata = r.model.metadata.filter(([k]) => k !== 'runtime_widths');
    const out = path.join(tmpDir(), 'w.onnx');
    await saveVerified(r.model, out);
    const orig = openModel(fx('digits_cnn.onnx'));
    const err = await evaluateCompression({ model: orig, path: fx('digits_cnn.onnx') }, out, { data: data('digits_test_x.npy'), bench: false }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error && !(err instanceof ModelError) && !(err instanceof UsageError), String(err));
    assert.match(err.message, /verifying the written output .*w\.onnx failed: .*'width'/);
  });
});
