import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { ModelError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { tmpDir } from './helpers/ort';
import { cli } from './cli.test';

/** Writes a safetensors file: u64 header length, JSON header, data (as the format specifies). */
function writeSafetensors(file: string, tensors: Array<{ name: string; dtype: string; shape: number[]; data: Uint8Array }>, meta?: Record<string, string>, patch?: (h: Record<string, unknown>) => void) {
  const header: Record<string, unknown> = {};
  if (meta) header.__metadata__ = meta;
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  patch?.(header);
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, ...tensors.map((t) => Buffer.from(t.data))]));
  return file;
}

const f32 = (a: number[]) => new Uint8Array(Float32Array.from(a).buffer);

function sample() {
  return [
    { name: 'encoder.layer.0.attn.q.weight', dtype: 'F32', shape: [4, 3], data: f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0]) },
    { name: 'encoder.layer.0.attn.q.bias', dtype: 'F32', shape: [4], data: f32([0, 0, 1, -1]) },
    { name: 'embed_tokens.weight', dtype: 'F16', shape: [10, 4], data: new Uint8Array(new Uint16Array(40).fill(0x3c00).buffer) },
    { name: 'norm.weight', dtype: 'BF16', shape: [4], data: new Uint8Array(new Uint16Array([0x3f80, 0x4000, 0x4040, 0x4080]).buffer) },
    { name: 'conv.weight', dtype: 'F32', shape: [2, 1, 3, 3], data: f32(Array.from({ length: 18 }, (_, i) => i / 10)) },
  ];
}

describe('safetensors (read-only)', () => {
  it('reads the header, groups tensors into layers by prefix, and computes per-tensor stats lazily', () => {
    const file = writeSafetensors(path.join(tmpDir(), 'model.safetensors'), sample(), { format: 'pt' });
    const m = openModel(file);
    assert.equal(m.format, 'safetensors');
    assert.deepEqual(m.metadata, [['format', 'pt']]);
    assert.ok([...m.graph.initializers.values()].every((t) => t.sourceKind === 'external'), 'no tensor data read up front');
    assert.deepEqual(m.graph.nodes.map((n) => [n.name, n.opType, n.inputs.length]), [
      ['encoder.layer.0.attn.q', 'Linear', 2],
      ['embed_tokens', 'Embedding', 1],
      ['norm', 'Norm', 1],
      ['conv', 'Conv2d', 1],
    ]);
    const a = analyzeModel(m, { weightStats: true });
    assert.equal(a.totals.params, 12 + 4 + 40 + 4 + 18);
    assert.equal(a.totals.bytes, 48 + 16 + 80 + 8 + 72);
    const q = a.layers[0].weights[0] as { mean: number; sparsity: number; max: number };
    assert.equal(q.max, 11);
    assert.ok(Math.abs(q.mean - 66 / 12) < 1e-9);
    assert.ok(Math.abs(q.sparsity - 1 / 12) < 1e-9);
    assert.deepEqual(Array.from(m.graph.initializers.get('norm.weight')!.toFloat32()), [1, 2, 3, 4]);
    assert.deepEqual(Array.from(m.graph.initializers.get('embed_tokens.weight')!.toFloat32()).slice(0, 2), [1, 1]);
    const r = cli(['inspect', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).totals.params, 78);
  });

  it('rejects a lying header: byte span, overlap, out-of-file data, unknown dtype, oversized header (exit 3)', () => {
    const dir = tmpDir();
    const cases: Array<[string, RegExp]> = [
      [writeSafetensors(path.join(dir, 'a.safetensors'), sample(), undefined, (h) => ((h['norm.weight'] as { shape: number[] }).shape = [5])), /'norm.weight' is 5 BF16 \(10 bytes\) but its data_offsets span 8 bytes/],
      [writeSafetensors(path.join(dir, 'b.safetensors'), sample(), undefined, (h) => ((h['norm.weight'] as { data_offsets: number[] }).data_offsets = [0, 8])), /overlap/],
      [writeSafetensors(path.join(dir, 'c.safetensors'), sample(), undefined, (h) => ((h['conv.weight'] as { data_offsets: number[] }).data_offsets = [1000, 1072])), /ends at byte 1072 of the data/],
      [writeSafetensors(path.join(dir, 'd.safetensors'), sample(), undefined, (h) => ((h['norm.weight'] as { dtype: string }).dtype = 'F128')), /unknown dtype 'F128'/],
    ];
    const big = path.join(dir, 'e.safetensors');
    const len = Buffer.alloc(16);
    len.writeBigUInt64LE(2n ** 40n);
    len.write('{}', 8);
    fs.writeFileSync(big, len);
    cases.push([big, /not a valid SAFETENSORS file|header claims/]);
    for (const [file, re] of cases) {
      assert.throws(() => openModel(file), (e: Error) => e instanceof ModelError && re.test(e.message) && e.message.startsWith(file), file);
      const r = cli(['inspect', file]);
      assert.equal(r.code, 3, r.stderr);
    }
  });
});
