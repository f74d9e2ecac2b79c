import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { OutputError, UsageError } from '../errors';

/**
 * Writes a file atomically: the bytes go to a temporary file in the same folder, which is
 * then renamed over the target. Readers never see a half-written file, and a crash leaves
 * the previous file (if any) intact.
 */
export class AtomicFile {
  readonly tmp: string;
  private fd: number;
  private pos = 0;

  constructor(readonly target: string) {
    this.tmp = path.join(
      path.dirname(target),
      `.${path.basename(target)}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`,
    );
    try {
      // The output folder is created when missing (`-o out/model.onnx`).
      fs.mkdirSync(path.dirname(target), { recursive: true });
      this.fd = fs.openSync(this.tmp, 'wx');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new OutputError(`cannot write ${target}: ${err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.code === 'ENOTDIR' || err.code === 'EEXIST' ? 'a file is in the way of its folder' : err.code === 'EROFS' ? 'read-only file system' : err.code === 'ENOSPC' ? 'no space left on the device' : (err.message ?? String(e)).split('\n')[0]}`);
    }
  }

  write(chunk: Uint8Array): void {
    let done = 0;
    while (done < chunk.length) {
      done += fs.writeSync(this.fd, chunk, done, chunk.length - done, this.pos + done);
    }
    this.pos += chunk.length;
  }

  /** Pads with zeros up to `offset` (for aligned layouts). */
  padTo(offset: number): void {
    if (offset > this.pos) this.write(new Uint8Array(offset - this.pos));
  }

  get size(): number {
    return this.pos;
  }

  commit(): void {
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = -1;
    fs.renameSync(this.tmp, this.target);
  }

  abort(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already closed */
      }
      this.fd = -1;
    }
    try {
      fs.unlinkSync(this.tmp);
    } catch {
      /* never created or already renamed */
    }
  }
}

/** Writes chunks to `target` atomically. */
export function writeFileAtomic(target: string, chunks: Iterable<Uint8Array>): number {
  const f = new AtomicFile(target);
  try {
    for (const c of chunks) f.write(c);
    const n = f.size;
    f.commit();
    return n;
  } catch (e) {
    f.abort();
    throw e;
  }
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Refuses an output path that is one of the protected input files (the original model
 * and its data). Outputs must never overwrite what they were made from.
 */
export function assertNotInput(output: string, inputs: Iterable<string | undefined>): void {
  const out = realOrResolved(output);
  for (const i of inputs) {
    if (i && realOrResolved(i) === out) {
      throw new UsageError(`refusing to overwrite the input file ${i}; choose another output path`);
    }
  }
}
