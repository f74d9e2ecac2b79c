/**
 * Messages between the extension host and the model editor webview. The webview imports
 * only this file. Everything that reaches the host from a webview is untrusted and is
 * validated by `parseFromWebview` (src/host/webview-messages.ts) before use.
 */
import type { Json, LayerSortKey } from './worker';

export type { Json, LayerSortKey };

export type ToWebview =
  | { type: 'summary'; file: string; summary: Json }
  | { type: 'layersPage'; requestId: number; total: number; offset: number; rows: Json[] }
  | { type: 'tensorDetail'; layer: string; detail: Json }
  | { type: 'graph'; graph: Json }
  | { type: 'sensitivity'; result: Json }
  /** Where layer `index` sits in the table under the current sort and filter (-1: filtered out). */
  | { type: 'located'; index: number; position: number }
  | { type: 'error'; message: string }
  | { type: 'busy'; stage: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'layers'; requestId: number; offset: number; limit: number; sortBy: LayerSortKey; descending: boolean; filter: string }
  | { type: 'tensor'; layer: string }
  | { type: 'graph' }
  | { type: 'sensitivity' }
  | { type: 'locate'; index: number; sortBy: LayerSortKey; descending: boolean; filter: string }
  | { type: 'command'; command: 'quantizeInt8' | 'compress' | 'benchmark' };
