/**
 * `npm run bench -- train`: one training step (forward + backward + SGD update) at batch 16
 * against the same model's forward-only session.run at the same batch and thread count,
 * each in its own process (so peak RSS is its own). Also prints where the step's time goes
 * (ORT's profile, grouped by forward vs gradient op type), the CPU-time ratio (one intra-op
 * thread, so it does not depend on other load on the machine) and the same training graph
 * with constant weights (how much of the gap ORT's weight pre-packing could close).
 *
 * Flags (after `npm run bench -- train`): `--nodes` also lists the slowest nodes of one step;
 * `--model NAME` runs only that model (e.g. `--model squeezenet1_1`).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as OrtTypes from 'onnxruntime-node';
import { openModel } from '../src/core/formats/registry';
import { DataType } from '../src/core/ir/dtype';
import { onnxToBytes } from '../src/core/formats/onnx';
import { ModelSession, ort, type HostTensor } from '../src/core/runtime/session';
import { Optimizer, TrainingSession, buildTrainingGraph, floatWeights, labelsTensor } from '../src/core/train';
import { median, report } from './util';

const BATCH = 16;
const THREADS = 1;
const PYTORCH: Record<string, string> = {
  'mobilenet_v2.onnx': '2.0 s/step (PyTorch 1.13, 1 thread, this machine class)',
  'squeezenet1_1.onnx': 'not measured',
  'resnet18.onnx': '3.7 s/step',
};

function fixture(name: string): string | undefined {
  for (const d of [path.resolve(__dirname, '../../test/fixtures'), process.env.MC_SHARED_FIXTURES ?? path.resolve(__dirname, '../../../shared/fixtures')]) {
    const f = path.join(d, name);
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

function randomInput(n: number): Float32Array {
  const a = new Float32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

interface ChildResult {
  msPerRun: number[];
  /** JavaScript optimizer update per step (included in msPerRun), training steps only. */
  updateMsPerRun?: number[];
  /** CPU time (user + system) per run: with one intra-op thread, robust against other load. */
  cpuMsPerRun: number[];
  maxRssBytes: number;
  profile?: Record<string, number>;
  /** The slowest nodes of the profiled step: [name, op type, ms]. */
  topNodes?: Array<[string, string, number]>;
}

