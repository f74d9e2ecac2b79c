import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { OutputError, UsageError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { tfjsDocument } from '../../src/core/formats/tfjs/document';
import { DataType } from '../../src/core/ir/dtype';
import type { Model } from '../../src/core/ir/graph';
import { compareModels } from '../../src/core/runtime/compare';
import { int8Policy, type CpuFeatures } from '../../src/core/runtime/cpu';
import { bindDataset, type Dataset } from '../../src/core/runtime/data/dataset';
import type { EvaluationReport } from '../../src/core/runtime/evaluate';
import { COLLAPSE, fidelityWarnings } from '../../src/core/runtime/fidelity-warnings';
import { ModelSession } from '../../src/core/runtime/session';
import { saveVerified } from '../../src/core/runtime/verified-save';
import { pruneModel } from '../../src/core/transforms/prune';
import { quantizeModel } from '../../src/core/transforms/quantize';
import { foldWeightCasts } from '../../src/core/transforms/quantize/fold';
import { kernelFidelity, kernelGapWarning } from '../../src/core/transforms/quantize/qdq-check';
import { bulkSqnrDb } from '../../src/core/transforms/quantize/tfjs';
import { substituteLowRank } from '../../src/core/transforms/substitute';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { cli } from './cli.test';

/** Field cases (test/fixtures/cases, copied from the failing-cases collection): each right value. */
const cases = (f: string) => path.join(FIXTURES, 'cases', f);

async function randomData(model: Model | string, n = 8, seed = 1): Promise<Dataset> {
  const s = await ModelSession.create(model, { allowSpinning: false });
  const inputs = s.inputs;
  await s.release();
  const shapes = Object.fromEntries(inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' ? d : 2))]));
  return bindDataset(inputs, [], { randomSamples: n, seed, shapes });
}

async function loads(m: Model): Promise<void> {
  const s = await ModelSession.create(m, { allowSpinning: false });
  await s.release();
}

const X86_NO_VNNI: CpuFeatures = { arch: 'x64', flags: new Set(['sse4_2', 'avx', 'avx2', 'fma']), source: 'test' };
const X86_VNNI: CpuFeatures = { arch: 'x64', flags: new Set(['avx2', 'avx512bw', 'avx512_vnni']), source: 'test' };

function int8WeightAbsMax(m: Model): number {
  let max = 0;
  for (const t of m.graph.initializers.values()) if (t.dtype === DataType.INT8 && t.numel > 1) for (const v of t.toNumbers()) max = Math.max(max, Math.abs(v));
  return max;
}

describe('field cases: quantization correctness', () => {
  it('static int8 puts Q/DQ on float tensors only (shape-path-int64), and the output loads in ORT', async () => {
    const model = openModel(cases('shape-path-int64.onnx'));
    const r = await quantizeModel(model, { mode: 'static', calib: await randomData(model), cpu: X86_VNNI });
    const int64 = new Set(['/Gather_output_0', '/Unsqueeze_output_0']);
    for (const n of r.model.graph.nodes) if (n.opType === 'QuantizeLinear') assert.ok(!int64.has(n.inputs[0]), `QuantizeLinear on ${n.inputs[0]}`);
    assert.ok(r.skippedNodes.some((s) => /int64, not float32/.test(s.reason)), JSON.stringify(r.skippedNodes));
    assert.ok(r.quantizedNodes.includes('/c/Conv'));
    await loads(r.model);
  });

  it('a written model ORT rejects is the tool’s bug: OutputError, and nothing is left behind', async () => {
    const b = new ModelBuilder(13);
    const x = b.input('x', ['n', 4]);
    const [shape] = b.node('Shape', [x]);
    const [q] = b.node('QuantizeLinear', [shape, b.init('s', [], Float32Array.of(1)), b.init('z', [], Uint8Array.of(0), DataType.UINT8)]);
    b.markOutput(q, 'y', DataType.UINT8);
    const dir = tmpDir();
    const out = path.join(dir, 'bad.onnx');
    await assert.rejects(saveVerified(b.build(), out), (e: unknown) => e instanceof OutputError && /does not load in ONNX Runtime/.test(e.message) && /bug in model-compressor/.test(e.message));
    assert.deepEqual(fs.readdirSync(dir), []);
    // A valid model goes through and only its own file appears.
    const ok = new ModelBuilder(13);
    ok.markOutput(ok.node('Relu', [ok.input('x', ['n', 4])])[0], 'y');
    await saveVerified(ok.build(), out);
    assert.deepEqual(fs.readdirSync(dir), ['bad.onnx']);
  });

  it('int8 default follows the CPU: 7-bit weights on x86 without VNNI, full range with VNNI or on ARM; the report says why', async () => {
    assert.equal(int8Policy(X86_NO_VNNI).reduceRange, true);
    assert.match(int8Policy(X86_NO_VNNI).reason, /AVX2|avx2/);
    assert.match(int8Policy(X86_NO_VNNI).reason, /no VNNI/);
    assert.equal(int8Policy(X86_VNNI).reduceRange, false);
    assert.equal(int8Policy({ arch: 'arm64', flags: new Set(['asimd', 'asimddp']), source: 'test' }).reduceRange, false);
    assert.equal(int8Policy({ arch: 'x64', flags: null, source: 'unknown' }).reduceRange, true);
    const model = openModel(cases('u8s8-full-range.onnx'));
    const reduced = await quantizeModel(model, { mode: 'dynamic', cpu: X86_NO_VNNI });
    const full = await quantizeModel(model, { mode: 'dynamic', cpu: X86_VNNI });
    const forced = await quantizeModel(model, { mode: 'dynamic', cpu: X86_NO_VNNI, reduceRange: false });
    assert.equal(int8WeightAbsMax(reduced.model), 63);
    assert.equal(int8WeightAbsMax(full.model), 127);
    assert.equal(int8WeightAbsMax(forced.model), 127);
    assert.ok(reduced.notes.some((n) => /int8 default: 7-bit/.test(n)), reduced.notes.join('\n'));
    assert.ok(full.notes.some((n) => /int8 default: full-range/.test(n)));
    assert.ok(forced.notes.some((n) => /--full-range/.test(n)));
  });

  it('the exact QDQ arithmetic (ORT with fusion off) of u8s8-full-range is far above any threshold; a large gap is a warning', async () => {
    const model = openModel(cases('u8s8-full-range.onnx'));
    const calib = await randomData(model, 16);
    const r = await quantizeModel(model, { mode: 'static', calib, reduceRange: true, cpu: X86_NO_VNNI });
    const k = await kernelFidelity(model, r.model, calib);
    // The README of the case gives ≈ 42 dB (7-bit weights, exact arithmetic); only far-off values may fail.
    assert.ok(k.exactDb > 30, `exact QDQ SQNR ${k.exactDb}`);
    assert.match(kernelGapWarning({ measuredDb: 19, exactDb: 48 }, false) ?? '', /--reduce-range/);
    assert.equal(kernelGapWarning({ measuredDb: 45, exactDb: 48 }, false), undefined);
  });

  it('a shared weight is quantized (dynamic, int4) and factorised (low-rank) once and shared again', async () => {
    const model = openModel(cases('shared-weight-6x.onnx'));
    const big = (m: Model, dtype: DataType) => [...m.graph.initializers.values()].filter((t) => t.dtype === dtype && t.numel >= 256 * 256 / 2);
    const dyn = await quantizeModel(model, { mode: 'dynamic', cpu: X86_VNNI });
    assert.equal(dyn.quantizedNodes.length, 6);
    assert.equal(big(dyn.model, DataType.INT8).length, 1);
    const int4 = await quantizeModel(model, { mode: 'int4' });
    assert.equal(int4.quantizedNodes.length, 6);
    assert.equal(big(int4.model, DataType.UINT8).length, 1);
    const lr = await substituteLowRank(model, { rank: 32 });
    assert.equal(lr.layers.length, 1);
    assert.match(lr.layers[0].name, /shared by 6 layers/);
    const factors = [...lr.model.graph.initializers.keys()].filter((k) => /lowrank_[ab]$/.test(k));
    assert.equal(factors.length, 2);
    assert.equal(lr.model.graph.nodes.filter((n) => n.opType === 'MatMul').length, 12);
    await loads(dyn.model);
    await loads(int4.model);
    await loads(lr.model);
  });

  it('sees through Cast and Identity of constant weights: they are quantized, and float16 storage survives pruning', async () => {
    const cast = openModel(cases('fp16-weights-through-cast.onnx'));
    const fold = foldWeightCasts(cast);
    assert.equal(fold.folded.length, 3);
    assert.ok(!fold.model.graph.nodes.some((n) => n.opType === 'Cast'));
    assert.ok(cast.graph.nodes.some((n) => n.opType === 'Cast'), 'the input model is never modified');
    const st = await quantizeModel(cast, { mode: 'static', calib: await randomData(cast), cpu: X86_VNNI });
    // Both layers' weights are int8 now: no float weight of rank ≥ 2 is left.
    const floatWeights = [...st.model.graph.initializers.values()].filter((t) => (t.dtype === DataType.FLOAT || t.dtype === DataType.FLOAT16) && t.dims.length >= 2);
    assert.deepEqual(floatWeights.map((t) => t.name), []);
    assert.equal(st.quantizedNodes.length + st.skippedNodes.length, fold.model.graph.nodes.length);
    await loads(st.model);
    const pr = await pruneModel(cast, { structured: true, ratio: 0.3 });
    assert.ok(pr.model.graph.initializers.get('W1_fp16')?.dtype === DataType.FLOAT16, 'float16 weights stay float16');
    assert.ok(pr.skipped.every((s) => s.reason.length > 0));
    await loads(pr.model);
    const tied = openModel(cases('tied-weights-through-identity.onnx'));
    const dq = await quantizeModel(tied, { mode: 'dynamic', cpu: X86_VNNI });
    assert.equal(dq.quantizedNodes.length, 2);
    assert.equal([...dq.model.graph.initializers.values()].filter((t) => t.dtype === DataType.INT8 && t.numel === 256).length, 1);
  });

  it('prune --criterion bn on a model without BatchNormalization is refused', async () => {
    const model = openModel(cases('shared-weight-6x.onnx'));
    await assert.rejects(pruneModel(model, { structured: true, ratio: 0.3, criterion: 'bn' }), (e: unknown) => e instanceof UsageError && /no BatchNormalization/.test(e.message));
  });

  it('fp16 keeps nodes whose measured range exceeds float16 in float32 and names them (fp16-overflow)', async () => {
    const model = openModel(cases('fp16-overflow.onnx'));
    const data = await randomData(model, 4);
    const r = await quantizeModel(model, { mode: 'fp16', eval: data });
    const kept = r.skippedNodes.filter((s) => /beyond float16/.test(s.reason)).map((s) => s.name);
    assert.ok(kept.includes('reduce_sum'), JSON.stringify(r.skippedNodes));
    assert.ok(r.notes.some((n) => /reduce_sum/.test(n)));
    const a = await ModelSession.create(model, { allowSpinning: false });
    const b = await ModelSession.create(r.model, { allowSpinning: false });
    const c = await compareModels(a, b, data, { batchSize: 1 });
    await a.release();
    await b.release();
    assert.equal(c.outputs[0].nonFinite, undefined);
    assert.ok(c.outputs[0].cosine > 0.999);
  });

  it('non-finite outputs are a collapse: cosine 0, never 1.0 (compare)', async () => {
    const mk = (div: number) => {
      const b = new ModelBuilder(13);
      const [y] = b.node('Div', [b.input('x', ['n', 8]), b.init('d', [], Float32Array.of(div))]);
      b.markOutput(y, 'y');
      return b.build();
    };
    const data = bindDataset([{ name: 'x', dtype: DataType.FLOAT, shape: ['n', 8] }], [], { randomSamples: 4, seed: 2 });
    const a = await ModelSession.create(mk(1), { allowSpinning: false });
    const b = await ModelSession.create(mk(0), { allowSpinning: false });
    const r = await compareModels(a, b, data, { batchSize: 2 });
    await a.release();
    await b.release();
    assert.ok(r.outputs[0].nonFinite! > 0);
    assert.equal(r.outputs[0].cosine, 0);
    assert.equal(fidelityWarnings({ fidelity: { ...r, data: 'test', runtime: 'ONNX Runtime' } } as EvaluationReport, 'quantize').length, 1);
  });

  it('every report flags a collapse with what helps for the step (thresholds in fidelity-warnings.ts)', () => {
    const report = (cosine: number, top1: number | undefined, data = 'input ← x.npy'): EvaluationReport =>
      ({ before: {}, after: {}, fidelity: { samples: 32, batchSize: 32, data, runtime: 'ONNX Runtime', outputs: [{ name: 'y', elements: 320, maxAbsDiff: 1, meanAbsDiff: 1, cosine, sqnrDb: 3, top1Agreement: top1 }] } }) as unknown as EvaluationReport;
    const w = fidelityWarnings(report(0.59, 0.44), 'prune');
    assert.equal(w.length, 1);
    assert.match(w[0], /--recover reconstruct/);
    assert.match(w[0], /cosine 0\.5900/);
    assert.match(fidelityWarnings(report(0.9, undefined), 'quantize')[0], /--exclude/);
    assert.match(fidelityWarnings(report(0.9, undefined, '32 random samples'), 'substitute')[0], /top-5 agreement and SQNR/);
    assert.deepEqual(fidelityWarnings(report(0.9999, 0.99), 'prune'), []);
    assert.deepEqual(fidelityWarnings(report(COLLAPSE.cosine + 0.001, COLLAPSE.top1), 'prune'), []);
  });

  it('TF.js uint8 stores a weight an outlier would ruin as uint16 and names it (tfjs-uint8-outlier)', async () => {
    const model = openModel(cases('tfjs-uint8-outlier/model.json'));
    const r = await quantizeModel(model, { mode: 'uint8' });
    const doc = tfjsDocument(r.model.source)!;
    assert.equal(doc.quantization.get('d1/kernel'), 'uint16');
    assert.ok(r.notes.some((n) => /d1\/kernel → uint16/.test(n)), r.notes.join('\n'));
    const others = [...doc.quantization.entries()].filter(([k]) => k !== 'd1/kernel');
    assert.ok(others.length > 0 && others.every(([, q]) => q === 'uint8'));
    // The measure: Gaussian weights keep ≈ 40 dB in uint8; one 400σ outlier leaves ≈ 7 dB.
    const w = randomFloats(4096, 5, 0.05);
    assert.ok(bulkSqnrDb(w, 'uint8') > 30);
    w[7] = 20;
    assert.ok(bulkSqnrDb(w, 'uint8') < 12);
    assert.ok(bulkSqnrDb(w, 'uint16') > 40);
  });

  it('CLI: static int8 of shape-path-int64 exits 0 with only the output in its folder; --criterion bn without BatchNormalization exits 2', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'sp.onnx');
    const r = cli(['quantize', cases('shape-path-int64.onnx'), '--mode', 'static', '--calib', 'random:4', '--no-bench', '--json', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(dir), ['sp.onnx']);
    assert.ok(JSON.parse(r.stdout).notes.some((n: string) => /int8 default/.test(n)));
    const bn = cli(['prune', cases('shared-weight-6x.onnx'), '--structured', '--ratio', '0.3', '--criterion', 'bn', '-o', path.join(dir, 'p.onnx')]);
    assert.equal(bn.code, 2, bn.stderr);
    assert.match(bn.stderr, /no BatchNormalization/);
    assert.deepEqual(fs.readdirSync(dir), ['sp.onnx']);
  });
});
