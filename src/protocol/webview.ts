/**
 * Messages between the extension host and the model editor webview, and the DTOs they carry.
 * The webview imports only this folder. Everything that reaches the host from a webview is
 * untrusted and is validated by `parseFromWebview` (src/host/webview-messages.ts) before use.
 */
import type { LayerSortKey } from './common';
import type { InspectDto, SensitivityDto, TensorDetailDto } from './jobs';
import type { GraphDto, LayerRow } from './model';

export type { LayerSortKey };
export type * from './model';
export type { InspectDto, SensitivityDto, TensorDetailDto, WeightDetailDto } from './jobs';

/** The keys the layer table sorts by (the worker refuses any other). */
export const SORT_KEYS: readonly LayerSortKey[] = ['index', 'name', 'op', 'params', 'bytes', 'macs'];

export type ToWebview =
  | { type: 'summary'; file: string; summary: InspectDto }
  | { type: 'layersPage'; requestId: number; total: number; offset: number; rows: LayerRow[] }
  | { type: 'tensorDetail'; layer: string; detail: TensorDetailDto }
  | { type: 'graph'; graph: GraphDto }
  | { type: 'sensitivity'; result: SensitivityDto }
  /** Where layer `index` sits in the table under the current sort and filter (-1: filtered out). */
  | { type: 'located'; index: number; position: number }
  | { type: 'error'; message: string }
  /** Progress of a long job (fraction 0..1 when known); `done` clears it. */
  | { type: 'busy'; stage: string; fraction?: number; done?: boolean };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'layers'; requestId: number; offset: number; limit: number; sortBy: LayerSortKey; descending: boolean; filter: string }
  | { type: 'tensor'; layer: string }
  /** `collapse`: name scopes (path prefixes such as `/features/denseblock3`) drawn as one box each. */
  | { type: 'graph'; collapse?: string[] }
  | { type: 'sensitivity' }
  | { type: 'locate'; index: number; sortBy: LayerSortKey; descending: boolean; filter: string }
  | { type: 'command'; command: 'quantizeInt8' | 'compress' | 'benchmark' };
