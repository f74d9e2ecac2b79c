/**
 * Bench children: each measurement runs in a fresh process so peak RSS is its own.
 * Prints one JSON line.
 */
import * as fs from 'fs';
import { analyzeModel } from '../src/core/analysis/analyze';
import { openModel } from '../src/core/formats/registry';

const [task, ...args] = process.argv.slice(2);

function out(o: object) {
  process.stdout.write(`${JSON.stringify({ ...o, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
}

switch (task) {
  case 'raw-read': {
    const t = process.hrtime.bigint();
    const b = fs.readFileSync(args[0]);
    // Touch every page so the read is not lazily skipped.
    let s = 0;
    for (let i = 0; i < b.length; i += 4096) s += b[i];
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6, bytes: b.length, checksum: s });
    break;
  }
  case 'inspect': {
    const t = process.hrtime.bigint();
    const m = openModel(args[0]);
    const a = analyzeModel(m, { weightStats: true });
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6, params: a.totals.params });
    break;
  }
  default:
    throw new Error(`unknown bench task ${task}`);
}
