/**
 * `npm run bench -- methods`: the figures of the training-based methods on the digits models
 * (train on digits_train_*, report on digits_test_*): recovery after 70% MACs removed,
 * Taylor/l1/random, the L1 sparsity sweep, half-width distillation, QAT, and the time per
 * epoch of each. Accuracies are printed, never asserted (the unit tests assert contracts).
 */
import * as path from 'path';
import { analyzeModel } from '../src/core/analysis/analyze';
import { openModel } from '../src/core/formats/registry';
import { DataType } from '../src/core/ir/dtype';
import type { Model } from '../src/core/ir/graph';
import { Dataset, bindDataset, parseDataSpecs, readLabels } from '../src/core/runtime/data/dataset';
import { memorySource } from '../src/core/runtime/data/sources';
import { ModelSession } from '../src/core/runtime/session';
import { distill } from '../src/core/transforms/distill';
import { scoreModels } from '../src/core/transforms/distill/common';
import { pruneModel } from '../src/core/transforms/prune';
import type { Criterion } from '../src/core/transforms/prune/importance';
import { pruneWithRecovery } from '../src/core/transforms/prune/recover';
import { quantizeModel } from '../src/core/transforms/quantize';
import { quantizationAwareTraining } from '../src/core/transforms/quantize/qat';
import { sparsityTrain } from '../src/core/transforms/sparsity';

