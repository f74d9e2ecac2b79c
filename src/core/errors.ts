import type { Model } from './ir/graph';
import { printable } from './util/text';

/**
 * User-facing errors. Anything thrown as one of these is shown as a single line
 * (never a stack trace) by the CLI and the extension.
 */

/**
 * A model or data file that cannot be read: corrupt, truncated, hostile or unsupported. The
 * message has control characters escaped (names in it came from the file), so it is one line.
 */
export class ModelError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(printable(`${file}: ${problem}`));
    this.name = 'ModelError';
  }
}

/** The request itself is wrong (bad flag, missing argument, inconsistent options). */
export class UsageError extends Error {
  constructor(message: string) {
    super(printable(message));
    this.name = 'UsageError';
  }
}

/** An output cannot be written (permissions, a file in the way of its folder, a full disk). */
export class OutputError extends Error {
  constructor(message: string) {
    super(printable(message));
    this.name = 'OutputError';
  }
}

/** The user asked for something that the current version cannot do yet. */
export class NotAvailableError extends Error {
  constructor(message: string) {
    super(printable(message));
    this.name = 'NotAvailableError';
  }
}

/** Work stopped because the caller cancelled it. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/**
 * Cancelled while training, with the best model so far (trained weights, a valid model of the
 * same interface). The job layer can save it for the user to keep or discard.
 */
export class CancelledWithResult extends CancelledError {
  constructor(
    readonly model: Model,
    /** What the model is, e.g. "retrained after prune step 2 of 3". */
    readonly detail: string,
  ) {
    super();
  }
}

/** Turns a file-system error into a ModelError naming the file. */
export function fileError(file: string, e: unknown): ModelError {
  const code = (e as NodeJS.ErrnoException).code;
  return new ModelError(file, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot read (${code ?? String(e)})`);
}

export function isUserFacing(e: unknown): e is ModelError | UsageError | NotAvailableError | CancelledError {
  return (
    e instanceof ModelError || e instanceof UsageError || e instanceof NotAvailableError || e instanceof CancelledError
  );
}

/** One line for any error: the message of user-facing ones, a short form of anything else (control characters escaped). */
export function oneLine(e: unknown): string {
  return printable((e instanceof Error ? e.message : String(e)).split('\n')[0]);
}
