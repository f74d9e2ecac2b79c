import * as path from 'path';
import { UsageError } from '../../core/errors';
import { saveVerified } from '../../core/runtime/verified-save';
import { assertOutputNotInput, openModel } from '../../core/formats/registry';
import { exportKerasToOnnx } from '../../core/formats/tfjs/to-onnx';
import { compareModels } from '../../core/runtime/compare';
import { bindDataset, chooseBatchSize } from '../../core/runtime/data/dataset';
import { ModelSession } from '../../core/runtime/session';
import { TfjsRunner } from '../../core/runtime/tfjs';
import { parseArgs } from '../args';
import type { Command } from '../command';
import { table } from '../format';

export const exportCommand: Command = {
  name: 'export',
  summary: 'export a TF.js layers model to ONNX, and check it with ONNX Runtime against TensorFlow.js',
  usage: 'model-compressor export <model.json> [-o model.onnx] [--samples N] [--seed s] [--no-check] [--json]',
  flags: {
    output: { type: 'string', alias: 'o', placeholder: 'model.onnx', help: 'Output file (default: beside the input).' },
    samples: { type: 'number', placeholder: 'N', help: 'Random samples for the check against TensorFlow.js.' },
    seed: { type: 'number', placeholder: 's', help: 'Seed of the random samples.' },
    'no-check': { type: 'boolean', help: 'Skip the check with ONNX Runtime against TensorFlow.js.' },
    json: { type: 'boolean', help: 'Print JSON.' },
  },
  example: 'export model.json -o model.onnx',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (positional.length !== 1) throw new UsageError('export takes exactly one model');
    const input = positional[0];
    const model = openModel(input);
    if (model.format !== 'tfjs-layers') throw new UsageError(`export converts TF.js layers models to ONNX; ${input} is a ${model.format} model`);
    const output = (flags.output as string | undefined) ?? path.join(path.dirname(input), `${path.basename(input).replace(/\.json$/i, '')}.onnx`);
    assertOutputNotInput(model, output);
    const onnx = exportKerasToOnnx(model);
    await saveVerified(onnx, output);
    const result: Record<string, unknown> = { output, nodes: onnx.graph.nodes.length, check: null };
    if (!flags['no-check']) {
      // The export is proved against TensorFlow.js itself, on the same random inputs.
      const ref = await TfjsRunner.create(input);
      const cand = await ModelSession.create(output, { allowSpinning: false });
      try {
        const data = bindDataset(ref.inputs, [], { randomSamples: (flags.samples as number | undefined) ?? 16, seed: (flags.seed as number | undefined) ?? 0 });
        const r = await compareModels(ref, cand, data, { batchSize: chooseBatchSize(ref.inputs, 8) });
        result.check = { against: `TensorFlow.js (${ref.backend} backend)`, samples: r.samples, outputs: r.outputs };
      } finally {
        await ref.release();
        await cand.release();
      }
    }
    if (flags.json) {
      io.out(JSON.stringify(result));
      return 0;
    }
    const lines = [`export: ${input} → ${output} (${onnx.graph.nodes.length} ONNX nodes, NHWC inputs as in TF.js)`];
    const check = result.check as { against: string; samples: number; outputs: Array<{ name: string; cosine: number; maxAbsDiff: number }> } | null;
    if (check) {
      lines.push('', `checked against ${check.against} on ${check.samples} random samples:`);
      lines.push(table(['output', 'cosine', 'max|Δ|'], check.outputs.map((o) => [o.name, o.cosine.toFixed(6), o.maxAbsDiff.toExponential(2)])));
    }
    io.out(lines.join('\n'));
    return 0;
  },
};
