import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { ModelError, UsageError } from '../../src/core/errors';
import { DataType, float32ToFloat16 } from '../../src/core/ir/dtype';
import { encodeNpy, parseNpy, readNpy } from '../../src/core/runtime/data/npy';
import { bindDataset, parseDataSpecs, readLabels } from '../../src/core/runtime/data/dataset';
import { imageFolderSource } from '../../src/core/runtime/data/images';
import { npySource, randomSource, tensorPbSource } from '../../src/core/runtime/data/sources';
import { encodeTensor } from '../../src/core/formats/onnx/encode';
import { Tensor } from '../../src/core/ir/tensor';
import type { IOSpec } from '../../src/core/runtime/session';
import { FIXTURES, tmpDir } from './helpers/ort';

const nums = (a: unknown): number[] => Array.from(a as ArrayLike<number>, Number);

function npyBytes(descr: string, shape: number[], data: Uint8Array, fortran = false): Uint8Array {
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shp}, }`;
  header = header.padEnd(118 - 1, ' ') + '\n';
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(data, 10 + header.length);
  return out;
}

describe('input data: .npy', () => {
  it('reads the digits fixtures (float32 images, int64 labels)', () => {
    const x = readNpy(path.join(FIXTURES, 'digits_test_x.npy'));
    assert.equal(x.dtype, DataType.FLOAT);
    assert.deepEqual(x.shape, [597, 1, 8, 8]);
    const y = readLabels(path.join(FIXTURES, 'digits_test_y.npy'));
    assert.equal(y.length, 597);
    assert.ok(y.every((v) => v >= 0 && v <= 9));
  });

  it('round-trips every numeric dtype, float16 and bool', () => {
    const cases: Array<[DataType, Uint8Array]> = [
      [DataType.FLOAT, new Uint8Array(Float32Array.of(1.5, -2).buffer)],
      [DataType.DOUBLE, new Uint8Array(Float64Array.of(0.1, 3).buffer)],
      [DataType.FLOAT16, new Uint8Array(Uint16Array.of(float32ToFloat16(0.5), float32ToFloat16(-1)).buffer)],
      [DataType.INT8, new Uint8Array(Int8Array.of(-3, 4).buffer)],
      [DataType.UINT8, Uint8Array.of(0, 255)],
      [DataType.INT16, new Uint8Array(Int16Array.of(-300, 300).buffer)],
      [DataType.UINT16, new Uint8Array(Uint16Array.of(1, 65535).buffer)],
      [DataType.INT32, new Uint8Array(Int32Array.of(-70000, 5).buffer)],
      [DataType.UINT32, new Uint8Array(Uint32Array.of(4000000000, 1).buffer)],
      [DataType.INT64, new Uint8Array(BigInt64Array.of(-5n, 2n ** 40n).buffer)],
      [DataType.UINT64, new Uint8Array(BigUint64Array.of(7n, 2n ** 63n).buffer)],
      [DataType.BOOL, Uint8Array.of(1, 0)],
    ];
    for (const [dtype, data] of cases) {
      const back = parseNpy(encodeNpy({ dtype, shape: [2], data }), 'x.npy');
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.shape, [2]);
      assert.deepEqual(nums(back.data), nums(data));
    }
  });

  it('converts big-endian and Fortran-ordered arrays to little-endian C order', () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.25, false);
    new DataView(be.buffer).setFloat32(4, -3, false);
    const a = parseNpy(npyBytes('>f4', [2], be), 'be.npy');
    assert.deepEqual(nums(new Float32Array(a.data.slice().buffer)), [1.25, -3]);
    // Fortran order of [[1,2,3],[4,5,6]] is 1,4,2,5,3,6.
    const f = parseNpy(npyBytes('<i4', [2, 3], new Uint8Array(Int32Array.of(1, 4, 2, 5, 3, 6).buffer), true), 'f.npy');
    assert.deepEqual(nums(new Int32Array(f.data.slice().buffer)), [1, 2, 3, 4, 5, 6]);
  });

  it('rejects truncated, non-npy and non-numeric files clearly', () => {
    const good = encodeNpy({ dtype: DataType.FLOAT, shape: [4], data: new Uint8Array(16) });
    assert.throws(() => parseNpy(good.subarray(0, good.length - 4), 't.npy'), (e: Error) => e instanceof ModelError && /truncated .npy data/.test(e.message));
    assert.throws(() => parseNpy(new TextEncoder().encode('hello world'), 'h.npy'), /not a .npy file/);
    assert.throws(() => parseNpy(npyBytes('<U5', [1], new Uint8Array(20)), 's.npy'), /unsupported .npy dtype '<U5'/);
  });

  it('streams samples by byte range', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'x.npy');
    fs.writeFileSync(file, encodeNpy({ dtype: DataType.FLOAT, shape: [5, 2], data: new Uint8Array(Float32Array.from({ length: 10 }, (_, i) => i).buffer) }));
    const s = npySource(file);
    assert.equal(s.count, 5);
    assert.deepEqual(s.sampleShape, [2]);
    assert.deepEqual(nums(s.read(3, 2)), [6, 7, 8, 9]);
  });
});

describe('input data: TensorProto, images, random', () => {
  it('reads an ONNX TensorProto .pb file', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'input_0.pb');
    const t = Tensor.fromArray('input', DataType.FLOAT, [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
    fs.writeFileSync(file, encodeTensor(t).toBytes());
    const s = tensorPbSource(file);
    assert.equal(s.count, 2);
    assert.deepEqual(s.sampleShape, [3]);
    assert.deepEqual(nums(s.read(1, 1)), [4, 5, 6]);
    fs.writeFileSync(file, Uint8Array.of(0xff, 0xff, 0xff));
    assert.throws(() => tensorPbSource(file), (e: Error) => e instanceof ModelError && /not a valid TensorProto/.test(e.message));
  });

  it('decodes PNG and JPEG folders, resizes, normalises, and lays out NCHW or NHWC', () => {
    const dir = tmpDir();
    const png = new PNG({ width: 2, height: 2 });
    // pixels: red, green, blue, white
    const px = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
    px.forEach(([r, g, b], i) => png.data.set([r, g, b, 255], i * 4));
    fs.writeFileSync(path.join(dir, 'a.png'), PNG.sync.write(png));
    const rgba = new Uint8Array(4 * 4 * 4).fill(128);
    fs.writeFileSync(path.join(dir, 'b.jpg'), jpeg.encode({ data: rgba, width: 4, height: 4 }, 100).data);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
    const nchw = imageFolderSource(dir, { height: 2, width: 2, channels: 3, layout: 'NCHW' });
    assert.equal(nchw.count, 2);
    const a = nchw.read(0, 1);
    // channel 0 (red) plane: 1, 0, 0, 1
    assert.deepEqual(nums(a.slice(0, 4)), [1, 0, 0, 1]);
    assert.deepEqual(nums(a.slice(8, 12)), [0, 0, 1, 1]);
    const nhwc = imageFolderSource(dir, { height: 2, width: 2, channels: 3, layout: 'NHWC', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    const h = nhwc.read(0, 1);
    assert.deepEqual(nums(h.slice(0, 3)), [1, -1, -1]); // red pixel normalised to [-1, 1]
    const gray = nhwc.read(1, 1);
    for (const v of nums(gray)) assert.ok(Math.abs(v - (128 / 255 - 0.5) / 0.5) < 0.03, `jpeg gray ${v}`);
    const one = imageFolderSource(dir, { height: 1, width: 1, channels: 1, layout: 'NCHW' });
    const lum = nums(one.read(0, 1))[0];
    const expect = (0.299 * (255 + 0 + 0 + 255) + 0.587 * (0 + 255 + 0 + 255) + 0.114 * (0 + 0 + 255 + 255)) / 4 / 255;
    assert.ok(Math.abs(lum - expect) < 1e-6, `bilinear downscale to one grey pixel ${lum} vs ${expect}`);
  });

  it('generates the same random sample whatever the batch boundaries', () => {
    const s = randomSource('x', DataType.FLOAT, [3], 10, 42);
    const all = s.read(0, 10);
    const part = s.read(4, 3);
    assert.deepEqual(nums(part), nums(all.slice(12, 21)));
    assert.ok(nums(all).every((v) => v >= 0 && v < 1));
    assert.notDeepEqual(nums(randomSource('x', DataType.FLOAT, [3], 10, 43).read(0, 1)), nums(all.slice(0, 3)));
  });
});

describe('input binding', () => {
  const one: IOSpec[] = [{ name: 'input', dtype: DataType.FLOAT, shape: ['batch', 1, 8, 8] }];
  const two: IOSpec[] = [
    { name: 'a', dtype: DataType.FLOAT, shape: ['n', 4] },
    { name: 'b', dtype: DataType.INT64, shape: ['n'] },
  ];
  const x = path.join(FIXTURES, 'digits_test_x.npy');
  const y = path.join(FIXTURES, 'digits_test_y.npy');

  it('binds a single input without a name and multi-input data by name', () => {
    const d = bindDataset(one, parseDataSpecs([x]));
    assert.equal(d.count, 597);
    const b = d.batch(590, 7);
    assert.deepEqual(b.input.dims, [7, 1, 8, 8]);
    assert.throws(() => bindDataset(two, parseDataSpecs([x])), (e: Error) => e instanceof UsageError && /bind each one: --data name=file/.test(e.message));
  });

  it('names the input and shows expected versus given on a mismatch', () => {
    assert.throws(
      () => bindDataset(one, parseDataSpecs([`input=${y}`])),
      (e: Error) => e instanceof ModelError && /input 'input' expects float32\[batch, 1, 8, 8\], got int64\[597\]/.test(e.message),
    );
    const wrongShape: IOSpec[] = [{ name: 'input', dtype: DataType.FLOAT, shape: ['batch', 1, 28, 28] }];
    assert.throws(() => bindDataset(wrongShape, parseDataSpecs([x])), /dimension 2 should be 28/);
    assert.throws(() => bindDataset(one, parseDataSpecs([`nope=${x}`])), /not a model input/);
    assert.throws(() => bindDataset(one, []), /no data for input 'input'/);
  });

  it('generates random data for missing inputs: documented defaults for symbolic dims, said in the label', () => {
    const seq: IOSpec[] = [{ name: 'tokens', dtype: DataType.INT64, shape: ['n', 'seq'] }];
    const dflt = bindDataset(seq, [], { randomSamples: 4 });
    assert.deepEqual(dflt.batch(0, 2).tokens.dims, [2, 128]);
    assert.match(dflt.describe(), /assumed tokens\[1\]=128 \(sequence length\)/);
    assert.deepEqual(bindDataset(seq, [], { randomSamples: 4, shapes: { tokens: [1, 7] } }).batch(0, 2).tokens.dims, [2, 7]);
    const ocr: IOSpec[] = [{ name: 'x', dtype: DataType.FLOAT, shape: ['N', 3, 48, 'W'] }];
    assert.deepEqual(bindDataset(ocr, [], { randomSamples: 2 }).batch(0, 1).x.dims, [1, 3, 48, 224]);
    const audio: IOSpec[] = [{ name: 'audio', dtype: DataType.FLOAT, shape: [null, null] }];
    assert.deepEqual(bindDataset(audio, [], { randomSamples: 2 }).batch(0, 2).audio.dims, [2, 16000]);
    // No default covers a feature sequence: the suggestion names the dim, never a size of 1.
    const feats: IOSpec[] = [{ name: 'f', dtype: DataType.FLOAT, shape: ['n', 't', 80] }];
    assert.throws(() => bindDataset(feats, [], { randomSamples: 4 }), (e: Error) => /--shape f=1x<t>x80/.test(e.message) && !/x1x/.test(e.message));
    // A --shape of the wrong rank, or one that changes a fixed dim, is refused.
    assert.throws(() => bindDataset(ocr, [], { randomSamples: 2, shapes: { x: [1, 3] } }), /has 2 dims, but input 'x' has 4/);
    assert.throws(() => bindDataset(ocr, [], { randomSamples: 2, shapes: { x: [1, 3, 32, 100] } }), /dim 2 of input 'x' is fixed at 48/);
    const d = bindDataset(two, [], { randomSamples: 4 });
    assert.equal(d.count, 4);
    assert.ok(d.batch(0, 4).b.data instanceof BigInt64Array);
  });
});
