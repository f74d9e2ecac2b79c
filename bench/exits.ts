/**
 * `npm run bench -- exits`: the early-exit figures of issue 18 on the digits models (heads
 * trained on digits_train_*, thresholds calibrated and everything reported on digits_test_*):
 * digits_cnn and the residual CNN of `residual-digits.ts` (trained here first); then runtime
 * widths (digits_cnn at 0.5/0.75/1 before and after sandwich fine-tuning, MobileNetV2 at
 * 0.5/1 without fine-tuning: MACs and latency only). The early-exit headline
 * is the out-of-sample one (5-fold cross-fit of the calibration, margin z = 2); the in-sample
 * figures of the written thresholds and the latency at batch 1 (interleaved with the
 * original) follow. Printed, never asserted.
 */
import * as path from 'path';
import { openModel } from '../src/core/formats/registry';
import { DataType } from '../src/core/ir/dtype';
import type { Model } from '../src/core/ir/graph';
import { bindDataset, parseDataSpecs, readLabels } from '../src/core/runtime/data/dataset';
import { datasetSampleSet, fit, labelsTensor } from '../src/core/train';
import { earlyExit, type EarlyExitOutcome } from '../src/core/transforms/early-exit';
import { fitSettings } from '../src/core/transforms/distill/common';
import { runtimeWidths, type WidthsOutcome } from '../src/core/transforms/widths';
import { sharedFixture } from './runner';
import { residualDigits } from './residual-digits';

const FIX = path.resolve(__dirname, '../../test/fixtures');
const fx = (f: string) => path.join(FIX, f);
const INPUT = [{ name: 'input', dtype: DataType.FLOAT, shape: ['batch', 1, 8, 8] as Array<string | number> }];
const data = (f: string) => bindDataset(INPUT, parseDataSpecs([fx(f)]));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const acc = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(4));

function print(title: string, r: EarlyExitOutcome): void {
  const o = r.outOfSample;
  const ratio = (m: number | null) => (m === null ? '–' : `${(m / r.originalMacs).toFixed(3)}x`);
  console.log(`\n== ${title}`);
  console.log('  exit  tensor                   at MACs  head                              threshold  | in sample: leaving  accuracy  MACs paid | out of sample: leaving  accuracy');
  const row = (k: string, tensor: string, at: string, head: string, t: string, s: number, sc: number | null, m: number, os: number, osc: number | null) =>
    console.log(`  ${k.padEnd(4)}  ${tensor.padEnd(23)}  ${at.padStart(7)}  ${head.padEnd(32)}  ${t.padStart(9)}  | ${pct(s).padStart(18)}  ${acc(sc).padStart(8)}  ${ratio(m).padStart(9)} | ${pct(os).padStart(22)}  ${acc(osc).padStart(8)}`);
  r.exits.forEach((e, k) => row(String(k), e.tensor, pct(e.position), e.head, e.threshold === null ? 'off' : e.threshold.toFixed(4), e.samples, e.score, e.macs, o.exits[k].samples, o.exits[k].score));
  row(String(r.exits.length), 'final output', '100%', '', '–', r.final.samples, r.final.score, r.final.macs, o.final.samples, o.final.score);
  const drop = (s: number) => `${(100 * (r.original.score - s)).toFixed(2)} pp`;
  console.log(`  out of sample (${o.folds}-fold cross-fit, margin z = ${o.margin}): expected MACs ${o.expectedMacsRatio.toFixed(3)}x (target <= 0.5x), accuracy ${acc(o.score)} vs ${acc(r.original.score)} original, drop ${drop(o.score)} (target <= 0.50 pp)`);
  console.log(`  in sample (written thresholds):  expected MACs ${(r.expectedMacs / r.originalMacs).toFixed(3)}x, accuracy ${acc(r.earlyExit.score)}, drop ${drop(r.earlyExit.score)}`);
  const l = r.latency;
  if (l) console.log(`  latency at batch 1 on ${l.samples} test samples, interleaved: p50 ${l.earlyExitMs.p50.toFixed(3)} vs ${l.originalMs.p50.toFixed(3)} ms original; mean ratio ${l.ratioMean.toFixed(2)}x (target < 1)`);
  console.log(`  heads: ${r.training.epochs} epochs, ${r.training.secondsPerEpoch.toFixed(2)} s/epoch`);
}

