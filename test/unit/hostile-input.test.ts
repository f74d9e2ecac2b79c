import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { modelFiles, openModel } from '../../src/core/formats/registry';
import { ProtoWriter } from '../../src/core/formats/protobuf';
import { DataType } from '../../src/core/ir/dtype';
import { modelProto } from './helpers/builder';
import { tmpDir } from './helpers/ort';

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
