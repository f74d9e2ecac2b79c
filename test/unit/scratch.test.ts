import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { OutputError } from '../../src/core/errors';
import type { Model } from '../../src/core/ir/graph';
import { IN_MEMORY_SESSION_LIMIT, ModelSession } from '../../src/core/runtime/session';
import { fillScratchDir, makeScratchDir, scratchCount } from '../../src/core/util/scratch';
import { ModelBuilder, randomFloats } from './helpers/builder';
import { tmpDir } from './helpers/ort';

/**
 * Temporary files: a missing or full temporary folder is one line naming it, and an
 * interrupted process (SIGINT/SIGTERM) leaves no scratch copy in TMPDIR or beside its output.
 */

const SCRATCH = path.resolve(__dirname, '../../src/core/util/scratch.js');
const ATOMIC = path.resolve(__dirname, '../../src/core/util/atomic-write.js');

function bigModel(): Model {
  const k = 1024;
  const n = Math.ceil(IN_MEMORY_SESSION_LIMIT / (4 * k)) + 16;
  const b = new ModelBuilder(17);
  const x = b.input('x', ['N', k]);
  const [y] = b.node('MatMul', [x, b.init('W', [k, n], randomFloats(k * n, 3, 0.1))]);
  b.markOutput(y, 'y');
  return b.build();
}

describe('scratch files', () => {
  it('a missing temporary folder is one OutputError line naming it; nothing stays registered', async () => {
    const missing = path.join(tmpDir(), 'nonexistent');
    assert.throws(
      () => makeScratchDir('mc-x-', missing),
      (e: Error) => e instanceof OutputError && e.message === `cannot create a temporary folder in ${missing}: the folder does not exist`,
    );
    const before = scratchCount();
    const old = process.env.TMPDIR;
    process.env.TMPDIR = missing;
    try {
      await assert.rejects(ModelSession.create(bigModel()), (e: Error) => e instanceof OutputError && e.message.includes(`in ${missing} (TMPDIR)`) && !e.message.includes('\n'));
    } finally {
      if (old === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = old;
    }
    assert.equal(scratchCount(), before);
  });

  it('a failed write into a scratch folder removes it and says how much room was needed', () => {
    const parent = tmpDir();
    const dir = makeScratchDir('mc-x-', parent);
    assert.throws(
      () => fillScratchDir(dir, 300 * 2 ** 20, (d) => fs.writeFileSync(path.join(d, 'no', 'such', 'file'), 'x')),
      (e: Error) => e instanceof OutputError && /cannot write temporary files in .*: the folder does not exist; it needs about 300 MiB \(set TMPDIR/.test(e.message),
    );
    assert.deepEqual(fs.readdirSync(parent), []);
  });

  /** Runs a child that makes scratch files, then signals itself; returns its exit status. */
  function interrupted(parent: string, out: string, extra: string, stderr = '', signal = 'SIGINT'): number | null {
    const script = `
      const s = require(${JSON.stringify(SCRATCH)});
      const { AtomicFile } = require(${JSON.stringify(ATOMIC)});
      s.installInterruptCleanup(${stderr ? `(sig) => process.stderr.write('cancelled (' + sig + ')')` : ''});
      ${extra}
      const d = s.makeScratchDir('mc-session-', ${JSON.stringify(parent)});
      require('fs').writeFileSync(d + '/model.onnx.data', Buffer.alloc(1024));
      const f = new AtomicFile(${JSON.stringify(out)});
      f.write(new Uint8Array(16));
      setInterval(() => {}, 1000);
      process.kill(process.pid, '${signal}');
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.stderr, stderr);
    return r.status;
  }

  it('SIGINT removes the scratch folder and the half-written output, and exits 130', () => {
    const parent = tmpDir();
    const outDir = tmpDir();
    assert.equal(interrupted(parent, path.join(outDir, 'q.onnx'), '', 'cancelled (SIGINT)'), 130);
    assert.deepEqual(fs.readdirSync(parent), []);
    assert.deepEqual(fs.readdirSync(outDir), []);
  });

  it('SIGTERM and SIGHUP (a closed terminal) clean up the same way', () => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      const parent = tmpDir();
      const outDir = tmpDir();
      assert.equal(interrupted(parent, path.join(outDir, 'q.onnx'), '', `cancelled (${signal})`, signal), code);
      assert.deepEqual(fs.readdirSync(parent), []);
      assert.deepEqual(fs.readdirSync(outDir), []);
    }
  });

  it('a command that handles SIGINT itself keeps control; its exit still removes the scratch files', () => {
    const parent = tmpDir();
    const outDir = tmpDir();
    const status = interrupted(parent, path.join(outDir, 'q.onnx'), `process.once('SIGINT', () => setImmediate(() => process.exit(7)));`);
    assert.equal(status, 7);
    assert.deepEqual(fs.readdirSync(parent), []);
    assert.deepEqual(fs.readdirSync(outDir), []);
  });
});
