import { strict as assert } from 'assert';
import * as path from 'path';
import { UsageError } from '../../src/core/errors';
import { openModel, saveModel } from '../../src/core/formats/registry';
import { evaluateCompression } from '../../src/core/runtime/evaluate';
import { DataType } from '../../src/core/ir/dtype';
import type { Model } from '../../src/core/ir/graph';
import { bindDataset, parseDataSpecs, readLabels, type Dataset } from '../../src/core/runtime/data/dataset';
import { ModelSession } from '../../src/core/runtime/session';
import { analyzeCuts, calibrateThresholds, chooseExits, crossValidate, earlyExit, evaluatePolicy, EXIT_INDEX_OUTPUT, exitStateOf, targetMissed } from '../../src/core/transforms/early-exit';
import { ModelBuilder } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { assertNoStack, cli } from './cli.test';

const fx = (f: string) => path.join(FIXTURES, f);
const digitsInput = [{ name: 'input', dtype: DataType.FLOAT, shape: ['batch', 1, 8, 8] as Array<string | number> }];
const data = (f: string): Dataset => bindDataset(digitsInput, parseDataSpecs([fx(f)]));

/**
 * A small residual CNN:
 *
 *   x → Conv → Relu ─┬→ Conv → Relu → Conv ─(+)→ Relu → Conv s2 → Relu ─┬→ Conv → Relu → Conv ─(+)→ Relu → GAP → Flatten → Gemm → y
 *                    └──────────────────────┘                           └──────────────────────┘
 * Tensors inside a residual block are read again after the block's first conv, so they are not cuts;
 * the stem's Relu and the Relu after each Add (stage boundaries) are.
 */
function residualCnn(): { model: Model; stageEnds: string[]; inside: string[] } {
  const b = new ModelBuilder(13);
  const x = b.input('x', ['n', 3, 16, 16]);
  const [s0] = b.node('Relu', [b.conv(x, 3, 8, 3)]);
  const [r1] = b.node('Relu', [b.conv(s0, 8, 8, 3)]);
  const [a1] = b.node('Add', [b.conv(r1, 8, 8, 3), s0]);
  const [e1] = b.node('Relu', [a1]);
  const [d] = b.node('Relu', [b.conv(e1, 8, 16, 3, { stride: 2 })]);
  const [r2] = b.node('Relu', [b.conv(d, 16, 16, 3)]);
  const [a2] = b.node('Add', [b.conv(r2, 16, 16, 3), d]);
  const [e2] = b.node('Relu', [a2]);
  const [p] = b.node('GlobalAveragePool', [e2]);
  const [f] = b.node('Flatten', [p], { axis: 1 });
  b.markOutput(b.gemm(f, 16, 10), 'y');
  return { model: b.build(), stageEnds: [s0, e1, d, e2], inside: [r1, r2] };
}

describe('early exits: where to cut', () => {
  it('finds stage boundaries of a residual CNN and never a tensor inside a residual block', () => {
    const { model, stageEnds, inside } = residualCnn();
    const cuts = analyzeCuts(model);
    const names = cuts.candidates.map((c) => c.tensor);
    for (const t of stageEnds) assert.ok(names.includes(t), `${t} is a stage boundary`);
    for (const t of inside) assert.ok(!names.includes(t), `${t} is inside a residual block`);
    for (let i = 1; i < cuts.candidates.length; i++) assert.ok(cuts.candidates[i].fraction >= cuts.candidates[i - 1].fraction, 'cumulative MACs grow');
    const auto = chooseExits(cuts, 'auto');
    assert.ok(auto.length >= 2 && auto.length <= 3, `${auto.length} exits`);
    assert.ok(auto.every((e) => e.fraction > 0 && e.fraction <= 0.95));
    assert.throws(() => chooseExits(cuts, [inside[0]]), (e: Error) => e instanceof UsageError && /cannot be an exit/.test(e.message) && e.message.includes(stageEnds[0]));
  });
});

