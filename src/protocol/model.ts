/** The model editor's DTOs for layers and the graph view, shared by the worker's jobs and the webview's messages. */

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
