import { UsageError } from '../../errors';
import { argmax, hostValues } from '../../runtime/compare';
import type { Dataset } from '../../runtime/data/dataset';
import type { HostTensor } from '../../runtime/session';
import type { Criterion } from './importance';

/** What every format's sensitivity analysis shares: the result's shape, the options and the scoring of a variant against the reference. */

export interface SensitivityPoint {
  ratio: number;
  removed: number;
  /** accuracy, top-1 agreement or cosine (see `metric`). */
  value: number;
  /** Loss against the unpruned model (≥ 0 means worse). */
  drop: number;
  paramsSaved: number;
  macsSaved: number;
}

export interface SensitivityCurve {
  group: string;
  channels: number;
  points: SensitivityPoint[];
}

export interface SensitivityResult {
  metric: 'accuracy' | 'top1Agreement' | 'cosine';
  baseline: number;
  samples: number;
  totals: { params: number; macs: number };
  curves: SensitivityCurve[];
  skipped: Array<{ name: string; reason: string }>;
  /** What ran the variants: ONNX Runtime, or for TF.js models ORT on the export or TensorFlow.js. */
  runtime?: string;
}

export interface SensitivityOptions {
  data: Dataset;
  labels?: Int32Array;
  ratios?: number[];
  criterion?: Criterion;
  calib?: Dataset;
  samples?: number;
  batchSize?: number;
  /** Bound on cached activations. */
  maxCacheBytes?: number;
  /** Default: accuracy with labels, else top-1 agreement for classifiers, else cosine. */
  metric?: 'accuracy' | 'top1Agreement' | 'cosine';
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** The metric a run uses: as asked, else accuracy with labels, else top-1 agreement for classifier-shaped outputs, else cosine. */
export function chooseMetric(opts: SensitivityOptions, ref: HostTensor[], labels: Int32Array | undefined): SensitivityResult['metric'] {
  const metric: SensitivityResult['metric'] = opts.metric ?? (labels ? 'accuracy' : ref[0].dims.length === 2 && ref[0].dims[1] >= 2 ? 'top1Agreement' : 'cosine');
  if (metric === 'accuracy' && !labels) throw new UsageError('the accuracy metric needs labels');
  return metric;
}

/** The metric of a variant's outputs against the reference outputs (and labels), batch by batch. */
export function scoreOutputs(metric: SensitivityResult['metric'], ref: HostTensor[], out: HostTensor[], labels?: Int32Array): number {
  let agree = 0;
  let rows = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  ref.forEach((r, b) => {
    const a = hostValues(r);
    const c = hostValues(out[b]);
    if (metric === 'cosine') {
      for (let i = 0; i < a.length; i++) {
        dot += a[i] * c[i];
        na += a[i] * a[i];
        nb += c[i] * c[i];
      }
      return;
    }
    const cls = r.dims[1];
    for (let k = 0; k < r.dims[0]; k++) {
      const pc = argmax(Array.prototype.slice.call(c, k * cls, (k + 1) * cls));
      const target = metric === 'accuracy' ? labels![rows] : argmax(Array.prototype.slice.call(a, k * cls, (k + 1) * cls));
      if (pc === target) agree++;
      rows++;
    }
  });
  if (metric === 'cosine') return na && nb ? dot / Math.sqrt(na * nb) : 1;
  return agree / rows;
}
