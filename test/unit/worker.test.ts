import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { JobError, WorkerClient } from '../../src/host/worker-client';
import type { LayersPageDto, StepFormDto, TrainProgressDto } from '../../src/protocol/jobs';
import { FIXTURES, tmpDir } from './helpers/ort';

const pageOf = (r: LayersPageDto | { position: number }): LayersPageDto => {
  assert.ok('rows' in r, 'a page of rows');
  return r;
};

const SCRIPT = path.resolve(__dirname, '../../src/worker/main.js');
const cnn = path.join(FIXTURES, 'digits_cnn.onnx');

describe('worker process and client', () => {
  let client: WorkerClient;
  beforeEach(() => (client = new WorkerClient(SCRIPT)));
  afterEach(() => client.dispose());

  it('answers inspect with a summary DTO and pages the layer table sorted and filtered', async () => {
    const s = await client.job({ kind: 'inspect', model: cnn });
    assert.equal(s.totals.params, 356234);
    assert.equal(s.weightedLayers, 5);
    assert.equal(s.layerCount, 11);
    assert.equal(s.layers, undefined, 'the summary carries no per-layer payload');
    const page = pageOf(await client.job({ kind: 'layers', model: cnn, offset: 0, limit: 3, sortBy: 'macs', descending: true }));
    assert.equal(page.total, 11);
    assert.equal(page.rows.length, 3);
    assert.ok(page.rows[0].macs! >= page.rows[1].macs! && page.rows[1].macs! >= page.rows[2].macs!);
    const gemm = pageOf(await client.job({ kind: 'layers', model: cnn, offset: 0, limit: 50, filter: 'gemm' }));
    assert.equal(gemm.total, 2);
    const t = await client.job({ kind: 'tensor', model: cnn, layer: '/c1/Conv' });
    assert.equal(t.weights[0].histogram?.counts.length, 256);
  });

  it('lays out the graph off the main thread and locates a layer under the current sort', async () => {
    const g = await client.job({ kind: 'graph', model: cnn });
    assert.equal(g.nodes.length, 11);
    assert.equal(g.edges.length, 10, 'a chain of 11 nodes');
    // Topological order flows downward.
    for (const [a, b] of g.edges) assert.ok(g.nodes[a].y < g.nodes[b].y, `edge ${a}→${b} points down`);
    const loc = await client.job({ kind: 'layers', model: cnn, offset: 0, limit: 1, sortBy: 'macs', descending: true, locate: 10 });
    assert.ok('position' in loc);
    assert.equal(loc.position, 4, 'fc2 (1280 MACs) is fifth by MACs');
  });

  it('previews a recipe in memory: params and MACs after each step, nothing written', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'm.onnx');
    fs.copyFileSync(cnn, src);
    const r = await client.job({ kind: 'plan', model: src, recipe: { steps: [{ step: 'prune', ratio: 0.5 }, { step: 'quantize', mode: 'dynamic' }] } });
    assert.equal(r.before.params, 356234);
    assert.deepEqual(r.steps.map((s) => s.step), ['prune', 'quantize']);
    assert.ok(r.steps[0].params < 0.3 * 356234);
    assert.deepEqual(fs.readdirSync(dir), ['m.onnx']);
  });

  it('tells the Compress panel what each format supports, and previews a TF.js recipe', async () => {
    const onnx = await client.job({ kind: 'stepForms', model: cnn });
    assert.equal(onnx.format, 'onnx');
    const modes = (forms: StepFormDto[]) => forms.find((f) => f.step === 'quantize')!.fields.find((f) => f.key === 'mode')!.values;
    assert.ok(modes(onnx.forms)!.includes('static') && !modes(onnx.forms)!.includes('uint8'));
    const tfjsModel = path.resolve(__dirname, '../../../test/fixtures/tfjs/model.json');
    const t = await client.job({ kind: 'stepForms', model: tfjsModel });
    assert.equal(t.format, 'tfjs-layers');
    assert.deepEqual(modes(t.forms), ['uint8', 'uint16', 'fp16']);
    assert.deepEqual(t.forms.find((f) => f.step === 'substitute')!.fields.find((f) => f.key === 'kind')!.values, ['depthwise']);
    // Every offered choice is accepted by the engine: one step of each, in memory.
    const r = await client.job({ kind: 'plan', model: tfjsModel, recipe: { steps: [{ step: 'prune', ratio: 0.3, criterion: 'l2' }, { step: 'substitute', kind: 'depthwise' }, { step: 'quantize', mode: 'uint16' }] } });
    assert.equal(r.before.params, 1482);
    assert.deepEqual(r.steps.map((s) => s.step), ['prune', 'substitute', 'quantize']);
    assert.ok(r.steps[1].params < r.steps[0].params && r.steps[0].params < 1482);
  });

  it('measures pruning sensitivity curves for the editor', async () => {
    const r = await client.job({ kind: 'sensitivity', model: cnn, ratios: [0.5, 0.9], samples: 8 });
    assert.equal(r.metric, 'cosine');
    assert.deepEqual(r.curves.map((c) => c.group), ['/c1/Conv', '/c2/Conv', '/c3/Conv', '/fc1/Gemm']);
    assert.ok(r.curves.every((c) => c.points.length === 2));
  });

  it('reports a bad model as a model error, in one line', async () => {
    const bad = path.join(tmpDir(), 'bad.onnx');
    fs.writeFileSync(bad, 'not a model');
    await assert.rejects(client.job({ kind: 'inspect', model: bad }), (e: Error) => e instanceof JobError && e.kind === 'model' && e.message.includes(bad) && !e.message.includes('\n'));
  });

  it('cancels a running job', async () => {
    const ctl = new AbortController();
    const p = client.job({ kind: 'sleep', ms: 60_000 }, { signal: ctl.signal });
    setTimeout(() => ctl.abort(), 100);
    await assert.rejects(p, (e: Error) => e instanceof JobError && e.kind === 'cancelled');
  });

  it('survives a crash: pending jobs fail clearly and the next job starts a new worker', async () => {
    await client.job({ kind: 'inspect', model: cnn });
    const first = client.pid;
    let crashMessage = '';
    client.onCrash = (m) => (crashMessage = m);
    const sleeping = client.job({ kind: 'sleep', ms: 60_000 });
    await assert.rejects(client.job({ kind: 'crash' }), (e: Error) => e instanceof JobError && e.kind === 'crashed');
    await assert.rejects(sleeping, (e: Error) => e instanceof JobError && e.kind === 'crashed' && /next job starts a new worker/.test(e.message));
    assert.match(crashMessage, /stopped unexpectedly/);
    const s = await client.job({ kind: 'inspect', model: cnn });
    assert.equal(s.totals.params, 356234);
    assert.notEqual(client.pid, first);
  });

  it('runs the one-click INT8 job with progress and leaves the original byte-identical', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'digits_cnn.onnx');
    fs.copyFileSync(cnn, src);
    const before = fs.readFileSync(src);
    const stages: string[] = [];
    const r = await client.job(
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
      client.job({ kind: 'compress', model: cnn, output: path.join(tmpDir(), 'x.onnx'), recipe: { steps: [{ step: 'rm -rf' }] } }),
      (e: Error) => e instanceof JobError && e.kind === 'usage' && /unknown step/.test(e.message),
    );
  });

  describe('Cancel during training keeps the best model so far', () => {
    const train = path.join(FIXTURES, 'digits_train_x.npy');
    const trainLabels = path.join(FIXTURES, 'digits_train_y.npy');
    const recipe = { steps: [{ step: 'prune', ratio: 0.5, recover: 'finetune', epochsPerStep: 50 }] };

    /** Runs prune → fine-tune on digits_cnn and cancels at the first training progress. */
    async function cancelledRun(dir: string) {
      const src = path.join(dir, 'digits_cnn.onnx');
      fs.copyFileSync(cnn, src);
      const output = path.join(dir, 'digits_cnn.compressed.onnx');
      const ctl = new AbortController();
      const batches: TrainProgressDto[][] = [];
      const r = await client.job(
        { kind: 'compress', model: src, output, recipe, train, trainLabels, benchRuns: 2, keepOnCancel: true },
        {
          signal: ctl.signal,
          onTrainProgress: (b) => {
            batches.push(b);
            ctl.abort();
          },
        },
      );
      return { r, output, batches, src };
    }

    it('streams training progress, stops between steps and saves the best weights, verified, to a temporary file; Keep moves it into place', async () => {
      const dir = tmpDir();
      const { r, output, batches } = await cancelledRun(dir);
      assert.ok(batches.length >= 1 && batches[0][0].phase === 'step' && Number.isFinite(batches[0][0].loss), 'training progress reached the client');
      assert.ok(r.cancelled, 'the result says it was cancelled');
      assert.equal(r.cancelled.stepId, 'prune');
      assert.equal(r.cancelled.step, 1);
      assert.match(r.cancelled.detail, /cancelled/);
      assert.notEqual(r.output, output, 'a temporary file, not the output');
      assert.ok(fs.existsSync(r.output) && !fs.existsSync(output));
      // The kept model is the pruned one (retrained briefly), measured against the original.
      assert.ok(r.report.after.params < 0.5 * r.report.before.params, `pruned: ${r.report.after.params} params`);
      assert.ok(r.report.fidelity, 'fidelity was measured');
      assert.equal(r.report.latencyMs, undefined, 'no latency runs after a cancel');
      const kept = await client.job({ kind: 'resolvePartial', partial: r.cancelled.partial, output, keep: true });
      assert.equal(kept.output, output);
      assert.ok(fs.existsSync(output));
      assert.deepEqual(fs.readdirSync(dir).sort(), ['digits_cnn.compressed.onnx', 'digits_cnn.onnx'], 'the temporary folder is gone');
      const s = await client.job({ kind: 'inspect', model: output });
      assert.equal(s.totals.params, r.report.after.params, 'the kept file is the measured model');
      await assert.rejects(client.job({ kind: 'resolvePartial', partial: r.cancelled.partial, output, keep: true }), (e: Error) => e instanceof JobError && e.kind === 'usage', 'resolved once only');
    });

    it('Discard deletes the temporary file and writes nothing', async () => {
      const dir = tmpDir();
      const { r, output, src } = await cancelledRun(dir);
      const before = fs.readFileSync(cnn);
      assert.ok(r.cancelled && fs.existsSync(r.output));
      await assert.rejects(client.job({ kind: 'resolvePartial', partial: r.cancelled.partial, output: src, keep: true }), /belongs to/, 'only to its own output');
      const d = await client.job({ kind: 'resolvePartial', partial: r.cancelled.partial, output, keep: false });
      assert.equal(d.output, null);
      assert.deepEqual(fs.readdirSync(dir), ['digits_cnn.onnx']);
      assert.deepEqual(fs.readFileSync(src), before, 'the input is untouched');
    });

    it('a cancel outside training still fails the job (nothing kept)', async () => {
      const dir = tmpDir();
      const ctl = new AbortController();
      ctl.abort();
      await assert.rejects(
        client.job({ kind: 'compress', model: cnn, output: path.join(dir, 'x.onnx'), recipe: { steps: [{ step: 'quantize', mode: 'dynamic' }] }, keepOnCancel: true }, { signal: ctl.signal }),
        (e: Error) => e instanceof JobError && e.kind === 'cancelled',
      );
      assert.deepEqual(fs.readdirSync(dir), []);
    });
  });
});

