import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { modelFiles, openModel } from '../../src/core/formats/registry';
import { ProtoWriter } from '../../src/core/formats/protobuf';
import { DataType } from '../../src/core/ir/dtype';
import { ModelBuilder, modelProto, rng } from './helpers/builder';
import { sampleModel as sampleTflite } from './tflite.test';
import { parseFromCompress } from '../../src/host/compress-messages';
import { parseFromWebview, plainJson } from '../../src/host/webview-messages';
import { saveOnnx } from '../../src/core/formats/onnx';
import { FIXTURES, tmpDir } from './helpers/ort';
import { spawnSync } from 'child_process';
import * as zlib from 'zlib';
import { PNG } from 'pngjs';
import { ModelError } from '../../src/core/errors';
import { decodeImage } from '../../src/core/runtime/data/images';

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

/** An int64 .npy vector. */
function int64Npy(values: bigint[]): Buffer {
  let header = `{'descr': '<i8', 'fortran_order': False, 'shape': (${values.length},), }`;
  header = header.padEnd(64 - 10 - 1) + '\n';
  const body = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => body.writeBigInt64LE(v, i * 8));
  const len = Buffer.alloc(2);
  len.writeUInt16LE(header.length);
  return Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]), len, Buffer.from(header, 'latin1'), body]);
}