/** The residual CNN of `residual-digits.ts`, trained on digits_train (cross-entropy, AdamW, cosine). */
async function trainedResidual(): Promise<Model> {
  const labels = readLabels(fx('digits_train_y.npy'));
  const r = await fit(residualDigits(), datasetSampleSet(data('digits_train_x.npy'), { labels: labelsTensor(labels) }), {
    ...fitSettings({ epochs: 30, batchSize: 32, lr: 3e-3, seed: 1 }),
    losses: [{ kind: 'cross-entropy', logits: 'output', labels: 'labels' }],
  });
  return r.model;
}

export async function benchExits(): Promise<void> {
  const common = {
    train: data('digits_train_x.npy'),
    trainLabels: readLabels(fx('digits_train_y.npy')),
    eval: data('digits_test_x.npy'),
    labels: readLabels(fx('digits_test_y.npy')),
    target: { kind: 'max-accuracy-drop' as const, drop: 0.005 },
    training: { epochs: 6, seed: 1 },
    latencySamples: 200,
  };
  print('early exits, digits_cnn (--max-accuracy-drop 0.005 --epochs 6 --seed 1)', await earlyExit(openModel(fx('digits_cnn.onnx')), common));
  const res = await trainedResidual();
  print('early exits, residual CNN of bench/residual-digits.ts trained 30 epochs (same flags)', await earlyExit(res, common));
  await benchWidths();
}

function printWidths(title: string, r: WidthsOutcome): void {
  console.log(`\n== ${title}`);
  console.log(`  width  MACs (budget)      ${r.metric} before  ${r.metric} after  latency p50 (batch 1)`);
  const ms = (x?: { p50: number }) => (x ? `${x.p50.toFixed(3)} ms` : '–');
  for (const w of r.widths) console.log(`  ${String(w.width).padEnd(5)}  ${`${(w.macs / 1e6).toFixed(2)}M (${w.budget.toFixed(3)}x)`.padEnd(17)}  ${w.before.toFixed(4).padStart(15)}  ${w.score.toFixed(4).padStart(14)}  ${ms(w.latencyMs).padStart(21)}`);
  console.log(`  original ${(r.original.macs / 1e6).toFixed(2)}M; ${r.metric} ${r.original.score.toFixed(4)}; latency p50 ${ms(r.original.latencyMs)}`);
  console.log(`  ${r.training.epochs ? `${r.training.epochs} epochs, ${r.training.secondsPerEpoch.toFixed(2)} s/epoch, ${r.training.rule}` : 'not fine-tuned'}`);
}

export async function benchWidths(): Promise<void> {
  const r = await runtimeWidths(openModel(fx('digits_cnn.onnx')), {
    widths: [0.5, 0.75],
    train: data('digits_train_x.npy'),
    trainLabels: readLabels(fx('digits_train_y.npy')),
    eval: data('digits_test_x.npy'),
    labels: readLabels(fx('digits_test_y.npy')),
    training: { epochs: 5, seed: 1 },
    latencySamples: 200,
  });
  printWidths('runtime widths, digits_cnn (--widths 0.5,0.75,1 --epochs 5 --seed 1)', r);
  const mnv2 = sharedFixture('mobilenet_v2.onnx');
  if (!mnv2) return console.log('\n== runtime widths, MobileNetV2: skipped (mobilenet_v2.onnx not found; set MC_SHARED_FIXTURES)');
  const ds = bindDataset([{ name: 'input', dtype: DataType.FLOAT, shape: [20, 3, 224, 224] }], [], { randomSamples: 20, seed: 1 });
  printWidths('runtime widths, MobileNetV2 (--widths 0.5,1 --epochs 0; random inputs: agreement, MACs and latency)', await runtimeWidths(openModel(mnv2), { widths: [0.5], train: ds, eval: ds, training: { epochs: 0 }, latencySamples: 20 }));
}
