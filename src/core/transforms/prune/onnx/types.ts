import type { Node } from '../../../ir/graph';
import type { Tensor } from '../../../ir/tensor';

/**
 * The nouns of the channel dependency graph (see dependency.ts): layouts of a tensor's channel
 * axis, the members of a group (what shrinks when its channels go) and the groups.
 */

/**
 * Positions [offset, offset + size·block) of a tensor's channel axis hold the group's
 * channels [start, start + size) (a Split or Slice can carve a sub-range of a group).
 */
export interface Segment {
  group: number;
  offset: number;
  size: number;
  /** Each group channel spans `block` consecutive positions (Flatten of H×W maps). */
  block: number;
  start: number;
}

/** A segment of channels no group owns (e.g. from a graph input): it never changes. */
export interface FixedSegment {
  group: -1;
  offset: number;
  size: number;
  block: number;
  start: number;
}

export type Layout = Array<Segment | FixedSegment>;

export type Member =
  /** Output channels: weight (input 1) axis (0 for Conv/Gemm transB=1, 1 for ConvTranspose, last for MatMul/Gemm transB=0) and bias (input 2). */
  | { kind: 'producer'; node: Node; weight: Tensor; axis: number; bias?: Tensor }
  /** Per-channel parameters along the group's channels: BN scale/bias/mean/var, depthwise weights, elementwise constants. */
  | { kind: 'params'; node: Node; tensors: Array<{ tensor: Tensor; axis: number; input: number }>; depthwise?: boolean }
  /** Input channels of a consumer, located by the layout of the tensor it reads. */
  | { kind: 'consumer'; node: Node; weight: Tensor; axis: number; layout: Layout }
  /** A Reshape whose constant target shape holds the feature count. */
  | { kind: 'reshape'; node: Node; shape: Tensor; featureAxis: number; layout: Layout }
  /** A channel Split (sizes shrink by the removed positions in each part) or Slice (bounds move). */
  | { kind: 'split'; node: Node; layout: Layout; bounds: number[] }
  | { kind: 'slice'; node: Node; layout: Layout; start: number; end: number; axisIndex: number };

export interface Group {
  id: number;
  size: number;
  members: Member[];
  unsafe?: string;
  /** A tensor that carries the group's channels (for activation statistics). */
  tensor: string;
}

export interface DependencyGraph {
  groups: Group[];
  /** Layout of every tensor that carries group channels. */
  layouts: Map<string, Layout>;
}

export function layoutSize(l: Layout): number {
  return l.reduce((a, s) => a + s.size * s.block, 0);
}

/** Positions on a tensor's channel axis that disappear when `removed` channels of `group` go. */
export function removedPositions(layout: Layout, group: number, removed: number[]): number[] {
  const out: number[] = [];
  for (const s of layout) {
    if (s.group !== group) continue;
    for (const c of removed) {
      if (c < s.start || c >= s.start + s.size) continue;
      for (let t = 0; t < s.block; t++) out.push(s.offset + (c - s.start) * s.block + t);
    }
  }
  return out.sort((a, b) => a - b);
}
