/**
 * The graph view: boxes laid out by the worker, drawn on a canvas (only what is in view).
 * Weights are drawn inside their op's box; labels grow with the zoom (op, then the short
 * name, output shape and weights). Fit-to-view on open, find (centres a node), a minimap
 * that shows and moves the view, a colour legend, and collapsing a name scope into one box.
 */
import type { GraphDto, GraphNode } from '../src/protocol/webview';
import { cssVar, el } from './dom';
import { fmt, middleEllipsis, send } from './state';

export const graphBox = el('div', { id: 'graph', tabindex: '0', 'aria-label': 'Model graph: drag to pan, wheel to zoom, click a node to select its layer' });
const canvas = el('canvas', { id: 'graph-canvas' });
const minimap = el('canvas', { id: 'minimap', 'aria-label': 'overview: click to move the view' });
const legend = el('div', { id: 'legend' });
graphBox.append(canvas, minimap, legend);

/** Controls shown in the toolbar while the graph is visible. */
export const graphTools = el('div', { id: 'graph-tools' });
export const colorBy = el('select', { id: 'color-by', 'aria-label': 'Colour nodes by' });
for (const [v, t] of [['macs', 'colour by MACs'], ['params', 'colour by params'], ['sensitivity', 'colour by sensitivity']]) colorBy.append(el('option', { value: v }, t));
const find = el('vscode-textfield', { id: 'graph-find', placeholder: 'Find node (name or op), Enter' }) as HTMLElement & { value: string };
const found = el('span', { id: 'found' });
const fitBtn = el('vscode-button', { id: 'fit', secondary: '', title: 'Show the whole graph' }, 'Fit');
const scopeSel = el('select', { id: 'scope', 'aria-label': 'Name scope of the selected node' });
const collapseBtn = el('vscode-button', { id: 'collapse', secondary: '', title: 'Draw this name scope as one box' }, 'Collapse');
const expandBtn = el('vscode-button', { id: 'expand', secondary: '', title: 'Expand all collapsed scopes' }, 'Expand all');
graphTools.append(find, found, fitBtn, colorBy, scopeSel, collapseBtn, expandBtn);

interface View {
  nodes: GraphNode[];
  byIndex: Map<number, GraphNode>;
  edges: Array<[GraphNode, GraphNode]>;
  foldedInto: Map<number, number>;
  collapsed: string[];
  width: number;
  height: number;
  scale: number;
  tx: number;
  ty: number;
  selected: number;
  requested: boolean;
  max: { params: number; macs: number };
  matches: GraphNode[];
  match: number;
}
const g: View = { nodes: [], byIndex: new Map(), edges: [], foldedInto: new Map(), collapsed: [], width: 0, height: 0, scale: 1, tx: 0, ty: 0, selected: -1, requested: false, max: { params: 1, macs: 1 }, matches: [], match: -1 };

/** Loss at 50% pruning per producer label, once sensitivity has been measured. */
export const sensitivityByLabel = new Map<string, number>();
let onPick: (layer: number) => void = () => undefined;
/** Called when the user picks a node (click or find): the table and detail follow. */
export function onNodePicked(f: (layer: number) => void): void {
  onPick = f;
}

export function isShown(): boolean {
  return graphBox.style.display !== 'none';
}

