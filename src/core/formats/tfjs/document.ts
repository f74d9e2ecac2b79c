import type { FormatSource } from '../../ir/graph';
import type { WeightQuantization } from './manifest';


export type Json = Record<string, unknown>;

/**
 * What a TF.js model keeps beside the IR so it can be written back in its own format: the
 * model.json without its weights manifest (topology, signature, metadata), how each weight
 * was stored, and the source shards (which writers must never overwrite). Transforms on
 * layers models edit `json`'s layer configs in place (on a clone); weights always come from
 * the IR's initializers.
 */
export class TfjsDocument implements FormatSource {
  readonly kind = 'tfjs';

  constructor(
    public json: Json,
    /** Storage per weight name; weights not listed are written as float32/int32. */
    public quantization: Map<string, WeightQuantization>,
    public shardFiles: string[],
  ) {}

  clone(): TfjsDocument {
    return new TfjsDocument(structuredClone(this.json), new Map(this.quantization), [...this.shardFiles]);
  }

  get isGraphModel(): boolean {
    return this.json.format === 'graph-model';
  }

  /** The topology object that holds `class_name` and `config` (Keras 2/3 or tfjs's wrapper). */
  modelConfig(): Json {
    const topo = this.json.modelTopology as Json;
    return (topo.model_config as Json | undefined) ?? topo;
  }

  /** The live layer objects of a layers model, in file order. */
  layers(): Json[] {
    const config = (this.modelConfig().config ?? {}) as Json | Json[];
    const layers = Array.isArray(config) ? config : (config.layers as Json[] | undefined);
    return Array.isArray(layers) ? layers : [];
  }

  layerByName(name: string): Json | undefined {
    return this.layers().find((l) => layerName(l) === name);
  }
}

export function layerName(l: Json): string {
  const c = (l.config ?? {}) as Json;
  return String(c.name ?? l.name ?? '');
}

export function layerConfig(l: Json): Json {
  if (!l.config || typeof l.config !== 'object') l.config = {};
  return l.config as Json;
}

export function tfjsDocument(source: FormatSource | undefined): TfjsDocument | undefined {
  return source instanceof TfjsDocument ? source : undefined;
}

export type { WeightQuantization };
