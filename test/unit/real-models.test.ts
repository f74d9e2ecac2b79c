import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel, macsTotalLabel } from '../../src/core/analysis/analyze';
import { DataType } from '../../src/core/ir/dtype';
import { outerRefs } from '../../src/core/ir/graph';
import { defaultInputShape, inferShapes } from '../../src/core/ir/shape-inference';
import { assertNoStack, cli } from './cli.test';
import { ModelBuilder } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';
import { denseConcatChain, detector, ocrRecognizer, vad, VAD_LSTM_MACS, VAD_LSTM_PARAMS } from './helpers/standins';

describe('real-model kinds: symbolic dims and MACs', () => {
  it('keeps a symbolic batch through a Pad with zero pads (DenseNet transition) and counts every conv', () => {
    const m = denseConcatChain(2);
    const s = inferShapes(m);
    const pad = m.graph.nodes.find((n) => n.opType === 'Pad')!;
    assert.deepEqual(s.types.get(pad.outputs[0])!.shape, ['N', 8, 32, 32]);
    const a = analyzeModel(m);
    assert.equal(a.totals.unknownMacsNodes, 0);
    assert.equal(a.macsPartial, false);
    const convs = a.layers.filter((l) => l.op === 'Conv');
    assert.equal(convs.length, 4);
    assert.ok(convs.every((c) => c.macs !== null && c.macs > 0));
    const expected = 32 * 32 * (8 * 27 + 4 * 8 * 9 + 4 * 12 * 9 + 8 * 16);
    assert.equal(a.totals.macs, expected);
    assert.equal(macsTotalLabel(a, String), String(expected));
  });

  it('symbolic +0 and ×1 keep the symbol; other symbolic arithmetic is unknown', () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', ['N', 4]);
    const [shape] = b.node('Shape', [x]);
    const [plus0] = b.node('Add', [shape, b.ints('z', [0, 0])]);
    const [times1] = b.node('Mul', [plus0, b.ints('o', [1, 1])]);
    const [plus1] = b.node('Add', [times1, b.ints('one', [1, 1])]);
    const [r1] = b.node('Reshape', [x, times1]);
    const [r2] = b.node('Reshape', [x, plus1]);
    b.markOutput(r1, 'y1');
    b.markOutput(r2, 'y2');
    const s = inferShapes(b.build());
    assert.deepEqual(s.types.get('y1')!.shape, ['N', 4]);
    assert.deepEqual(s.types.get('y2')!.shape, [null, 5]);
  });

  it('OCR recognizer [N,3,48,W]: MACs at the default width, the assumption stated, no dim 0', () => {
    const a = analyzeModel(ocrRecognizer());
    assert.deepEqual(a.assumedDims, ['x[3]=224 (image width)']);
    assert.equal(a.totals.unknownMacsNodes, 0);
    const conv1 = 16 * 24 * 112 * 27;
    const conv2 = 32 * 12 * 56 * 144;
    const proj = 56 * 40 * 32;
    assert.equal(a.totals.macs, conv1 + conv2 + proj);
    for (const l of a.layers) for (const sh of l.outputShapes) assert.ok(!sh || !sh.includes(0), `${l.name} has a 0 dim`);
    assert.deepEqual(a.outputs[0].shape, ['N', 56, 40]);
    // An explicit shape wins over the defaults, and nothing is then assumed.
    const fixed = analyzeModel(ocrRecognizer(), { inputShapes: { x: [1, 3, 48, 320] } });
    assert.deepEqual(fixed.assumedDims, []);
    assert.equal(fixed.totals.macs, 16 * 24 * 160 * 27 + 32 * 12 * 80 * 144 + 80 * 40 * 32);
  });

  it('detector [N,3,H,W] gets a square 224 image; VAD audio [?,?] gets 16000 samples', () => {
    const d = analyzeModel(detector());
    assert.deepEqual(d.assumedDims, ['x[2]=224 (image height)', 'x[3]=224 (image width)']);
    assert.equal(d.totals.macs, 8 * 112 * 112 * 27 + 112 * 112 * 8 * 9);
    const v = defaultInputShape('audio', [null, null], DataType.FLOAT);
    assert.deepEqual(v.shape, [1, 16000]);
    assert.deepEqual(v.assumed, ['audio[1]=16000 (audio samples)']);
    // NHWC with 3 channels, token ids, declared metadata, and a dim no default covers.
    assert.deepEqual(defaultInputShape('img', ['b', null, null, 3], DataType.FLOAT, { keepBatch: true }).shape, ['b', 224, 224, 3]);
    assert.deepEqual(defaultInputShape('ids', ['b', 's'], DataType.INT64).shape, [1, 128]);
    assert.deepEqual(defaultInputShape('x', ['n', 3, 'h', 'w'], DataType.FLOAT, { metadata: [['shape:x', '1x3x48x320']] }).shape, [1, 3, 48, 320]);
    assert.deepEqual(defaultInputShape('f', ['n', 't', 80], DataType.FLOAT).open, [1]);
  });

  it('a partial total says so', () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', ['N', 8]);
    const [y] = b.node('MatMul', [x, b.init('w', [8, 4])]);
    const [z] = b.node('Mystery', [y]);
    b.graph.nodes[1].domain = 'example.custom';
    b.markOutput(z, 'z');
    const a = analyzeModel(b.build());
    assert.equal(a.totals.unknownMacsNodes, 1);
    assert.equal(a.macsPartial, true);
    assert.equal(macsTotalLabel(a, String), '≥32');
  });

  it('quantized ops get MAC rules or are unknown, never 0-and-known', () => {
    const b = new ModelBuilder(17);
    const x = b.input('x', ['N', 16]);
    const [dq] = b.node('DynamicQuantizeMatMul', [x, b.init('wq', [16, 8], new Int8Array(128), DataType.INT8), b.init('s', [], Float32Array.of(0.1))]);
    b.graph.nodes[0].domain = 'com.microsoft';
    const [att] = b.node('QAttention', [dq]);
    b.graph.nodes[1].domain = 'com.microsoft';
    b.markOutput(att, 'y');
    const a = analyzeModel(b.build());
    const dqm = a.layers.find((l) => l.op === 'DynamicQuantizeMatMul')!;
    assert.deepEqual(dqm.outputShapes[0], ['N', 8]);
    assert.equal(dqm.macs, 16 * 8);
    const qa = a.layers.find((l) => l.op === 'QAttention')!;
    assert.equal(qa.macs, null);
    assert.ok(a.totals.unknownMacsNodes >= 1);
  });
});