async function childMain(task: string, file: string, runs: number): Promise<void> {
  const model = openModel(file);
  const input = model.graph.inputs.find((i) => !model.graph.initializers.has(i.name))!;
  const dims = (input.type?.kind === 'tensor' ? input.type.shape ?? [] : []).map((d, i) => (i === 0 ? BATCH : typeof d === 'number' ? d : 1));
  const x = { dtype: DataType.FLOAT, dims, data: randomInput(dims.reduce((a, b) => a * b, 1)) };
  const times: number[] = [];
  const cpu: number[] = [];
  const updates: number[] = [];
  // A training step's first runs grow ORT's arena (page faults in system time): skip two.
  const warm = task === 'forward' ? 1 : 2;
  let profile: Record<string, number> | undefined;
  let topNodes: ChildResult['topNodes'];
  if (task === 'forward') {
    const s = await ModelSession.create(file, { intraOpThreads: THREADS, interOpThreads: 1 });
    for (let r = 0; r < runs + warm; r++) {
      const t = process.hrtime.bigint();
      const c = process.cpuUsage();
      await s.run({ [input.name]: x });
      if (r >= warm) record(times, cpu, t, c);
    }
  } else {
    const trainable = floatWeights(model);
    const out = model.graph.outputs[0].name;
    const tg = buildTrainingGraph(model, { losses: [{ kind: 'cross-entropy', logits: out, labels: 'labels' }], trainable });
    const labels = labelsTensor(Array.from({ length: BATCH }, (_, i) => i % 10));
    const params = new Map(trainable.map((n) => [n, model.graph.initializers.get(n)!.toFloat32()]));
    if (task === 'profile') {
      ({ profile, topNodes } = await profileStep(tg.model, { [input.name]: x, labels }, params, tg.paramShapes));
    } else if (task === 'constant') {
      // The same training graph with the weights as constant initializers (what ORT could do if
      // it could pre-pack weights and use its NCHWc layout): an upper bound, not a usable form.
      const g = tg.model.graph;
      for (const p of trainable) g.initializers.set(p, model.graph.initializers.get(p)!);
      g.inputs = g.inputs.filter((i) => !params.has(i.name));
      const s = await ModelSession.create(tg.model, { intraOpThreads: THREADS, interOpThreads: 1 });
      for (let r = 0; r < runs + warm; r++) {
        const t = process.hrtime.bigint();
        const c = process.cpuUsage();
        await s.run({ [input.name]: x, labels });
        if (r >= warm) record(times, cpu, t, c);
      }
    } else {
      const s = await TrainingSession.create(tg, { intraOpThreads: THREADS, interOpThreads: 1 });
      const opt = new Optimizer({ kind: 'sgd', lr: 1e-4, momentum: 0.9 });
      for (let r = 0; r < runs + warm; r++) {
        const t = process.hrtime.bigint();
        const c = process.cpuUsage();
        const res = await s.step({ [input.name]: x, labels }, params);
        const u = process.hrtime.bigint();
        opt.update(params, res.grads, 1e-4);
        if (r >= warm) {
          updates.push(Number(process.hrtime.bigint() - u) / 1e6);
          record(times, cpu, t, c);
        }
      }
    }
  }
  const result: ChildResult = { msPerRun: times, updateMsPerRun: updates, cpuMsPerRun: cpu, maxRssBytes: process.resourceUsage().maxRSS * 1024, profile, topNodes };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function record(times: number[], cpu: number[], t: bigint, c: NodeJS.CpuUsage): void {
  times.push(Number(process.hrtime.bigint() - t) / 1e6);
  const u = process.cpuUsage(c);
  cpu.push((u.user + u.system) / 1000);
}

/**
 * Runs one step with ORT's profiler (the training session's options: memory pattern off) and
 * sums node time per (forward|grad) op type; also returns the 15 slowest nodes.
 */
async function profileStep(
  m: import('../src/core/ir/graph').Model,
  feeds: Record<string, HostTensor>,
  params: Map<string, Float32Array>,
  shapes: Map<string, number[]>,
): Promise<{ profile: Record<string, number>; topNodes: Array<[string, string, number]> }> {
  const o = ort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-train-prof-'));
  const s: OrtTypes.InferenceSession = await o.InferenceSession.create(onnxToBytes(m), {
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    enableMemPattern: false,
    enableProfiling: true,
    profileFilePrefix: path.join(dir, 'p'),
  });
  const f: Record<string, OrtTypes.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) f[k] = new o.Tensor(v.dtype === DataType.INT64 ? 'int64' : 'float32', v.data as Float32Array, v.dims);
  for (const [k, v] of params) f[k] = new o.Tensor('float32', v, shapes.get(k)!);
  for (let r = 0; r < 3; r++) await s.run(f);
  s.endProfiling();
  await s.release();
  const file = fs.readdirSync(dir).find((n) => n.endsWith('.json'));
  if (!file) throw new Error('ORT wrote no profile');
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
  fs.rmSync(dir, { recursive: true, force: true });
  const by: Record<string, number> = {};
  // Events of the third run only (the first two grow the arena).
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const last = nodes.slice((2 * nodes.length) / 3);
  for (const e of last) {
    const grad = e.name.startsWith('train/');
    const key = `${grad ? 'grad ' : 'fwd  '}${e.args?.op_name ?? '?'}`;
    by[key] = (by[key] ?? 0) + e.dur / 1000;
  }
  const topNodes = last
    .sort((a, b) => b.dur - a.dur)
    .slice(0, 15)
    .map((e): [string, string, number] => [e.name.replace(/_kernel_time$/, ''), e.args?.op_name ?? '?', e.dur / 1000]);
  return { profile: by, topNodes };
}

