import { UsageError } from '../../core/errors';
import { benchmarkModels } from '../../core/runtime/bench';
import { parseArgs, parseShapeFlags } from '../args';
import type { Command } from '../command';
import { fmtBytes, table } from '../format';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure latency, throughput, session time, size and peak memory with ONNX Runtime',
  usage: 'model-compressor bench <model…> [--runs N] [--warmup W] [--threads T] [--inter-threads T] [--ep cpu] [--batch B] [--shape name=1x3x224x224] [--json]',
  async run(argv, io) {
    const { positional, flags } = parseArgs(argv, {
      runs: { type: 'number' },
      warmup: { type: 'number' },
      threads: { type: 'number' },
      'inter-threads': { type: 'number' },
      ep: { type: 'string' },
      batch: { type: 'number' },
      shape: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    });
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
