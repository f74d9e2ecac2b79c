/**
 * The model editor's shared state and helpers: the VS Code API handle, the table's sort and
 * filter (kept across reloads with getState/setState), number formats and text fitting.
 */
import type { FromWebview, LayerRow, LayerSortKey } from '../src/protocol/webview';

declare function acquireVsCodeApi(): { postMessage(m: FromWebview): void; getState(): unknown; setState(s: unknown): void };
const vscode = acquireVsCodeApi();
export const send = (m: FromWebview) => vscode.postMessage(m);

interface Saved {
  sortBy?: LayerSortKey;
  descending?: boolean;
  filter?: string;
  /** Column widths in px, by column key (set by dragging a header's edge). */
  widths?: Record<string, number>;
}
const saved = (vscode.getState() as Saved | undefined) ?? {};

export const state = {
  sortBy: saved.sortBy ?? ('index' as LayerSortKey),
  descending: saved.descending ?? false,
  filter: saved.filter ?? '',
  widths: saved.widths ?? ({} as Record<string, number>),
  total: 0,
  rows: new Map<number, LayerRow>(),
  version: 0,
  /** Selected position in the table (under the current sort and filter), -1 for none. */
  selected: -1,
  pending: new Set<number>(),
};

export function persist(): void {
  vscode.setState({ sortBy: state.sortBy, descending: state.descending, filter: state.filter, widths: state.widths } satisfies Saved);
}

export const fmt = (n: number | null | undefined) => (n === null || n === undefined ? '?' : n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}K` : String(n));
export const fmtBytes = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
export const shapeStr = (s: Array<number | string | null> | null) => (s ? `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]` : '?');

/**
 * Ten colours that stay apart from each other on light and dark backgrounds (Tableau 10),
 * for charts with more series than VS Code's six chart colours.
 */
export const SERIES_COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const measureCtx = document.createElement('canvas').getContext('2d');
/**
 * `text` shortened in the middle (`/features/…/conv1/Conv`) to fit `maxPx` in `font`, keeping
 * its tail, which is what tells path-like names apart.
 */
export function middleEllipsis(text: string, maxPx: number, font: string, ctx: CanvasRenderingContext2D | null = measureCtx): string {
  if (!ctx) return text;
  ctx.font = font;
  if (ctx.measureText(text).width <= maxPx) return text;
  // Keep more of the tail than the head: the tail distinguishes siblings.
  let lo = 0;
  let hi = text.length;
  const cut = (k: number) => {
    const head = Math.floor(k / 3);
    return `${text.slice(0, head)}…${text.slice(text.length - (k - head))}`;
  };
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(cut(mid)).width <= maxPx) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? '…' : cut(lo);
}
