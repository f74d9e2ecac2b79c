import { analyzeModel, type ModelAnalysis } from '../../core/analysis/analyze';
import { UsageError } from '../../core/errors';
import { printable } from '../../core/util/text';
import { modelSizeBytes, openModel } from '../../core/formats/registry';
import type { Dim } from '../../core/ir/graph';
import { parseArgs, parseShapeFlags } from '../args';
import { fmtBytes, fmtCount, fmtGrouped, table } from '../format';
import type { Command } from '../command';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show where a model’s parameters, bytes and compute go',
  usage: 'model-compressor inspect <model> [--json] [--top N] [--shape name=1x3x224x224] [--no-stats]',
  flags: {
    json: { type: 'boolean', help: 'Print the analysis as JSON (the documented shape).' },
    top: { type: 'number', placeholder: 'N', default: 10, help: 'Layers listed by MACs and by params.' },
    shape: { type: 'string', multiple: true, placeholder: 'name=1x3x224x224', help: 'Fix an input’s dynamic dims (repeatable; the name may be left out for one input).' },
    'no-stats': { type: 'boolean', help: 'Skip weight statistics (faster on large models).' },
    layers: { type: 'boolean', help: 'List every layer, not only the top ones.' },
  },
  example: 'inspect model.onnx --shape input=1x3x224x224 --top 5',
  run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (positional.length !== 1) throw new UsageError('inspect takes exactly one model file');
    const top = (flags.top as number | undefined) ?? 10;
    if (!Number.isInteger(top) || top < 0) throw new UsageError('--top needs a whole number');
    const file = positional[0];
    const model = openModel(file);
    const shapes = parseShapeFlags(flags.shape as string[] | undefined);
    const inputShapes = bindShapes(shapes, model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name)).map((i) => i.name));
    const a = analyzeModel(model, { weightStats: !flags['no-stats'], topN: top, inputShapes });
    a.fileSizeBytes = modelSizeBytes(file, model); // with external data and TF.js shards
    a.file = file;
    if (flags.json) io.out(JSON.stringify(a));
    else io.out(renderText(a, top, !!flags.layers));
    return 0;
  },
};

/** A nameless `--shape` binds to the only input. */
export function bindShapes(shapes: Record<string, number[]>, inputs: string[]): Record<string, Dim[]> {
  const out: Record<string, Dim[]> = {};
  for (const [k, v] of Object.entries(shapes)) {
    if (k === '') {
      if (inputs.length !== 1) throw new UsageError(`the model has ${inputs.length} inputs; name one: --shape name=…`);
      out[inputs[0]] = v;
    } else {
      if (!inputs.includes(k)) throw new UsageError(`--shape names '${k}', which is not a model input (inputs: ${inputs.join(', ')})`);
      out[k] = v;
    }
  }
  return out;
}

const shapeStr = (s: Dim[] | null) => (s ? printable(`[${s.map((d) => (d === null ? '?' : d)).join(', ')}]`) : '?');

function renderText(a: ModelAnalysis, top: number, allLayers: boolean): string {
  const lines: string[] = [];
  const version = a.format === 'onnx' ? `, IR ${a.irVersion}, opset ${Object.entries(a.opset).map(([d, v]) => (d === 'ai.onnx' ? v : `${d} ${v}`)).join(', ')}` : '';
  lines.push(`${printable(a.file ?? '')}  (${a.format}${version})`);
  if (a.producer) lines.push(`producer: ${printable(a.producer)}`);
  lines.push('');
  for (const i of a.inputs) lines.push(`input   ${printable(i.name)}: ${i.dtype}${shapeStr(i.shape)}`);
  for (const o of a.outputs) lines.push(`output  ${printable(o.name)}: ${o.dtype}${shapeStr(o.shape)}`);
  lines.push('');
  lines.push(
    `params ${fmtGrouped(a.totals.params)} (${fmtCount(a.totals.params)})   weights ${fmtBytes(a.totals.bytes)}${a.totals.dequantizedBytes !== undefined ? ` stored (${fmtBytes(a.totals.dequantizedBytes)} dequantized)` : ""}   file ${fmtBytes(a.fileSizeBytes)}   MACs ${a.totals.unknownMacsNodes ? '≥' : ''}${fmtCount(a.totals.macs)} per sample   FLOPs ${fmtCount(a.totals.flops)}   nodes ${a.totals.nodes}`,
  );
  if (a.totals.unknownMacsNodes) lines.push(`note: MACs are a lower bound: ${a.totals.unknownMacsNodes} node(s) have unknown MACs and are not counted`);
  if (a.assumedDims?.length) lines.push(`note: MACs assume ${printable(a.assumedDims.join(', '))} (fix sizes with --shape)`);
  if (a.unknownShapeOps.length) lines.push(`note: no shape rule for ${printable(a.unknownShapeOps.join(', '))}`);
  lines.push('');
  const layers = allLayers ? a.layers : a.layers.filter((l) => l.params > 0 || (l.macs ?? 0) > 0);
  const shown = allLayers ? layers : [...layers].sort((x, y) => (y.macs ?? 0) - (x.macs ?? 0)).slice(0, Math.max(top, 1));
  lines.push(allLayers ? 'layers:' : `top ${shown.length} layers by MACs:`);
  lines.push(
    table(
      ['layer', 'op', 'params', 'bytes', 'MACs', '%MACs', 'output', 'sparsity'],
      shown.map((l) => {
        const sp = l.weights.length && 'sparsity' in l.weights[0] ? `${(l.weights[0].sparsity * 100).toFixed(1)}%` : '';
        return [
          l.name,
          l.op,
          fmtCount(l.params),
          fmtBytes(l.bytes),
          fmtCount(l.macs),
          a.totals.macs ? `${(((l.macs ?? 0) / a.totals.macs) * 100).toFixed(1)}%` : '',
          shapeStr(l.outputShapes[0]),
          sp,
        ];
      }),
    ),
  );
  lines.push('');
  lines.push('by op type:');
  lines.push(
    table(
      ['op', 'count', 'params', 'MACs'],
      a.byOpType.map((o) => [o.op, String(o.count), fmtCount(o.params), fmtCount(o.macs)]),
    ),
  );
  return lines.join('\n');
}