describe('training progress on the wire', () => {
  const { TrainProgressBatcher } = require('../../src/worker/train-progress') as typeof import('../../src/worker/train-progress');
  const ev = (phase: 'step' | 'epoch', epoch: number, step: number): TrainProgressDto => ({ phase, epoch, epochs: 3, step, steps: 10, loss: 1 / (epoch * 10 + step), lr: 1e-3, samplesPerSecond: 100, etaSeconds: 5 });

  it('sends at most one message per interval: every epoch event, and only the latest step', () => {
    let now = 0;
    const sent: TrainProgressDto[][] = [];
    const b = new TrainProgressBatcher((x) => sent.push(x), 100, () => now);
    b.push(ev('step', 1, 1)); // the first goes at once
    assert.equal(sent.length, 1);
    for (let s = 2; s <= 10; s++) {
      now += 5;
      b.push(ev('step', 1, s));
    }
    b.push(ev('epoch', 1, 10));
    b.push(ev('step', 2, 1));
    b.push(ev('step', 2, 2));
    assert.equal(sent.length, 1, 'nothing more within 100 ms');
    now = 100;
    b.flush();
    assert.deepEqual(sent[1].map((p) => `${p.phase} ${p.epoch}.${p.step}`), ['step 1.10', 'epoch 1.10', 'step 2.2']);
    b.flush();
    assert.equal(sent.length, 2, 'an empty flush sends nothing');
  });

  it('flushes by itself after the interval', async () => {
    const sent: TrainProgressDto[][] = [];
    const b = new TrainProgressBatcher((x) => sent.push(x), 20);
    b.push(ev('step', 1, 1));
    b.push(ev('step', 1, 2));
    assert.equal(sent.length, 1);
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(sent.map((x) => x.length), [1, 1]);
    assert.equal(sent[1][0].step, 2);
  });
});
