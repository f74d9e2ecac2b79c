import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { DataType } from '../../src/core/ir/dtype';
import { bindDataset, parseDataSpecs, readLabels, type Dataset } from '../../src/core/runtime/data/dataset';
import { ModelSession } from '../../src/core/runtime/session';
import { earlyExit, EXIT_INDEX_OUTPUT, exitCurve, exitStateOf, exitTable, reexport, type EarlyExitOutcome, type ExitState } from '../../src/core/transforms/early-exit';
import { parseRecipe } from '../../src/core/recipe';
import { stepForms } from '../../src/core/transforms/registry';
import { parseFromCompress } from '../../src/host/compress-messages';
import { JobError, WorkerClient } from '../../src/host/worker-client';
import { dropExitRuns, keepExitRun, keptExitRuns, MAX_KEPT, reexportRun } from '../../src/worker/exits';
import { FIXTURES, tmpDir } from './helpers/ort';

const fx = (f: string) => path.join(FIXTURES, f);
const digitsInput = [{ name: 'input', dtype: DataType.FLOAT, shape: ['batch', 1, 8, 8] as Array<string | number> }];
const data = (f: string): Dataset => bindDataset(digitsInput, parseDataSpecs([fx(f)]));

/** Runs a model at batch 1 on the first `n` samples: every output, concatenated. */
async function outputsOf(model: Parameters<typeof ModelSession.create>[0], ds: Dataset, n: number): Promise<{ y: number[]; exit: number[] }> {
  const s = await ModelSession.create(model);
  try {
    const y: number[] = [];
    const exit: number[] = [];
    for (let i = 0; i < n; i++) {
      const out = await s.run(ds.batch(i, 1));
      y.push(...(out.output.data as Float32Array));
      exit.push(Number((out[EXIT_INDEX_OUTPUT].data as BigInt64Array)[0]));
    }
    return { y, exit };
  } finally {
    await s.release();
  }
}

describe('early exits: re-export at other thresholds (no training, no data re-run)', function () {
  this.timeout(600_000);
  let r: EarlyExitOutcome;
  let state: ExitState;

  before(async () => {
    r = await earlyExit(openModel(fx('digits_cnn.onnx')), {
      train: data('digits_train_x.npy'),
      trainLabels: readLabels(fx('digits_train_y.npy')),
      eval: data('digits_test_x.npy'),
      labels: readLabels(fx('digits_test_y.npy')),
      target: { kind: 'max-accuracy-drop', drop: 0.005 },
      training: { epochs: 3, seed: 1 },
      latencySamples: 0,
    });
    state = exitStateOf(r.model)!;
  });

  it('keeps the state beside the written model only, and the table at the calibrated thresholds is the run report', () => {
    assert.ok(state, 'the written model carries its re-export state');
    assert.equal(exitStateOf(openModel(fx('digits_cnn.onnx'))), undefined);
    assert.ok(!JSON.stringify({ ...r, model: undefined }).includes('withHeads'), 'the report does not carry the state');
    const t = exitTable(state, r.exits.map((e) => e.threshold));
    assert.equal(t.expectedMacs, r.expectedMacs);
    assert.equal(t.score, r.earlyExit.score);
    assert.deepEqual(t.exits.map((e) => [e.samples, e.score, e.macs]), r.exits.map((e) => [e.samples, e.score, e.macs]));
    assert.deepEqual(exitCurve(state), r.curve);
  });

  it('re-exporting at the calibrated thresholds reproduces the run’s model in ORT', async () => {
    const again = await reexport(state, r.exits.map((e) => e.threshold), { checkSamples: 64 });
    const ds = data('digits_test_x.npy');
    const [a, b] = [await outputsOf(r.model, ds, 64), await outputsOf(again.model, ds, 64)];
    assert.deepEqual(b.exit, a.exit);
    assert.deepEqual(b.y, a.y, 'the same graph and weights give the same outputs');
    assert.equal(again.measured.samples, 64);
    assert.ok(Math.abs(again.measured.fractions.reduce((x, y) => x + y, 0) - 1) < 1e-9);
  });

  it('a higher shared threshold never lowers expected MACs; above every confidence the model is the original', async () => {
    let prev = -Infinity;
    for (let t = 0; t <= 1; t += 0.05) {
      const m = exitTable(state, t).expectedMacs;
      assert.ok(m >= prev - 1e-9, `threshold ${t.toFixed(2)}: ${m} < ${prev}`);
      prev = m;
    }
    // Max-prob confidences never exceed 1: at threshold 1 nobody leaves early, in the table and in ORT.
    const top = await reexport(state, 1, { checkSamples: 32 });
    assert.equal(top.table.final.samples, 1);
    assert.equal(top.measured.fractions[top.measured.fractions.length - 1], 1);
    const ds = data('digits_test_x.npy');
    const orig = await ModelSession.create(fx('digits_cnn.onnx'));
    try {
      const y = (await outputsOf(top.model, ds, 8)).y;
      const ref: number[] = [];
      for (let i = 0; i < 8; i++) ref.push(...((await orig.run(ds.batch(i, 1))).output.data as Float32Array));
      ref.forEach((v, i) => assert.ok(Math.abs(v - y[i]) <= 1e-5 * (1 + Math.abs(v))));
    } finally {
      await orig.release();
    }
  });

  it('at threshold 0 every sample leaves at the first exit, in ORT as in the table', async () => {
    const low = await reexport(state, 0, { checkSamples: 32 });
    assert.equal(low.table.exits[0].samples, 1);
    assert.equal(low.measured.fractions[0], 1);
    assert.ok(low.table.expectedMacs < r.originalMacs);
  });

  it('refuses thresholds outside [0, 1] and the wrong count', async () => {
    for (const bad of [1.5, -0.1, NaN, -Infinity]) await assert.rejects(reexport(state, bad), (e: Error) => e instanceof UsageError && /\[0, 1\]/.test(e.message), String(bad));
    await assert.rejects(reexport(state, [0.5]), (e: Error) => e instanceof UsageError && new RegExp(`${state.heads.length} exits; got 1`).test(e.message));
  });

  it('worker: keeps the last runs under ids, writes a verified re-export over the run’s output, refuses bad ids and thresholds', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'ee.onnx');
    const dto = keepExitRun(r.model, out)!;
    assert.ok(dto && /^[0-9a-f-]{36}$/.test(dto.id));
    assert.equal(dto.metric, 'accuracy');
    assert.equal(dto.calibrated.expectedMacs, r.expectedMacs);
    assert.equal(dto.curve.length, r.curve.length);
    assert.equal(keepExitRun(openModel(fx('digits_cnn.onnx')), out), undefined, 'not an early-exit model');
    const res = await reexportRun({ id: dto.id, threshold: 0.9 });
    assert.equal(res.output, out);
    assert.deepEqual(fs.readdirSync(dir), ['ee.onnx'], 'no staging folder left behind');
    const s = await ModelSession.create(out);
    try {
      assert.deepEqual(s.outputs.map((o) => o.name).sort(), ['exit_index', 'output']);
    } finally {
      await s.release();
    }
    const meta = JSON.parse(openModel(out).metadata.find(([k]) => k === 'early_exit')![1]);
    assert.ok(meta.exits.every((e: { threshold: number }) => Math.abs(e.threshold - 0.9) < 1e-9));
    assert.deepEqual(res.table.thresholds, state.heads.map(() => 0.9));

    for (const threshold of [1.01, -1, Number.NaN, '0.5', null]) {
      await assert.rejects(reexportRun({ id: dto.id, threshold }), (e: Error) => e instanceof UsageError && /threshold must be a number in \[0, 1\]/.test(e.message), String(threshold));
    }
    for (const id of ['../../etc/passwd', 42, '00000000-0000-0000-0000-000000000000']) {
      await assert.rejects(reexportRun({ id, threshold: 0.5 }), (e: Error) => e instanceof UsageError && /re-export: /.test(e.message), String(id));
    }
    // Bounded: a third run pushes the first out.
    const second = keepExitRun(r.model, out)!;
    const third = keepExitRun(r.model, out)!;
    assert.equal(MAX_KEPT, 2);
    assert.deepEqual(keptExitRuns(), [second.id, third.id]);
    await assert.rejects(reexportRun({ id: dto.id, threshold: 0.5 }), /no longer kept/);
    assert.equal(dropExitRuns([second.id, third.id, 'x', 7]), 2);
    assert.deepEqual(keptExitRuns(), []);
  });
});

