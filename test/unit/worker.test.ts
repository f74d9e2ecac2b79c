import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { JobError, WorkerClient } from '../../src/host/worker-client';
import { FIXTURES, tmpDir } from './helpers/ort';

const SCRIPT = path.resolve(__dirname, '../../src/worker/main.js');
const cnn = path.join(FIXTURES, 'digits_cnn.onnx');

describe('worker process and client', () => {
  let client: WorkerClient;
  beforeEach(() => (client = new WorkerClient(SCRIPT)));
  afterEach(() => client.dispose());

  it('answers inspect with a summary DTO and pages the layer table sorted and filtered', async () => {
    const s = await client.run<{ totals: { params: number }; weightedLayers: number; layerCount: number; layers?: unknown }>({ kind: 'inspect', model: cnn });
    assert.equal(s.totals.params, 356234);
    assert.equal(s.weightedLayers, 5);
    assert.equal(s.layerCount, 11);
    assert.equal(s.layers, undefined, 'the summary carries no per-layer payload');
    const page = await client.run<{ total: number; rows: Array<{ name: string; macs: number }> }>({ kind: 'layers', model: cnn, offset: 0, limit: 3, sortBy: 'macs', descending: true });
    assert.equal(page.total, 11);
    assert.equal(page.rows.length, 3);
    assert.ok(page.rows[0].macs >= page.rows[1].macs && page.rows[1].macs >= page.rows[2].macs);
    const gemm = await client.run<{ total: number }>({ kind: 'layers', model: cnn, offset: 0, limit: 50, filter: 'gemm' });
    assert.equal(gemm.total, 2);
    const t = await client.run<{ weights: Array<{ histogram: { counts: number[] } }> }>({ kind: 'tensor', model: cnn, layer: '/c1/Conv' });
    assert.equal(t.weights[0].histogram.counts.length, 256);
  });

  it('lays out the graph off the main thread and locates a layer under the current sort', async () => {
    const g = await client.run<{ nodes: Array<{ i: number; x: number; y: number; op: string }>; edges: Array<[number, number]>; layoutMs: number }>({ kind: 'graph', model: cnn });
    assert.equal(g.nodes.length, 11);
    assert.equal(g.edges.length, 10, 'a chain of 11 nodes');
    // Topological order flows downward.
    for (const [a, b] of g.edges) assert.ok(g.nodes[a].y < g.nodes[b].y, `edge ${a}→${b} points down`);
    const loc = await client.run<{ position: number }>({ kind: 'layers', model: cnn, offset: 0, limit: 1, sortBy: 'macs', descending: true, locate: 10 });
    assert.equal(loc.position, 4, 'fc2 (1280 MACs) is fifth by MACs');
  });

  it('previews a recipe in memory: params and MACs after each step, nothing written', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'm.onnx');
    fs.copyFileSync(cnn, src);
    const r = await client.run<{ before: { params: number }; steps: Array<{ step: string; params: number; macs: number }> }>({ kind: 'plan', model: src, recipe: { steps: [{ step: 'prune', ratio: 0.5 }, { step: 'quantize', mode: 'dynamic' }] } });
    assert.equal(r.before.params, 356234);
    assert.deepEqual(r.steps.map((s) => s.step), ['prune', 'quantize']);
    assert.ok(r.steps[0].params < 0.3 * 356234);
    assert.deepEqual(fs.readdirSync(dir), ['m.onnx']);
  });

  it('tells the Compress panel what each format supports, and previews a TF.js recipe', async () => {
    const onnx = await client.run<{ format: string; choices: { steps: string[]; quantizeModes: string[] } }>({ kind: 'recipeChoices', model: cnn });
    assert.equal(onnx.format, 'onnx');
    assert.ok(onnx.choices.quantizeModes.includes('static') && !onnx.choices.quantizeModes.includes('uint8'));
    const tfjsModel = path.resolve(__dirname, '../../../test/fixtures/tfjs/model.json');
    const t = await client.run<{ format: string; choices: { steps: string[]; quantizeModes: string[]; substituteKinds: string[] } }>({ kind: 'recipeChoices', model: tfjsModel });
    assert.equal(t.format, 'tfjs-layers');
    assert.deepEqual(t.choices.quantizeModes, ['uint8', 'uint16', 'fp16']);
    assert.deepEqual(t.choices.substituteKinds, ['depthwise']);
    // Every offered choice is accepted by the engine: one step of each, in memory.
    const r = await client.run<{ before: { params: number }; steps: Array<{ step: string; params: number }> }>({ kind: 'plan', model: tfjsModel, recipe: { steps: [{ step: 'prune', ratio: 0.3, criterion: 'l2' }, { step: 'substitute', kind: 'depthwise' }, { step: 'quantize', mode: 'uint16' }] } });
    assert.equal(r.before.params, 1482);
    assert.deepEqual(r.steps.map((s) => s.step), ['prune', 'substitute', 'quantize']);
    assert.ok(r.steps[1].params < r.steps[0].params && r.steps[0].params < 1482);
  });

  it('measures pruning sensitivity curves for the editor', async () => {
    const r = await client.run<{ metric: string; curves: Array<{ group: string; points: Array<{ ratio: number; drop: number }> }> }>({ kind: 'sensitivity', model: cnn, ratios: [0.5, 0.9], samples: 8 });
    assert.equal(r.metric, 'cosine');
    assert.deepEqual(r.curves.map((c) => c.group), ['/c1/Conv', '/c2/Conv', '/c3/Conv', '/fc1/Gemm']);
    assert.ok(r.curves.every((c) => c.points.length === 2));
  });

  it('reports a bad model as a model error, in one line', async () => {
    const bad = path.join(tmpDir(), 'bad.onnx');
    fs.writeFileSync(bad, 'not a model');
    await assert.rejects(client.run({ kind: 'inspect', model: bad }), (e: Error) => e instanceof JobError && e.kind === 'model' && e.message.includes(bad) && !e.message.includes('\n'));
  });

  it('cancels a running job', async () => {
    const ctl = new AbortController();
    const p = client.run({ kind: 'sleep', ms: 60_000 }, { signal: ctl.signal });
    setTimeout(() => ctl.abort(), 100);
    await assert.rejects(p, (e: Error) => e instanceof JobError && e.kind === 'cancelled');
  });

  it('survives a crash: pending jobs fail clearly and the next job starts a new worker', async () => {
    await client.run({ kind: 'inspect', model: cnn });
    const first = client.pid;
    let crashMessage = '';
    client.onCrash = (m) => (crashMessage = m);
    const sleeping = client.run({ kind: 'sleep', ms: 60_000 });
    await assert.rejects(client.run({ kind: 'crash' }), (e: Error) => e instanceof JobError && e.kind === 'crashed');
    await assert.rejects(sleeping, (e: Error) => e instanceof JobError && e.kind === 'crashed' && /next job starts a new worker/.test(e.message));
    assert.match(crashMessage, /stopped unexpectedly/);
    const s = await client.run<{ totals: { params: number } }>({ kind: 'inspect', model: cnn });
    assert.equal(s.totals.params, 356234);
    assert.notEqual(client.pid, first);
  });

  it('runs the one-click INT8 job with progress and leaves the original byte-identical', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'digits_cnn.onnx');
    fs.copyFileSync(cnn, src);
    const before = fs.readFileSync(src);
    const stages: string[] = [];
    const r = await client.run<{ output: string; mode: string; report: { before: { sizeBytes: number }; after: { sizeBytes: number }; latencyMs: object; fidelity: object } }>(
      { kind: 'quickQuantize', model: src, benchRuns: 5 },
      { onProgress: (s) => stages.push(s) },
    );
    assert.equal(r.mode, 'static');
    assert.equal(r.output, path.join(dir, 'digits_cnn.int8.onnx'));
    assert.ok(fs.existsSync(r.output));
    assert.ok(r.report.after.sizeBytes < 0.3 * r.report.before.sizeBytes);
    assert.ok(r.report.latencyMs && r.report.fidelity);
    assert.ok(stages.length > 0);
    assert.deepEqual(fs.readFileSync(src), before);
  });

  it('validates a recipe coming from the UI as untrusted input', async () => {
    await assert.rejects(
      client.run({ kind: 'compress', model: cnn, output: path.join(tmpDir(), 'x.onnx'), recipe: { steps: [{ step: 'rm -rf' }] } }),
      (e: Error) => e instanceof JobError && e.kind === 'usage' && /unknown step/.test(e.message),
    );
  });
});