describe('early exits: thresholds', () => {
  // Two exits over 6 samples; reference = labels. Exit 0 is right on confident samples only.
  const obs = {
    conf: [Float64Array.of(0.99, 0.95, 0.9, 0.4, 0.3, 0.2), Float64Array.of(0.99, 0.99, 0.99, 0.9, 0.5, 0.4)],
    pred: [Int32Array.of(0, 1, 2, 9, 9, 9), Int32Array.of(0, 1, 2, 3, 9, 9)],
    finalPred: Int32Array.of(0, 1, 2, 3, 4, 5),
    reference: Int32Array.of(0, 1, 2, 3, 4, 5),
    originalScore: 1,
  };
  const costs = { backbone: [10, 50], head: [1, 1], total: 100 };

  it('meets the target at less expected MACs than any single shared threshold', () => {
    const best = calibrateThresholds(obs, costs, { kind: 'max-accuracy-drop', drop: 0 });
    assert.equal(best.score, 1);
    // Samples 0-2 leave at exit 0, sample 3 at exit 1, samples 4-5 run to the end.
    assert.deepEqual(best.fractions.map((f) => Math.round(f * 6)), [3, 1, 2]);
    for (let t = 0; t <= 1.0001; t += 0.01) {
      const shared = evaluatePolicy(obs, costs, [t, t]);
      if (shared.score >= 1) assert.ok(best.expectedMacs <= shared.expectedMacs + 1e-9, `shared ${t}`);
    }
    const off = evaluatePolicy(obs, costs, [Infinity, Infinity]);
    assert.equal(off.expectedMacs, 100, 'exits off: the original network and no head is paid');
    assert.equal(calibrateThresholds(obs, costs, { kind: 'threshold', threshold: 0.5 }).thresholds.join(), '0.5,0.5');
  });

  // 600 samples, one exit whose confidence says nothing: it is right on a seeded 85% of them, the
  // final output on all. Any threshold that passes in sample does so by luck.
  const n = 600;
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const noisy = {
    conf: [Float64Array.from({ length: n }, () => rnd())],
    pred: [Int32Array.from({ length: n }, (_, i) => (rnd() < 0.85 ? i % 10 : (i + 1) % 10))],
    finalPred: Int32Array.from({ length: n }, (_, i) => i % 10),
    reference: Int32Array.from({ length: n }, (_, i) => i % 10),
    originalScore: 1,
  };
  const cheap = { backbone: [10], head: [1], total: 100 };
  const target = { kind: 'max-accuracy-drop' as const, drop: 0.02 };

  it('with a safety margin z, the bound (lost − gained + z·√(lost + gained))/n meets the target, at more MACs than z = 0', () => {
    const exact = calibrateThresholds(noisy, cheap, target);
    const safe = calibrateThresholds(noisy, cheap, target, undefined, 2);
    assert.ok(1 - exact.score <= 0.02 + 1e-12 && exact.expectedMacs < 100, 'z = 0 finds a threshold that fits these samples');
    assert.ok((safe.lost - safe.gained + 2 * Math.sqrt(safe.lost + safe.gained)) / n <= 0.02 + 1e-12, JSON.stringify(safe));
    assert.ok(safe.expectedMacs > exact.expectedMacs, `${safe.expectedMacs} vs ${exact.expectedMacs}`);
    assert.equal(safe.gained, 0, 'the exit never fixes what the original gets right');
  });

  it('the k-fold cross-fit judges every sample once, by thresholds that never saw it', () => {
    const inSample = calibrateThresholds(noisy, cheap, target);
    const cv = crossValidate(noisy, cheap, target, 5, 0);
    assert.equal(cv.folds, 5);
    assert.ok(Math.abs(cv.fractions.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    const expected = cv.fractions.reduce((a, f, k) => a + f * (cv.exitMacs[k] ?? 0), 0);
    assert.ok(Math.abs(expected - cv.expectedMacs) < 1e-9);
    assert.ok(Math.abs(cv.score - (1 - (cv.lost - cv.gained) / n)) < 1e-12, 'score and lost/gained count the same samples');
    // Fitting 480 samples by luck does not carry to the 120 held out: the pooled drop exceeds the in-sample one.
    assert.ok(1 - cv.score > 1 - inSample.score, `${cv.score} vs ${inSample.score}`);
    // A fold of size 1 (leave-one-out) and a fold count above n are handled.
    assert.equal(crossValidate(obs, costs, { kind: 'max-accuracy-drop', drop: 0 }, 100, 0).folds, 6);
  });
});

describe('early exits: digits CNN end to end', function () {
  this.timeout(600_000);
  let r: Awaited<ReturnType<typeof earlyExit>>;
  const test = () => data('digits_test_x.npy');
  const labels = readLabels(fx('digits_test_y.npy'));

  before(async () => {
    r = await earlyExit(openModel(fx('digits_cnn.onnx')), {
      train: data('digits_train_x.npy'),
      trainLabels: readLabels(fx('digits_train_y.npy')),
      eval: test(),
      labels,
      target: { kind: 'max-accuracy-drop', drop: 0.005 },
      training: { epochs: 6, seed: 1 },
      latencySamples: 0,
    });
  });

  it('the compression report judges an early-exit model per sample by its decisions, not by cosine', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'exits.onnx');
    saveModel(r.model, out);
    const rep = await evaluateCompression({ model: openModel(fx('digits_cnn.onnx')), path: fx('digits_cnn.onnx') }, out, { data: test(), labels, step: 'compress' });
    // Exit heads answer with their own logits, so the values differ (cosine well below 0.98) …
    assert.ok(rep.fidelity!.outputs[0].cosine < 0.98, `cosine ${rep.fidelity!.outputs[0].cosine}`);
    // … while per sample (batch 1) the accuracy is the early-exit run's, and no collapse is flagged.
    assert.ok(Math.abs(rep.fidelity!.accuracy!.candidate - r.earlyExit.score) < 1e-9, `${rep.fidelity!.accuracy!.candidate} vs ${r.earlyExit.score}`);
    assert.deepEqual(rep.warnings, []);
  });

  it('warns when the out-of-sample accuracy misses the target, and only then', () => {
    const missed = r.original.score - r.outOfSample.score > 0.005 + 1e-12;
    assert.equal(r.warnings.some((w) => /out-of-sample accuracy misses the target .*larger --margin.*more evaluation data/.test(w)), missed, r.warnings.join('\n'));
    assert.equal(targetMissed({ kind: 'max-accuracy-drop', drop: 0.005 }, 0.99, 0.9833), '0.67 pp below the original, target 0.50 pp');
    assert.equal(targetMissed({ kind: 'max-accuracy-drop', drop: 0.005 }, 0.99, 0.986), undefined);
    assert.equal(targetMissed({ kind: 'min-agreement', agreement: 0.98 }, 1, 0.97), 'agreement 0.9700, target 0.98');
    assert.equal(targetMissed({ kind: 'min-agreement', agreement: 0.98 }, 1, 0.98), undefined);
    assert.equal(targetMissed({ kind: 'threshold', threshold: 0.9 }, 1, 0), undefined);
  });

  it('meets the accuracy target at well under half the MACs, and the report adds up', () => {
    assert.equal(r.metric, 'accuracy');
    assert.ok(r.original.score - r.earlyExit.score <= 0.005 + 1e-12, `drop ${r.original.score - r.earlyExit.score}`);
    assert.ok(r.expectedMacs <= 0.5 * r.originalMacs, `expected MACs ${r.expectedMacs} of ${r.originalMacs}`);
    const total = r.exits.reduce((a, e) => a + e.samples, r.final.samples);
    assert.ok(Math.abs(total - 1) < 1e-9, 'every sample leaves somewhere');
    const expected = r.exits.reduce((a, e) => a + e.samples * e.macs, r.final.samples * r.final.macs);
    assert.ok(Math.abs(expected - r.expectedMacs) < 1e-6 * r.originalMacs);
    assert.ok(r.exits.every((e, i) => i === 0 || e.position >= r.exits[i - 1].position));
    assert.ok(r.curve.length > 10 && r.curve.every((p) => p.expectedMacs > 0));
  });

  it('writes one ONNX model that ORT runs: exit_index and outputs follow the policy, the original when it runs to the end', async () => {
    const written = await ModelSession.create(r.model);
    const original = await ModelSession.create(fx('digits_cnn.onnx'));
    try {
      assert.deepEqual(written.outputs.map((o) => o.name).sort(), ['exit_index', 'output']);
      const ds = test();
      const enabled = r.exits.filter((e) => e.threshold !== null).length;
      const leave = new Array<number>(enabled + 1).fill(0);
      let right = 0;
      for (let i = 0; i < ds.count; i++) {
        const feeds = ds.batch(i, 1);
        const out = await written.run(feeds);
        const k = Number((out[EXIT_INDEX_OUTPUT].data as BigInt64Array)[0]);
        leave[k]++;
        const y = out.output.data as Float32Array;
        let arg = 0;
        for (let c = 1; c < 10; c++) if (y[c] > y[arg]) arg = c;
        if (arg === labels[i]) right++;
        if (k === enabled) {
          const ref = (await original.run(feeds)).output.data as Float32Array;
          for (let c = 0; c < 10; c++) assert.ok(Math.abs(ref[c] - y[c]) <= 1e-5 * (1 + Math.abs(ref[c])), 'the final exit is the original network');
        }
      }
      // Re-measured by ORT at batch 1: the reported accuracy and exit fractions (a confidence within
      // float32 rounding of a threshold may fall the other way: allow 2 samples).
      assert.ok(Math.abs(right - r.earlyExit.score * ds.count) <= 2, `${right} right vs ${r.earlyExit.score * ds.count}`);
      const reported = [...r.exits.filter((e) => e.threshold !== null).map((e) => e.samples), r.final.samples];
      leave.forEach((c, k) => assert.ok(Math.abs(c - reported[k] * ds.count) <= 2, `exit ${k}: ${c} vs ${reported[k] * ds.count}`));
    } finally {
      await written.release();
      await original.release();
    }
  });

  it('training settings left undefined take the documented defaults (as the CLI passes them)', async () => {
    const run = (training: Record<string, number | undefined>) =>
      earlyExit(openModel(fx('digits_cnn.onnx')), { train: data('digits_calib_x.npy'), eval: test(), target: { kind: 'threshold', threshold: 0.9 }, form: 'multi-output', training: training as { epochs: number }, latencySamples: 0 });
    const given = await run({ epochs: 1, seed: 1 });
    const undef = await run({ epochs: 1, seed: 1, lr: undefined, batchSize: undefined });
    const other = await run({ epochs: 1, seed: 1, lr: 1e-3 });
    const w = (m: Model) => Array.from(m.graph.initializers.get('early_exit_1.weight')!.toFloat32());
    assert.deepEqual(w(undef.model), w(given.model));
    assert.notDeepEqual(w(other.model), w(given.model), 'the learning rate matters, so the comparison can fail');
  });

  it('works without labels against a minimum agreement, and as a multi-output model', async () => {
    const m = await earlyExit(openModel(fx('digits_cnn.onnx')), {
      train: data('digits_calib_x.npy'),
      eval: test(),
      target: { kind: 'min-agreement', agreement: 0.99 },
      form: 'multi-output',
      training: { epochs: 3, seed: 2 },
      latencySamples: 0,
    });
    assert.equal(m.metric, 'agreement');
    assert.ok(m.earlyExit.score >= 0.99 - 1e-12);
    assert.equal(m.original.score, 1);
    const s = await ModelSession.create(m.model);
    try {
      assert.equal(s.outputs.length, 1 + m.exits.length, 'every head is an output');
    } finally {
      await s.release();
    }
    const meta = JSON.parse(m.model.metadata.find(([k]) => k === 'early_exit')![1]);
    assert.equal(meta.exits.length, m.exits.length);
  });

  it('refuses what it cannot do, clearly', async () => {
    const common = { train: data('digits_calib_x.npy'), eval: test(), latencySamples: 0 };
    await assert.rejects(earlyExit(openModel(fx('digits_cnn.onnx')), { ...common, target: { kind: 'max-accuracy-drop', drop: 0.01 } }), (e: Error) => e instanceof UsageError && /needs evaluation labels/.test(e.message));
    await assert.rejects(earlyExit(openModel(fx('digits_cnn.onnx')), { ...common, labels: new Int32Array(3), target: { kind: 'max-accuracy-drop', drop: 0.01 } }), /3 entries but the evaluation data holds 597/);
  });
});

