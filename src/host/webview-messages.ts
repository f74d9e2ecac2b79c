import { SORT_KEYS, type FromWebview, type LayerSortKey } from '../protocol/webview';

/**
 * Validates a message from a webview. Webview content is untrusted: anything that is not
 * exactly one of the known shapes (with bounded strings and numbers) is dropped.
 */
const COMMANDS = ['quantizeInt8', 'compress', 'benchmark'] as const;

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isStr = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

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
