import * as fs from 'fs';
import * as path from 'path';
import { ModelError, UsageError } from '../errors';
import { assertNotInput, sameFile } from '../util/atomic-write';
import type { Model } from '../ir/graph';
import type { FormatPlugin, SaveOptions } from './format';
import { allTensors, onnxFormat } from './onnx';
import { tfjsDocument } from './tfjs/document';
import { safetensorsFormat } from './safetensors';
import { tfliteFormat } from './tflite';
import { tfjsGraphFormat, tfjsLayersFormat } from './tfjs';

const SNIFF_BYTES = 64 * 1024;

/** All known formats, in detection order. */
export const formats: FormatPlugin[] = [onnxFormat, tfjsLayersFormat, tfjsGraphFormat, tfliteFormat, safetensorsFormat];

function readHead(file: string): { head: Uint8Array; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelError(file, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder, not a model file' : `cannot open (${code ?? String(e)})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new ModelError(file, 'is a folder, not a model file');
    if (st.size === 0) throw new ModelError(file, 'the file is empty');
    const head = new Uint8Array(Math.min(SNIFF_BYTES, st.size));
    fs.readSync(fd, head, 0, head.length, 0);
    return { head, size: st.size };
  } finally {
    fs.closeSync(fd);
  }
}

/** Finds the format of a file by its content (the extension only breaks ties). */
export function detectFormat(file: string): FormatPlugin {
  const { head, size } = readHead(file);
  const ext = path.extname(file).toLowerCase();
  const matches = formats.filter((f) => f.match(head, size, file));
  if (matches.length === 0) {
    const known = formats.flatMap((f) => f.extensions).join(', ');
    const byExt = formats.find((f) => f.extensions.includes(ext));
    throw new ModelError(
      file,
      byExt
        ? `not a valid ${byExt.id.toUpperCase()} file (its content does not match the format its extension suggests)`
        : `unsupported or unrecognised model format (supported: ${known})`,
    );
  }
  return matches.find((f) => f.extensions.includes(ext)) ?? matches[0];
}

/** Opens any supported model. Every failure is a ModelError naming the file. */
export function openModel(file: string): Model {
  const fmt = detectFormat(file);
  let model: Model;
  try {
    model = fmt.open(file);
  } catch (e) {
    if (e instanceof ModelError) throw e;
    if (e instanceof RangeError || e instanceof TypeError) throw new ModelError(file, `cannot be read (${e.message})`);
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw new ModelError(file, `cannot be read (${code})`);
    throw e;
  }
  model.inputFiles = modelFiles(file, model);
  return model;
}

const FORMAT_NAMES: Record<string, string> = { onnx: 'ONNX', 'tfjs-layers': 'TF.js layers', 'tfjs-graph': 'TF.js graph', tflite: 'TFLite', safetensors: 'safetensors' };

/**
 * Refuses (ModelError, one line, before any work) a model whose format this tool only reads
 * (TFLite, safetensors: no writer), for a `command` that writes a transformed model.
 */
export function assertWritableFormat(model: Model, file: string, command: string): void {
  if (formats.find((f) => f.id === model.format)?.save) return;
  throw new ModelError(file, `${FORMAT_NAMES[model.format] ?? model.format} models are read-only here; ${command} takes ONNX or TF.js`);
}

export function saveModel(model: Model, output: string, opts?: SaveOptions): { bytes: number; externalBytes: number } {
  const fmt = formats.find((f) => f.id === model.format);
  if (!fmt?.save) throw new UsageError(`writing ${model.format} models is not supported`);
  assertOutputNotInput(model, output);
  return fmt.save(model, output, opts);
}

/** The model file and every file its weights live in (ONNX external data, TF.js shards). */
export function modelFiles(file: string, model: Model = openModel(file)): string[] {
  const files = new Set<string>([path.resolve(file)]);
  for (const t of allTensors(model)) if (t.externalFile) files.add(t.externalFile);
  for (const f of tfjsDocument(model.source)?.shardFiles ?? []) files.add(f);
  return [...files];
}

/** Bytes on disk of the model with all its weight files. */
export function modelSizeBytes(file: string, model?: Model): number {
  return modelFiles(file, model).reduce((a, f) => a + fs.statSync(f).size, 0);
}

/**
 * Every file a save to `output` may create: the model file, and beside it ONNX's external
 * data (`<output>.data`) or TF.js shards (`<name>.group<g>-shard<i>of<n>.bin`, matched as a
 * pattern because their count depends on the weights).
 */
function plannedOutputs(output: string): { files: string[]; shardPattern?: RegExp } {
  if (/\.json$/i.test(output)) {
    const prefix = path.basename(output).replace(/\.json$/i, '.').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return { files: [output], shardPattern: new RegExp(`^${prefix}group\\d+-shard\\d+of\\d+\\.bin$`) };
  }
  return { files: [output, path.join(path.dirname(output), `${path.basename(output)}.data`)] };
}

/**
 * Refuses (UsageError) an output path when any file a save to it creates would overwrite a
 * file the model was read from: the model file, its external data or its TF.js shards
 * (`model.inputFiles`, set by `openModel`). Paths are compared after resolving symlinks, and
 * by device and inode (hard links). Callers check before any work; `saveModel` checks again.
 */
export function assertOutputNotInput(model: Model, output: string): void {
  const inputs = model.inputFiles ?? (model.path ? [model.path] : []);
  const planned = plannedOutputs(output);
  for (const f of planned.files) assertNotInput(f, inputs);
  if (!planned.shardPattern) return;
  const dir = path.dirname(output);
  for (const i of inputs) {
    const name = path.basename(i);
    if (planned.shardPattern.test(name) && sameFile(path.join(dir, name), i)) {
      throw new UsageError(`refusing to overwrite the input's weight shard ${i} (the output ${output} writes shards of that name); choose another output path`);
    }
  }
}
