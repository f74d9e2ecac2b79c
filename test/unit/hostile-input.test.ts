import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { modelFiles, openModel } from '../../src/core/formats/registry';
import { ProtoWriter } from '../../src/core/formats/protobuf';
import { DataType } from '../../src/core/ir/dtype';
import { ModelBuilder, modelProto } from './helpers/builder';
import { saveOnnx } from '../../src/core/formats/onnx';
import { FIXTURES, tmpDir } from './helpers/ort';
import { spawnSync } from 'child_process';

const CLI = path.resolve(__dirname, '../../src/cli/main.js');

/** Runs the CLI in a child process (environment: ours plus `env`). */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000, env: merged });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A safetensors file whose header lists `n` zero-size tensors. */
export function manyTensorsSafetensors(n: number): Uint8Array {
  const h: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) h[`t${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}

/** An ONNX model with `n` one-element float initializers and no nodes. */
export function manyInitializersOnnx(n: number): Uint8Array {
  const g = new ProtoWriter().stringField(2, 'g');
  for (let i = 0; i < n; i++) g.messageField(5, new ProtoWriter().packedInt64(1, [1]).varintField(2, DataType.FLOAT).stringField(8, `w${i}`).bytesField(9, new Uint8Array(4)));
  return modelProto(g);
}

describe('hostile input: sizes taken from the file', () => {
  const dir = tmpDir('mc-hostile-sizes-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('opens and analyses 150,000 tensors (safetensors header, ONNX initializers) without overflowing the stack', function () {
    this.timeout(120_000);
    const st = path.join(dir, 'many.safetensors');
    fs.writeFileSync(st, manyTensorsSafetensors(150_000));
    const onnx = path.join(dir, 'many.onnx');
    fs.writeFileSync(onnx, manyInitializersOnnx(150_000));
    for (const f of [st, onnx]) {
      const m = openModel(f);
      analyzeModel(m);
      assert.deepEqual(modelFiles(f, m), [path.resolve(f)]);
    }
    assert.equal(openModel(onnx).graph.initializers.size, 150_000);
  });
});

export const CASES = path.join(FIXTURES, 'hostile');

/** Copies a folder (or file) into `dir`, writable, and returns the copy's path. */
export function copyCase(src: string, dir: string): string {
  const dst = path.join(dir, path.basename(src));
  fs.cpSync(src, dst, { recursive: true });
  for (const f of fs.statSync(dst).isDirectory() ? fs.readdirSync(dst).map((n) => path.join(dst, n)) : [dst]) fs.chmodSync(f, 0o644);
  return dst;
}

/** Bytes of every file under `dir` (by relative path), to prove inputs were left alone. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const f = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    out.set(path.relative(dir, f), require('crypto').createHash('sha256').update(fs.readFileSync(f)).digest('hex'));
  }
  return out;
}

describe('hostile input: no output may name a file of the input', () => {
  const dir = tmpDir('mc-hostile-out-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A copy of the input model with its weights in `weights.bin`. */
  function externalDataModel(): string {
    const sub = fs.mkdtempSync(path.join(dir, 'ext-'));
    return path.join(copyCase(path.join(CASES, 'external-data-as-output'), sub), 'model.onnx');
  }

  it('refuses (exit 2, before any work, input untouched) an output naming the external data, a hard link, a symlinked folder or the planned .data file', () => {
    const model = externalDataModel();
    const folder = path.dirname(model);
    const files = fs.readdirSync(folder);
    const weights = files.find((f) => f !== 'model.onnx');
    assert.ok(weights, 'the model has an external data file');
    const before = snapshot(folder);
    fs.linkSync(path.join(folder, weights), path.join(dir, `hard-${path.basename(folder)}.bin`));
    fs.symlinkSync(folder, path.join(dir, `link-${path.basename(folder)}`));
    const outputs = [
      path.join(folder, weights),
      path.join(folder, '.', '..', path.basename(folder), weights),
      path.join(dir, `hard-${path.basename(folder)}.bin`),
      path.join(dir, `link-${path.basename(folder)}`, weights),
      path.join(dir, `link-${path.basename(folder)}`, 'model.onnx'),
    ];
    // The writer may put external data in `<output>.data`: here that name is a hard link to the input's weights.
    fs.linkSync(path.join(folder, weights), path.join(dir, `planned-${path.basename(folder)}.onnx.data`));
    outputs.push(path.join(dir, `planned-${path.basename(folder)}.onnx`));
    for (const o of outputs) {
      for (const args of [['quantize', model, '--mode', 'fp16'], ['prune', model, '--unstructured', '--ratio', '0.5'], ['quantize', model, '--mode', 'dynamic']]) {
        const r = cli([...args, '--no-bench', '-o', o]);
        assert.equal(r.code, 2, `${args.join(' ')} -o ${o}: ${r.stderr}`);
        assert.match(r.stderr, /refusing to overwrite the input/);
      }
    }
    assert.deepEqual(snapshot(folder), before);
  });

  it('refuses a TF.js output whose shards would replace the input\'s shards', () => {
    const sub = fs.mkdtempSync(path.join(dir, 'tfjs-'));
    fs.cpSync(path.join(FIXTURES, 'tfjs'), sub, { recursive: true });
    const shard = fs.readdirSync(sub).find((f) => f.endsWith('.bin'))!;
    // The writer names shards `<name>.group1-shard1of1.bin`: an input shard of that name is protected.
    fs.renameSync(path.join(sub, shard), path.join(sub, `out.${shard}`));
    const json = JSON.parse(fs.readFileSync(path.join(sub, 'model.json'), 'utf8'));
    for (const g of json.weightsManifest) g.paths = g.paths.map((p: string) => `out.${p}`);
    fs.writeFileSync(path.join(sub, 'model.json'), JSON.stringify(json));
    const before = snapshot(sub);
    const r = cli(['quantize', path.join(sub, 'model.json'), '--mode', 'fp16', '--no-bench', '-o', path.join(sub, 'out.json')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /weight shard/);
    assert.deepEqual(snapshot(sub), before);
  });
});

/** Every file and folder under `dir` (relative paths). */
function tree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

describe('hostile input: nothing written outside the output (telemetry off)', () => {
  it('a CLI run with a fresh HOME and TMPDIR, benchmark children included, creates no file there outside the output', function () {
    this.timeout(180_000);
    const root = tmpDir('mc-hostile-home-');
    try {
      const home = path.join(root, 'home');
      const tmp = path.join(root, 'tmp');
      const out = path.join(root, 'out');
      for (const d of [home, tmp, out]) fs.mkdirSync(d);
      const unused = path.join(root, 'unused.onnx');
      const m = new ModelBuilder();
      m.input('x', [1, 4]);
      m.init('unused', [4]);
      m.markOutput(m.node('MatMul', ['x', m.init('w', [4, 4])])[0], 'y');
      saveOnnx(m.model, unused);
      // The product must turn telemetry off itself: the variable is removed from the child's environment.
      const env: NodeJS.ProcessEnv = { HOME: home, TMPDIR: tmp, XDG_CACHE_HOME: undefined, ORT_DISABLE_TELEMETRY: undefined };
      for (const args of [
        ['quantize', path.join(FIXTURES, 'digits_mlp.onnx'), '--mode', 'dynamic', '--runs', '3', '-o', path.join(out, 'q.onnx')],
        ['inspect', path.join(FIXTURES, 'tfjs', 'model.json')],
        ['compare', path.join(FIXTURES, 'digits_mlp.onnx'), path.join(out, 'q.onnx')],
        // An unused initializer: ORT logs a coloured "[W:onnxruntime:…] Removing initializer" at its default severity.
        ['compare', unused, unused],
      ]) {
        const r = cli(args, env);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /onnxruntime/, 'no ORT log lines');
      }
      assert.deepEqual(tree(home), [], 'HOME stays empty');
      assert.deepEqual(tree(tmp), [], 'TMPDIR stays empty');
      assert.deepEqual(tree(out), ['q.onnx']);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('hostile input: control characters from a file never reach the terminal raw', () => {
  const dir = tmpDir('mc-hostile-esc-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const EVIL = '\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED\nSECOND\r\0\u009b31m\u202e';
  /** Any control character but the line feed, or a bidi override. */
  const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

  function check(r: { code: number | null; stdout: string; stderr: string }, what: string) {
    assert.doesNotMatch(r.stdout, RAW, `${what}: stdout`);
    assert.doesNotMatch(r.stderr, RAW, `${what}: stderr`);
    assert.ok(!/(^|\n)SECOND/.test(r.stdout) && !/(^|\n)SECOND/.test(r.stderr), `${what}: a name's line feed split a line`);
  }

  it('escapes names in tables, notes and one-line errors (the shipped reproducers and generated valid models)', function () {
    this.timeout(120_000);
    for (const f of fs.readdirSync(path.join(CASES, 'escape-sequences-in-names'))) {
      const r = cli(['inspect', path.join(CASES, 'escape-sequences-in-names', f)]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
      check(r, f);
    }
    // A valid ONNX model whose node, tensor, input and output names are hostile.
    const b = new ModelBuilder();
    const x = b.input(`x${EVIL}`, [1, 16]);
    const w = b.init(`w${EVIL}`, [16, 8]);
    b.markOutput(b.node('MatMul', [x, w], {}, 1, `mm${EVIL}`)[0], `y${EVIL}`);
    const onnx = path.join(dir, 'names.onnx');
    saveOnnx(b.model, onnx);
    // A valid safetensors file with a hostile tensor name.
    const header = Buffer.from(JSON.stringify({ [`layer${EVIL}.weight`]: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const st = path.join(dir, 'names.safetensors');
    fs.writeFileSync(st, Buffer.concat([len, header, Buffer.alloc(16)]));
    for (const args of [
      ['inspect', onnx],
      ['inspect', onnx, '--json'],
      ['inspect', st],
      ['quantize', onnx, '--mode', 'dynamic', '--no-bench', '-o', path.join(dir, 'q.onnx')],
      ['quantize', st, '--mode', 'dynamic'],
    ]) {
      const r = cli(args);
      assert.ok(r.code === 0 || r.code === 2 || r.code === 3, `${args.join(' ')}: ${r.stderr}`);
      check(r, args.join(' '));
    }
  });
});
