import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../core/errors';
import { assertNotInput } from '../core/util/atomic-write';
import { printable } from '../core/util/text';

/**
 * No output may name a file the command reads. The engine already protects the model and its
 * external data or shards; this guard covers every other file a command line names (data,
 * labels, a teacher, a recipe, files inside an image folder), before any work starts.
 *
 * Every argument that is, or contains (`name=path`, comma lists), an existing path counts as
 * an input; the outputs are the values of `-o`/`--output` (and the `.data` file an ONNX
 * writer may create beside them). Hard links and symlinks are resolved (`assertNotInput`).
 * An output that names an existing folder is refused here too, before any work.
 */
export function assertOutputsNotAmongInputs(argv: readonly string[]): void {
  const outputs: string[] = [];
  const inputs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-o' || a === '--output') {
      if (argv[i + 1] !== undefined) outputs.push(argv[++i]);
      continue;
    }
    if (a.startsWith('--output=')) {
      outputs.push(a.slice('--output='.length));
      continue;
    }
    const value = a.startsWith('--') && a.includes('=') ? a.slice(a.indexOf('=') + 1) : a;
    for (const part of value.split(',')) {
      for (const p of [part, part.slice(part.indexOf('=') + 1)]) if (p && fs.existsSync(p)) inputs.push(p);
    }
  }
  for (const out of outputs) {
    if (isDirectory(out)) throw new UsageError(`the output ${printable(out)} is an existing folder; give a file path (for example ${printable(path.join(out, 'model.onnx'))})`);
  }
  if (!outputs.length || !inputs.length) return;
  for (const out of outputs) {
    const created = [out, `${out}.data`];
    for (const o of created) assertNotInput(o, inputs);
    // An output inside a folder the command reads (an image folder) would change its data.
    const dir = path.resolve(path.dirname(out));
    for (const i of inputs) {
      if (isDirectory(i) && (dir === path.resolve(i) || dir.startsWith(path.resolve(i) + path.sep)) && !fs.existsSync(path.join(i, 'model.json'))) {
        throw new UsageError(`refusing to write ${printable(out)} inside the data folder ${printable(i)}, which this command reads; choose another output path`);
      }
    }
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