describe('early exits: the Compress panel', () => {
  it('offers an early-exit form whose initial values make a recipe the engine accepts (one target, the epochs)', () => {
    const form = stepForms('onnx').find((f) => f.step === 'early-exit')!;
    assert.deepEqual(form.fields.map((f) => f.key), ['minAgreement', 'epochs']);
    const step = Object.fromEntries([['step', 'early-exit'], ...form.fields.map((f) => [f.key, f.initial])]);
    const r = parseRecipe({ steps: [step] }, 'panel');
    assert.equal(r.steps[0].step, 'early-exit');
    assert.equal(r.steps[0].options.minAgreement, 0.99);
  });
});

describe('early exits: re-export requests across the process boundaries', function () {
  this.timeout(60_000);
  it('the worker answers an unknown id or a bad threshold with a usage error, and the host drops malformed panel messages', async () => {
    const client = new WorkerClient(path.resolve(__dirname, '../../src/worker/main.js'));
    try {
      await assert.rejects(client.job({ kind: 'exitsReexport', id: '12345678-1234-1234-1234-123456789abc', threshold: 0.5 }), (e: Error) => e instanceof JobError && e.kind === 'usage' && /no longer kept/.test(e.message));
      await assert.rejects(client.job({ kind: 'exitsReexport', id: 'nope', threshold: 2 }), (e: Error) => e instanceof JobError && e.kind === 'usage');
      assert.deepEqual(await client.job({ kind: 'exitsDrop', ids: ['nope'] }), { dropped: 0 });
    } finally {
      client.dispose();
    }
    const id = '12345678-1234-1234-1234-123456789abc';
    assert.deepEqual(parseFromCompress({ type: 'reexport', id, threshold: 0.25 }), { type: 'reexport', id, threshold: 0.25 });
    for (const bad of [
      { type: 'reexport', id, threshold: 1.5 },
      { type: 'reexport', id, threshold: '0.5' },
      { type: 'reexport', id, threshold: NaN },
      { type: 'reexport', id: '../x', threshold: 0.5 },
      { type: 'reexport', threshold: 0.5 },
    ]) assert.equal(parseFromCompress(bad), undefined, JSON.stringify(bad));
  });
});