describe('hostile input: calibration, evaluation and label data', () => {
  const dir = tmpDir('mc-hostile-data-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cnn = path.join(FIXTURES, 'digits_cnn.onnx');
  const testX = path.join(FIXTURES, 'digits_test_x.npy');
  const samples = 597;

  function expectRefused(args: string[], code: number, pattern: RegExp) {
    const r = cli([...args, '--no-bench', '-o', path.join(dir, 'out.onnx')]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0], pattern);
    assert.ok(!fs.existsSync(path.join(dir, 'out.onnx')), 'refused before any output');
  }

  it('refuses non-finite and empty data files naming the file and the first bad sample', function () {
    this.timeout(120_000);
    const nan = path.join(CASES, 'calib-all-nan.npy');
    expectRefused(['prune', cnn, '--structured', '--ratio', '0.3', '--recover', 'reconstruct', '--calib', nan], 3, /calib-all-nan\.npy: sample 0 holds a non-finite value/);
    expectRefused(['quantize', cnn, '--mode', 'dynamic', '--eval', nan], 3, /calib-all-nan\.npy: sample 0/);
    // One infinity in sample 7 of an otherwise valid copy of the test data.
    const bytes = fs.readFileSync(testX);
    const dataOffset = 10 + bytes.readUInt16LE(8);
    bytes.writeFloatLE(Infinity, dataOffset + (7 * 64 + 5) * 4);
    const inf = path.join(dir, 'one-inf.npy');
    fs.writeFileSync(inf, bytes);
    expectRefused(['quantize', cnn, '--mode', 'static', '--calib', inf], 3, /one-inf\.npy: sample 7 holds a non-finite value .* element 5; calibration and evaluation data must be finite/);
    // Training data is named as such.
    expectRefused(['train', cnn, '--train', inf, '--train-labels', path.join(FIXTURES, 'digits_test_y.npy'), '--val-split', '0.1', '--epochs', '1'], 3, /one-inf\.npy: sample 7 holds a non-finite value .* element 5; training data must be finite/);
    expectRefused(['quantize', cnn, '--mode', 'static', '--calib', path.join(CASES, 'calib-zero-samples.npy')], 3, /calib-zero-samples\.npy: holds no samples/);
  });

  it('refuses labels outside the output\'s classes, int64 labels that would wrap, and too few labels (naming the labels file)', function () {
    this.timeout(120_000);
    const run = ['quantize', cnn, '--mode', 'dynamic', '--eval', testX, '--labels'];
    expectRefused([...run, path.join(CASES, 'labels-minus1.npy')], 3, /labels-minus1\.npy: label -1 of sample \d+ is not a class index/);
    expectRefused([...run, path.join(CASES, 'labels-2pow62.npy')], 3, /labels-2pow62\.npy: label 4611686018427387904 of sample \d+/);
    for (const [bad, re] of [
      [10n, /label 10 of sample 3 is outside the model's 10 classes/],
      [1000n, /label 1000 of sample 3 is outside/],
      [2n ** 32n, /label 4294967296 of sample 3 is not a class index/],
    ] as Array<[bigint, RegExp]>) {
      const f = path.join(dir, `labels-${bad}.npy`);
      fs.writeFileSync(f, int64Npy(Array.from({ length: samples }, (_, i) => (i === 3 ? bad : BigInt(i % 10)))));
      expectRefused([...run, f], 3, re);
    }
    const few = path.join(dir, 'few-labels.npy');
    fs.writeFileSync(few, int64Npy([1n, 2n, 3n]));
    expectRefused([...run, few], 2, new RegExp(`labels file ${few.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} holds 3 labels for ${samples} samples`));
  });

  it('refuses random:N combined with other data, without a bound, or not a count', function () {
    this.timeout(60_000);
    expectRefused(['quantize', cnn, '--mode', 'static', '--calib', 'random:4,random:4'], 2, /cannot be combined with other data \(got 'random:4,random:4'\)/);
    expectRefused(['quantize', cnn, '--mode', 'static', '--calib', `random:4,${testX}`], 2, /cannot be combined/);
    for (const bad of ['random:99999999', 'random:0', 'random:-3', 'random:1e3']) {
      expectRefused(['quantize', cnn, '--mode', 'static', '--calib', bad], 2, /the random sample count must be an integer from 1 to 10,000/);
    }
  });
});

describe('hostile input: images', () => {
  it('refuses a PNG that declares 20000×20000 from its header, before decoding (same 512 MiB limit as JPEG)', () => {
    const dir = tmpDir('mc-hostile-png-');
    try {
      const small = PNG.sync.write(Object.assign(new PNG({ width: 2, height: 2 }), { data: Buffer.alloc(16, 255) }));
      // Declare 20000×20000 in IHDR (with a valid CRC); the pixel data stays that of a 2×2 image.
      const bomb = Buffer.from(small);
      bomb.writeUInt32BE(20000, 16);
      bomb.writeUInt32BE(20000, 20);
      bomb.writeUInt32BE(zlib.crc32(bomb.subarray(12, 29)), 29);
      const f = path.join(dir, 'bomb.png');
      fs.writeFileSync(f, bomb);
      assert.throws(() => decodeImage(f), (e: unknown) => e instanceof ModelError && /bomb\.png: the PNG declares 20000×20000 pixels \(1526 MiB decoded\), over the 512 MiB limit/.test(e.message));
      // The 2×2 original still decodes.
      fs.writeFileSync(f, small);
      assert.equal(decodeImage(f).width, 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A Keras 2 functional model.json (no weights): input → ReLU → ReLU, with the given inbound edits. */
function functionalJson(edit: (layers: Array<Record<string, unknown>>, config: Record<string, unknown>) => void): string {
  const layers: Array<Record<string, unknown>> = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 4], dtype: 'float32' }, inbound_nodes: [] },
    { class_name: 'ReLU', name: 'a', config: { name: 'a' }, inbound_nodes: [[['x', 0, 0, {}]]] },
    { class_name: 'ReLU', name: 'b', config: { name: 'b' }, inbound_nodes: [[['a', 0, 0, {}]]] },
  ];
  const config: Record<string, unknown> = { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['b', 0, 0]] };
  edit(layers, config);
  return JSON.stringify({ format: 'layers-model', modelTopology: { class_name: 'Functional', config, keras_version: '2.10.0', backend: 'tensorflow' }, weightsManifest: [{ paths: [], weights: [] }] });
}

describe('hostile input: TF.js topology validated before TensorFlow.js builds it', () => {
  const dir = tmpDir('mc-hostile-topo-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses (exit 3, naming the layer, no hang) an inbound node naming a missing layer, a bad node index, a cycle, a missing output layer', function () {
    this.timeout(120_000);
    const cases: Array<[string, (l: Array<Record<string, unknown>>, c: Record<string, unknown>) => void, RegExp]> = [
      ['missing', (l) => (l[2].inbound_nodes = [[['ghost_layer', 0, 0, {}]]]), /layer 'b' takes its input from layer 'ghost_layer', which the model does not define/],
      ['node-index', (l) => (l[2].inbound_nodes = [[['a', 3, 0, {}]]]), /layer 'b' reads node 3 of layer 'a', which has 1/],
      ['cycle', (l) => (l[1].inbound_nodes = [[['b', 0, 0, {}]]]), /is on a cycle of layers/],
      ['output', (_l, c) => (c.output_layers = [['nowhere', 0, 0]]), /output names layer 'nowhere'/],
    ];
    for (const [name, edit, re] of cases) {
      const f = path.join(dir, `${name}.json`);
      fs.writeFileSync(f, functionalJson(edit));
      assert.throws(() => openModel(f), (e: unknown) => e instanceof ModelError && re.test(e.message), name);
      const r = cli(['quantize', f, '--mode', 'fp16', '--no-bench', '-o', path.join(dir, `${name}.out.json`)]);
      assert.equal(r.code, 3, `${name}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    // The unedited model opens.
    const ok = path.join(dir, 'ok.json');
    fs.writeFileSync(ok, functionalJson(() => undefined));
    assert.equal(openModel(ok).graph.nodes.length, 2);
  });
});

describe('hostile input: webview messages', () => {
  it('drops a recipe nested 5,000 deep, a cyclic or shared one, or a huge one, without throwing; keeps a plain recipe', () => {
    let deep: Record<string, unknown> = { step: 'quantize' };
    for (let i = 0; i < 5000; i++) deep = { steps: [deep] };
    const cyclic: Record<string, unknown> = { steps: [] };
    (cyclic.steps as unknown[]).push(cyclic);
    const huge = { steps: Array.from({ length: 50_000 }, () => ({ step: 'prune' })) };
    for (const type of ['preview', 'run', 'saveRecipe']) {
      for (const recipe of [deep, cyclic, huge, { steps: [{ ratio: NaN }] }, { x: new Date() }]) {
        assert.equal(parseFromCompress({ type, recipe }), undefined);
      }
      const ok = { steps: [{ step: 'quantize', mode: 'dynamic', options: { perChannel: true } }] };
      const parsed = parseFromCompress({ type, recipe: ok }) as { recipe: unknown };
      assert.deepEqual(parsed.recipe, ok);
      assert.notEqual(parsed.recipe, ok, 'a copy');
    }
    assert.equal(plainJson(JSON.parse(`${'['.repeat(33)}${']'.repeat(33)}`)), undefined);
    assert.deepEqual(plainJson(JSON.parse(`${'['.repeat(32)}${']'.repeat(32)}`)), JSON.parse(`${'['.repeat(32)}${']'.repeat(32)}`));
  });

  it('10,000 random messages per validator: never a throw', () => {
    const r = rng(15);
    const atom = (): unknown => [null, true, 1, -1, 1e308, NaN, 'x'.repeat(Math.floor(r() * 300)), 'ready', 'run', 'layers', 'pick', 'calib', 2 ** 31][Math.floor(r() * 13)];
    const value = (depth: number): unknown => {
      const k = r();
      if (depth > 6 || k < 0.5) return atom();
      if (k < 0.75) return Array.from({ length: Math.floor(r() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (const key of ['type', 'recipe', 'slot', 'requestId', 'offset', 'limit', 'sortBy', 'descending', 'filter', 'index', 'layer', 'command']) if (r() < 0.4) o[key] = value(depth + 1);
      return o;
    };
    for (let i = 0; i < 10_000; i++) {
      const m = value(0);
      parseFromWebview(m);
      parseFromCompress(m);
    }
  });
});

describe('hostile input: read-only formats', () => {
  it('quantize, prune, substitute and compress on a valid TFLite or safetensors file say the format is read-only (one line), never "Protobuf parsing failed"', function () {
    this.timeout(120_000);
    const dir = tmpDir('mc-hostile-ro-');
    try {
      const tfl = path.join(dir, 'm.tflite');
      fs.writeFileSync(tfl, sampleTflite().bytes);
      const st = path.join(dir, 'm.safetensors');
      const header = Buffer.from(JSON.stringify({ 'l.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      fs.writeFileSync(st, Buffer.concat([len, header, Buffer.alloc(16)]));
      const recipe = path.join(dir, 'r.json');
      fs.writeFileSync(recipe, JSON.stringify({ steps: [{ step: 'quantize', mode: 'dynamic' }] }));
      for (const [f, fmt] of [[tfl, 'TFLite'], [st, 'safetensors']]) {
        for (const args of [['quantize', f, '--mode', 'dynamic'], ['prune', f, '--structured', '--ratio', '0.5'], ['substitute', f, '--lowrank'], ['compress', f, '--recipe', recipe]]) {
          const r = cli(args);
          assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
          assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
          assert.match(r.stderr, new RegExp(`${fmt} models are read-only here; ${args[0]} takes ONNX or TF.js`));
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hostile input: shapes of random data', () => {
  const dir = tmpDir('mc-hostile-shape-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('random data for a state input [2, batch, 8] follows its batch axis (with and without --shape, benchmark included)', function () {
    this.timeout(120_000);
    // y = Concat(h, Unsqueeze(x·W, 0)) on axis 0: runs only when h is [2, n, 8] for x [n, 16].
    const b = new ModelBuilder();
    const x = b.input('x', ['batch', 16]);
    const h = b.input('h', [2, 'batch', 8]);
    const xw = b.node('MatMul', [x, b.init('w', [16, 8])])[0];
    const u = b.node('Unsqueeze', [xw, b.ints('axes', [0])])[0];
    b.markOutput(b.node('Concat', [h, u], { axis: 0 })[0], 'y');
    const f = path.join(dir, 'state.onnx');
    saveOnnx(b.model, f);
    for (const extra of [[], ['--shape', 'h=2x1x8', '--shape', 'x=1x16']]) {
      const r = cli(['quantize', f, '--mode', 'dynamic', '--runs', '3', '--samples', '5', ...extra, '-o', path.join(dir, 'q.onnx')]);
      assert.equal(r.code, 0, `${extra.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /fidelity on 5 random samples/);
      assert.match(r.stdout, /latency/i);
    }
  });

  it('--shape reaches the benchmark step (an input with a dynamic feature size)', function () {
    this.timeout(120_000);
    const b = new ModelBuilder();
    const x = b.input('input', ['N', 'F']);
    b.markOutput(b.node('MatMul', [x, b.init('w', [32, 4])])[0], 'y');
    const f = path.join(dir, 'dyn.onnx');
    saveOnnx(b.model, f);
    const r = cli(['quantize', f, '--mode', 'dynamic', '--runs', '3', '--shape', 'input=1x32', '-o', path.join(dir, 'q2.onnx')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /latency/i);
  });
});