/** Asks for the graph the first time it is shown. */
export function ensureRequested(status: (s: string) => void): void {
  if (g.requested) return;
  g.requested = true;
  status('Laying out the graph…');
  send({ type: 'graph' });
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const minScale = () => Math.min(0.02, fitScale() * 0.8);
function fitScale(): number {
  return Math.min(1.5, (graphBox.clientWidth - 16) / Math.max(1, g.width), (graphBox.clientHeight - 16) / Math.max(1, g.height));
}

/** Zooms out (or in) so the whole graph is in view, centred. */
export function fit(): void {
  g.scale = fitScale();
  g.tx = (graphBox.clientWidth - g.width * g.scale) / 2;
  g.ty = (graphBox.clientHeight - g.height * g.scale) / 2;
  draw();
}

export function showGraph(d: GraphDto): void {
  const first = g.nodes.length === 0;
  g.nodes = d.nodes;
  g.byIndex = new Map(d.nodes.map((n) => [n.i, n]));
  g.edges = d.edges.map(([a, b]) => [g.byIndex.get(a)!, g.byIndex.get(b)!] as [GraphNode, GraphNode]).filter(([a, b]) => a && b);
  g.foldedInto = new Map(d.foldedInto);
  g.collapsed = d.collapsed;
  g.width = d.width;
  g.height = d.height;
  g.max.params = Math.max(1, ...d.nodes.map((n) => n.params));
  g.max.macs = Math.max(1, ...d.nodes.map((n) => n.macs));
  graphBox.dataset.nodes = String(d.nodes.length);
  graphBox.dataset.layoutMs = String(d.layoutMs);
  expandBtn.style.display = g.collapsed.length ? '' : 'none';
  overview = undefined;
  delete find.dataset.query;
  // A re-layout (a scope collapsed or expanded) keeps the selection in the middle.
  const keep = boxOf(g.selected);
  g.selected = keep?.i ?? -1;
  if (first || !keep) fit();
  else centerOn(keep.i, false);
  updateScopes();
}

/** The box that shows layer `i` (itself, or the box a constant or a collapsed scope folded it into). */
function boxOf(i: number): GraphNode | undefined {
  return g.byIndex.get(i) ?? g.byIndex.get(g.foldedInto.get(i) ?? -1);
}

/** Centres layer `i`'s box; `zoom`: zoom in far enough to read its labels. */
export function centerOn(i: number, zoom = true): void {
  const n = boxOf(i);
  if (!n) return;
  if (zoom) g.scale = Math.max(g.scale, 1);
  g.tx = graphBox.clientWidth / 2 - n.x * g.scale;
  g.ty = graphBox.clientHeight / 2 - n.y * g.scale;
  graphBox.dataset.centredAt = JSON.stringify({ i: n.i, x: n.x, y: n.y, label: n.label });
  draw();
}

export function setSelected(i: number): void {
  g.selected = boxOf(i)?.i ?? -1;
  updateScopes();
  if (isShown()) draw();
}

/** A node's header colour for the current metric (undefined: no value), as a hue and lightness. */
function nodeHue(n: GraphNode): { h: number; l: number } | undefined {
  if (colorBy.value === 'sensitivity') {
    const d = sensitivityByLabel.get(n.label);
    if (d === undefined) return undefined;
    const t = clamp(d / 0.5, 0, 1); // 0 = robust (green) … ≥ 0.5 loss = fragile (red)
    return { h: 120 - 120 * t, l: 42 };
  }
  const key = colorBy.value === 'params' ? 'params' : 'macs';
  const v = n[key];
  if (!v) return undefined;
  const t = Math.log1p(v) / Math.log1p(g.max[key]); // 0..1 on a log scale
  return { h: 220 - 200 * t, l: 42 + 10 * (1 - t) };
}

function nodeColor(n: GraphNode): string | undefined {
  const c = nodeHue(n);
  return c && `hsl(${c.h}, ${colorBy.value === 'sensitivity' ? 65 : 70}%, ${c.l}%)`;
}

/** Dark text on the light hues (yellow to cyan), white on the others. */
function textOn(n: GraphNode): string | undefined {
  const c = nodeHue(n);
  return c && (c.h > 40 && c.h < 200 ? '#111' : '#fff');
}

function updateLegend(): void {
  const grad = (a: string, b: string) => `<span class="ramp" style="background:linear-gradient(90deg,${a},${b})"></span>`;
  if (colorBy.value === 'sensitivity') {
    legend.innerHTML = sensitivityByLabel.size
      ? `loss when pruned 50% alone: 0 ${grad('hsl(120,65%,42%)', 'hsl(0,65%,42%)')} ≥ 0.5 · grey: not measured`
      : 'No sensitivity yet: press Sensitivity';
  } else {
    const key = colorBy.value === 'params' ? 'params' : 'macs';
    legend.innerHTML = `${key === 'params' ? 'params' : 'MACs'} (log): 0 ${grad('hsl(220,70%,52%)', 'hsl(20,70%,42%)')} ${fmt(g.max[key])} · grey: none`;
  }
}

let overview: HTMLCanvasElement | undefined;
const MINI_W = 160;
function miniScale(): number {
  return Math.min(MINI_W / Math.max(1, g.width), (graphBox.clientHeight * 0.45) / Math.max(1, g.height));
}

function drawMinimap(): void {
  const ms = miniScale();
  const w = Math.max(20, Math.ceil(g.width * ms));
  const h = Math.max(20, Math.ceil(g.height * ms));
  const dpr = window.devicePixelRatio || 1;
  if (!overview) {
    overview = document.createElement('canvas');
    overview.width = w * dpr;
    overview.height = h * dpr;
    const o = overview.getContext('2d')!;
    o.scale(dpr * ms, dpr * ms);
    const grey = cssVar('--vscode-editorLineNumber-foreground', '#858585');
    for (const n of g.nodes) {
      o.fillStyle = nodeColor(n) ?? grey;
      o.fillRect(n.x - n.w / 2, n.y - n.h / 2, n.w, n.h);
    }
  }
  // Nothing to find your way in when the whole graph is in view.
  const all = g.tx >= -1 && g.ty >= -1 && g.tx + g.width * g.scale <= graphBox.clientWidth + 1 && g.ty + g.height * g.scale <= graphBox.clientHeight + 1;
  minimap.style.display = all ? 'none' : '';
  minimap.style.width = `${w}px`;
  minimap.style.height = `${h}px`;
  if (minimap.width !== w * dpr || minimap.height !== h * dpr) {
    minimap.width = w * dpr;
    minimap.height = h * dpr;
  }
  const m = minimap.getContext('2d')!;
  m.setTransform(1, 0, 0, 1, 0, 0);
  m.clearRect(0, 0, minimap.width, minimap.height);
  m.drawImage(overview, 0, 0);
  m.setTransform(dpr * ms, 0, 0, dpr * ms, 0, 0);
  m.strokeStyle = cssVar('--vscode-focusBorder', '#007fd4');
  m.lineWidth = 2 / ms;
  m.strokeRect(-g.tx / g.scale, -g.ty / g.scale, graphBox.clientWidth / g.scale, graphBox.clientHeight / g.scale);
}

let queued = false;
/** Redraws on the next frame (many events per frame cost one draw). */
export function draw(): void {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    drawNow();
  });
}

