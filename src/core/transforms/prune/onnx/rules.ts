import type { Model, Node } from '../../../ir/graph';
import type { ShapeInfo } from '../../../ir/shape-inference';
import type { Tensor } from '../../../ir/tensor';
import type { GraphEditor } from '../../graph-edit';
import type { Group, Layout, Member } from './types';

/**
 * The per-op registry of structured pruning (as Torch-Pruning's pruner registry): for each op
 * family, one entry says how channels propagate through the node (`ChannelRule.trace`), and
 * for each member kind, one entry says how the node is rewritten when channels go
 * (`MemberEdit`). Adding an op is one `registerChannelRule` call in `ops/`; an op that needs a
 * new kind of rewrite also adds its kind to `Member` (types.ts) and a `registerMemberEdit`.
 * An op without a rule is not followed: the groups whose channels it reads become unsafe.
 */

/** What a rule sees and may do while the dependency graph is built, node by node in graph order. */
export interface Tracer {
  readonly model: Model;
  readonly shapes: ShapeInfo['types'];
  /** The constant behind a value (initializer, Constant, or a chain of Identity/Cast to one), if any. */
  constOf(name: string): Tensor | undefined;
  /** A float32 constant, if the value is one. */
  floatConst(name: string): Tensor | undefined;
  /** The channel layout of a value, if it carries group channels. */
  layout(name: string | undefined): Layout | undefined;
  setLayout(name: string, layout: Layout): void;
  /** The channel count (axis 1) of a value, from inferred shapes. */
  channelsOf(name: string): number | undefined;
  /** Starts a group of `size` channels carried by `tensor`; returns its id. */
  newGroup(size: number, tensor: string): number;
  addMember(group: number, m: Member): void;
  /** Adds a consumer to every group whose channels `layout` carries. */
  addConsumer(layout: Layout, m: Member): void;
  /** The group ids must shrink together (their channels meet channel for channel). */
  union(a: number, b: number): void;
  /** The group's root after unions. */
  find(group: number): number;
  group(id: number): Group;
  /** The one group that owns all of a layout (one whole, unblocked segment), if any. */
  singleGroup(layout: Layout): number | undefined;
  /** The groups in `layout` are never pruned; the first reason given stays. */
  markUnsafe(layout: Layout, why: string): void;
}

export interface ChannelRule {
  /** Producers start groups, so they are traced even when no input carries channels. */
  starts?: boolean;
  /**
   * Follows channels through `n` (default domain, one of the rule's ops). Returns false when
   * the rule does not apply after all (e.g. a Conv whose weight is not constant): the node is
   * then treated as an unknown op.
   */
  trace(n: Node, t: Tracer): boolean | void;
}

const channelRules = new Map<string, ChannelRule>();

/**
 * Registers how channels go through `ops` (default ONNX domain). A later registration replaces
 * an earlier one; the returned function restores what was there before.
 */
export function registerChannelRule(ops: string[], rule: ChannelRule): () => void {
  const before = ops.map((op) => [op, channelRules.get(op)] as const);
  for (const op of ops) channelRules.set(op, rule);
  return () => {
    for (const [op, r] of before) {
      if (r) channelRules.set(op, r);
      else channelRules.delete(op);
    }
  };
}

export function channelRule(opType: string): ChannelRule | undefined {
  return channelRules.get(opType);
}

/** How a pruned copy is edited: a `MemberEdit` queues changes here, applied once for all groups. */
export interface PruneEdits {
  /** Removes `positions` along `axis` of the node's input `input` (a constant `tensor`), in original coordinates. */
  weight(node: Node, input: number, tensor: Tensor, axis: number, positions: number[]): void;
  /**
   * State shared by every group that touches `node` for `kind` (created by `init` the first
   * time), and `finish`, run once after all weight edits with the node's copy in the pruned model.
   */
  perNode<S>(node: Node, kind: string, init: () => S, finish: (state: S, copy: Node, ed: GraphEditor, source: Model) => void): S;
}

export type MemberEdit<K extends Member['kind']> = (m: Extract<Member, { kind: K }>, group: Group, remove: number[], edits: PruneEdits) => void;

const memberEdits = new Map<string, MemberEdit<Member['kind']>>();

/** Registers how a member of kind `kind` is rewritten when channels `remove` of its group go. */
export function registerMemberEdit<K extends Member['kind']>(kind: K, edit: MemberEdit<K>): void {
  memberEdits.set(kind, edit as unknown as MemberEdit<Member['kind']>);
}

export function memberEdit(kind: Member['kind']): MemberEdit<Member['kind']> {
  const e = memberEdits.get(kind);
  if (!e) throw new Error(`no pruning edit registered for member kind '${kind}'`);
  return e;
}
