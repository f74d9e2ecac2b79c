/**
 * One benchmarked model per process: its own thread pool and its own peak RSS. The parent
 * (bench.ts) drives it over IPC, so several models can be interleaved run by run; the
 * timing covers `session.run` alone, never the IPC.
 */
import type * as OrtTypes from 'onnxruntime-node';
import { ModelError, oneLine } from '../errors';
import { defaultInputShape } from '../ir/shape-inference';
import { batchAxisOf, randomSource } from './data/sources';
import { ModelSession, ort, ortTypeName, type SessionOptions } from './session';

export type ChildRequest =
  | { cmd: 'load'; path: string; session: SessionOptions; batch: number; shapes: Record<string, number[]>; constants?: Record<string, number> }
  | { cmd: 'run'; n: number }
  | { cmd: 'stats' };

export type ChildReply =
  | { ok: true; createMs?: number; times?: number[]; maxRssBytes?: number }
  | { ok: false; error: string };

let session: ModelSession | undefined;
let feeds: Record<string, OrtTypes.Tensor> = {};

async function handle(m: ChildRequest): Promise<ChildReply> {
  switch (m.cmd) {
    case 'load': {
      session = await ModelSession.create(m.path, m.session);
      feeds = {};
      for (const input of session.inputs) {
        const fixed = m.shapes[input.name];
        // The batch goes on the input's declared batch axis (a state [2, batch, 128]: axis 1).
        const ax = batchAxisOf(input.shape);
        // Symbolic sizes take the documented defaults (224×224 images, 16000 audio samples, …).
        const dflt = ax === 0 ? defaultInputShape(input.name, input.shape, input.dtype).shape : input.shape;
        const sample = input.shape.flatMap((d, i) => {
          if (i === ax) return [];
          const f = fixed?.[i];
          if (typeof f === 'number') return [f];
          if (typeof d === 'number') return [d];
          const g = dflt[i];
          if (typeof g === 'number' && g > 0) return [g];
          throw new Error(`input '${input.name}' has dynamic dims [${input.shape.join(', ')}] with no default size: fix them with --shape`);
        });
        const batch = typeof input.shape[ax] === 'number' ? (input.shape[ax] as number) : m.batch;
        const data = randomSource(input.name, input.dtype, sample, batch, 0, ax).read(0, batch);
        const c = m.constants?.[input.name];
        if (c !== undefined) {
          if (data instanceof BigInt64Array) data.fill(BigInt(Math.round(c)));
          else (data as { fill(v: number): unknown }).fill(c);
        }
        feeds[input.name] = new (ort().Tensor)(ortTypeName(input.dtype), data as never, [...sample.slice(0, ax), batch, ...sample.slice(ax)]);
      }
      return { ok: true, createMs: session.createMs };
    }
    case 'run': {
      if (!session) throw new Error('no model loaded');
      const times: number[] = [];
      for (let i = 0; i < m.n; i++) {
        const t = process.hrtime.bigint();
        await session.runRaw(feeds);
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      return { ok: true, times };
    }
    case 'stats':
      return { ok: true, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
  }
}

process.on('message', (m: ChildRequest) => {
  handle(m).then(
    (r) => process.send!(r),
    (e) => process.send!({ ok: false, error: e instanceof ModelError ? e.problem : oneLine(e) } satisfies ChildReply),
  );
});
process.on('disconnect', () => process.exit(0));
