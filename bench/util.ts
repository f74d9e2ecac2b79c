import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Runs a bench child (`node out/bench/child.js <task> ...args`) and returns its JSON line. */
export function child<T>(task: string, args: string[]): T {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'child.js'), task, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
  });
  if (r.status !== 0) throw new Error(`bench child ${task} failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as T;
}

export function benchDir(): string {
  const d = path.join(os.tmpdir(), 'model-compressor-bench');
  fs.mkdirSync(d, { recursive: true });
  return d;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function report(title: string, rows: Array<[string, string]>): void {
  console.log(`\n== ${title}`);
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
}