function drawNow(): void {
  const ctx = canvas.getContext('2d');
  if (!ctx || !isShown() || !g.nodes.length) return;
  const dpr = window.devicePixelRatio || 1;
  const w = graphBox.clientWidth;
  const h = graphBox.clientHeight;
  if (canvas.width !== w * dpr || canvas.height !== h * dpr) {
    canvas.width = w * dpr;
    canvas.height = h * dpr;
  }
  graphBox.dataset.view = JSON.stringify({ scale: g.scale, tx: g.tx, ty: g.ty, width: g.width, height: g.height, vw: w, vh: h });
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.setTransform(dpr * g.scale, 0, 0, dpr * g.scale, dpr * g.tx, dpr * g.ty);
  const x0 = -g.tx / g.scale;
  const y0 = -g.ty / g.scale;
  const x1 = x0 + w / g.scale;
  const y1 = y0 + h / g.scale;
  ctx.strokeStyle = cssVar('--vscode-editorLineNumber-foreground', '#858585');
  ctx.lineWidth = 1 / g.scale;
  ctx.beginPath();
  for (const [p, q] of g.edges) {
    if (Math.max(p.y, q.y) < y0 || Math.min(p.y, q.y) > y1) continue;
    const ya = p.y + p.h / 2;
    const yb = q.y - q.h / 2;
    const mid = (ya + yb) / 2;
    ctx.moveTo(p.x, ya);
    ctx.bezierCurveTo(p.x, mid, q.x, mid, q.x, yb);
  }
  ctx.stroke();
  const body = cssVar('--vscode-editorWidget-background', '#252526');
  const border = cssVar('--vscode-editorWidget-border', cssVar('--vscode-panel-border', '#454545'));
  const fg = cssVar('--vscode-editor-foreground', '#ddd');
  const plain = cssVar('--vscode-badge-background', '#4d4d4d');
  const plainFg = cssVar('--vscode-badge-foreground', '#fff');
  const family = getComputedStyle(document.body).fontFamily || 'sans-serif';
  const labels = g.scale >= 0.55;
  const details = g.scale >= 0.85;
  ctx.textBaseline = 'middle';
  for (const n of g.nodes) {
    const left = n.x - n.w / 2;
    const top = n.y - n.h / 2;
    if (left + n.w < x0 || left > x1 || top + n.h < y0 || top > y1) continue;
    const colour = nodeColor(n);
    ctx.fillStyle = body;
    ctx.fillRect(left, top, n.w, n.h);
    ctx.fillStyle = colour ?? plain;
    ctx.fillRect(left, top, n.w, 20);
    ctx.strokeStyle = n.i === g.selected ? cssVar('--vscode-focusBorder', '#007fd4') : border;
    ctx.lineWidth = (n.i === g.selected ? 3 : 1) / g.scale;
    ctx.strokeRect(left, top, n.w, n.h);
    if (!labels) continue;
    ctx.fillStyle = textOn(n) ?? plainFg;
    ctx.textAlign = 'center';
    ctx.font = `600 11px ${family}`;
    ctx.fillText(middleEllipsis(n.members && n.op === 'scope' ? `▸ ${n.members} layers` : n.op, n.w - 8, ctx.font, ctx), n.x, top + 10);
    if (!details) continue;
    ctx.fillStyle = fg;
    ctx.textAlign = 'left';
    ctx.font = `11px ${family}`;
    let y = top + 20 + 6 + 6;
    for (const line of [n.short, n.shape, ...(n.op === 'scope' ? [] : n.weights)]) {
      if (!line) continue;
      ctx.fillText(middleEllipsis(line, n.w - 10, ctx.font, ctx), left + 5, y);
      y += 13;
    }
  }
  updateLegend();
  drawMinimap();
}

// ---- interaction -------------------------------------------------------------------