const FIX = path.resolve(__dirname, '../../test/fixtures');
const fx = (f: string) => path.join(FIX, f);
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(x * 100).toFixed(2)}%`);

async function data(model: Model) {
  const s = await ModelSession.create(model, { allowSpinning: false });
  try {
    const bind = (f: string) => bindDataset(s.inputs, parseDataSpecs([fx(f)]));
    return { train: bind('digits_train_x.npy'), trainLabels: readLabels(fx('digits_train_y.npy')), calib: bind('digits_calib_x.npy'), test: bind('digits_test_x.npy'), labels: readLabels(fx('digits_test_y.npy')) };
  } finally {
    await s.release();
  }
}

export async function benchMethods(): Promise<void> {
  const cnn = openModel(fx('digits_cnn.onnx'));
  const mlp = openModel(fx('digits_mlp.onnx'));
  const d = await data(cnn);
  const acc = async (ref: Model, m: Model) => (await scoreModels(ref, m, d.test, d.labels)).candidate.accuracy;
  const macs = (m: Model) => analyzeModel(m).totals.macs;

  console.log('\n== digits_cnn, 70% of MACs removed (structured, l1), test accuracy; original', pct(await acc(cnn, cnn)));
  for (const recover of ['none', 'reconstruct'] as const) {
    const r = await pruneModel(cnn, { structured: true, targetMacs: 0.7, recover, calib: d.calib });
    console.log(`  ${recover.padEnd(12)} ${pct(await acc(cnn, r.model))}  MACs ${pct(1 - macs(r.model) / macs(cnn))} removed`);
  }
  for (const method of ['finetune', 'distill'] as const) {
    const r = await pruneWithRecovery(cnn, { structured: true, targetMacs: 0.7, steps: 3 }, { method, train: d.train, trainLabels: d.trainLabels, epochsPerStep: 4, lr: 2e-3, eval: { data: d.test, labels: d.labels } });
    const steps = r.recovery.steps.map((s) => `step ${s.step} (${pct(s.target)}): pruned ${pct(s.afterPrune?.accuracy)} → retrained ${pct(s.afterRetrain?.accuracy)}, ${s.secondsPerEpoch.toFixed(2)} s/epoch`);
    console.log(`  ${method.padEnd(12)} ${pct(await acc(cnn, r.model))}  MACs ${pct(1 - macs(r.model) / macs(cnn))} removed, kept ${r.recovery.kept}\n    ${steps.join('\n    ')}`);
  }

  console.log('\n== digits_cnn, 50% of channels (structured): criterion × recovery, test accuracy');
  for (const criterion of ['taylor', 'l1', 'random'] as Criterion[]) {
    const opts = { structured: true, ratio: 0.5, criterion, calib: d.train, calibLabels: d.trainLabels, seed: 1 };
    const none = await pruneModel(cnn, opts);
    const ft = await pruneWithRecovery(cnn, { ...opts, steps: 1 }, { method: 'finetune', train: d.train, trainLabels: d.trainLabels, epochsPerStep: 5, lr: 2e-3 });
    console.log(`  ${criterion.padEnd(8)} none ${pct(await acc(cnn, none.model))}   finetune ${pct(await acc(cnn, ft.model))} (${ft.recovery.steps[0].secondsPerEpoch.toFixed(2)} s/epoch)`);
  }

  const dm = await data(mlp);
  console.log('\n== digits_mlp, L1 sparsity training (10 epochs, AdamW 1e-3) → global magnitude prune at ≤ 1 pp drop → 2 epochs fine-tune');
  for (const l1 of [0, 1e-4, 3e-4, 1e-3, 3e-3]) {
    const r = await sparsityTrain(mlp, { train: dm.train, trainLabels: dm.trainLabels, l1, epochs: 10, lr: 1e-3, maxDrop: 0.01, finetuneEpochs: 2, eval: { data: dm.test, labels: dm.labels } });
    const x = r.report;
    console.log(
      `  λ=${String(l1).padEnd(6)} |w|<1e-3 after training ${pct(x.nearZero)}; zeros ${pct(x.sparsity)}; accuracy original ${pct(x.original.accuracy)}, trained ${pct(x.afterTraining.accuracy)}, pruned ${pct(x.afterPrune.accuracy)}, fine-tuned ${pct(x.afterFinetune?.accuracy)}; ${x.secondsPerEpoch.toFixed(2)} s/epoch`,
    );
  }

  console.log('\n== half-width student (digits_cnn pruned 50% structured) distilled from digits_cnn, 10 epochs');
  const student = (await pruneModel(cnn, { structured: true, ratio: 0.5 })).model;
  for (const labels of [true, false]) {
    const r = await distill(student, cnn, { train: d.train, trainLabels: labels ? d.trainLabels : undefined, epochs: 10, lr: 2e-3, eval: { data: d.test, labels: d.labels } });
    console.log(
      `  ${labels ? 'with labels (α=0.7)' : 'without labels (α=1)'}: teacher ${pct(r.teacherAccuracy)}, student before ${pct(r.before?.accuracy)}, after ${pct(r.after?.accuracy)} (agreement ${pct(r.after?.agreement)}); params ${analyzeModel(student).totals.params} vs ${analyzeModel(cnn).totals.params}, MACs ${macs(student)} vs ${macs(cnn)}; ${r.secondsPerEpoch.toFixed(2)} s/epoch`,
    );
  }

  console.log('\n== QAT: static int8 calibrated on un-normalised inputs (calibration images ×k, a 0..255 vs 0..1 mistake)');
  for (const [name, model, k, epochs] of [['digits_mlp', mlp, 255, 10], ['digits_cnn', cnn, 128, 3], ['digits_cnn', cnn, 255, 3]] as const) {
    const raw = d.calib.batch(0, 256).input.data as Float32Array;
    const scaled = raw.map((v) => v * k);
    const calib = new Dataset(new Map([['input', memorySource(`calib×${k}`, DataType.FLOAT, [256, 1, 8, 8], new Uint8Array(scaled.buffer))]]), 256);
    const st = await quantizeModel(model, { mode: 'static', calib });
    const q = await quantizationAwareTraining(model, { calib, train: d.train, trainLabels: d.trainLabels, epochs, lr: 3e-3 });
    console.log(`  ${name} ×${k}: float ${pct(await acc(model, model))}, static int8 ${pct(await acc(model, st.model))}, after --qat (${epochs} epochs) ${pct(await acc(model, q.model))}; ${q.secondsPerEpoch.toFixed(2)} s/epoch`);
  }
}
