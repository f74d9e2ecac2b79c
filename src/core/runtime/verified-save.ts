import * as fs from 'fs';
import * as path from 'path';
import { CancelledError, ModelError, OutputError, UsageError, oneLine } from '../errors';
import type { SaveOptions } from '../formats/format';
import { allTensors } from '../formats/onnx';
import { saveModel } from '../formats/registry';
import { tfjsDocument } from '../formats/tfjs/document';
import type { Model } from '../ir/graph';
import { assertNotInput } from '../util/atomic-write';
import { rssStage } from './rss-log';
import { makeScratchDir, releaseScratch } from '../util/scratch';
import { ModelSession } from './session';
import { TfjsRunner } from './tfjs';

/**
 * Writes a transformed model and proves it loads in its own runtime (ONNX Runtime for ONNX,
 * TensorFlow.js for TF.js) BEFORE any file takes its final name. The files are written into
 * a hidden folder beside the output, loaded there, then renamed into place (external data or
 * weight shards first, the model file last). A model the tool made that its runtime rejects
 * is the tool's bug: an `OutputError` (exit 1) says so, and nothing is left behind.
 */
export async function saveVerified(model: Model, output: string, opts?: SaveOptions): Promise<{ bytes: number; externalBytes: number }> {
  const dir = path.dirname(path.resolve(output));
  const protect = [model.path, ...(model.inputFiles ?? []), ...allTensors(model).map((t) => t.externalFile), ...(tfjsDocument(model.source)?.shardFiles ?? [])];
  assertNotInput(output, protect);
  fs.mkdirSync(dir, { recursive: true });
  const staging = makeScratchDir(`.${path.basename(output)}.check-`, dir);
  try {
    const staged = path.join(staging, path.basename(output));
    const r = saveModel(model, staged, opts);
    rssStage('output serialized and written');
    await loadCheck(model, staged, output);
    const files = fs.readdirSync(staging).sort((a, b) => Number(a === path.basename(output)) - Number(b === path.basename(output)));
    for (const f of files) assertNotInput(path.join(dir, f), protect);
    for (const f of files) fs.renameSync(path.join(staging, f), path.join(dir, f));
    return r;
  } finally {
    releaseScratch(staging);
  }
}

async function loadCheck(model: Model, staged: string, output: string): Promise<void> {
  const tfjs = model.format.startsWith('tfjs');
  try {
    const s = tfjs ? await TfjsRunner.create(staged) : await ModelSession.create(staged, { allowSpinning: false });
    await s.release();
  } catch (e) {
    if (e instanceof CancelledError || e instanceof UsageError) throw e;
    const why = ((e as Error).message ?? String(e)).replace(staged, path.basename(output)).split('\n')[0];
    // When the input itself does not load in that runtime, the input is at fault, not the tool.
    const inputError = model.path ? await loadError(model.path, tfjs) : undefined;
    if (inputError !== undefined) throw new ModelError(model.path!, `${tfjs ? 'TensorFlow.js' : 'ONNX Runtime'} cannot load the input either (${inputError})`);
    throw new OutputError(
      `internal error: the model written for ${output} does not load in ${tfjs ? 'TensorFlow.js' : 'ONNX Runtime'} (${why}). ` +
        'This is a bug in model-compressor, not in the input; nothing was written.',
    );
  }
}

/** Why `file` does not load in its runtime, or undefined when it loads. */
async function loadError(file: string, tfjs: boolean): Promise<string | undefined> {
  try {
    const s = tfjs ? await TfjsRunner.create(file) : await ModelSession.create(file, { allowSpinning: false });
    await s.release();
    return undefined;
  } catch (e) {
    return oneLine(e).replace(`${file}: `, '');
  }
}
