/**
 * Messages between the extension host and the model editor webview, and the DTOs they carry.
 * The webview imports only this folder. Everything that reaches the host from a webview is
 * untrusted and is validated by `parseFromWebview` (src/host/webview-messages.ts) before use.
 */
import type { Json, LayerSortKey } from './common';

export type { Json, LayerSortKey };

/** The keys the layer table sorts by (the worker refuses any other). */
export const SORT_KEYS: readonly LayerSortKey[] = ['index', 'name', 'op', 'params', 'bytes', 'macs'];

/** One row of the layer table. `macs: null` when the node's shapes are unknown. */
export interface LayerRow {
  index: number;
  name: string;
  op: string;
  params: number;
  bytes: number;
  macs: number | null;
  dtype: string;
  outputShape: string;
  weights: number;
  /** For a layer with no weights: why (shared with another layer, in its branches, no constant input). */
  noWeights?: string;
  /** An If's MACs per branch (then, else); its `macs` counts the largest. */
  branchMacs?: number[];
}

/** A drawn node of the graph view. `i` is the layer index (the table's `#`). */
export interface GraphNode {
  i: number;
  /** Full node name. */
  label: string;
  op: string;
  /** The distinguishing tail of the name (last path segments). */
  short: string;
  /** Output shape, e.g. `[1, 64, 56, 56]`, or '' when unknown. */
  shape: string;
  /** Weights drawn inside the box (as Netron does), e.g. `W 64×3×7×7`. Folded constant producers are included. */
  weights: string[];
  params: number;
  macs: number;
  /** Number of layers this box stands for (> 1 for a collapsed scope). */
  members?: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface GraphDto {
  nodes: GraphNode[];
  /** [from, to] as layer indices of drawn nodes. */
  edges: Array<[number, number]>;
  /** Layers not drawn as boxes (constants, weight producers, members of a collapsed scope) → the box that holds them. */
  foldedInto: Array<[number, number]>;
  /** Collapsed scopes, as given. */
  collapsed: string[];
  width: number;
  height: number;
  layoutMs: number;
}

export type ToWebview =
  | { type: 'summary'; file: string; summary: Json }
  | { type: 'layersPage'; requestId: number; total: number; offset: number; rows: LayerRow[] }
  | { type: 'tensorDetail'; layer: string; detail: Json }
  | { type: 'graph'; graph: GraphDto }
  | { type: 'sensitivity'; result: Json }
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
