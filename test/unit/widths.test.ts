import { strict as assert } from 'assert';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { DataType } from '../../src/core/ir/dtype';
import { bindDataset, parseDataSpecs, readLabels, type Dataset } from '../../src/core/runtime/data/dataset';
import { ModelSession } from '../../src/core/runtime/session';
import { runtimeWidths, WIDTH_INPUT } from '../../src/core/transforms/widths';
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
    const x = b.input('x', ['n', 8, 6, 6]);
    const [r1] = b.node('Relu', [b.conv(x, 8, 8, 1)]);
    const [r2] = b.node('Relu', [b.conv(r1, 8, 8, 3, { group: 8 })]);
    const [p] = b.node('GlobalAveragePool', [b.conv(r2, 8, 8, 1)]);
    const [f] = b.node('Flatten', [p], { axis: 1 });
    b.markOutput(b.gemm(f, 8, 4), 'y');
    const ds = bindDataset([{ name: 'x', dtype: DataType.FLOAT, shape: [4, 8, 6, 6] }], [], { randomSamples: 4, seed: 0 });
    await assert.rejects(runtimeWidths(b.build(), { widths: [0.5], train: ds, eval: ds, training: { epochs: 1 }, latencySamples: 0 }), (e: Error) => e instanceof UsageError && /depthwise or grouped/.test(e.message));
    await assert.rejects(runtimeWidths(openModel(fx('digits_cnn.onnx')), { widths: [1.5], train: data('digits_calib_x.npy'), eval: data('digits_test_x.npy'), latencySamples: 0 }), /fractions in \(0, 1\]/);
  });

  it('CLI: --widths writes the model and reports each width in JSON; wrong combinations exit 2', () => {
    const out = path.join(tmpDir(), 'w.onnx');
    const base = ['early-exit', fx('digits_cnn.onnx'), '--train', fx('digits_calib_x.npy'), '--eval', fx('digits_test_x.npy')];
    const r = cli([...base, '--labels', fx('digits_test_y.npy'), '--widths', '0.5,1', '--epochs', '1', '--latency-samples', '5', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { output: string; metric: string; widths: Array<{ width: number; macs: number; score: number; latencyMs: { p50: number } }>; original: { macs: number } };
    assert.equal(j.output, out);
    assert.equal(j.metric, 'accuracy');
    assert.deepEqual(j.widths.map((w) => w.width), [0.5, 1]);
    assert.ok(j.widths.every((w) => w.score > 0 && w.latencyMs.p50 > 0));
    assert.equal(j.widths[1].macs, j.original.macs);
    for (const [args, re] of [
      [[...base, '--widths', '0,1'], /--widths must be > 0/],
      [[...base, '--widths', '0.5,x'], /--widths must be a number/],
      [[...base, '--widths', '0.5', '--threshold', '0.9'], /--threshold belongs to early exits/],
    ] as Array<[string[], RegExp]>) {
      const x = cli([...args, '-o', path.join(tmpDir(), 'o.onnx')]);
      assert.equal(x.code, 2, x.stderr);
      assert.match(x.stderr, re);
      assertNoStack(x.stderr);
    }
  });
});
