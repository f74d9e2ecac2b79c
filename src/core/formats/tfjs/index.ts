import * as fs from 'fs';
import * as path from 'path';
import { ModelError, UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import { writeFileAtomic } from '../../util/atomic-write';
import type { FormatPlugin, SaveOptions } from '../format';
import { tfjsDocument, type Json } from './document';
import { buildGraphModel } from './graph-model';
import { buildLayersModel } from './layers';
import { readManifest, writeWeights } from './manifest';

/**
 * TF.js models: `model.json` (a layers model's Keras topology or a graph model's GraphDef)
 * plus binary weight shards listed in its weights manifest. Shards must stay inside the
 * model's folder and hold at least what the manifest declares.
 */

const MAX_JSON = 64 * 2 ** 20;

function headText(head: Uint8Array): string {
  return new TextDecoder().decode(head.subarray(0, Math.min(head.length, 65536))).trimStart();
}

const isTfjs = (text: string) => text.startsWith('{') && /"(modelTopology|weightsManifest)"\s*:/.test(text);
const isGraph = (text: string) => /"format"\s*:\s*"graph-model"/.test(text) || /"modelTopology"\s*:\s*\{\s*"node"\s*:/.test(text);

export function readTfjs(file: string): Model {
  const fail = (why: string): never => {
    throw new ModelError(file, why);
  };
  const size = fs.statSync(file).size;
  if (size > MAX_JSON) fail(`model.json is ${size} bytes, over the ${MAX_JSON}-byte limit for a TF.js topology`);
  let json: Json;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('not a TF.js model.json (expected a JSON object)');
  const topology = json.modelTopology as Json | undefined;
  if (!topology || typeof topology !== 'object' || Array.isArray(topology)) fail('no modelTopology object: not a TF.js model');
  const weights = readManifest(file, json.weightsManifest, fail);
  const graph = json.format === 'graph-model' || Array.isArray((topology as Json).node);
  return graph ? buildGraphModel(file, json, weights, fail) : buildLayersModel(file, json, weights, fail);
}

/**
 * Writes a TF.js model: model.json at `output`, shards beside it named after it
 * (`<name>.group1-shardKofN.bin`, 4 MiB each), each file written atomically. Weights come
 * from the IR's initializers; their storage (float32, float16, uint8/uint16) from the
 * document's quantization map.
 */
export function saveTfjs(model: Model, output: string, opts: SaveOptions = {}): { bytes: number; externalBytes: number } {
  const doc = tfjsDocument(model.source);
  if (!doc) throw new UsageError('this model was not read from TF.js, so it cannot be written as TF.js');
  if (!output.toLowerCase().endsWith('.json')) throw new UsageError(`a TF.js model is written as a .json file (got ${output})`);
  const dir = path.dirname(path.resolve(output));
  const prefix = `${path.basename(output).replace(/\.json$/i, '')}.`;
  const weights = [...model.graph.initializers.entries()];
  const w = writeWeights(weights, {
    dir,
    prefix,
    quantizationOf: (name) => doc.quantization.get(name),
    shardBytes: opts.shardBytes,
    protect: doc.shardFiles,
  });
  const json = { ...doc.json, weightsManifest: w.manifest };
  try {
    const text = Buffer.from(JSON.stringify(json));
    writeFileAtomic(output, [text]);
    return { bytes: text.length + w.bytes, externalBytes: w.bytes };
  } catch (e) {
    for (const f of w.files) fs.rmSync(f, { force: true });
    throw e;
  }
}

export const tfjsLayersFormat: FormatPlugin = {
  id: 'tfjs-layers',
  extensions: ['.json'],
  match: (head) => {
    const t = headText(head);
    return isTfjs(t) && !isGraph(t);
  },
  open: readTfjs,
  save: saveTfjs,
};

export const tfjsGraphFormat: FormatPlugin = {
  id: 'tfjs-graph',
  extensions: ['.json'],
  match: (head) => {
    const t = headText(head);
    return isTfjs(t) && isGraph(t);
  },
  open: readTfjs,
  save: saveTfjs,
};
