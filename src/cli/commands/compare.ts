import { UsageError } from '../../core/errors';
import { compareModels, type CompareResult } from '../../core/runtime/compare';
import { bindDataset, chooseBatchSize, parseDataSpecs, readLabels } from '../../core/runtime/data/dataset';
import type { ImageOptions } from '../../core/runtime/data/images';
import { runnableOnnx } from '../../core/runtime/onnx-file';
import { ModelSession } from '../../core/runtime/session';
import { parseArgs, parseShapeFlags } from '../args';
import type { Command } from '../command';
import { table } from '../format';
import { bindShapes } from './inspect';
import { DATA_FLAGS } from '../data-flags';

export const compareCommand: Command = {
  name: 'compare',
  summary: 'measure a candidate model’s fidelity (and accuracy) against a reference',
  usage:
    'model-compressor compare <reference> <candidate> [--data x.npy | --data name=x.npy …] [--labels y.npy] [--batch B] [--samples N] [--shape name=1x3x224x224] [--threads T] [--inter-threads T] [--ep cpu] [--layout NCHW|NHWC] [--image-scale s] [--image-mean m,m,m] [--image-std s,s,s] [--json]',
  flags: {
    ...DATA_FLAGS,
    data: { type: 'string', multiple: true, placeholder: 'data', help: 'Samples (.npy, .pb, image folder; name=path per input; default: random samples).' },
    batch: { type: 'number', placeholder: 'B', help: 'Samples per run.' },
    limit: { type: 'number', placeholder: 'N', help: 'Use at most N samples.' },
    threads: { type: 'number', placeholder: 'T', help: 'ONNX Runtime intra-op threads.' },
    'inter-threads': { type: 'number', placeholder: 'T', help: 'ONNX Runtime inter-op threads.' },
    ep: { type: 'string', placeholder: 'cpu', help: 'Execution provider.' },
    json: { type: 'boolean', help: 'Print JSON.' },
  },
  example: 'compare model.onnx model.int8.onnx --data test_x.npy --labels test_y.npy --seed 1',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (positional.length !== 2) throw new UsageError('compare takes a reference and a candidate model');
    const [refPath, candPath] = positional;
    const session = { intraOpThreads: flags.threads as number | undefined, interOpThreads: flags['inter-threads'] as number | undefined, executionProvider: flags.ep as string | undefined, allowSpinning: false };
    // TF.js layers models run through an ONNX export.
    const runnable = [runnableOnnx(refPath)];
    let ref: ModelSession | undefined;
    let cand: ModelSession | undefined;
    try {
      runnable.push(runnableOnnx(candPath));
      ref = await ModelSession.create(runnable[0].path, session, refPath);
      cand = await ModelSession.create(runnable[1].path, session, candPath);
      const shapes = bindShapes(parseShapeFlags(flags.shape as string[] | undefined), ref.inputs.map((i) => i.name)) as Record<string, number[]>;
      const samples = (flags.samples as number | undefined) ?? 32;
      const data = bindDataset(ref.inputs, parseDataSpecs(flags.data as string[] | undefined), {
        randomSamples: samples,
        seed: (flags.seed as number | undefined) ?? 0,
        shapes,
        image: imageFlags(flags),
      });
      const labels = flags.labels ? readLabels(flags.labels as string) : undefined;
      const r = await compareModels(ref, cand, data, {
        batchSize: chooseBatchSize(ref.inputs, (flags.batch as number | undefined) ?? 32),
        labels,
        limit: flags.limit as number | undefined,
      });
      const usedRandom = (flags.data as string[] | undefined)?.length !== ref.inputs.length;
      if (flags.json) io.out(JSON.stringify({ reference: refPath, candidate: candPath, data: data.describe(), randomData: usedRandom, ...r }));
      else io.out(renderCompare(refPath, candPath, data.describe(), r));
      return 0;
    } finally {
      await ref?.release();
      await cand?.release();
      for (const r of runnable) r.release();
    }
  },
};

/** Image-folder preprocessing flags, shared by every command that reads data. */
export function imageFlags(flags: Record<string, unknown>): Partial<ImageOptions> {
  const list = (name: string) => {
    const v = flags[name] as string | undefined;
    if (v === undefined) return undefined;
    const xs = v.split(',').map(Number);
    if (xs.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} takes comma-separated numbers, e.g. 0.485,0.456,0.406`);
    return xs;
  };
  const layout = flags.layout as string | undefined;
  if (layout !== undefined && layout !== 'NCHW' && layout !== 'NHWC') throw new UsageError('--layout is NCHW or NHWC');
  return { layout: layout as ImageOptions['layout'] | undefined, scale: flags['image-scale'] as number | undefined, mean: list('image-mean'), std: list('image-std') };
}

const f = (x: number | undefined, d = 4) => (x === undefined ? '' : Number.isNaN(x) ? 'NaN' : x.toFixed(d));

export function renderCompare(ref: string, cand: string, data: string, r: CompareResult): string {
  const lines = [`reference  ${ref}`, `candidate  ${cand}`, `data       ${data}  (${r.samples} samples, batch ${r.batchSize})`, ''];
  lines.push(
    table(
      ['output', 'max|Δ|', 'mean|Δ|', 'cosine', 'SQNR dB', 'top-1 agree', 'top-5 agree', 'KL'],
      r.outputs.map((o) => [
        o.name,
        o.maxAbsDiff.toExponential(3),
        o.meanAbsDiff.toExponential(3),
        f(o.cosine, 6),
        o.sqnrDb === null ? 'inf' : f(o.sqnrDb, 2),
        f(o.top1Agreement),
        f(o.top5Agreement),
        o.klDivergence === undefined ? '' : o.klDivergence.toExponential(3),
      ]),
    ),
  );
  if (r.accuracy) {
    const a = r.accuracy;
    lines.push('');
    lines.push(`accuracy   reference ${f(a.reference)} (${a.correctReference}/${r.samples})   candidate ${f(a.candidate)} (${a.correctCandidate}/${r.samples})   change ${((a.candidate - a.reference) * 100).toFixed(2)} pp`);
  }
  return lines.join('\n');
}
