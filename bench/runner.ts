import * as fs from 'fs';
import * as path from 'path';
import { benchmarkModels } from '../src/core/runtime/bench';
import { child, median, report } from './util';

/** Real-architecture fixtures live outside the project; benchmarks use them when present. */
export function sharedFixture(name: string): string | undefined {
  const dir = process.env.MC_SHARED_FIXTURES ?? path.resolve(__dirname, '../../../shared/fixtures');
  const f = path.join(dir, name);
  return fs.existsSync(f) ? f : undefined;
}

/** Harness overhead: `benchmarkModels` against a bare session.run loop, interleaved. */
export async function benchRunner(): Promise<void> {
  const file = sharedFixture('mobilenet_v2.onnx');
  if (!file) {
    console.log('\n== runner overhead: skipped (mobilenet_v2.onnx not found; set MC_SHARED_FIXTURES)');
    return;
  }
  const runs = 100;
  const bare: number[] = [];
  const harness: number[] = [];
  for (let round = 0; round < 3; round++) {
    bare.push(child<{ meanMs: number }>('bare-run', [file, String(runs), '10']).meanMs);
    const r = await benchmarkModels([file], { runs, warmup: 10 });
    harness.push(r.models[0].latencyMs.mean);
  }
  const b = median(bare);
  const h = median(harness);
  report('runner overhead on mobilenet_v2.onnx (batch 1, 100 runs, 3 alternating rounds, median of means)', [
    ['bare session.run loop', `${b.toFixed(2)} ms`],
    ['bench harness', `${h.toFixed(2)} ms`],
    ['overhead', `${((h / b - 1) * 100).toFixed(1)}%   (target <= 5%)`],
  ]);
}
