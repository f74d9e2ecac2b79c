import * as fs from 'fs';
import * as path from 'path';
import { saveModel } from '../src/core/formats/registry';
import type { Model } from '../src/core/ir/graph';
import { transformerEncoder } from '../test/unit/helpers/models';
import { denseConcatChain, detector, ocrRecognizer, vad } from '../test/unit/helpers/standins';
import { densenet121Like } from './memory';
import { benchDir, child, report } from './util';

/**
 * `npm run bench -- matrix`: each stand-in model kind × each main command at its defaults
 * (as a new user would run them), with exit code, time, peak RSS and fidelity (cosine of
 * the first output on the default evaluation data). Each command runs in its own process.
 */
const COMMANDS: string[][] = [
  ['quantize', '--mode', 'static', '--calib', 'random:8'],
  ['quantize', '--mode', 'dynamic'],
  ['quantize', '--mode', 'fp16'],
  ['prune', '--structured', '--ratio', '0.3'],
  ['substitute', '--depthwise'],
];

export function benchMatrix(): void {
  const dir = benchDir();
  const fixtures = path.resolve(__dirname, '../../test/fixtures');
  const kinds: Array<[string, () => Model | string]> = [
    ['ocr [N,3,48,W]', ocrRecognizer],
    ['detector [N,3,H,W]', detector],
    ['vad [?,?] LSTM in If', vad],
    ['fixed batch [1,3,16,16]', () => path.join(fixtures, 'fixed-batch-convtranspose.onnx')],
    ['transformer encoder', () => transformerEncoder()],
    ['densenet concat (small)', () => denseConcatChain(4)],
    ['densenet121-like', densenet121Like],
  ];
  const only = process.env.MATRIX_KINDS?.split(',');
  for (const [kind, make] of kinds) {
    if (only && !only.some((o) => kind.startsWith(o))) continue;
    const m = make();
    const file = typeof m === 'string' ? m : path.join(dir, `${kind.replace(/[^a-z0-9]+/gi, '_')}.onnx`);
    if (typeof m !== 'string') saveModel(m, file);
    const rows: Array<[string, string]> = [];
    for (const c of COMMANDS) {
      const out = path.join(dir, 'matrix-out.onnx');
      const r = child<{ ms: number; code: number; maxRssBytes: number; cosine?: number; error?: string }>('cli', [...c, file, '-o', out, '--no-bench', '--json']);
      rows.push([
        c.slice(0, 3).join(' ').replace('quantize --mode ', '').replace(' --calib', '') + (c[0] === 'prune' ? ' 0.3' : ''),
        `exit ${r.code}  ${(r.ms / 1000).toFixed(1)} s  ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB  ${r.cosine !== undefined ? `cosine ${r.cosine.toFixed(5)}` : (r.error ?? '')}`,
      ]);
      fs.rmSync(out, { force: true });
    }
    report(`matrix: ${kind}`, rows);
  }
}
