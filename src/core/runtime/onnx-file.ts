import * as path from 'path';
import { UsageError } from '../errors';
import { saveOnnx } from '../formats/onnx';
import { detectFormat, openModel } from '../formats/registry';
import { exportKerasToOnnx } from '../formats/tfjs/to-onnx';
import { fillScratchDir, makeScratchDir, releaseScratch } from '../util/scratch';

/**
 * An ONNX file ONNX Runtime can run for `file`: the file itself for ONNX models; for TF.js
 * layers models, an export to a private temporary folder (same NHWC inputs and outputs).
 * `release()` deletes what was exported. Other formats are refused with the reason.
 */
export interface RunnableOnnx {
  path: string;
  exported: boolean;
  release(): void;
}

export function runnableOnnx(file: string): RunnableOnnx {
  const fmt = detectFormat(file).id;
  if (fmt === 'onnx') return { path: file, exported: false, release: () => undefined };
  if (fmt !== 'tfjs-layers') throw new UsageError(`${file}: ONNX Runtime runs ONNX models and TF.js layers models (through an export); this is a ${fmt} model`);
  const onnx = exportKerasToOnnx(openModel(file));
  const dir = makeScratchDir('mc-export-');
  const out = path.join(dir, `${path.basename(file).replace(/\.json$/i, '')}.onnx`);
  fillScratchDir(dir, 0, () => saveOnnx(onnx, out));
  return { path: out, exported: true, release: () => releaseScratch(dir) };
}
