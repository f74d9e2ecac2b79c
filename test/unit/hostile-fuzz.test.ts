import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { saveOnnx } from '../../src/core/formats/onnx';
import { openModel } from '../../src/core/formats/registry';
import { runCli } from '../../src/cli/main';
import { ModelBuilder, rng } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';

/**
 * Seeded, time-bounded fuzzing of the CLI over mutated models: every run must exit 0, 2 or 3,
 * print at most two lines on stderr, leave its inputs byte-identical, and write only outputs
 * that load (ONNX Runtime for .onnx, our reader for TF.js).
 */
const SEED = 15;
const CLI = path.resolve(__dirname, '../../src/cli/main.js');
const BUDGET_MS = 15_000;

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** One mutation of `bytes`: flipped bytes, a truncation, a splice of random bytes, or an edited JSON value. */
function mutate(bytes: Buffer, r: () => number, json: boolean): Buffer {
  const out = Buffer.from(bytes);
  const pick = r();
  if (json) {
    try {
      const doc = JSON.parse(out.toString('utf8'));
      const paths: Array<[Record<string, unknown> | unknown[], string | number]> = [];
      const walk = (v: unknown) => {
        if (paths.length > 5000 || !v || typeof v !== 'object') return;
        for (const k of Object.keys(v)) {
          paths.push([v as Record<string, unknown>, Array.isArray(v) ? Number(k) : k]);
          walk((v as Record<string, unknown>)[k]);
        }
      };
      walk(doc);
      const [obj, key] = paths[Math.floor(r() * paths.length)];
      const repl = [null, -1, 0, 2 ** 40, 1e308, 'ghost', '../../etc/passwd', [], {}, '\x1b[2J', [[[]]]][Math.floor(r() * 11)];
      (obj as Record<string | number, unknown>)[key] = repl;
      return Buffer.from(JSON.stringify(doc));
    } catch {
      /* not JSON after all: fall through to bytes */
    }
  }
  if (pick < 0.5) {
    // Flip 1-8 bytes, mostly in the first 4 KiB where the structure lives.
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) {
      const at = Math.floor(r() * (r() < 0.8 ? Math.min(4096, out.length) : out.length));
      out[at] = Math.floor(r() * 256);
    }
    return out;
  }
  if (pick < 0.75) return out.subarray(0, Math.floor(r() * out.length));
  const at = Math.floor(r() * Math.min(4096, out.length));
  return Buffer.concat([out.subarray(0, at), crypto.randomBytes(1 + Math.floor(r() * 64)), out.subarray(at)]);
}

