import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { ModelError } from '../../src/core/errors';
import { openModel } from '../../src/core/formats/registry';
import { ProtoWriter } from '../../src/core/formats/protobuf';
import { DataType } from '../../src/core/ir/dtype';
import { modelProto, rng } from './helpers/builder';
import { FIXTURES, tmpDir } from './helpers/ort';

/** A valid model whose one initializer is external, with the given external_data entries. */
function externalModel(entries: Array<[string, string]>, dims = [4]): Uint8Array {
  const t = new ProtoWriter().packedInt64(1, dims).varintField(2, DataType.FLOAT).stringField(8, 'w');
  for (const [k, v] of entries) t.messageField(13, new ProtoWriter().stringField(1, k).stringField(2, v));
  t.varintField(14, 1);
  const g = new ProtoWriter().messageField(5, t).stringField(2, 'g');
  return modelProto(g);
}

function expectModelError(file: string, pattern?: RegExp): ModelError {
  try {
    openModel(file);
  } catch (e) {
    assert.ok(e instanceof ModelError, `expected ModelError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.ok(e.message.startsWith(file), `message names the file: ${e.message}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`${file} was accepted`);
}

describe('hostile and broken input', () => {
  const dir = tmpDir('mc-hostile-');
  const good = fs.readFileSync(path.join(FIXTURES, 'digits_mlp.onnx'));

  it('rejects the model truncated at many offsets with a clear error, never a crash or hang', () => {
    const offsets = new Set<number>([1, 2, 3, 5, 8, 13, 40, 100, 1000, good.length - 1, good.length - 7]);
    const r = rng(3);
    while (offsets.size < 60) offsets.add(1 + Math.floor(r() * (good.length - 1)));
    const f = path.join(dir, 'trunc.onnx');
    const start = Date.now();
    for (const o of offsets) {
      fs.writeFileSync(f, good.subarray(0, o));
      expectModelError(f);
    }
    assert.ok(Date.now() - start < 30_000);
  });

  it('rejects random bytes, an empty file, a folder and a missing file', () => {
    const r = rng(7);
    for (let i = 0; i < 20; i++) {
      const f = path.join(dir, `rand${i}.onnx`);
      fs.writeFileSync(f, Uint8Array.from({ length: 64 + i * 37 }, () => Math.floor(r() * 256)));
      expectModelError(f);
    }
    const empty = path.join(dir, 'empty.onnx');
    fs.writeFileSync(empty, '');
    expectModelError(empty, /empty/);
    expectModelError(dir, /folder/);
    expectModelError(path.join(dir, 'nope.onnx'), /not found/);
  });

  it('detects ONNX by content, whatever the extension, and rejects non-models by content', () => {
    const renamed = path.join(dir, 'model.bin');
    fs.writeFileSync(renamed, good);
    assert.equal(openModel(renamed).graph.nodes.length, 6);
    const png = path.join(dir, 'image.onnx');
    fs.writeFileSync(png, Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'));
    expectModelError(png, /not a valid ONNX/);
    const txt = path.join(dir, 'notes.txt');
    fs.writeFileSync(txt, 'hello, this is not a model\n');
    expectModelError(txt, /unsupported or unrecognised/);
  });

  it('rejects a tensor that declares 2^40 elements but holds 16 bytes, without allocating', () => {
    const t = new ProtoWriter().packedInt64(1, [2 ** 40]).varintField(2, DataType.FLOAT).stringField(8, 'huge').bytesField(9, new Uint8Array(16));
    const g = new ProtoWriter().messageField(5, t);
    const f = path.join(dir, 'huge.onnx');
    fs.writeFileSync(f, modelProto(g));
    expectModelError(f, /huge.*declares/);
  });

  it('analyses an input dimension of 2^40 without allocating or hanging', () => {
    const dim = new ProtoWriter().varintField(1, 2 ** 40);
    const shape = new ProtoWriter().messageField(1, dim).messageField(1, new ProtoWriter().varintField(1, 4));
    const tt = new ProtoWriter().varintField(1, DataType.FLOAT).messageField(2, shape);
    const vi = new ProtoWriter().stringField(1, 'x').messageField(2, new ProtoWriter().messageField(1, tt));
    const node = new ProtoWriter().stringField(1, 'x').stringField(2, 'y').stringField(4, 'Relu');
    const out = new ProtoWriter().stringField(1, 'y');
    const g = new ProtoWriter().messageField(1, node).messageField(11, vi).messageField(12, out);
    const f = path.join(dir, 'bigdim.onnx');
    fs.writeFileSync(f, modelProto(g));
    const a = analyzeModel(openModel(f));
    assert.equal(a.layers[0].outputShapes[0]![0], 2 ** 40);
    assert.equal(a.layers[0].flops, 2 ** 40 * 4);
  });

  it('refuses external data outside the model folder, missing, or too short', () => {
    const sub = path.join(dir, 'ext');
    fs.mkdirSync(sub, { recursive: true });
    const cases: Array<[string, Array<[string, string]>, RegExp]> = [
      ['escape.onnx', [['location', '../../etc/passwd']], /outside the model's folder/],
      ['abs.onnx', [['location', '/etc/passwd']], /outside the model's folder/],
      ['missing.onnx', [['location', 'weights.bin']], /missing/],
      ['short.onnx', [['location', 'short.bin']], /past the end/],
      ['neg.onnx', [['location', 'short.bin'], ['offset', '-5']], /invalid external offset/],
    ];
    fs.writeFileSync(path.join(sub, 'short.bin'), new Uint8Array(8));
    for (const [name, entries, re] of cases) {
      const f = path.join(sub, name);
      fs.writeFileSync(f, externalModel(entries));
      expectModelError(f, re);
    }
  });

  it('refuses a symlink inside the folder that points outside it', () => {
    const sub = path.join(dir, 'link');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(dir, 'outside.bin'), new Uint8Array(16));
    fs.symlinkSync(path.join(dir, 'outside.bin'), path.join(sub, 'w.bin'));
    const f = path.join(sub, 'm.onnx');
    fs.writeFileSync(f, externalModel([['location', 'w.bin']]));
    expectModelError(f, /outside the model's folder/);
  });

  it('rejects subgraphs nested absurdly deep', () => {
    let g = new ProtoWriter().stringField(2, 'leaf');
    for (let i = 0; i < 100; i++) {
      const attr = new ProtoWriter().stringField(1, 'then_branch').messageField(6, g).varintField(20, 5);
      const node = new ProtoWriter().stringField(4, 'If').messageField(5, attr);
      g = new ProtoWriter().messageField(1, node);
    }
    const f = path.join(dir, 'deep.onnx');
    fs.writeFileSync(f, modelProto(g));
    expectModelError(f, /nested deeper/);
  });
});
