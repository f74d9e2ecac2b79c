import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { OutputError } from '../../src/core/errors';
import type { Model } from '../../src/core/ir/graph';
import { IN_MEMORY_SESSION_LIMIT, ModelSession } from '../../src/core/runtime/session';
import { AtomicFile } from '../../src/core/util/atomic-write';
import { fillScratchDir, makeScratchDir, releaseScratch, scratchCount, sweepStale } from '../../src/core/util/scratch';
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

  /** Runs a child that makes scratch files, then signals itself; returns how it ended. */
  function interrupted(parent: string, out: string, extra: string, signal = 'SIGINT') {
    const script = `
      const s = require(${JSON.stringify(SCRATCH)});
      const { AtomicFile } = require(${JSON.stringify(ATOMIC)});
      s.installExitCleanup();
      ${extra}
      const d = s.makeScratchDir('mc-session-', ${JSON.stringify(parent)});
      require('fs').writeFileSync(d + '/model.onnx.data', Buffer.alloc(1024));
      const f = new AtomicFile(${JSON.stringify(out)});
      f.write(new Uint8Array(16));
      setInterval(() => {}, 1000);
      process.kill(process.pid, '${signal}');
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.stderr, '');
    return { status: r.status, signal: r.signal };
  }

  it('a signal stops the process at once (even in synchronous work); the next run removes what it left', () => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      const parent = tmpDir();
      const outDir = tmpDir();
      const out = path.join(outDir, 'q.onnx');
      assert.deepEqual(interrupted(parent, out, '', signal), { status: null, signal });
      assert.equal(fs.readdirSync(parent).length, 1, 'the killed run left its scratch folder');
      assert.equal(fs.readdirSync(outDir).length, 1, 'and its half-written temporary output');
      // The next run sweeps both (their process is gone), and keeps its own.
      const mine = makeScratchDir('mc-session-', parent);
      assert.deepEqual(fs.readdirSync(parent), [path.basename(mine)]);
      const f = new AtomicFile(out);
      assert.deepEqual(fs.readdirSync(outDir), [path.basename(f.tmp)]);
      f.abort();
      releaseScratch(mine);
    }
  });

  it('start-up sweeps TMPDIR for what killed runs left, and nothing else', () => {
    const tmp = tmpDir();
    const dead = path.join(tmp, 'mc-session-4194303-abcdef');
    const foreign = path.join(tmp, 'mc-session-notapid');
    for (const d of [dead, foreign]) fs.mkdirSync(d);
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(SCRATCH)}).installExitCleanup()`], { encoding: 'utf8', env: { ...process.env, TMPDIR: tmp } });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(tmp), ['mc-session-notapid']);
  });

  it('a live process keeps its scratch paths from another run; exit removes them', () => {
    const parent = tmpDir();
    const outDir = tmpDir();
    const r = interrupted(parent, path.join(outDir, 'q.onnx'), `process.once('SIGINT', () => setImmediate(() => process.exit(7)));`);
    assert.deepEqual(r, { status: 7, signal: null });
    assert.deepEqual(fs.readdirSync(parent), []);
    assert.deepEqual(fs.readdirSync(outDir), []);
    const other = path.join(parent, `mc-session-${process.pid}-abcdef`);
    fs.mkdirSync(other);
    sweepStale(parent, 'mc-session-');
    assert.ok(fs.existsSync(other), 'a live process (this one) is never swept');
  });
});