let drag: { x: number; y: number; moved: boolean } | undefined;
canvas.addEventListener('mousedown', (e) => (drag = { x: e.clientX, y: e.clientY, moved: false }));
window.addEventListener('mousemove', (e) => {
  if (!drag) return;
  const dx = e.clientX - drag.x;
  const dy = e.clientY - drag.y;
  if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
  g.tx += dx;
  g.ty += dy;
  drag.x = e.clientX;
  drag.y = e.clientY;
  draw();
});
window.addEventListener('mouseup', (e) => {
  const d = drag;
  drag = undefined;
  if (!d || d.moved || e.target !== canvas) return;
  const r = canvas.getBoundingClientRect();
  const gx = (e.clientX - r.left - g.tx) / g.scale;
  const gy = (e.clientY - r.top - g.ty) / g.scale;
  const hit = g.nodes.find((n) => Math.abs(gx - n.x) <= n.w / 2 && Math.abs(gy - n.y) <= n.h / 2);
  if (!hit) return;
  setSelected(hit.i);
  onPick(hit.i);
});
graphBox.addEventListener('wheel', (e) => {
  e.preventDefault();
  const r = canvas.getBoundingClientRect();
  const mx = e.clientX - r.left;
  const my = e.clientY - r.top;
  const s2 = clamp(g.scale * Math.exp(-e.deltaY * 0.0015), minScale(), 4);
  g.tx = mx - ((mx - g.tx) * s2) / g.scale;
  g.ty = my - ((my - g.ty) * s2) / g.scale;
  g.scale = s2;
  draw();
}, { passive: false });
const moveFromMinimap = (e: MouseEvent) => {
  const r = minimap.getBoundingClientRect();
  const ms = miniScale();
  g.tx = graphBox.clientWidth / 2 - ((e.clientX - r.left) / ms) * g.scale;
  g.ty = graphBox.clientHeight / 2 - ((e.clientY - r.top) / ms) * g.scale;
  draw();
};
let miniDrag = false;
minimap.addEventListener('mousedown', (e) => {
  e.stopPropagation();
  miniDrag = true;
  moveFromMinimap(e);
});
window.addEventListener('mousemove', (e) => miniDrag && moveFromMinimap(e));
window.addEventListener('mouseup', () => (miniDrag = false));
window.addEventListener('resize', () => draw());
fitBtn.addEventListener('click', () => fit());
colorBy.addEventListener('change', () => {
  overview = undefined;
  draw();
});

/** Finds the next node whose name or op contains `q`; centres and selects it. */
export function findNext(q: string): GraphNode | undefined {
  const query = q.trim().toLowerCase();
  if (!query) return undefined;
  const key = `${query}`;
  if (find.dataset.query !== key) {
    find.dataset.query = key;
    g.matches = g.nodes.filter((n) => n.label.toLowerCase().includes(query) || n.op.toLowerCase() === query);
    g.match = -1;
  }
  if (!g.matches.length) {
    found.textContent = 'no match';
    return undefined;
  }
  g.match = (g.match + 1) % g.matches.length;
  const n = g.matches[g.match];
  found.textContent = `${g.match + 1}/${g.matches.length}`;
  setSelected(n.i);
  centerOn(n.i);
  onPick(n.i);
  return n;
}
find.addEventListener('keydown', (e) => {
  if ((e as KeyboardEvent).key === 'Enter') findNext(find.value ?? '');
});

/** The selected node's enclosing name scopes, offered for collapsing (or the scope box, for expanding). */
function updateScopes(): void {
  const n = g.byIndex.get(g.selected);
  scopeSel.replaceChildren();
  if (n?.op === 'scope') {
    scopeSel.append(el('option', { value: n.label }, n.label));
    collapseBtn.textContent = 'Expand';
  } else {
    const parts = (n?.label ?? '').split('/').filter(Boolean).slice(0, -1);
    for (let k = parts.length; k >= 1; k--) {
      const s = `${n!.label.startsWith('/') ? '/' : ''}${parts.slice(0, k).join('/')}`;
      scopeSel.append(el('option', { value: s }, s));
    }
    collapseBtn.textContent = 'Collapse';
  }
  const any = scopeSel.options.length > 0;
  scopeSel.style.display = any ? '' : 'none';
  collapseBtn.style.display = any ? '' : 'none';
}
collapseBtn.addEventListener('click', () => {
  const s = scopeSel.value;
  if (!s) return;
  const next = g.collapsed.includes(s) ? g.collapsed.filter((c) => c !== s) : [...g.collapsed.filter((c) => !c.startsWith(`${s}/`)), s];
  send({ type: 'graph', collapse: next });
});
expandBtn.addEventListener('click', () => send({ type: 'graph', collapse: [] }));
updateScopes();
expandBtn.style.display = 'none';