describe('hostile input: seeded CLI fuzzing', () => {
  const dir = tmpDir('mc-hostile-fuzz-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(`mutated models: exit 0/2/3, ≤ 2 stderr lines, inputs untouched, outputs load (seed ${SEED}, ${BUDGET_MS / 1000} s)`, async function () {
    this.timeout(BUDGET_MS + 60_000);
    const r = rng(SEED);
    // Seeds: small fixtures and a few generated models (an external-data one included).
    const seeds: Array<{ files: string[]; main: string; json: boolean }> = [];
    const gen = path.join(dir, 'seeds');
    fs.mkdirSync(gen);
    for (const f of ['digits_mlp.onnx', 'fixed-batch-convtranspose.onnx']) {
      fs.copyFileSync(path.join(FIXTURES, f), path.join(gen, f));
      seeds.push({ files: [f], main: f, json: false });
    }
    fs.cpSync(path.join(FIXTURES, 'tfjs'), path.join(gen, 'tfjs'), { recursive: true });
    seeds.push({ files: ['tfjs/model.json', 'tfjs/group1-shard1of1.bin'], main: 'tfjs/model.json', json: true });
    const b = new ModelBuilder();
    const x = b.input('x', ['batch', 3, 8, 8]);
    const c = b.conv(x, 3, 4, 3);
    b.markOutput(b.node('Relu', [c])[0], 'y');
    saveOnnx(b.model, path.join(gen, 'conv.onnx'));
    seeds.push({ files: ['conv.onnx'], main: 'conv.onnx', json: false });
    saveOnnx(b.model, path.join(gen, 'ext.onnx'), { externalData: 'always', externalThreshold: 0 });
    seeds.push({ files: ['ext.onnx', 'ext.onnx.data'], main: 'ext.onnx', json: false });
    const header = Buffer.from(JSON.stringify({ 'l.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, 'l.bias': { dtype: 'F16', shape: [2], data_offsets: [16, 20] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(path.join(gen, 'w.safetensors'), Buffer.concat([len, header, Buffer.alloc(20)]));
    seeds.push({ files: ['w.safetensors'], main: 'w.safetensors', json: false });

    const deadline = Date.now() + BUDGET_MS;
    const codes = new Map<number, number>();
    let runs = 0;
    for (let i = 0; Date.now() < deadline; i++) {
      const seed = seeds[i % seeds.length];
      const case_ = path.join(dir, `case${i}`);
      fs.mkdirSync(case_);
      // Copy the seed's files; mutate one of them.
      const victim = seed.files[Math.floor(r() * seed.files.length)];
      for (const f of seed.files) {
        fs.mkdirSync(path.dirname(path.join(case_, f)), { recursive: true });
        const bytes = fs.readFileSync(path.join(gen, f));
        fs.writeFileSync(path.join(case_, f), f === victim ? mutate(bytes, r, seed.json && f.endsWith('.json')) : bytes);
      }
      const input = path.join(case_, seed.main);
      const before = new Map(seed.files.map((f) => [f, sha(path.join(case_, f))]));
      const isJson = seed.main.endsWith('.json');
      const output = path.join(case_, 'out', isJson ? 'o.json' : 'o.onnx');
      const commands = [
        ['inspect', input],
        ['quantize', input, '--mode', isJson ? 'fp16' : ['dynamic', 'fp16', 'int4'][Math.floor(r() * 3)], '--no-bench', '--samples', '4', '-o', output],
        ['prune', input, '--unstructured', '--ratio', '0.5', '--no-bench', '--samples', '4', '-o', output],
      ];
      const args = commands[Math.floor(r() * commands.length)];
      const err: string[] = [];
      let code: number;
      if (isJson) {
        // TF.js runs in a child process: TensorFlow.js keeps global state (layer name counters, backends) other tests rely on.
        const child = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
        code = child.status ?? -1;
        err.push(child.stderr);
      } else code = await runCli(args, { out: () => undefined, err: (t) => err.push(t) });
      runs++;
      codes.set(code, (codes.get(code) ?? 0) + 1);
      const what = `case ${i} (${victim} mutated; ${args.join(' ')})`;
      assert.ok(code === 0 || code === 2 || code === 3, `${what}: exit ${code}: ${err.join('')}`);
      const lines = err.join('').trimEnd().split('\n').filter(Boolean);
      assert.ok(lines.length <= 2, `${what}: ${lines.length} stderr lines:\n${err.join('')}`);
      for (const [f, h] of before) assert.equal(sha(path.join(case_, f)), h, `${what}: input ${f} changed`);
      if (code === 0 && args[0] !== 'inspect') {
        assert.ok(fs.existsSync(output), `${what}: exit 0 without an output`);
        if (isJson) openModel(output);
        else await (await ort.InferenceSession.create(output)).release();
      } else if (code !== 0) {
        assert.ok(!fs.existsSync(output), `${what}: a failed run left ${output}`);
      }
      fs.rmSync(case_, { recursive: true, force: true });
    }
    assert.ok(runs >= 10, `only ${runs} runs in the budget`);
    // Both outcomes are exercised: some mutants are refused, some still work.
    assert.ok((codes.get(3) ?? 0) > 0 && (codes.get(0) ?? 0) > 0, `exit codes: ${JSON.stringify([...codes])}`);
  });
});
