/**
 * The layer table: virtualised (only the visible rows exist), rows pulled from the host in
 * pages, columns resizable by dragging a header's right edge, long names shortened in the
 * middle so their distinguishing tail stays visible, narrow widths drop the least useful columns.
 */
import type { LayerRow, LayerSortKey } from '../src/protocol/webview';
import { el } from './dom';
import { fmt, fmtBytes, middleEllipsis, persist, send, state } from './state';

export const ROW = 24;
const PAGE = 200;

interface Column {
  key: string;
  label: string;
  sort: LayerSortKey | null;
  num: boolean;
  /** Default width in px; the layer column also takes the width left over. */
  width: number;
  /** Which columns stay when the table is narrow (split views): lower first. */
  priority: number;
  cell(r: LayerRow): string;
  /** Shortened in the middle when too long (path-like values). */
  middle?: boolean;
}
const COLUMNS: Column[] = [
  { key: 'index', label: '#', sort: 'index', num: true, width: 48, priority: 0, cell: (r) => String(r.index) },
  { key: 'name', label: 'layer', sort: 'name', num: false, width: 160, priority: 1, cell: (r) => r.name, middle: true },
  { key: 'op', label: 'op', sort: 'op', num: false, width: 140, priority: 2, cell: (r) => r.op, middle: true },
  { key: 'params', label: 'params', sort: 'params', num: true, width: 80, priority: 4, cell: (r) => fmt(r.params) },
  { key: 'bytes', label: 'bytes', sort: 'bytes', num: true, width: 90, priority: 6, cell: (r) => fmtBytes(r.bytes) },
  { key: 'macs', label: 'MACs', sort: 'macs', num: true, width: 80, priority: 3, cell: (r) => (r.branchMacs?.length ? `⑂ ${fmt(r.macs)}` : fmt(r.macs)) },
  { key: 'output', label: 'output', sort: null, num: false, width: 150, priority: 5, cell: (r) => r.outputShape, middle: true },
  { key: 'dtype', label: 'dtype', sort: null, num: false, width: 80, priority: 7, cell: (r) => r.dtype },
];

export const table = el('div', { id: 'table', tabindex: '0', role: 'grid', 'aria-label': 'Layers' });
const header = el('div', { class: 'hdr', role: 'row' });
const spacer = el('div');
table.append(header, spacer);
let visible: Column[] = [];
let onSelect: (row: LayerRow | undefined) => void = () => undefined;

export function onRowSelected(f: (row: LayerRow | undefined) => void): void {
  onSelect = f;
}

const width = (c: Column) => state.widths[c.key] ?? c.width;

/** Rebuilds the header for the table's current width (columns shown, widths, sort marks). */
function layoutColumns(): void {
  const w = table.clientWidth;
  if (w === 0) return; // hidden: keep the last layout
  // The columns that fit, by priority (the layer column counts at its minimum; it takes what is left).
  const keep = new Set<string>();
  let used = 16; // scroll bar
  for (const c of [...COLUMNS].sort((a, b) => a.priority - b.priority)) {
    if (keep.size >= 2 && used + width(c) > w) continue;
    keep.add(c.key);
    used += width(c);
  }
  const next = COLUMNS.filter((c) => keep.has(c.key));
  const template = next.map((c) => (c.key === 'name' ? `minmax(${width(c)}px,1fr)` : `${width(c)}px`)).join(' ');
  table.style.setProperty('--cols', template);
  if (next.length === visible.length && next.every((c, k) => c === visible[k]) && header.childElementCount === next.length) {
    markSort();
    return;
  }
  visible = next;
  header.replaceChildren();
  for (const c of visible) {
    const s = el('span', { class: c.num ? 'num' : '', role: 'columnheader', 'data-sort': c.sort ?? '', 'data-col': c.key }, c.label);
    if (c.sort) s.addEventListener('click', () => setSort(c.sort!));
    const grip = el('span', { class: 'grip', title: 'Drag to resize', 'aria-hidden': 'true' });
    grip.addEventListener('mousedown', (e) => startResize(e, c, s));
    grip.addEventListener('click', (e) => e.stopPropagation());
    s.append(grip);
    header.append(s);
  }
  markSort();
}

function markSort(): void {
  for (const s of header.querySelectorAll<HTMLElement>('span[data-col]')) {
    const label = COLUMNS.find((c) => c.key === s.dataset.col)!.label;
    s.firstChild!.textContent = label + (s.dataset.sort === state.sortBy ? (state.descending ? ' ▼' : ' ▲') : '');
  }
}