describe('real-model kinds: weights inside control flow', () => {
  it('VAD stand-in: LSTM weights as Constants in an If branch, read in nested Ifs, are all counted once', () => {
    const m = vad();
    const a = analyzeModel(m);
    assert.equal(a.totals.params, 2 * VAD_LSTM_PARAMS);
    const lstms = a.layers.filter((l) => l.op === 'LSTM');
    assert.equal(lstms.length, 3);
    assert.deepEqual(lstms.map((l) => l.params).sort((x, y) => x - y), [0, VAD_LSTM_PARAMS, VAD_LSTM_PARAMS]);
    assert.ok(lstms.every((l) => l.scope && l.macs === VAD_LSTM_MACS));
    // An If costs its largest branch, not the sum of its branches.
    const outer = a.layers.find((l) => l.name === 'outer_if')!;
    assert.deepEqual(outer.branchMacs, [VAD_LSTM_MACS, VAD_LSTM_MACS]);
    assert.equal(a.totals.macs, VAD_LSTM_MACS);
    assert.deepEqual(a.assumedDims, ['audio[1]=16000 (audio samples)']);
  });

  it('indexes consumers across subgraph boundaries', () => {
    const m = vad();
    const outer = m.graph.nodes.find((n) => n.name === 'outer_if')!;
    const xt = m.graph.nodes.find((n) => n.opType === 'Transpose')!.outputs[0];
    assert.deepEqual(outerRefs(outer).sort(), ['cond', xt].sort());
    const { consumers } = m.graph.index();
    assert.ok(consumers.get(xt)!.includes(outer));
    // The producer of a value read only inside a branch sorts before the If.
    m.graph.nodes.reverse();
    const order = m.graph.topoOrder();
    assert.ok(order.findIndex((n) => n.opType === 'Transpose') < order.indexOf(outer));
  });
});

