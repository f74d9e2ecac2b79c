import { UsageError } from '../../core/errors';
import { openModel } from '../../core/formats/registry';
import { DataType } from '../../core/ir/dtype';
import type { Model } from '../../core/ir/graph';
import { compareModels, type CompareResult, type Runner } from '../../core/runtime/compare';
import { fullWidthSelector } from '../../core/runtime/evaluate';
import { bindDataset, chooseBatchSize, parseDataSpecs, readLabels } from '../../core/runtime/data/dataset';
import { runnableOnnx } from '../../core/runtime/onnx-file';
import { ModelSession } from '../../core/runtime/session';
import { parseArgs, parseShapeFlags } from '../args';
import type { Command } from '../command';
import { table } from '../format';
import { bindShapes } from './inspect';
import { DATA_FLAGS, imageFlags } from '../data-flags';

export const compareCommand: Command = {
  name: 'compare',
  summary: 'measure a candidate model’s fidelity (and accuracy) against a reference',
  usage:
    'model-compressor compare <reference> <candidate> [--data x.npy | --data name=x.npy …] [--labels y.npy] [--batch B] [--width w] [--samples N] [--shape name=1x3x224x224] [--threads T] [--inter-threads T] [--ep cpu] [--layout NCHW|NHWC] [--image-scale s] [--image-mean m,m,m] [--image-std s,s,s] [--json]',
  flags: {
    ...DATA_FLAGS,
    data: { type: 'string', multiple: true, placeholder: 'data', help: 'Samples (.npy, .pb, image folder; name=path per input; default: random samples).' },
    batch: { type: 'number', placeholder: 'B', help: 'Samples per run.' },
    limit: { type: 'number', placeholder: 'N', help: 'Use at most N samples.' },
    threads: { type: 'number', placeholder: 'T', help: 'ONNX Runtime intra-op threads.' },
    'inter-threads': { type: 'number', placeholder: 'T', help: 'ONNX Runtime inter-op threads.' },
    ep: { type: 'string', placeholder: 'cpu', help: 'Execution provider.' },
    width: {
      type: 'number',
      placeholder: 'w',
      help: "A runtime-widths model (early-exit --widths) runs at this width: the value fed to its selector input ('width', or 'budget' as a fraction of the full width's MACs); default 1, the full width.",
    },
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
      const models = [openModel(runnable[0].path), openModel(runnable[1].path)];
      const widths = selectors(models, flags.width as number | undefined);
      // An early-exit model decides per batch (a batch leaves an exit only when every sample is confident): compared per sample.
      const earlyExit = models.some(isEarlyExit);
      ref = await ModelSession.create(runnable[0].path, session, refPath);
      cand = await ModelSession.create(runnable[1].path, session, candPath);
      const refRun = atWidth(ref, widths[0]);
      const candRun = atWidth(cand, widths[1]);
      const shapes = bindShapes(parseShapeFlags(flags.shape as string[] | undefined), refRun.inputs.map((i) => i.name)) as Record<string, number[]>;
      const samples = (flags.samples as number | undefined) ?? 32;
      const data = bindDataset(refRun.inputs, parseDataSpecs(flags.data as string[] | undefined), {
        randomSamples: samples,
        seed: (flags.seed as number | undefined) ?? 0,
        shapes,
        image: imageFlags(flags),
      });
      const labels = flags.labels ? readLabels(flags.labels as string) : undefined;
      const r = await compareModels(refRun, candRun, data, {
        batchSize: chooseBatchSize(refRun.inputs, (flags.batch as number | undefined) ?? (earlyExit ? 1 : 32)),
        labels,
        limit: flags.limit as number | undefined,
      });
      const usedRandom = (flags.data as string[] | undefined)?.length !== refRun.inputs.length;
      const at = { reference: widths[0] ?? null, candidate: widths[1] ?? null };
      if (flags.json) io.out(JSON.stringify({ reference: refPath, candidate: candPath, data: data.describe(), randomData: usedRandom, widths: at, ...r }));
      else {
        const notes = (['reference', 'candidate'] as const).flatMap((k) => (at[k] ? [`${k} runs at ${at[k]!.input} ${at[k]!.value} (a runtime-widths model${flags.width === undefined ? '; --width picks another width' : ''})`] : []));
        if (earlyExit && flags.batch === undefined) notes.push('an early-exit model is compared per sample (batch 1): at batch > 1 a batch leaves an exit only when every sample in it is confident');
        io.out([renderCompare(refPath, candPath, data.describe(), r), ...notes.map((n) => `note: ${n}`)].join('\n'));
      }
      return 0;
    } finally {
      await ref?.release();
      await cand?.release();
      for (const r of runnable) r.release();
    }
  },
};

/** The selector input each model (reference, candidate) is fed when it is a runtime-widths model; `--width` is refused when neither is. */
function selectors(models: Model[], width: number | undefined): Array<{ input: string; value: number } | undefined> {
  const found = models.map((m) => fullWidthSelector(m));
  if (width !== undefined) {
    if (!found.some(Boolean)) throw new UsageError('--width runs a runtime-widths model (written by early-exit --widths) at a width, and neither model is one');
    if (!(width > 0 && width <= 1)) throw new UsageError(`--width is a fraction in (0, 1], got ${width}`);
  }
  return found.map((s) => (s ? { input: s.input, value: width ?? s.value } : undefined));
}

/** `s` with its selector input fed `sel.value` on every run and hidden from its inputs (data binds to the others). */
function atWidth(s: ModelSession, sel: { input: string; value: number } | undefined): Runner {
  if (!sel) return s;
  const feed = { dtype: DataType.FLOAT, dims: [1], data: Float32Array.of(sel.value) };
  return { inputs: s.inputs.filter((i) => i.name !== sel.input), outputs: s.outputs, run: (feeds) => s.run({ ...feeds, [sel.input]: feed }) };
}

const isEarlyExit = (m: Model) => m.metadata.some(([k]) => k === 'early_exit') && m.graph.outputs.some((o) => o.name === 'exit_index');

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
