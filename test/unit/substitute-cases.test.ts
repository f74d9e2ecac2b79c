import { strict as assert } from 'assert';
import * as path from 'path';
import { openModel } from '../../src/core/formats/registry';
import { bindDataset, parseDataSpecs } from '../../src/core/runtime/data/dataset';
import { ModelSession } from '../../src/core/runtime/session';
import { DEFAULT_DEPTHWISE_MAX_ERROR, substituteDepthwise } from '../../src/core/transforms/substitute';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { cli } from './cli.test';

const fx = (f: string) => path.join(FIXTURES, f);

describe('depthwise substitution: error-aware defaults', () => {
  it('skips a 1-input-channel stem by default and keeps every layer within the error budget', async () => {
    const model = openModel(fx('digits_cnn.onnx'));
    const r = await substituteDepthwise(model);
    const stem = r.skipped.find((s) => /1-input-channel/.test(s.reason));
    assert.ok(stem, JSON.stringify(r.skipped));
    for (const l of r.layers) assert.ok(Number(/weight error ([\d.]+)/.exec(l.detail)![1]) <= DEFAULT_DEPTHWISE_MAX_ERROR, l.detail);
    assert.equal(r.layers.length + r.skipped.length, model.graph.nodes.filter((n) => n.opType === 'Conv').length);
    // An explicit multiplier is obeyed (the stem still needs --layers).
    const forced = await substituteDepthwise(model, { multiplier: 1 });
    assert.ok(forced.layers.length >= 1);
    assert.ok(forced.skipped.some((s) => /1-input-channel/.test(s.reason)));
  });

  it('picks the smallest multiplier whose error fits: a rank-2-per-channel conv gets 2, with ~0 weight error', async () => {
    const o = 32;
    const i = 8;
    const kk = 9;
    const w = new Float32Array(o * i * kk);
    const u = randomFloats(o * i * 2, 3);
    const v = randomFloats(i * 2 * kk, 4);
    for (let oo = 0; oo < o; oo++) for (let c = 0; c < i; c++) for (let k = 0; k < kk; k++) w[(oo * i + c) * kk + k] = u[(oo * i + c) * 2] * v[(c * 2) * kk + k] + u[(oo * i + c) * 2 + 1] * v[(c * 2 + 1) * kk + k];
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', i, 8, 8]);
    const [y] = b.node('Conv', [x, b.init('w', [o, i, 3, 3], w)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 1, 'conv');
    b.markOutput(y, 'y');
    const r = await substituteDepthwise(b.build());
    assert.equal(r.layers.length, 1);
    assert.match(r.layers[0].detail, /^multiplier 2 \(chosen\), weight error 0\.00/);
    const s = await ModelSession.create(r.model, { allowSpinning: false });
    await s.release();
  });

  it('with calibration data the refit output error decides; layers over the budget are skipped and named', async () => {
    const model = openModel(fx('digits_cnn.onnx'));
    const s = await ModelSession.create(model, { allowSpinning: false });
    const calib = bindDataset(s.inputs, parseDataSpecs([fx('digits_calib_x.npy')]));
    await s.release();
    const r = await substituteDepthwise(model, { calib, maxError: 0.3 });
    for (const l of r.layers) assert.ok(l.errorRefit !== null && l.errorRefit <= 0.3, `${l.name}: ${l.errorRefit}`);
    for (const k of r.skipped.filter((x) => /exceeds the budget/.test(x.reason))) assert.match(k.reason, /0\.3/);
    assert.equal(r.layers.length + r.skipped.length, 3);
  });

  it('CLI: no layer substituted is a note with exit 0, not a usage error', () => {
    const out = path.join(tmpDir(), 'd.onnx');
    const r = cli(['substitute', fx('digits_cnn.onnx'), '--depthwise', '--max-error', '0.01', '--no-bench', '--samples', '8', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no layer was substituted within the error budget/);
    assert.match(r.stdout, /1-input-channel/);
  });
});
