import * as ort from 'onnxruntime-node';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Runs a model (bytes or path) on float32 feeds; returns every output as {dims, data}. */
export async function runOrt(
  model: Uint8Array | string,
  feeds: Record<string, { dims: number[]; data: Float32Array | BigInt64Array | Int32Array | Uint8Array; type?: 'bool' }>,
): Promise<Record<string, { dims: readonly number[]; data: ArrayLike<number | bigint> }>> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      const type = v.type ?? (v.data instanceof Float32Array ? 'float32' : v.data instanceof BigInt64Array ? 'int64' : v.data instanceof Int32Array ? 'int32' : 'uint8');
      f[k] = new ort.Tensor(type, v.data, v.dims);
    }
    const out = await session.run(f);
    const r: Record<string, { dims: readonly number[]; data: ArrayLike<number | bigint> }> = {};
    for (const [k, v] of Object.entries(out)) r[k] = { dims: v.dims, data: v.data as ArrayLike<number> };
    return r;
  } finally {
    await session.release();
  }
}

/** A fresh folder under the OS temp dir; the mocha root hook (setup.ts) removes it after the run. */
export function tmpDir(prefix = 'mc-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  ((globalThis as { __mcTmpDirs?: Set<string> }).__mcTmpDirs ??= new Set()).add(dir);
  return dir;
}

export const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures');
