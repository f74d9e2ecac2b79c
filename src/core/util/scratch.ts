import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { OutputError } from '../errors';

/**
 * Scratch files and folders this process makes (a session's external-data copy in TMPDIR, a
 * staged output beside `-o`, an atomic write's temporary file). Each is registered while it
 * exists and removed at process exit (`installExitCleanup`); its name carries the process id,
 * so what a killed process leaves behind is removed by the next run (`sweepStale`).
 */
const live = new Set<string>();

/** Registers a path to remove if the process ends before `releaseScratch(p)`. */
export function trackScratch(p: string): void {
  live.add(p);
}

/** Forgets a path (it was renamed into place, or removed by its owner). */
export function untrackScratch(p: string): void {
  live.delete(p);
}

/** Removes a scratch path (file or folder, recursively) and forgets it. Never throws. */
export function releaseScratch(p: string): void {
  live.delete(p);
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    /* already gone, or not ours to remove any more */
  }
}

/** Removes every registered scratch path (synchronously: safe in an 'exit' handler). */
export function removeAllScratch(): void {
  for (const p of [...live]) releaseScratch(p);
}

/** How many scratch paths are registered (tests). */
export function scratchCount(): number {
  return live.size;
}

/**
 * Creates and registers a scratch folder `<parent>/<prefix>XXXXXX` (parent: the system's
 * temporary folder, TMPDIR). Throws OutputError naming the folder when it cannot be created.
 */
export function makeScratchDir(prefix: string, parent: string = os.tmpdir()): string {
  let dir: string;
  sweepStale(parent, prefix);
  try {
    dir = fs.mkdtempSync(path.join(parent, `${prefix}${process.pid}-`));
  } catch (e) {
    throw new OutputError(`cannot create a temporary folder in ${parent}${parent === os.tmpdir() ? ' (TMPDIR)' : ''}: ${reason(e)}`);
  }
  live.add(dir);
  return dir;
}

/**
 * Runs `write(dir)` to fill a fresh scratch folder; on failure removes the folder and turns a
 * file-system error into one OutputError line (a full disk says how much was needed).
 */
export function fillScratchDir<T>(dir: string, bytesNeeded: number, write: (dir: string) => T): T {
  try {
    return write(dir);
  } catch (e) {
    releaseScratch(dir);
    if ((e as NodeJS.ErrnoException).code === undefined) throw e;
    const need = bytesNeeded > 0 ? `; it needs about ${Math.ceil(bytesNeeded / 2 ** 20)} MiB` : '';
    throw new OutputError(`cannot write temporary files in ${path.dirname(dir)}: ${reason(e)}${need} (set TMPDIR to a folder with room)`);
  }
}

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'the folder does not exist';
  if (code === 'ENOSPC') return 'no space left on the device';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'ENOTDIR') return 'not a folder';
  return (code ?? String((e as Error).message ?? e)).split('\n')[0];
}

let installed = false;

/**
 * Removes this process's scratch paths at exit (normal end, error, `process.exit`). Signals
 * keep Node's default action on purpose: a handler would only run when the event loop is
 * free, so Ctrl-C during minutes of synchronous work (an SVD, clustering) would be ignored.
 * What a killed process leaves is removed by the next run (`sweepStale`).
 */
export function installExitCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', removeAllScratch);
  sweepStale(os.tmpdir(), TMPDIR_PREFIXES);
}

/** The prefixes of scratch folders made in TMPDIR (swept at start-up; beside outputs, when writing there). */
export const TMPDIR_PREFIXES = ['mc-session-', 'mc-export-', 'mc-prune-', 'model-compressor-tfjs-'] as const;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes scratch paths in `parent` named `<prefix><pid>-…` (one of `prefixes`) whose process
 * has ended (killed by a signal, or crashed): left by an earlier run, never by a live one. One
 * directory listing; never throws.
 */
export function sweepStale(parent: string, prefixes: string | readonly string[]): void {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const n of names) {
    const prefix = (typeof prefixes === 'string' ? [prefixes] : prefixes).find((p) => n.startsWith(p));
    if (prefix === undefined) continue;
    const m = /^(\d+)-/.exec(n.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    try {
      fs.rmSync(path.join(parent, n), { recursive: true, force: true });
    } catch {
      /* not ours to remove */
    }
  }
}
