import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES, tmpDir } from './helpers/ort';

const CLI = path.resolve(__dirname, '../../src/cli/main.js');

export function cli(args: string[], opts: { cwd?: string } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: opts.cwd, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function assertNoStack(text: string) {
  assert.ok(!/\n\s+at /.test(text), `no stack trace expected:\n${text}`);
}

describe('CLI: inspect', () => {
  const cnn = path.join(FIXTURES, 'digits_cnn.onnx');

  it('prints a readable table', () => {
    const r = cli(['inspect', cnn]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /params 356,234/);
    assert.match(r.stdout, /\/c2\/Conv\s+Conv/);
    assert.match(r.stdout, /input\s+input: float32\[batch, 1, 8, 8\]/);
  });

  it('prints the documented JSON with --json', () => {
    const r = cli(['inspect', cnn, '--json', '--top', '3']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.format, 'onnx');
    assert.deepEqual(j.opset, { 'ai.onnx': 13 });
    assert.deepEqual(j.inputs, [{ name: 'input', dtype: 'float32', shape: ['batch', 1, 8, 8] }]);
    assert.deepEqual(j.outputs, [{ name: 'output', dtype: 'float32', shape: ['batch', 10] }]);
    assert.equal(j.totals.params, 356234);
    assert.equal(j.totals.bytes, 356234 * 4);
    assert.equal(j.totals.macs, 2641152);
    assert.equal(j.layers.length, 11);
    assert.equal(j.topByMacs.length, 3);
    const conv = j.layers.find((l: { name: string }) => l.name === '/c1/Conv');
    for (const k of ['name', 'op', 'params', 'bytes', 'macs', 'outputShapes', 'weights']) assert.ok(k in conv, k);
    for (const k of ['min', 'max', 'mean', 'std', 'sparsity', 'histogram', 'entropyBits']) assert.ok(k in conv.weights[0], k);
    assert.equal(conv.weights[0].histogram.counts.length, 256);
  });

  it('fixes dynamic dims with --shape', () => {
    const j = JSON.parse(cli(['inspect', cnn, '--json', '--shape', 'input=4x1x8x8', '--no-stats']).stdout);
    assert.equal(j.totals.macs, 4 * 2641152);
    assert.deepEqual(j.inputs[0].shape, [4, 1, 8, 8]);
  });

  it('exits 2 on bad usage and 3 on a bad model, with one line and no stack trace', () => {
    const u = cli(['inspect']);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /^error: inspect takes exactly one model file/);
    assert.equal(cli(['inspect', cnn, '--bogus']).code, 2);
    assert.equal(cli(['frobnicate']).code, 2);
    const dir = tmpDir();
    const bad = path.join(dir, 'broken.onnx');
    fs.writeFileSync(bad, fs.readFileSync(cnn).subarray(0, 5000));
    const r = cli(['inspect', bad]);
    assert.equal(r.code, 3);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(r.stderr.includes(bad));
    assertNoStack(r.stderr);
    const missing = cli(['inspect', path.join(dir, 'missing.onnx')]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /file not found/);
  });
});
