import type { FlagSpec } from './args';

export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Every flag, with its description (drives parsing and `--help`). */
  flags: Record<string, FlagSpec>;
  /** An example command line (after `model-compressor`), shown by `--help`. */
  example: string;
  /** Returns the exit code. Throws UsageError (exit 2) or ModelError (exit 3). */
  run(this: Command, argv: string[], io: CliIO): number | Promise<number>;
}