function startResize(e: MouseEvent, c: Column, cell: HTMLElement): void {
  e.preventDefault();
  e.stopPropagation();
  const x0 = e.clientX;
  const w0 = cell.getBoundingClientRect().width;
  const move = (m: MouseEvent) => {
    state.widths[c.key] = Math.max(36, Math.round(w0 + m.clientX - x0));
    layoutColumns();
    render();
  };
  const up = () => {
    window.removeEventListener('mousemove', move);
    window.removeEventListener('mouseup', up);
    persist();
  };
  window.addEventListener('mousemove', move);
  window.addEventListener('mouseup', up);
}

function setSort(key: LayerSortKey): void {
  state.descending = state.sortBy === key ? !state.descending : key !== 'name' && key !== 'op' && key !== 'index';
  state.sortBy = key;
  reset();
}

/** Drops all rows (sort or filter changed) and asks for the first page again. */
export function reset(): void {
  state.version++;
  state.rows.clear();
  state.pending.clear();
  state.selected = -1;
  persist();
  markSort();
  table.scrollTop = 0;
  request(0);
}

export function request(offset: number): void {
  const page = Math.floor(offset / PAGE) * PAGE;
  if (state.pending.has(page)) return;
  state.pending.add(page);
  send({ type: 'layers', requestId: state.version * 1_000_000 + page, offset: page, limit: PAGE, sortBy: state.sortBy, descending: state.descending, filter: state.filter });
}

export function addPage(requestId: number, total: number, offset: number, rows: LayerRow[]): void {
  if (Math.floor(requestId / 1_000_000) !== state.version) return; // a stale sort/filter
  state.total = total;
  rows.forEach((r, k) => state.rows.set(offset + k, r));
  render();
}

const font = () => `${getComputedStyle(table).fontSize} ${getComputedStyle(table).fontFamily}`;

export function render(): void {
  if (table.clientHeight === 0) return; // hidden: drawn again when shown
  layoutColumns();
  spacer.style.height = `${(state.total + 1) * ROW}px`;
  const first = Math.max(0, Math.floor(table.scrollTop / ROW) - 5);
  const last = Math.min(state.total, first + Math.ceil(table.clientHeight / ROW) + 10);
  for (const r of [...table.querySelectorAll('.row')]) r.remove();
  const widths = [...header.children].map((h) => h.getBoundingClientRect().width - 12);
  const f = font();
  for (let i = first; i < last; i++) {
    const row = state.rows.get(i);
    if (!row) {
      request(i);
      continue;
    }
    const div = el('div', { class: `row${i === state.selected ? ' sel' : ''}`, role: 'row', 'data-pos': String(i) });
    div.style.top = `${(i + 1) * ROW}px`;
    visible.forEach((c, k) => {
      const full = c.cell(row);
      div.append(el('span', { class: c.num ? 'num' : '', title: full, 'data-col': c.key }, c.middle ? middleEllipsis(full, widths[k], f) : full));
    });
    div.addEventListener('click', () => select(i));
    table.append(div);
  }
}

/** Scrolls so position `i` is visible (centred when it was far away). */
export function scrollToRow(i: number, centre = false): void {
  if (table.clientHeight === 0 || i < 0) return;
  const top = (i + 1) * ROW;
  if (centre && (top < table.scrollTop + ROW || top + ROW > table.scrollTop + table.clientHeight)) table.scrollTop = top - table.clientHeight / 2;
  else if (top < table.scrollTop + ROW) table.scrollTop = top - ROW;
  else if (top + ROW > table.scrollTop + table.clientHeight) table.scrollTop = top + ROW - table.clientHeight;
}

export function select(i: number, centre = false): void {
  if (i < 0 || i >= state.total) return;
  state.selected = i;
  scrollToRow(i, centre);
  render();
  onSelect(state.rows.get(i));
}

/** Selects position `i` once its page has arrived (after a locate from the graph). */
export function selectWhenLoaded(i: number): void {
  request(i);
  const attempt = (tries: number) => {
    if (state.rows.has(i)) select(i, true);
    else if (tries > 0) setTimeout(() => attempt(tries - 1), 50);
  };
  attempt(40);
}

/** The table became visible again: lay it out, bring the selection into view and draw. */
export function shown(): void {
  layoutColumns();
  scrollToRow(state.selected, true);
  render();
}

table.addEventListener('scroll', () => requestAnimationFrame(render));
table.addEventListener('keydown', (e) => {
  const k = e.key;
  if (k === 'ArrowDown') select(Math.min(state.total - 1, state.selected + 1));
  else if (k === 'ArrowUp') select(Math.max(0, state.selected - 1));
  else if (k === 'PageDown') select(Math.min(state.total - 1, state.selected + 20));
  else if (k === 'PageUp') select(Math.max(0, state.selected - 20));
  else return;
  e.preventDefault();
});
new ResizeObserver(() => requestAnimationFrame(render)).observe(table);
