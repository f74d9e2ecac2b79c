import * as fs from 'fs';
import { ModelError, UsageError, fileError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import type { EpochRecord } from './api';
import type { OptimizerState } from './optim';

/**
 * Training checkpoints: everything needed to resume after a cancel or a crash. Layout: the
 * 8-byte magic `MCTRAIN1`, a uint32 LE JSON header length, the JSON header, then float32 LE
 * blobs in header order (weights, best weights, optimizer slots). Written atomically.
 */

const MAGIC = 'MCTRAIN1';

export interface Checkpoint {
  /** Epochs completed. */
  epoch: number;
  globalStep: number;
  history: EpochRecord[];
  /** 0 while no epoch has beaten the weights before training (then `best` holds those). */
  bestEpoch: number;
  bestMetric?: number;
  /** The validation metric of the weights before training (epoch 0). */
  initialMetric?: number;
  stale: number;
  params: Map<string, Float32Array>;
  best: Map<string, Float32Array>;
  optimizer: OptimizerState;
}

interface Header {
  version: 1;
  epoch: number;
  globalStep: number;
  history: EpochRecord[];
  bestEpoch: number;
  bestMetric?: number;
  initialMetric?: number;
  stale: number;
  blobs: Array<{ group: 'param' | 'best' | 'slot'; name: string; slot?: number; length: number }>;
  optimizerStep: number;
}

export function writeCheckpoint(file: string, c: Checkpoint): void {
  const blobs: Header['blobs'] = [];
  const chunks: Uint8Array[] = [];
  const add = (group: 'param' | 'best' | 'slot', name: string, a: Float32Array, slot?: number) => {
    blobs.push({ group, name, slot, length: a.length });
    chunks.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  };
  for (const [k, v] of c.params) add('param', k, v);
  for (const [k, v] of c.best) add('best', k, v);
  for (const [k, slots] of c.optimizer.slots) slots.forEach((s, i) => add('slot', k, s, i));
  const header: Header = {
    version: 1,
    epoch: c.epoch,
    globalStep: c.globalStep,
    history: c.history,
    bestEpoch: c.bestEpoch,
    bestMetric: c.bestMetric,
    initialMetric: c.initialMetric,
    stale: c.stale,
    blobs,
    optimizerStep: c.optimizer.step,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pre = new Uint8Array(12);
  pre.set(new TextEncoder().encode(MAGIC));
  new DataView(pre.buffer).setUint32(8, json.length, true);
  // Blobs start 4-byte aligned.
  const pad = new Uint8Array((4 - ((12 + json.length) % 4)) % 4);
  writeFileAtomic(file, [pre, json, pad, ...chunks]);
}

/**
 * Resuming needs a checkpoint: a missing one is a UsageError in one line (never a silent start
 * from epoch 1), checked before any work.
 */
export function assertCheckpointExists(file: string): void {
  if (!fs.existsSync(file)) {
    throw new UsageError(`--resume: no checkpoint at ${file} (one is written after each epoch and removed when training completes); run without --resume to start from epoch 1`);
  }
}

/** Reads a checkpoint; `shapes` (weight → element count) must match the model being trained. */
export function readCheckpoint(file: string, sizes: Map<string, number>): Checkpoint {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw fileError(file, e);
  }
  const bad = (why: string) => new ModelError(file, `not a usable training checkpoint: ${why}`);
  if (buf.length < 12 || buf.subarray(0, 8).toString('latin1') !== MAGIC) throw bad('missing the MCTRAIN1 signature');
  const len = buf.readUInt32LE(8);
  if (12 + len > buf.length) throw bad('header runs past the end of the file');
  let h: Header;
  try {
    h = JSON.parse(buf.subarray(12, 12 + len).toString('utf8')) as Header;
  } catch {
    throw bad('corrupt header');
  }
  if (h === null || typeof h !== 'object' || h.version !== 1 || !Array.isArray(h.blobs) || !Array.isArray(h.history)) throw bad('unknown version');
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  for (const k of ['epoch', 'globalStep', 'bestEpoch', 'stale', 'optimizerStep'] as const) {
    if (!count(h[k])) throw bad(`bad ${k} ${JSON.stringify(h[k]) ?? 'missing'} (a whole number ≥ 0)`);
  }
  if (h.history.length !== h.epoch) throw bad(`it records ${h.history.length} epoch(s) of history for epoch ${h.epoch}`);
  if (h.bestEpoch > h.epoch || h.stale > h.epoch) throw bad(`bad ${h.bestEpoch > h.epoch ? `bestEpoch ${h.bestEpoch}` : `stale ${h.stale}`} after ${h.epoch} epoch(s)`);
  for (const k of ['bestMetric', 'initialMetric'] as const) if (h[k] !== undefined && h[k] !== null && typeof h[k] !== 'number') throw bad(`bad ${k}`);
  for (const b of h.blobs as unknown[]) {
    const o = b as Header['blobs'][number] | null;
    if (!o || typeof o.name !== 'string' || !count(o.length) || !['param', 'best', 'slot'].includes(o.group) || (o.slot !== undefined && o.slot !== null && !count(o.slot))) throw bad('bad weight entry in the header');
  }
  let at = 12 + len + ((4 - ((12 + len) % 4)) % 4);
  const c: Checkpoint = {
    epoch: h.epoch,
    globalStep: h.globalStep,
    history: h.history,
    bestEpoch: h.bestEpoch,
    bestMetric: h.bestMetric ?? undefined,
    initialMetric: h.initialMetric ?? undefined,
    stale: h.stale,
    params: new Map(),
    best: new Map(),
    optimizer: { step: h.optimizerStep, slots: new Map() },
  };
  for (const b of h.blobs) {
    const want = sizes.get(b.name);
    if (want === undefined) throw bad(`it holds weight '${b.name}', which this training does not train`);
    if (b.length !== want) throw bad(`weight '${b.name}' has ${b.length} values, the model has ${want}`);
    if (at + b.length * 4 > buf.length) throw bad('truncated');
    const a = new Float32Array(b.length);
    new Uint8Array(a.buffer).set(buf.subarray(at, at + b.length * 4));
    at += b.length * 4;
    if (b.group === 'param') c.params.set(b.name, a);
    else if (b.group === 'best') c.best.set(b.name, a);
    else {
      let l = c.optimizer.slots.get(b.name);
      if (!l) c.optimizer.slots.set(b.name, (l = []));
      l[b.slot ?? 0] = a;
    }
  }
  for (const k of sizes.keys()) if (!c.params.has(k)) throw bad(`weight '${k}' is missing`);
  return c;
}