function runChild(task: string, file: string, runs: number): ChildResult {
  const r = spawnSync(process.execPath, [__filename, '--child', task, file, String(runs)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
  });
  if (r.status !== 0) throw new Error(`train bench child ${task} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

export async function benchTrain(): Promise<void> {
  const argv = process.argv.slice(2);
  const only = argv.includes('--model') ? argv[argv.indexOf('--model') + 1] : undefined;
  const showNodes = argv.includes('--nodes');
  for (const name of ['mobilenet_v2.onnx', 'squeezenet1_1.onnx']) {
    if (only && name !== only && name !== `${only}.onnx`) continue;
    const file = fixture(name);
    if (!file) {
      console.log(`\n== training step on ${name}: skipped (fixture not found)`);
      continue;
    }
    const fwd: number[] = [];
    const step: number[] = [];
    const fwdCpu: number[] = [];
    const stepCpu: number[] = [];
    const constCpu: number[] = [];
    const update: number[] = [];
    let fwdRss = 0;
    let stepRss = 0;
    // Alternate processes so drift on a shared machine hits both alike.
    for (let round = 0; round < 2; round++) {
      const a = runChild('forward', file, 3);
      const b = runChild('step', file, 2);
      fwd.push(...a.msPerRun);
      step.push(...b.msPerRun);
      update.push(...(b.updateMsPerRun ?? []));
      fwdCpu.push(...a.cpuMsPerRun);
      stepCpu.push(...b.cpuMsPerRun);
      fwdRss = Math.max(fwdRss, a.maxRssBytes);
      stepRss = Math.max(stepRss, b.maxRssBytes);
    }
    constCpu.push(...runChild('constant', file, 2).cpuMsPerRun);
    const f = median(fwd);
    const s = median(step);
    const fc = median(fwdCpu);
    const sc = median(stepCpu);
    const profiled = runChild('profile', file, 1);
    const prof = profiled.profile ?? {};
    const total = Object.values(prof).reduce((a, b) => a + b, 0);
    const top = Object.entries(prof)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([k, v]) => `${k} ${((100 * v) / total).toFixed(0)}% (${v.toFixed(0)} ms)`)
      .join(', ');
    report(`training step on ${name} (batch ${BATCH}, ${THREADS} thread, medians)`, [
      ['forward session.run', `${f.toFixed(0)} ms`],
      ['training step (fwd + bwd + SGD)', `${(s / 1000).toFixed(2)} s/step wall, ${(sc / 1000).toFixed(2)} s CPU   (PyTorch: ${PYTORCH[name] ?? 'not measured'})`],
      ['ratio step / forward (wall)', `${(s / f).toFixed(2)}x   (target <= 3.5x)`],
      ['of which optimizer update (JS)', `${median(update).toFixed(1)} ms`],
      ['CPU time forward / step', `${fc.toFixed(0)} ms / ${sc.toFixed(0)} ms = ${(sc / fc).toFixed(2)}x   (1 thread: robust against other load)`],
      ['same graph, weights as constants', `${(median(constCpu) / fc).toFixed(2)}x CPU time (bound on what ORT pre-packing / NCHWc could give)`],
      ['peak RSS forward / step', `${(fwdRss / 2 ** 20).toFixed(0)} MiB / ${(stepRss / 2 ** 20).toFixed(0)} MiB (${(stepRss / fwdRss).toFixed(2)}x)`],
      ['profile (share of node time)', `${top}; node total ${total.toFixed(0)} ms`],
    ]);
    if (showNodes) {
      console.log('  slowest nodes of the profiled step:');
      for (const [n, op, ms] of profiled.topNodes ?? []) console.log(`    ${ms.toFixed(1).padStart(7)} ms  ${op.padEnd(16)} ${n}`);
    }
    console.log(
      '  note: the forward-only session runs ORT NCHWc kernels on pre-packed constant weights with Conv+activation fused;\n' +
        '  the training graph feeds weights as inputs and keeps activations for the backward, so even its forward part runs\n' +
        '  plain NCHW kernels. The "weights as constants" row bounds what pre-packing alone would recover.',
    );
  }
}

if (process.argv[2] === '--child') {
  process.env.ORT_DISABLE_TELEMETRY = '1';
  childMain(process.argv[3], process.argv[4], Number(process.argv[5])).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
