import { UsageError } from '../../core/errors';
import { benchmarkModels } from '../../core/runtime/bench';
import { parseArgs, parseShapeFlags } from '../args';
import type { Command } from '../command';
import { fmtBytes, table } from '../format';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure latency, throughput, session time, size and peak memory with ONNX Runtime',
  usage: 'model-compressor bench <model…> [--runs N] [--warmup W] [--threads T] [--inter-threads T] [--ep cpu] [--batch B] [--shape name=1x3x224x224] [--json]',
  flags: {
    runs: { type: 'number', placeholder: 'N', default: 50, help: 'Timed runs per model (interleaved across models).' },
    warmup: { type: 'number', placeholder: 'W', help: 'Untimed runs first.' },
    threads: { type: 'number', placeholder: 'T', help: 'ONNX Runtime intra-op threads (default: ONNX Runtime’s).' },
    'inter-threads': { type: 'number', placeholder: 'T', help: 'ONNX Runtime inter-op threads.' },
    ep: { type: 'string', placeholder: 'cpu', help: 'Execution provider.' },
    batch: { type: 'number', placeholder: 'B', help: 'Batch size for dynamic batch dims.' },
    shape: { type: 'string', multiple: true, placeholder: 'name=1x3x224x224', help: 'Fix an input’s dims (repeatable).' },
    json: { type: 'boolean', help: 'Print JSON.' },
  },
  example: 'bench model.onnx model.int8.onnx --runs 100 --threads 1',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, this.flags);
    if (positional.length === 0) throw new UsageError('bench needs at least one model');
    const int = (name: string, min: number) => {
      const v = flags[name] as number | undefined;
      if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new UsageError(`--${name} needs a whole number ≥ ${min}`);
      return v;
    };
    const shapes = parseShapeFlags(flags.shape as string[] | undefined);
    if (shapes['']) throw new UsageError('with bench, name the input: --shape name=1x3x224x224');
    const r = await benchmarkModels(positional, {
      runs: int('runs', 1),
      warmup: int('warmup', 0),
      threads: int('threads', 1),
      interThreads: int('inter-threads', 1),
      executionProvider: flags.ep as string | undefined,
      batch: int('batch', 1),
      shapes,
    });
    if (flags.json) {
      io.out(JSON.stringify(r));
      return 0;
    }
    const ms = (x: number) => x.toFixed(2);
    io.out(
      [
        `${r.runs} runs after ${r.warmup} warm-up, batch ${r.batch}, threads ${r.threads ?? 'default'}${r.interleaved ? ', interleaved' : ''}`,
        '',
        table(
          ['model', 'size', 'create ms', 'min', 'p50', 'p90', 'p99', 'per sec', 'peak RSS', 'p50 ratio', 'size ratio'],
          r.models.map((m) => [
            m.path,
            fmtBytes(m.sizeBytes),
            m.sessionCreateMs.toFixed(0),
            ms(m.latencyMs.min),
            ms(m.latencyMs.p50),
            ms(m.latencyMs.p90),
            ms(m.latencyMs.p99),
            m.throughput.toFixed(1),
            fmtBytes(m.peakRssBytes),
            `${m.ratioP50.toFixed(3)}x`,
            `${m.ratioSize.toFixed(3)}x`,
          ]),
          60,
        ),
      ].join('\n'),
    );
    return 0;
  },
};
