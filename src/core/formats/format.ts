import type { Model } from '../ir/graph';

export interface SaveOptions {
  /** 'auto' (default) goes external only when the model would exceed protobuf's 2 GiB limit. */
  externalData?: 'auto' | 'always' | 'never';
  /** File name of the external data, beside the model. Default: `<output name>.data`. */
  externalLocation?: string;
  /** Tensors smaller than this stay inside the model file. Default 1024 bytes. */
  externalThreshold?: number;
  /** With 'auto': total tensor bytes above which data goes external. Default 1.8 GiB. */
  autoExternalAt?: number;
  /** TF.js: bytes per weight shard (default 4 MiB). */
  shardBytes?: number;
}

/**
 * A model format. Every plugin detects its files by content, reads into the shared IR
 * nouns, and loads tensor data lazily.
 */
export interface FormatPlugin {
  id: Model['format'];
  /** Typical file extensions; a hint for error messages, never the only test. */
  extensions: string[];
  /** True when the first bytes of the file (up to 64 KiB) look like this format. */
  match(head: Uint8Array, fileSize: number, file: string): boolean;
  /** Reads a model. Throws ModelError for anything wrong with the file. */
  open(file: string): Model;
  /** Writes a model atomically; absent for read-only formats. */
  save?(model: Model, output: string, opts?: SaveOptions): { bytes: number; externalBytes: number };
}
