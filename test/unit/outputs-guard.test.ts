import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { cli } from './cli.test';
import { FIXTURES, tmpDir } from './helpers/ort';

/**
 * No output may name a file the command reads: data, labels, a teacher, files of an image
 * folder — not only the model and its external data. Each case is refused with exit 2 before
 * any work, and the file keeps its bytes.
 */
describe('outputs never overwrite any input of the command line', () => {
  const dir = tmpDir();
  for (const f of ['digits_cnn.onnx', 'digits_mlp.onnx', 'digits_calib_x.npy', 'digits_train_x.npy', 'digits_train_y.npy', 'digits_test_y.npy']) {
    fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
  }
  const p = (f: string) => path.join(dir, f);
  const cases: Array<[string, string[], string]> = [
    ['train data', ['train', p('digits_mlp.onnx'), '--train', p('digits_train_x.npy'), '--train-labels', p('digits_train_y.npy'), '--epochs', '1'], 'digits_train_x.npy'],
    ['training labels', ['train', p('digits_mlp.onnx'), '--train', p('digits_train_x.npy'), '--train-labels', p('digits_train_y.npy'), '--epochs', '1'], 'digits_train_y.npy'],
    ['calibration data', ['quantize', p('digits_cnn.onnx'), '--mode', 'static', '--calib', p('digits_calib_x.npy')], 'digits_calib_x.npy'],
    ['a teacher', ['distill', p('digits_mlp.onnx'), '--teacher', p('digits_cnn.onnx'), '--train', p('digits_train_x.npy'), '--epochs', '1'], 'digits_cnn.onnx'],
    ['a name=path value', ['quantize', p('digits_cnn.onnx'), '--mode', 'static', `--calib=input=${p('digits_calib_x.npy')}`], 'digits_calib_x.npy'],
  ];
  for (const [what, argv, target] of cases) {
    it(`refuses -o naming ${what}`, () => {
      const before = fs.readFileSync(p(target));
      const r = cli([...argv, '-o', p(target)]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /refusing to overwrite the input file/);
      assert.equal(r.stderr.trim().split('\n').filter((l) => !l.startsWith('usage:')).length, 1, 'one line');
      assert.deepEqual(fs.readFileSync(p(target)), before, 'the file keeps its bytes');
    });
  }
  it('refuses an output inside an image folder the command reads', () => {
    const images = path.join(dir, 'images');
    fs.mkdirSync(images, { recursive: true });
    const r = cli(['quantize', p('digits_cnn.onnx'), '--mode', 'static', '--calib', images, '-o', path.join(images, 'q.onnx')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /inside the data folder/);
  });
  for (const argv of [
    ['quantize', p('digits_cnn.onnx'), '--mode', 'dynamic'],
    ['train', p('digits_mlp.onnx'), '--train', p('digits_train_x.npy'), '--train-labels', p('digits_train_y.npy'), '--epochs', '1'],
  ]) {
    it(`refuses -o naming an existing folder before any work (${argv[0]})`, () => {
      const out = path.join(dir, `out-${argv[0]}`);
      fs.mkdirSync(out, { recursive: true });
      const r = cli([...argv, '-o', out]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^error: the output .* is an existing folder; give a file path/);
      assert.equal(r.stderr.trim().split('\n').filter((l) => !l.startsWith('usage:')).length, 1, 'one line');
      assert.deepEqual(fs.readdirSync(out), [], 'the folder stays empty');
      assert.ok(!fs.existsSync(`${out}.ckpt`), 'no checkpoint beside it');
    });
  }
});