describe('real-model kinds: transforms see values used inside subgraphs', () => {
  it('structured pruning keeps the channels of a conv whose output is read inside an If branch', async () => {
    const { buildDependencyGraph } = await import('../../src/core/transforms/prune/onnx/dependency');
    const { Graph, Node, AttrType } = await import('../../src/core/ir/graph');
    const b = new ModelBuilder(17);
    const x = b.input('x', ['N', 3, 8, 8]);
    const c = b.conv(x, 3, 8, 3);
    const cond = b.input('cond', [], DataType.BOOL);
    const mk = (name: string, op: string) => {
      const g = new Graph(name);
      g.nodes = [new Node(op, [c], [`${name}_y`])];
      g.outputs = [{ name: `${name}_y`, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: null } }];
      return g;
    };
    const n = new Node('If', [cond], ['y'], 'branchy');
    n.attributes.set('then_branch', { name: 'then_branch', type: AttrType.GRAPH, value: mk('t', 'Relu') });
    n.attributes.set('else_branch', { name: 'else_branch', type: AttrType.GRAPH, value: mk('e', 'Sigmoid') });
    b.graph.nodes.push(n);
    b.output('y');
    const dep = buildDependencyGraph(b.build());
    const g = dep.groups.find((gr) => gr.members.some((m) => m.kind === 'producer'))!;
    assert.ok(g.unsafe && /inside a subgraph of If/.test(g.unsafe), String(g.unsafe));
  });
});

