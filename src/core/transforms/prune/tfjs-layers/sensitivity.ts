import { analyzeModel } from '../../../analysis/analyze';
import { CancelledError } from '../../../errors';
import type { Model } from '../../../ir/graph';
import type { HostTensor } from '../../../runtime/session';
import { variantRunner } from '../../../runtime/tfjs';
import { chooseMetric, scoreOutputs, type SensitivityCurve, type SensitivityOptions, type SensitivityPoint, type SensitivityResult } from '../sensitivity-score';
import { kerasEntropyScores, pruneKeras } from './index';

/**
 * The same curves for a TF.js layers model: each group of the layer-level pruner alone, every
 * variant written to a scratch folder and run by TensorFlow.js itself on the same samples.
 */
export async function kerasSensitivity(model: Model, opts: SensitivityOptions): Promise<SensitivityResult> {
  const ratios = opts.ratios ?? [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  const criterion = opts.criterion ?? 'l1';
  // Entropy is measured once; every variant ranks channels by the same scores.
  const layerScores = criterion === 'entropy' ? await kerasEntropyScores(model, opts.calib ?? opts.data, opts.signal) : undefined;
  const probe = await pruneKeras(model, { structured: true, ratio: 0.5, criterion, layerScores, roundTo: 1 });
  const producers = probe.groups.flatMap((g) => g.producers);
  const samples = Math.min(opts.samples ?? 64, opts.data.count);
  const batchSize = opts.batchSize ?? 16;
  // Variants are compared with each other, not with TensorFlow.js: ORT on the export when it exports.
  let runtime = '';
  // Read (or generate) the samples once for all variants: at most `samples` of them.
  const batches = [...opts.data.batches(batchSize, samples)].map((b) => b.feeds);
  const run = async (m: Model): Promise<HostTensor[]> => {
    const runner = await variantRunner(m);
    runtime = runner.runtime;
    try {
      const outs: HostTensor[] = [];
      for (const feeds of batches) {
        if (opts.signal?.aborted) throw new CancelledError();
        outs.push(Object.values(await runner.run(feeds))[0]);
      }
      return outs;
    } finally {
      await runner.release();
    }
  };
  const ref = await run(model);
  const labels = opts.labels?.subarray(0, samples);
  const metric = chooseMetric(opts, ref, labels);
  const baseline = metric === 'accuracy' ? scoreOutputs(metric, ref, ref, labels) : 1;
  const base = analyzeModel(model).totals;
  const curves: SensitivityCurve[] = [];
  const total = probe.groups.length * ratios.length;
  let done = 0;
  for (const g of probe.groups) {
    const others = producers.filter((p) => !g.producers.includes(p));
    const points: SensitivityPoint[] = [];
    for (const ratio of ratios) {
      if (opts.signal?.aborted) throw new CancelledError();
      const r = await pruneKeras(model, { structured: true, ratio, criterion, exclude: others, layerScores, roundTo: 1 });
      const value = scoreOutputs(metric, ref, await run(r.model), labels);
      const after = analyzeModel(r.model).totals;
      points.push({ ratio, removed: r.groups[0]?.removed ?? 0, value, drop: baseline - value, paramsSaved: base.params - after.params, macsSaved: base.macs - after.macs });
      opts.onProgress?.(++done, total);
    }
    curves.push({ group: g.name, channels: g.channels, points });
  }
  return { metric, baseline, samples, totals: { params: base.params, macs: base.macs }, curves, skipped: probe.skipped, runtime };
}