describe('early exits: a residual CNN and MobileNetV2 export', function () {
  this.timeout(600_000);
  it('joint training: the If export carries the fine-tuned backbone its thresholds were calibrated on', async () => {
    const { model } = residualCnn();
    const inputs = [{ name: 'x', dtype: DataType.FLOAT, shape: ['n', 3, 16, 16] as Array<string | number> }];
    const ds = (seed: number) => bindDataset(inputs, [], { randomSamples: 16, seed });
    const r = await earlyExit(model, { train: ds(1), eval: ds(2), target: { kind: 'threshold', threshold: 1.5 }, joint: true, training: { epochs: 2, lr: 0.01 }, latencySamples: 0 });
    const trained = exitStateOf(r.model)!.withHeads;
    const feeds = ds(3).batch(0, 4);
    const run = async (m: Model, name: string) => {
      const s = await ModelSession.create(m);
      try {
        return (await s.run(feeds))[name].data as Float32Array;
      } finally {
        await s.release();
      }
    };
    const [orig, fineTuned, exported] = [await run(model, 'y'), await run(trained, 'y'), await run(r.model, 'y')];
    assert.ok(orig.some((v, i) => Math.abs(v - fineTuned[i]) > 1e-4), 'joint training changed the backbone');
    exported.forEach((v, i) => assert.ok(Math.abs(v - fineTuned[i]) < 1e-5, `output ${i}: ${v} vs the fine-tuned ${fineTuned[i]}`));
  });
  it('residual CNN: exits at its stage boundaries; the exported If model equals the original when no exit is taken', async () => {
    const { model, stageEnds } = residualCnn();
    const inputs = [{ name: 'x', dtype: DataType.FLOAT, shape: ['n', 3, 16, 16] as Array<string | number> }];
    const ds = (seed: number) => bindDataset(inputs, [], { randomSamples: 16, seed });
    const r = await earlyExit(model, { train: ds(1), eval: ds(2), target: { kind: 'threshold', threshold: 1.5 }, training: { epochs: 1 }, latencySamples: 0 });
    assert.ok(r.exits.every((e) => stageEnds.includes(e.tensor)), r.exits.map((e) => e.tensor).join());
    assert.equal(r.final.samples, 1, 'a threshold above 1 never exits');
    // A threshold no confidence can pass is warned about, and never described as calibrated.
    assert.ok(r.warnings.some((w) => /^no exit can fire: .*--threshold is 1\.5; the written model always runs the whole network and every exit head \(1\.\d{3}x the original's MACs\)/.test(w)), r.warnings.join('\n'));
    assert.ok(r.notes.some((n) => /threshold 1\.5 given for every exit \(not calibrated\)/.test(n)), r.notes.join('\n'));
    assert.ok(!r.notes.some((n) => /thresholds calibrated/.test(n)), r.notes.join('\n'));
    const a = await ModelSession.create(model);
    const b = await ModelSession.create(r.model);
    try {
      const feeds = ds(3).batch(0, 4);
      const [x, y] = [await a.run(feeds), await b.run(feeds)];
      assert.equal(Number((y.exit_index.data as BigInt64Array)[0]), r.exits.length);
      (x.y.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (y.y.data as Float32Array)[i]) < 1e-5));
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('MobileNetV2: an early-exit export that ORT runs, equal to the original whenever exit_index is the last exit', async () => {
    const model = openModel(fx('mobilenet_v2.onnx'));
    const inputs = [{ name: 'input', dtype: DataType.FLOAT, shape: ['batch', 3, 224, 224] as Array<string | number> }];
    const ds = (seed: number) => bindDataset(inputs, [], { randomSamples: 4, seed });
    const r = await earlyExit(model, { train: ds(1), eval: ds(2), target: { kind: 'threshold', threshold: 1.5 }, training: { epochs: 1, batchSize: 4 }, latencySamples: 0 });
    assert.ok(r.exits.length >= 2, `${r.exits.length} exits`);
    assert.ok(r.exits.every((e) => e.threshold !== null));
    const a = await ModelSession.create(model);
    const b = await ModelSession.create(r.model);
    try {
      const feeds = ds(3).batch(0, 1);
      const [x, y] = [await a.run(feeds), await b.run(feeds)];
      assert.equal(Number((y.exit_index.data as BigInt64Array)[0]), r.exits.length);
      (x.output.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (y.output.data as Float32Array)[i]) <= 1e-4 * (1 + Math.abs(v))));
    } finally {
      await a.release();
      await b.release();
    }
  });
});

describe('CLI: early-exit', function () {
  this.timeout(300000);
  const base = () => ['early-exit', fx('digits_cnn.onnx'), '--train', fx('digits_train_x.npy'), '--eval', fx('digits_test_x.npy')];

  it('writes a verified If model and reports the per-exit table, expected MACs, cross-check and curve (--json)', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'cnn.exits.onnx');
    const r = cli([...base(), '--train-labels', fx('digits_train_y.npy'), '--labels', fx('digits_test_y.npy'), '--max-accuracy-drop', '0.01', '--epochs', '3', '--seed', '1', '--latency-samples', '20', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      output: string;
      form: string;
      metric: string;
      exits: Array<{ tensor: string; samples: number; macs: number; threshold: number | null }>;
      final: { samples: number; macs: number };
      originalMacs: number;
      expectedMacs: number;
      expectedMacsRatio: number;
      original: { score: number };
      earlyExit: { score: number };
      outOfSample: { folds: number; margin: number; score: number; expectedMacsRatio: number; exits: Array<{ samples: number }>; final: { samples: number } };
      curve: Array<{ threshold: number; expectedMacs: number; score: number }>;
      latency: { samples: number; originalMs: { p50: number }; earlyExitMs: { p50: number } };
      model?: unknown;
    };
    assert.equal(j.output, out);
    assert.equal(j.form, 'if');
    assert.equal(j.metric, 'accuracy');
    assert.equal(j.model, undefined);
    assert.equal(j.originalMacs, 2641152);
    assert.ok(j.exits.length >= 1);
    // The fractions leaving at each exit and at the end add up to 1; the expected MACs are their weighted cost.
    const fractions = [...j.exits.map((e) => e.samples), j.final.samples];
    assert.ok(Math.abs(fractions.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    const expected = j.exits.reduce((a, e) => a + e.samples * e.macs, j.final.samples * j.final.macs);
    assert.ok(Math.abs(expected - j.expectedMacs) <= 1e-6 * j.originalMacs, `${expected} vs ${j.expectedMacs}`);
    assert.ok(Math.abs(j.expectedMacsRatio - j.expectedMacs / j.originalMacs) < 1e-12);
    assert.ok(j.earlyExit.score >= j.original.score - 0.01 - 1e-9, JSON.stringify({ e: j.earlyExit, o: j.original }));
    assert.ok(j.outOfSample.score > 0 && j.outOfSample.expectedMacsRatio > 0);
    assert.deepEqual([j.outOfSample.folds, j.outOfSample.margin], [5, 2]);
    assert.ok(Math.abs([...j.outOfSample.exits, j.outOfSample.final].reduce((a, e) => a + e.samples, 0) - 1) < 1e-9);
    assert.ok(j.curve.length > 1 && j.curve.every((c) => c.score >= 0 && c.score <= 1 && c.expectedMacs > 0));
    assert.equal(j.latency.samples, 20);
    // The written file runs in ORT with the original's output plus exit_index.
    const s = await ModelSession.create(out);
    try {
      const o = await s.run(data('digits_test_x.npy').batch(0, 1));
      assert.deepEqual(o.output.dims, [1, 10]);
      assert.ok(Number((o[EXIT_INDEX_OUTPUT].data as BigInt64Array)[0]) <= j.exits.length);
    } finally {
      await s.release();
    }
  });

  it('prints the text report; without labels it calibrates agreement and can write every head as an output', async () => {
    const out = path.join(tmpDir(), 'multi.onnx');
    const r = cli([...base(), '--min-agreement', '0.98', '--form', 'multi-output', '--exits', '/MaxPool_output_0', '--epochs', '1', '--no-bench', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /exit\s+tensor\s+at MACs\s+threshold\s+leaving\s+agreement\s+MACs paid/);
    assert.match(r.stdout, /\/MaxPool_output_0/);
    assert.match(r.stdout, /in sample .*: expected MACs .* vs 2\.64M original/);
    assert.match(r.stdout, /out of sample \(5-fold cross-fit, margin z = 2\): expected MACs [\d.]+x, agreement/);
    assert.match(r.stdout, /leaving \(oos\)\s+agreement \(oos\)/);
    assert.match(r.stdout, /latency: not measured/);
    assert.match(r.stdout, /at batch > 1 a batch leaves an exit only when every sample in it is confident/);
    const m = openModel(out);
    assert.equal(m.graph.outputs.length, 2);
    assert.ok(m.metadata.some(([k]) => k === 'early_exit'));
    const t = cli([...base(), '--threshold', '1.5', '--form', 'multi-output', '--epochs', '1', '--no-bench', '-o', path.join(tmpDir(), 't.onnx')]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^warning: no exit can fire: .*--threshold is 1\.5/m);
    assert.doesNotMatch(t.stdout, /thresholds calibrated/);
  });

  it('refuses bad requests with one error line and exit 2', () => {
    const out = ['-o', path.join(tmpDir(), 'o.onnx')];
    const cases: Array<[string[], RegExp]> = [
      [['early-exit', fx('digits_cnn.onnx'), '--eval', fx('digits_test_x.npy'), '--threshold', '0.9', ...out], /--train/],
      [['early-exit', fx('digits_cnn.onnx'), '--train', fx('digits_train_x.npy'), '--threshold', '0.9', ...out], /--eval/],
      [[...base(), ...out], /exactly one of --max-accuracy-drop/],
      [[...base(), '--threshold', '0.9', '--min-agreement', '0.9', ...out], /exactly one of/],
      [[...base(), '--max-accuracy-drop', '0.01', ...out], /needs evaluation labels/],
      [[...base(), '--min-agreement', '1.5', ...out], /--min-agreement must be ≤ 1/],
      [[...base(), '--threshold', '0.9', '--form', 'nested', ...out], /nested/],
      [[...base(), '--threshold', '0.9', '--head-width', '0', ...out], /--head-width/],
      [[...base(), '--min-agreement', '0.9', '--margin', '-1', ...out], /--margin must be ≥ 0/],
      [[...base(), '--min-agreement', '0.9', '--folds', '1', ...out], /--folds must be ≥ 2/],
      [[...base(), '--threshold', '0.9', '--train', 'random:8', ...out], /--train cannot be random/],
      [[...base(), '--threshold', '0.9', '--train-labels', fx('digits_test_y.npy'), '--epochs', '1', ...out], /597/],
      [[...base(), '--threshold', '0.9', '--exits', 'nope', '--epochs', '1', ...out], /nope/],
    ];
    for (const [args, re] of cases) {
      const r = cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}\n${r.stderr}`);
      // One error line (after any progress lines, before the usage line).
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
      assert.equal(errors.length, 1, r.stderr);
      assert.match(errors[0], re);
      assertNoStack(r.stderr);
    }
  });
});