describe('real-model kinds: batches the model accepts, streamed capture', () => {
  const fixedBatchModel = path.join(FIXTURES, 'fixed-batch-convtranspose.onnx');

  it('every transform works on a model with a fixed batch of 1 (evaluation and calibration feed batches of 1)', function () {
    this.timeout(300_000);
    const dir = tmpDir();
    const commands = [
      ['quantize', '--mode', 'static', '--calib', 'random:8'],
      ['quantize', '--mode', 'dynamic'],
      ['quantize', '--mode', 'fp16'],
      ['prune', '--structured', '--ratio', '0.3'],
      // Nothing here can be made depthwise-separable (a ConvTranspose and a 1×1 conv): an unchanged copy, verified.
      ['substitute', '--depthwise'],
    ];
    for (const [k, c] of commands.entries()) {
      const out = path.join(dir, `o${k}.onnx`);
      const r = cli([...c, fixedBatchModel, '-o', out, '--no-bench', '--json']);
      assert.equal(r.code, 0, `${c.join(' ')}: ${r.stderr}`);
      const j = JSON.parse(r.stdout);
      assert.ok(j.fidelity.samples > 0 && j.fidelity.batchSize === 1, `${c.join(' ')} reports fidelity on batches of 1`);
      assert.ok(fs.existsSync(out));
    }
  });

  it('the CLI sizes random data from the model metadata shape:<input> when declared', function () {
    this.timeout(120_000);
    const { saveModel } = require('../../src/core/formats/registry') as typeof import('../../src/core/formats/registry');
    const dir = tmpDir();
    const declared = ocrRecognizer();
    declared.metadata = [['shape:x', '1x3x48x64']];
    const withMeta = path.join(dir, 'ocr-meta.onnx');
    const plain = path.join(dir, 'ocr.onnx');
    saveModel(declared, withMeta);
    saveModel(ocrRecognizer(), plain);
    for (const c of [['quantize', '--mode', 'static', '--calib', 'random:4'], ['quantize', '--mode', 'dynamic']]) {
      const r = cli([...c, withMeta, '-o', path.join(dir, 'o.onnx'), '--no-bench', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.match(j.fidelity.data, /x\[3\]=64 \(model metadata\)/, j.fidelity.data);
      // Without the declaration, the image default applies.
      const p = cli([...c, plain, '-o', path.join(dir, 'p.onnx'), '--no-bench', '--json']);
      assert.equal(p.code, 0, p.stderr);
      assert.match(JSON.parse(p.stdout).fidelity.data, /x\[3\]=224 \(image width\)/);
    }
    // Sensitivity analysis binds its own random data: the metadata applies there too.
    const s = cli(['sensitivity', withMeta, '--ratios', '0.5', '--samples', '2', '--json']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(JSON.parse(s.stdout).data, /x\[3\]=64 \(model metadata\)/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--samples bounds the report on the calibration data: fidelity on its first N samples', function () {
    this.timeout(60_000);
    const dir = tmpDir();
    const r = cli(['quantize', path.join(FIXTURES, 'digits_cnn.onnx'), '--mode', 'static', '--calib', 'random:16', '--samples', '4', '-o', path.join(dir, 'q.onnx'), '--no-bench', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.fidelity.samples, 4);
    assert.match(j.fidelity.data, /^the first 4 of 16 random samples/);
    assert.ok(j.notes.some((n: string) => /minmax on 16 samples/.test(n)), 'calibration still uses all 16');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('compare refuses labels of a different length, naming both counts', async () => {
    const { compareModels } = await import('../../src/core/runtime/compare');
    const { ModelSession } = await import('../../src/core/runtime/session');
    const { bindDataset } = await import('../../src/core/runtime/data/dataset');
    const s = await ModelSession.create(fixedBatchModel);
    try {
      const data = bindDataset(s.inputs, [], { randomSamples: 5 });
      await assert.rejects(compareModels(s, s, data, { batchSize: 32, labels: new Int32Array(6) }), /6 entries but the data holds 5 samples/);
      const r = await compareModels(s, s, data, { batchSize: 32 });
      assert.equal(r.batchSize, 1); // the model's fixed batch, not the request
      assert.equal(r.samples, 5);
    } finally {
      await s.release();
    }
  });

  it('grouped capture bounds each batch and gives the same calibration ranges as one group', async () => {
    const { calibrate } = await import('../../src/core/transforms/quantize/calibrate');
    const { activationBytesPerSample, planCaptureGroups } = await import('../../src/core/runtime/capture');
    const { bindDataset } = await import('../../src/core/runtime/data/dataset');
    const m = denseConcatChain(3);
    const names = m.graph.nodes.filter((n) => n.opType !== 'GlobalAveragePool').map((n) => n.outputs[0]);
    const data = bindDataset([{ name: 'x', dtype: DataType.FLOAT, shape: ['N', 3, 32, 32] }], [], { randomSamples: 12, seed: 3 });
    const per = activationBytesPerSample(m, names, data);
    assert.equal(per.get(m.graph.nodes[0].outputs[0]), 8 * 32 * 32 * 4);
    const small = 3 * 8 * 32 * 32 * 4 * 4; // room for about three tensors of 4 samples
    const plan = planCaptureGroups(per, names, 8, small);
    assert.ok(plan.groups.length > 1 && plan.batchSize <= 8);
    for (const g of plan.groups) assert.ok(g.reduce((a, n) => a + per.get(n)! * plan.batchSize, 0) <= small || g.length === 1);
    // As few passes as the bound allows: a smaller batch before a second group.
    const total = names.reduce((a, n) => a + per.get(n)!, 0);
    assert.equal(plan.batchSize, 1);
    assert.ok(total > small && plan.groups.length <= 2 * Math.ceil(total / small), `${plan.groups.length} groups for ${total} bytes per sample`);
    const onePass = planCaptureGroups(per, names, 8, 2.5 * total);
    assert.deepEqual([onePass.batchSize, onePass.groups.length], [2, 1]);
    assert.deepEqual(planCaptureGroups(per, names, 8, 100 * total).batchSize, 8);
    const one = await calibrate(m, names, data, { method: 'percentile', batchSize: 8 });
    const grouped = await calibrate(m, names, data, { method: 'percentile', batchSize: 8, maxBatchBytes: small });
    for (const n of names) {
      assert.ok(Math.abs(one.get(n)!.min - grouped.get(n)!.min) < 1e-6 && Math.abs(one.get(n)!.max - grouped.get(n)!.max) < 1e-6, n);
    }
  });
});

describe('progress of long jobs', () => {
  it('extrapolates an ETA per stage, and none before there is enough to go on', async () => {
    const { ProgressTracker } = await import('../../src/core/util/progress');
    let t = 0;
    const events: Array<{ stage: string; fraction?: number; etaSeconds?: number }> = [];
    const p = new ProgressTracker((e) => events.push(e), () => t);
    p.report('calibrating', 0);
    t = 500;
    p.report('calibrating', 0.1);
    t = 4000;
    p.report('calibrating', 0.5);
    t = 5000;
    p.report('measuring fidelity');
    assert.equal(events[1].etaSeconds, undefined); // under 1 s into the stage
    assert.equal(events[2].etaSeconds, 4); // 4 s for half: 4 s to go
    assert.deepEqual([events[3].stage, events[3].etaSeconds], ['measuring fidelity', undefined]);
  });

  it('the CLI prints plain stage lines on stderr when it is not a terminal, none with --json unless --progress', function () {
    this.timeout(120_000);
    const dir = tmpDir();
    const model = path.join(FIXTURES, 'fixed-batch-convtranspose.onnx');
    const run = (...extra: string[]) => cli(['quantize', '--mode', 'dynamic', model, '-o', path.join(dir, 'o.onnx'), '--no-bench', '--samples', '4', ...extra]);
    const plain = run();
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stderr, /^\[\d+s\] measuring fidelity/m);
    assert.doesNotMatch(run('--json').stderr, /measuring/);
    assert.match(run('--json', '--progress').stderr, /measuring fidelity/);
  });
});

describe('files over 2 GiB', () => {
  it('the zipped-size estimate streams a sparse 2 GiB + 4 KiB file in bounded memory', async function () {
    this.timeout(600_000);
    const { deflatedSize } = await import('../../src/core/analysis/stats');
    const dir = tmpDir();
    const f = path.join(dir, 'weights.bin');
    const fd = fs.openSync(f, 'w');
    fs.writeSync(fd, Buffer.from([1, 2, 3, 4]), 0, 4, 2 ** 31); // a hole of 2 GiB, then 4 bytes
    fs.closeSync(fd);
    assert.ok(fs.statSync(f).size > 2 ** 31);
    const rssBefore = process.memoryUsage().rss;
    const z = deflatedSize([f]);
    assert.ok(z > 0 && z < 2 ** 31 / 500, `deflated ${z} bytes`);
    assert.ok(process.memoryUsage().rss - rssBefore < 512 * 2 ** 20, 'memory stays bounded');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('pruning a model whose external data is over 2 GiB', () => {
  /** sha256 of a small file. */
  const hash = (f: string) => require('crypto').createHash('sha256').update(fs.readFileSync(f)).digest('hex') as string;

  it('prune --unstructured and --structured: exit 0, the output loads, the input is unchanged', function () {
    this.timeout(300_000);
    const { saveModel, openModel } = require('../../src/core/formats/registry') as typeof import('../../src/core/formats/registry');
    const { Tensor } = require('../../src/core/ir/tensor') as typeof import('../../src/core/ir/tensor');
    const dir = tmpDir();
    // A zero-filled embedding table of 2 GiB + 4 KiB, made with ftruncate: a hole, no disk.
    const rows = 2 ** 19 + 1;
    const bigBytes = rows * 1024 * 4;
    const zeros = path.join(dir, 'zeros.bin');
    const fd = fs.openSync(zeros, 'w');
    fs.ftruncateSync(fd, bigBytes);
    fs.closeSync(fd);
    const sparse = (f: string) => fs.statSync(f).blocks * 512 < 64 * 2 ** 20;
    assert.ok(sparse(zeros), `the file system of ${dir} cannot hold a sparse file (${fs.statSync(zeros).blocks * 512} bytes allocated for ${bigBytes}): this test needs one`);
    const b = new ModelBuilder(17);
    const x = b.input('x', ['N', 1024]);
    const ids = b.input('ids', ['N'], DataType.INT64);
    b.graph.initializers.set('embed', new Tensor('embed', DataType.FLOAT, [rows, 1024], { kind: 'external', file: zeros, offset: 0, length: bigBytes }));
    const [row] = b.node('Gather', ['embed', ids], { axis: 0 });
    const [h] = b.node('Relu', [b.node('MatMul', [b.node('Add', [x, row])[0], b.init('w1', [1024, 64])])[0]]);
    const [y] = b.node('MatMul', [h, b.init('w2', [64, 16])]);
    b.markOutput(y, 'y');
    const input = path.join(dir, 'big.onnx');
    saveModel(b.build(), input, { externalData: 'always' });
    fs.rmSync(zeros);
    const data = `${input}.data`;
    assert.ok(fs.statSync(data).size > 2 ** 31, 'external data over 2 GiB');
    assert.ok(sparse(data), 'the zeros were written as a hole');
    const before = { model: hash(input), size: fs.statSync(data).size, mtime: fs.statSync(data).mtimeMs };
    for (const [k, c] of [['--unstructured', '--ratio', '0.5'], ['--structured', '--ratio', '0.25']].entries()) {
      const out = path.join(dir, `out${k}.onnx`);
      const r = cli(['prune', input, ...c, '-o', out, '--no-bench', '--samples', '2', '--json']);
      assert.equal(r.code, 0, `prune ${c.join(' ')}: ${r.stderr}`);
      assertNoStack(r.stderr);
      const j = JSON.parse(r.stdout);
      assert.ok(j.fidelity.samples === 2 && j.fidelity.outputs[0].cosine > 0.5, `prune ${c.join(' ')} verified in ONNX Runtime: ${JSON.stringify(j.fidelity.outputs[0])}`);
      const m = openModel(out);
      assert.deepEqual(m.graph.initializers.get('embed')!.dims, [rows, 1024]);
      const w1 = m.graph.initializers.get(m.graph.nodes.find((n) => n.opType === 'MatMul')!.inputs[1])!;
      if (k === 0) assert.ok(w1.toFloat32().filter((v) => v === 0).length >= 1024 * 64 * 0.49, 'half of w1 is zero');
      else assert.deepEqual(w1.dims, [1024, 48]);
      assert.ok(fs.statSync(`${out}.data`).size > 2 ** 31 && sparse(`${out}.data`), 'the output keeps the zeros as a hole');
    }
    assert.deepEqual({ model: hash(input), size: fs.statSync(data).size, mtime: fs.statSync(data).mtimeMs }, before, 'the input is unchanged');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('real-model kinds: control flow in transforms', () => {
  it('fp16 keeps float32 for values read inside If branches (VAD stand-in loads and matches in ORT); the input is untouched', async () => {
    const { convertFp16 } = await import('../../src/core/transforms/quantize/fp16');
    const { ModelSession } = await import('../../src/core/runtime/session');
    const { onnxToBytes } = await import('../../src/core/formats/onnx');
    const m = vad();
    const before = Buffer.from(onnxToBytes(m)).toString('base64');
    const r = convertFp16(m);
    assert.equal(Buffer.from(onnxToBytes(m)).toString('base64'), before);
    const audio = { dtype: DataType.FLOAT, dims: [2, 16000], data: Float32Array.from({ length: 32000 }, (_, i) => Math.sin(i / 7)) };
    const a = await ModelSession.create(m);
    const b = await ModelSession.create(r.model);
    try {
      const ya = (await a.run({ audio }, ['state'])).state.data as Float32Array;
      const yb = (await b.run({ audio }, ['state'])).state.data as Float32Array;
      assert.equal(ya.length, 2 * 32);
      let dot = 0, na = 0, nb = 0;
      for (let i = 0; i < ya.length; i++) {
        dot += ya[i] * yb[i];
        na += ya[i] ** 2;
        nb += yb[i] ** 2;
      }
      assert.ok(dot / Math.sqrt(na * nb) > 0.99);
    } finally {
      await a.release();
      await b.release();
    }
  });
});
