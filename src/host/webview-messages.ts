import { SORT_KEYS, type FromWebview, type LayerSortKey } from '../protocol/webview';

/**
 * Validates a message from a webview. Webview content is untrusted: anything that is not
 * exactly one of the known shapes (with bounded strings and numbers) is dropped.
 */
const COMMANDS = ['quantizeInt8', 'compress', 'benchmark'] as const;

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isStr = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/** Bounds for `plainJson`: nesting depth, values in all, characters in all strings and keys. */
export const JSON_LIMITS = { depth: 32, values: 20_000, chars: 100_000 } as const;

/**
 * A deep copy of `v` when it is plain JSON data (objects, arrays, strings, finite numbers,
 * booleans, null) within JSON_LIMITS, else undefined. Walks with an explicit stack, so a
 * value nested 5,000 deep is dropped instead of overflowing the call stack; a shared or
 * cyclic object (structured clone allows both) is dropped too. Never throws.
 */
export function plainJson(v: unknown): unknown {
  const root: { value?: unknown } = {};
  const stack: Array<{ src: unknown; set: (x: unknown) => void; depth: number }> = [{ src: v, set: (x) => (root.value = x), depth: 0 }];
  const seen = new Set<object>();
  let values = 0;
  let chars = 0;
  while (stack.length) {
    const { src, set, depth } = stack.pop()!;
    if (++values > JSON_LIMITS.values || depth >= JSON_LIMITS.depth) return undefined;
    if (src === null || typeof src === 'boolean') set(src);
    else if (typeof src === 'number') {
      if (!Number.isFinite(src)) return undefined;
      set(src);
    } else if (typeof src === 'string') {
      if ((chars += src.length) > JSON_LIMITS.chars) return undefined;
      set(src);
    } else if (typeof src === 'object') {
      if (seen.has(src)) return undefined;
      seen.add(src);
      if (Array.isArray(src)) {
        const out: unknown[] = new Array(src.length);
        set(out);
        for (let i = 0; i < src.length; i++) stack.push({ src: src[i], set: (x) => (out[i] = x), depth: depth + 1 });
      } else {
        const proto = Object.getPrototypeOf(src);
        if (proto !== Object.prototype && proto !== null) return undefined;
        const out: Record<string, unknown> = {};
        set(out);
        for (const k of Object.keys(src)) {
          if ((chars += k.length) > JSON_LIMITS.chars || k === '__proto__') return undefined;
          stack.push({ src: (src as Record<string, unknown>)[k], set: (x) => (out[k] = x), depth: depth + 1 });
        }
      }
    } else return undefined;
  }
  return root.value;
}

export function parseFromWebview(m: unknown): FromWebview | undefined {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return undefined;
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'ready':
      return { type: 'ready' };
    case 'layers':
      if (!isInt(o.requestId, 0, 2 ** 31) || !isInt(o.offset, 0, 10_000_000) || !isInt(o.limit, 1, 1000)) return undefined;
      if (!SORT_KEYS.includes(o.sortBy as LayerSortKey) || typeof o.descending !== 'boolean' || !isStr(o.filter, 200)) return undefined;
      return { type: 'layers', requestId: o.requestId, offset: o.offset, limit: o.limit, sortBy: o.sortBy as LayerSortKey, descending: o.descending, filter: o.filter };
    case 'graph':
      if (o.collapse === undefined) return { type: 'graph' };
      if (!Array.isArray(o.collapse) || o.collapse.length > 64 || !o.collapse.every((c) => isStr(c, 4096))) return undefined;
      return { type: 'graph', collapse: o.collapse as string[] };
    case 'sensitivity':
      return { type: 'sensitivity' };
    case 'locate':
      if (!isInt(o.index, 0, 10_000_000) || !SORT_KEYS.includes(o.sortBy as LayerSortKey) || typeof o.descending !== 'boolean' || !isStr(o.filter, 200)) return undefined;
      return { type: 'locate', index: o.index, sortBy: o.sortBy as LayerSortKey, descending: o.descending, filter: o.filter };
    case 'tensor':
      return isStr(o.layer, 4096) ? { type: 'tensor', layer: o.layer } : undefined;
    case 'command':
      return COMMANDS.includes(o.command as (typeof COMMANDS)[number]) ? { type: 'command', command: o.command as (typeof COMMANDS)[number] } : undefined;
    default:
      return undefined;
  }
}
