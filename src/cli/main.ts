import { CancelledError, ModelError, NotAvailableError, OutputError, UsageError, oneLine } from '../core/errors';
import { nearest } from '../core/transforms/step';
import { program } from './args';
import { installExitCleanup } from '../core/util/scratch';
import { terminalSafe } from '../core/util/text';
import type { CliIO, Command } from './command';
import { assertOutputsNotAmongInputs } from './inputs-guard';
import { benchCommand } from './commands/bench';
import { compareCommand } from './commands/compare';
import { compressCommand } from './commands/compress';
import { distillCommand } from './commands/distill';
import { earlyExitCommand } from './commands/early-exit';
import { exportCommand } from './commands/export';
import { inspectCommand } from './commands/inspect';
import { pruneCommand, sensitivityCommand } from './commands/prune';
import { quantizeCommand } from './commands/quantize';
import { substituteCommand } from './commands/substitute';
import { trainCommand } from './commands/train';

/** Exit codes (documented in the README). */
export const EXIT = { ok: 0, failure: 1, usage: 2, badInput: 3 } as const;

export const commands: Command[] = [inspectCommand, compareCommand, benchCommand, quantizeCommand, pruneCommand, sensitivityCommand, substituteCommand, distillCommand, earlyExitCommand, compressCommand, exportCommand, trainCommand];

function help(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: model-compressor <command> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    "run 'model-compressor <command> --help' for a command's options",
  ].join('\n');
}

/** A command's `--help`: usage, every flag with its description and default, and an example. */
export function commandHelp(cmd: Command): string {
  return program(cmd.name, cmd.flags, cmd.summary, cmd.usage.replace(/^model-compressor \S+ /, '')).helpInformation().replace(/^Usage: /, 'usage: model-compressor ') + `\nexample:\n  model-compressor ${cmd.example}\n`;
}

export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version') {
    io.out(require('../../package.json').version);
    return EXIT.ok;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    const near = nearest(name, commands.map((c) => c.name));
    io.err(`error: unknown command '${name}'${near ? `; did you mean '${near}'?` : ` (commands: ${commands.map((c) => c.name).join(', ')})`}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(commandHelp(cmd));
    return EXIT.ok;
  }
  try {
    assertOutputsNotAmongInputs(rest);
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return EXIT.usage;
    }
    if (e instanceof ModelError) {
      io.err(`error: ${e.message}`);
      return EXIT.badInput;
    }
    if (e instanceof NotAvailableError || e instanceof CancelledError || e instanceof OutputError) {
      io.err(`error: ${e.message}`);
      return EXIT.failure;
    }
    io.err(`internal error: ${oneLine(e)}`);
    if (process.env.MODEL_COMPRESSOR_DEBUG && e instanceof Error) io.err(e.stack ?? '');
    return EXIT.failure;
  }
}

export function main(): void {
  const io: CliIO = {
    out: (t) => process.stdout.write(terminalSafe(t.endsWith('\n') ? t : `${t}\n`)),
    err: (t) => process.stderr.write(terminalSafe(t.endsWith('\n') ? t : `${t}\n`)),
  };
  // Temporary files go at exit; what a killed run leaves (Ctrl-C keeps its default action, so it
  // also stops synchronous work at once) is removed by the next run.
  installExitCleanup();
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      io.err(`internal error: ${oneLine(e)}`);
      process.exitCode = EXIT.failure;
    },
  );
}

if (require.main === module) main();
