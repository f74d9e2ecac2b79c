import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { OutputError, UsageError } from '../errors';
import { sweepStale, trackScratch, untrackScratch } from './scratch';

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
      // A run killed mid-write (its pid is in the name) left its temporary file: remove it.
      sweepStale(path.dirname(target), `.${path.basename(target)}.tmp-`);
      this.fd = fs.openSync(this.tmp, 'wx');
      trackScratch(this.tmp);
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

  /**
   * Like `write`, but a chunk of zeros becomes a hole (the file is extended at commit): a
   * zero-filled tensor of gigabytes costs no disk and no write time on file systems with
   * sparse files, and reads back as zeros everywhere else.
   */
  writeSparse(chunk: Uint8Array): void {
    if (isAllZero(chunk)) this.pos += chunk.length;
    else this.write(chunk);
  }

  /** Pads with zeros up to `offset` (for aligned layouts). */
  padTo(offset: number): void {
    if (offset > this.pos) this.pos = offset;
  }

  get size(): number {
    return this.pos;
  }

  commit(): void {
    // Holes and padding at the end: the file takes its full size.
    if (fs.fstatSync(this.fd).size < this.pos) fs.ftruncateSync(this.fd, this.pos);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = -1;
    fs.renameSync(this.tmp, this.target);
    untrackScratch(this.tmp);
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
    untrackScratch(this.tmp);
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

/**
 * Where `p` really is: symlinks resolved (of the file, or of its folder when the file does
 * not exist yet), plus device and inode when it exists, so hard links compare equal.
 */
function identity(p: string): { real: string; dev?: number; ino?: number } {
  const abs = path.resolve(p);
  try {
    const st = fs.statSync(abs);
    return { real: fs.realpathSync(abs), dev: st.dev, ino: st.ino };
  } catch {
    let real = abs;
    try {
      real = path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
    } catch {
      /* the folder does not exist yet either */
    }
    return { real };
  }
}

/** True when `a` and `b` name the same file: same resolved path, or same device and inode (hard links). */
export function sameFile(a: string, b: string): boolean {
  const x = identity(a);
  const y = identity(b);
  if (x.real === y.real) return true;
  return x.ino !== undefined && x.dev === y.dev && x.ino === y.ino;
}

/**
 * Refuses an output path that is one of the protected input files (the original model
 * and its data), after resolving symlinks and hard links. Outputs must never overwrite
 * what they were made from. Throws UsageError.
 */
export function assertNotInput(output: string, inputs: Iterable<string | undefined>): void {
  for (const i of inputs) {
    if (i && sameFile(output, i)) {
      const what = path.resolve(i) === path.resolve(output) ? i : `${i} (as ${output})`;
      throw new UsageError(`refusing to overwrite the input file ${what}; choose another output path`);
    }
  }
}

function isAllZero(b: Uint8Array): boolean {
  const words = b.byteOffset % 4 === 0 ? b.length >> 2 : 0;
  if (words) {
    const w = new Uint32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  }
  for (let i = words << 2; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
