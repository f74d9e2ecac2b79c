import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { OutputError } from '../errors';

/**
 * Scratch files and folders this process makes (a session's external-data copy in TMPDIR, a
 * staged output beside `-o`, an atomic write's temporary file). Each is registered while it
 * exists, so that an interrupted run leaves none behind: `removeAllScratch` runs at process
 * exit, and `installInterruptCleanup` makes SIGINT/SIGTERM run it too (Node's default
 * handling of those signals ends the process without running 'exit' handlers).
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
  try {
    dir = fs.mkdtempSync(path.join(parent, prefix));
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

const written: string[] = [];

/** Records an output renamed into place (complete and verified), for an interrupt message. */
export function noteOutputWritten(file: string): void {
  written.push(file);
}

/** The outputs this process has put in place so far. */
export function outputsWritten(): readonly string[] {
  return written;
}

let installed = false;

/**
 * Makes an interrupted process clean up its scratch paths: at 'exit', and on SIGINT/SIGTERM
 * (and SIGHUP, a closed terminal) when no other handler has claimed the signal (a command that handles SIGINT itself, like
 * `train`, ends through its own path and the 'exit' handler). Ends with 128 + signal number,
 * after `onSignal` (for example, one line saying so).
 */
export function installInterruptCleanup(onSignal?: (signal: NodeJS.Signals) => void): void {
  if (installed) return;
  installed = true;
  process.on('exit', removeAllScratch);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      if (process.listenerCount(sig) > 1) return;
      removeAllScratch();
      onSignal?.(sig);
      process.exit(code);
    });
  }
}
