export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the exit code. Throws UsageError (exit 2) or ModelError (exit 3). */
  run(argv: string[], io: CliIO): number | Promise<number>;
}
