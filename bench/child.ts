/**
 * Bench children: each measurement runs in a fresh process so peak RSS is its own.
 * Prints one JSON line.
 */
import * as fs from 'fs';
import { analyzeModel } from '../src/core/analysis/analyze';
import { openModel, saveModel } from '../src/core/formats/registry';
import { quantizeDynamic } from '../src/core/transforms/quantize/dynamic';
import { quantizeTfjsWeights } from '../src/core/transforms/quantize/tfjs';

// Before onnxruntime-node loads (it is required lazily below and by the engine).
process.env.ORT_DISABLE_TELEMETRY = '1';

const [task, ...args] = process.argv.slice(2);

function out(o: object) {
  process.stdout.write(`${JSON.stringify({ ...o, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
}

switch (task) {
  case 'raw-read': {
    // Every file named (a model and its shards): read whole, every page touched.
    const t = process.hrtime.bigint();
    let s = 0;
    let n = 0;
    for (const f of args) {
      const b = fs.readFileSync(f);
      for (let i = 0; i < b.length; i += 4096) s += b[i];
      n += b.length;
    }
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6, bytes: n, checksum: s });
    break;
  }
  case 'copy-files': {
    const [dir, ...files] = args;
    const t = process.hrtime.bigint();
    for (const f of files) fs.writeFileSync(`${dir}/${f.split('/').pop()}`, fs.readFileSync(f));
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6 });
    break;
  }
  case 'tfjs-uint8': {
    const t = process.hrtime.bigint();
    const r = quantizeTfjsWeights(openModel(args[0]), 'uint8');
    saveModel(r.model, args[1]);
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6 });
    break;
  }
  case 'inspect': {
    const t = process.hrtime.bigint();
    const m = openModel(args[0]);
    const a = analyzeModel(m, { weightStats: true });
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6, params: a.totals.params });
    break;
  }
  case 'copy-file': {
    // Baseline for transforms: read a model file and write it back out.
    const t = process.hrtime.bigint();
    const b = fs.readFileSync(args[0]);
    fs.writeFileSync(args[1], b);
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6 });
    break;
  }
  case 'quantize-dynamic': {
    const t = process.hrtime.bigint();
    const m = openModel(args[0]);
    const r = quantizeDynamic(m, {});
    saveModel(r.model, args[1]);
    out({ ms: Number(process.hrtime.bigint() - t) / 1e6, quantized: r.quantized.length });
    break;
  }
  case 'bare-run': {
    // The baseline: onnxruntime-node used directly, a plain loop of session.run.
    (async () => {
      process.env.ORT_DISABLE_TELEMETRY = '1';
      const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
      const [file, runsStr, warmStr] = args;
      const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', interOpNumThreads: 1 });
      const meta = s.inputMetadata[0] as unknown as { name: string; shape: Array<number | string> };
      const dims = meta.shape.map((d) => (typeof d === 'number' ? d : 1));
      const n = dims.reduce((a, b) => a * b, 1);
      const x = new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => (i % 255) / 255), dims);
      for (let i = 0; i < Number(warmStr); i++) await s.run({ [meta.name]: x });
      const runs = Number(runsStr);
      const t = process.hrtime.bigint();
      for (let i = 0; i < runs; i++) await s.run({ [meta.name]: x });
      out({ meanMs: Number(process.hrtime.bigint() - t) / 1e6 / runs });
    })().catch((e) => {
      console.error(e);
      process.exit(1);
    });
    break;
  }
  case 'cli': {
    // One CLI command in this process: its exit code, time and peak RSS.
    (async () => {
      const { runCli } = require('../src/cli/main') as typeof import('../src/cli/main');
      const t = process.hrtime.bigint();
      let stdout = '';
      let error = '';
      const code = await runCli(args, { out: (o: string) => void (stdout += o), err: (e: string) => void (error ||= e.split('\n')[0]) });
      let cosine: number | undefined;
      let verificationMs: Record<string, number> | undefined;
      try {
        const j = JSON.parse(stdout) as { fidelity?: { outputs: Array<{ cosine: number }> }; verificationMs?: Record<string, number> };
        cosine = j.fidelity?.outputs[0]?.cosine;
        verificationMs = j.verificationMs;
      } catch {
        cosine = undefined;
      }
      out({ ms: Number(process.hrtime.bigint() - t) / 1e6, code, cosine, verificationMs, error: code ? error : undefined });
    })().catch((e) => {
      console.error(e);
      process.exit(1);
    });
    break;
  }
  case 'tfjs-predict':
  case 'ort-export-predict': {
    // One model, `reps` timed batches of `batch` seeded random samples after one warm-up batch;
    // prints ms per sample and the first output row (for backend parity).
    (async () => {
      const [file, batchStr, repsStr, backend] = args;
      const batch = Number(batchStr);
      const { modelInputs, TfjsRunner } = await import('../src/core/runtime/tfjs');
      const { bindDataset } = await import('../src/core/runtime/data/dataset');
      const inputs = await modelInputs(file);
      const shapes = Object.fromEntries(inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' ? d : 1))]));
      const data = bindDataset(inputs, [], { randomSamples: batch, seed: 11, shapes });
      const feeds = [...data.batches(batch)][0].feeds;
      let runner: { run(f: typeof feeds): Promise<Record<string, { data: unknown }>>; release(): Promise<void> };
      let release = () => undefined as void;
      if (task === 'tfjs-predict') {
        runner = await TfjsRunner.create(file, { backend: backend as 'cpu' | 'wasm' });
      } else {
        const { runnableOnnx } = await import('../src/core/runtime/onnx-file');
        const { ModelSession } = await import('../src/core/runtime/session');
        const r = runnableOnnx(file);
        release = r.release;
        runner = await ModelSession.create(r.path);
      }
      const first = Object.values(await runner.run(feeds))[0].data as Float32Array;
      const t = process.hrtime.bigint();
      for (let i = 0; i < Number(repsStr); i++) await runner.run(feeds);
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      await runner.release();
      release();
      out({ msPerSample: ms / Number(repsStr) / batch, first: Array.from(first.subarray(0, first.length / batch)) });
    })().catch((e) => {
      console.error(e);
      process.exit(1);
    });
    break;
  }
  case 'ort-once': {
    // Baseline for memory: open the model in ONNX Runtime, run one sample (symbolic dims = 1).
    (async () => {
      const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
      const s = await ort.InferenceSession.create(args[0], { executionProviders: ['cpu'] });
      const meta = s.inputMetadata[0] as unknown as { name: string; shape: Array<number | string> };
      const dims = meta.shape.map((d) => (typeof d === 'number' ? d : 1));
      const x = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims);
      await s.run({ [meta.name]: x });
      out({});
    })().catch((e) => {
      console.error(e);
      process.exit(1);
    });
    break;
  }
  default:
    throw new Error(`unknown bench task ${task}`);
}
