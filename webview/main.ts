/**
 * The model editor UI. Browser code: it imports only src/protocol and browser libraries.
 * The summary paints as soon as it arrives; the layer table is virtualised and pulls rows
 * from the host in pages, so a model with thousands of nodes stays responsive.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { cssVar, el } from './dom';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { Chart, BarController, BarElement, CategoryScale, LinearScale, DoughnutController, ArcElement, LineController, LineElement, PointElement, Title, Tooltip, Legend } from 'chart.js';
import type { FromWebview, Json, LayerSortKey, ToWebview } from '../src/protocol/webview';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, DoughnutController, ArcElement, LineController, LineElement, PointElement, Title, Tooltip, Legend);

declare function acquireVsCodeApi(): { postMessage(m: FromWebview): void; getState(): unknown; setState(s: unknown): void };
const vscode = acquireVsCodeApi();
// Timings relative to this frame's navigation start, for the speed measurements.
document.body.dataset.scriptMs = String(Math.round(performance.now()));
const own = performance.getEntriesByType('resource').find((e) => e.name.includes('webview.js')) as PerformanceResourceTiming | undefined;
if (own) document.body.dataset.fetch = `${Math.round(own.startTime)}-${Math.round(own.responseEnd)}`;
const send = (m: FromWebview) => vscode.postMessage(m);

interface Row { index: number; name: string; op: string; params: number; bytes: number; macs: number | null; dtype: string; outputShape: string; weights: number }
interface Summary {
  format: string; irVersion: number; opset: Record<string, number>; producer: string; fileSizeBytes: number;
  inputs: Array<{ name: string; dtype: string; shape: Array<number | string | null> | null }>;
  outputs: Array<{ name: string; dtype: string; shape: Array<number | string | null> | null }>;
  totals: { params: number; bytes: number; macs: number; flops: number; nodes: number; unknownMacsNodes?: number };
  byOpType: Array<{ op: string; count: number; params: number; macs: number }>;
  topByMacs: Array<{ name: string; macs: number }>;
  topByParams: Array<{ name: string; params: number }>;
  weightedLayers: number;
}

const saved = (vscode.getState() as { sortBy?: LayerSortKey; descending?: boolean; filter?: string } | undefined) ?? {};
const state = { sortBy: saved.sortBy ?? ('index' as LayerSortKey), descending: saved.descending ?? false, filter: saved.filter ?? '', total: 0, rows: new Map<number, Row>(), version: 0, selected: -1, pending: new Set<number>() };
const ROW = 24;
const PAGE = 200;

const fmt = (n: number | null | undefined) => (n === null || n === undefined ? '?' : n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}K` : String(n));
const fmtBytes = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const shapeStr = (s: Array<number | string | null> | null) => (s ? `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]` : '?');

const style = el('style');
style.textContent = `
body{font-family:var(--vscode-font-family);font-size:var(--vscode-font-size);color:var(--vscode-foreground);background:var(--vscode-editor-background);margin:0;padding:8px 12px}
#summary{display:flex;flex-wrap:wrap;gap:6px 24px;margin-bottom:8px}#summary .metric b{font-size:1.3em;display:block}
#toolbar{display:flex;gap:8px;align-items:center;margin:8px 0}
#main{display:grid;grid-template-columns:minmax(0,3fr) minmax(260px,2fr);gap:12px}
#table{border:1px solid var(--vscode-panel-border);height:60vh;overflow:auto;position:relative;outline:none}
#table:focus{outline:1px solid var(--vscode-focusBorder)}
.hdr,.row{display:grid;grid-template-columns:3em minmax(8em,2fr) 6.5em 5.5em 6.5em 5.5em minmax(6em,1fr) 5.5em;height:${ROW}px;line-height:${ROW}px;white-space:nowrap}
.hdr{position:sticky;top:0;background:var(--vscode-editorWidget-background);font-weight:600;z-index:1;cursor:pointer}
.hdr span:hover{text-decoration:underline}.row{position:absolute;left:0;right:0;cursor:pointer}
.row:hover{background:var(--vscode-list-hoverBackground)}.row.sel{background:var(--vscode-list-activeSelectionBackground);color:var(--vscode-list-activeSelectionForeground)}
.hdr span,.row span{overflow:hidden;text-overflow:ellipsis;padding:0 6px}.num{text-align:right}
#graph{border:1px solid var(--vscode-panel-border);height:60vh;position:relative;overflow:hidden;cursor:grab}#graph canvas{width:100%;height:100%;display:block}
select{background:var(--vscode-dropdown-background);color:var(--vscode-dropdown-foreground);border:1px solid var(--vscode-dropdown-border);padding:2px}
#detail h3{margin:4px 0}#detail table td{padding:1px 8px}#error{color:var(--vscode-errorForeground)}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin-top:12px}.charts div{height:240px}`;
document.head.append(style);

const app = document.getElementById('app')!;
const error = el('div', { id: 'error' });
const summaryEl = el('div', { id: 'summary' }, 'Reading the model…');
const toolbar = el('div', { id: 'toolbar' });
const search = el('vscode-textfield', { id: 'search', placeholder: 'Filter layers by name or op', value: state.filter }) as HTMLElement & { value: string };
const quant = el('vscode-button', { id: 'quantize' }, 'Quantize (INT8)');
quant.addEventListener('click', () => send({ type: 'command', command: 'quantizeInt8' }));
const counter = el('span', { id: 'count' });
const tableBtn = el('vscode-button', { id: 'show-table', secondary: '' }, 'Table');
const graphBtn = el('vscode-button', { id: 'show-graph', secondary: '' }, 'Graph');
const colorBy = el('select', { id: 'color-by', 'aria-label': 'Colour nodes by' }) as HTMLSelectElement;
for (const [v, t] of [['macs', 'colour by MACs'], ['params', 'colour by params'], ['sensitivity', 'colour by sensitivity']]) colorBy.append(Object.assign(el('option', { value: v }, t)));
const sensBtn = el('vscode-button', { id: 'sensitivity', secondary: '' }, 'Sensitivity');
sensBtn.addEventListener('click', () => {
  sensBtn.setAttribute('disabled', '');
  send({ type: 'sensitivity' });
});
colorBy.style.display = 'none';
toolbar.append(search, quant, tableBtn, graphBtn, sensBtn, colorBy, counter);
const main = el('div', { id: 'main' });
const table = el('div', { id: 'table', tabindex: '0', role: 'grid', 'aria-label': 'Layers' });
const graphBox = el('div', { id: 'graph', tabindex: '0', 'aria-label': 'Model graph: drag to pan, wheel to zoom, click a node to select its layer' });
const graphCanvas = el('canvas', { id: 'graph-canvas' });
graphBox.append(graphCanvas);
graphBox.style.display = 'none';
const spacer = el('div');
const detail = el('div', { id: 'detail' }, 'Select a layer to see its weights.');
main.append(table, graphBox, detail);
const charts = el('div', { class: 'charts' });
app.append(error, summaryEl, toolbar, main, charts);

const columns: Array<[string, LayerSortKey | null, boolean]> = [
  ['#', 'index', true], ['layer', 'name', false], ['op', 'op', false], ['params', 'params', true], ['bytes', 'bytes', true], ['MACs', 'macs', true], ['output', null, false], ['dtype', null, false],
];
const header = el('div', { class: 'hdr', role: 'row' });
for (const [label, key, num] of columns) {
  const s = el('span', { class: num ? 'num' : '', role: 'columnheader', 'data-sort': key ?? '' }, label);
  if (key) s.addEventListener('click', () => setSort(key));
  header.append(s);
}
table.append(header, spacer);

function persist() {
  vscode.setState({ sortBy: state.sortBy, descending: state.descending, filter: state.filter });
}

function setSort(key: LayerSortKey) {
  state.descending = state.sortBy === key ? !state.descending : key !== 'name' && key !== 'op' && key !== 'index';
  state.sortBy = key;
  for (const s of header.querySelectorAll('span')) s.textContent = s.textContent!.replace(/ [▲▼]$/, '') + (s.getAttribute('data-sort') === key ? (state.descending ? ' ▼' : ' ▲') : '');
  reset();
}

function reset() {
  state.version++;
  state.rows.clear();
  state.pending.clear();
  state.selected = -1;
  persist();
  table.scrollTop = 0;
  request(0);
}

function request(offset: number) {
  const page = Math.floor(offset / PAGE) * PAGE;
  if (state.pending.has(page)) return;
  state.pending.add(page);
  send({ type: 'layers', requestId: state.version * 1_000_000 + page, offset: page, limit: PAGE, sortBy: state.sortBy, descending: state.descending, filter: state.filter });
}

function render() {
  spacer.style.height = `${(state.total + 1) * ROW}px`;
  counter.textContent = `${state.total} layers`;
  const first = Math.max(0, Math.floor(table.scrollTop / ROW) - 5);
  const last = Math.min(state.total, first + Math.ceil(table.clientHeight / ROW) + 10);
  for (const r of [...table.querySelectorAll('.row')]) r.remove();
  for (let i = first; i < last; i++) {
    const row = state.rows.get(i);
    if (!row) {
      request(i);
      continue;
    }
    const div = el('div', { class: `row${i === state.selected ? ' sel' : ''}`, role: 'row', 'data-pos': String(i) });
    div.style.top = `${(i + 1) * ROW}px`;
    const cells = [String(row.index), row.name, row.op, fmt(row.params), fmtBytes(row.bytes), fmt(row.macs), row.outputShape, row.dtype];
    cells.forEach((c, k) => div.append(el('span', { class: columns[k][2] ? 'num' : '', title: c }, c)));
    div.addEventListener('click', () => select(i));
    table.append(div);
  }
}

function select(i: number) {
  if (i < 0 || i >= state.total) return;
  state.selected = i;
  const top = (i + 1) * ROW;
  if (top < table.scrollTop + ROW) table.scrollTop = top - ROW;
  else if (top + ROW > table.scrollTop + table.clientHeight) table.scrollTop = top + ROW - table.clientHeight;
  render();
  const row = state.rows.get(i);
  if (row) {
    graph.selected = row.index;
    if (graphBox.style.display !== 'none') centerOn(row.index);
  }
  if (row && row.weights > 0) send({ type: 'tensor', layer: row.name });
  else if (row) detail.textContent = `${row.name} (${row.op}) has no weights.`;
}

table.addEventListener('scroll', () => requestAnimationFrame(render));
table.addEventListener('keydown', (e) => {
  const k = (e as KeyboardEvent).key;
  if (k === 'ArrowDown') select(Math.min(state.total - 1, state.selected + 1));
  else if (k === 'ArrowUp') select(Math.max(0, state.selected - 1));
  else if (k === 'PageDown') select(Math.min(state.total - 1, state.selected + 20));
  else if (k === 'PageUp') select(Math.max(0, state.selected - 20));
  else return;
  e.preventDefault();
});
let filterTimer: ReturnType<typeof setTimeout> | undefined;
search.addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    state.filter = search.value ?? '';
    reset();
  }, 150);
});

let histChart: Chart | undefined;
function showDetail(layer: string, d: Json) {
  const det = d as unknown as { weights: Array<{ name: string; dtype: string; shape: number[]; params: number; note?: string; min?: number; max?: number; mean?: number; std?: number; sparsity?: number; entropyBits?: number; histogram?: { min: number; max: number; counts: number[] } }> };
  detail.replaceChildren(el('h3', {}, layer));
  for (const w of det.weights) {
    const t = el('table');
    const add = (k: string, v: string) => {
      const tr = el('tr');
      tr.append(el('td', {}, k), el('td', { class: 'num' }, v));
      t.append(tr);
    };
    add('tensor', `${w.name} ${w.dtype}[${w.shape.join(', ')}]`);
    add('params', w.params.toLocaleString('en-US'));
    if (typeof w.note === 'string') add('stored', w.note);
    if (w.min !== undefined) {
      add('min / max', `${w.min.toPrecision(4)} / ${w.max!.toPrecision(4)}`);
      add('mean ± std', `${w.mean!.toPrecision(4)} ± ${w.std!.toPrecision(4)}`);
      add('sparsity', `${(w.sparsity! * 100).toFixed(2)}%`);
      add('entropy', `${w.entropyBits!.toFixed(2)} bits`);
    }
    detail.append(t);
  }
  const h = det.weights[0]?.histogram;
  if (h) {
    const box = el('div');
    box.style.height = '180px';
    const canvas = el('canvas', { id: 'histogram', 'aria-label': 'weight histogram' });
    box.append(canvas);
    detail.append(box);
    histChart?.destroy();
    const step = (h.max - h.min) / h.counts.length;
    histChart = new Chart(canvas, {
      type: 'bar',
      data: { labels: h.counts.map((_, i) => (h.min + (i + 0.5) * step).toPrecision(3)), datasets: [{ label: 'weights', data: h.counts, backgroundColor: cssVar('--vscode-charts-blue', '#3794ff'), barPercentage: 1, categoryPercentage: 1 }] },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { x: { ticks: { maxTicksLimit: 6, color: cssVar('--vscode-foreground', '#ccc') } }, y: { ticks: { color: cssVar('--vscode-foreground', '#ccc') } } } },
    });
  }
}


function showSummary(file: string, s: Summary) {
  summaryEl.replaceChildren();
  // One-click INT8 is for ONNX; sensitivity runs on ONNX (ORT) and TF.js layers models (TensorFlow.js).
  quant.style.display = s.format === 'onnx' ? '' : 'none';
  sensBtn.style.display = s.format === 'onnx' || s.format === 'tfjs-layers' ? '' : 'none';
  const metric = (label: string, value: string, id: string) => {
    const d = el('div', { class: 'metric', id });
    d.append(el('b', {}, value), document.createTextNode(label));
    summaryEl.append(d);
  };
  metric('total params', s.totals.params.toLocaleString('en-US'), 'total-params');
  metric('weight bytes', fmtBytes(s.totals.bytes), 'total-bytes');
  // A partial total (some nodes' MACs unknown) is a lower bound: say so.
  metric(s.totals.unknownMacsNodes ? 'MACs per sample (lower bound: some nodes unknown)' : 'MACs per sample', `${s.totals.unknownMacsNodes ? '≥' : ''}${fmt(s.totals.macs)}`, 'total-macs');
  metric('weighted layers', String(s.weightedLayers), 'weighted-layers');
  metric('nodes', String(s.totals.nodes), 'nodes');
  const meta = el('div', { class: 'meta' });
  meta.append(el('div', {}, `${file.split(/[\\/]/).pop()} — ${s.format}${s.format === 'onnx' ? `, IR ${s.irVersion}, opset ${Object.entries(s.opset).map(([d, v]) => (d === 'ai.onnx' ? v : `${d} ${v}`)).join(', ')}` : ''}${s.producer ? `, ${s.producer}` : ''}`));
  meta.append(el('div', {}, `inputs: ${s.inputs.map((i) => `${i.name} ${i.dtype}${shapeStr(i.shape)}`).join(', ')}`));
  meta.append(el('div', {}, `outputs: ${s.outputs.map((o) => `${o.name} ${o.dtype}${shapeStr(o.shape)}`).join(', ')}`));
  summaryEl.append(meta);
  const c1 = el('canvas', { id: 'op-chart' });
  const c2 = el('canvas', { id: 'macs-chart' });
  const b1 = el('div');
  const b2 = el('div');
  b1.append(c1);
  b2.append(c2);
  charts.replaceChildren(b1, b2);
  const fg = cssVar('--vscode-foreground', '#ccc');
  const ops = s.byOpType.filter((o) => o.macs > 0 || o.params > 0);
  const palette = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'].map((c, i) => cssVar(`--vscode-charts-${c}`, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i]));
  new Chart(c1, { type: 'doughnut', data: { labels: ops.map((o) => `${o.op} (${o.macs ? 'MACs' : 'params'})`), datasets: [{ data: ops.map((o) => o.macs || o.params), backgroundColor: ops.map((_, i) => palette[i % palette.length]), borderWidth: 0 }] }, options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: 'right', labels: { color: fg } }, tooltip: { enabled: true } } } });
  const paramsOf = new Map(s.topByParams.map((l) => [l.name, l.params]));
  new Chart(c2, {
    type: 'bar',
    data: {
      labels: s.topByMacs.map((l) => l.name),
      datasets: [
        { label: 'MACs', data: s.topByMacs.map((l) => l.macs), backgroundColor: cssVar('--vscode-charts-orange', '#d18616'), xAxisID: 'x' },
        { label: 'params', data: s.topByMacs.map((l) => paramsOf.get(l.name) ?? 0), backgroundColor: cssVar('--vscode-charts-blue', '#3794ff'), xAxisID: 'x2' },
      ],
    },
    options: { indexAxis: 'y', animation: false, maintainAspectRatio: false, plugins: { legend: { labels: { color: fg } }, title: { display: true, text: 'top layers: MACs and params', color: fg } }, scales: { x: { position: 'bottom', ticks: { color: fg } }, x2: { position: 'top', ticks: { color: fg }, grid: { display: false } }, y: { ticks: { color: fg } } } },
  });
}

// ---- sensitivity ---------------------------------------------------------------------

let sensChart: Chart | undefined;
function showSensitivity(r: Json) {
  const res = r as unknown as { metric: string; data: string; curves: Array<{ group: string; points: Array<{ ratio: number; drop: number }> }> };
  for (const c of res.curves) {
    const p = c.points.find((x) => x.ratio === 0.5) ?? c.points[Math.floor(c.points.length / 2)];
    if (p) sensitivityByLabel.set(c.group, p.drop);
  }
  // The ten most sensitive groups, by their loss at the largest ratio.
  const top = [...res.curves].sort((a, b) => (b.points[b.points.length - 1]?.drop ?? 0) - (a.points[a.points.length - 1]?.drop ?? 0)).slice(0, 10);
  const box = el('div', { id: 'sensitivity-box' });
  box.style.gridColumn = '1 / span 2';
  const canvas = el('canvas', { id: 'sensitivity-chart', 'aria-label': 'pruning sensitivity curves' });
  box.append(canvas);
  document.getElementById('sensitivity-box')?.remove();
  charts.append(box);
  sensChart?.destroy();
  const palette = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'].map((c, i) => cssVar(`--vscode-charts-${c}`, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i]));
  const fg = cssVar('--vscode-foreground', '#ccc');
  sensChart = new Chart(canvas, {
    type: 'line',
    data: {
      labels: top[0]?.points.map((p) => `${Math.round(p.ratio * 100)}%`) ?? [],
      datasets: top.map((c, i) => ({ label: c.group, data: c.points.map((p) => p.drop), borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], tension: 0.2 })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { position: 'right', labels: { color: fg, boxWidth: 12 } }, title: { display: true, text: `${res.metric} loss when one group is pruned alone (${res.data})`, color: fg } },
      scales: { x: { title: { display: true, text: 'channels removed', color: fg }, ticks: { color: fg } }, y: { title: { display: true, text: 'loss', color: fg }, ticks: { color: fg } } },
    },
  });
  drawGraph();
}

// ---- graph view ---------------------------------------------------------------------

interface GNode { i: number; label: string; op: string; params: number; macs: number; x: number; y: number; w: number; h: number }
const graph = { nodes: [] as GNode[], edges: [] as Array<[number, number]>, width: 0, height: 0, scale: 1, tx: 0, ty: 0, selected: -1, requested: false, max: { params: 1, macs: 1 } };

function showView(which: 'table' | 'graph') {
  table.style.display = which === 'table' ? '' : 'none';
  graphBox.style.display = which === 'graph' ? '' : 'none';
  colorBy.style.display = which === 'graph' ? '' : 'none';
  if (which === 'graph' && !graph.requested) {
    graph.requested = true;
    error.textContent = 'Laying out the graph…';
    send({ type: 'graph' });
  }
  if (which === 'graph') drawGraph();
}
tableBtn.addEventListener('click', () => showView('table'));
graphBtn.addEventListener('click', () => showView('graph'));
colorBy.addEventListener('change', () => drawGraph());

/** Loss at 50% pruning per producer label, once sensitivity has been measured. */
const sensitivityByLabel = new Map<string, number>();

function nodeColor(n: GNode): string {
  if (colorBy.value === 'sensitivity') {
    const d = sensitivityByLabel.get(n.label);
    if (d === undefined) return cssVar('--vscode-editorWidget-background', '#252526');
    const t = Math.min(1, Math.max(0, d) / 0.5); // 0 = robust (green) … ≥ 0.5 loss = fragile (red)
    return `hsl(${120 - 120 * t}, 65%, 42%)`;
  }
  const key = colorBy.value === 'params' ? 'params' : 'macs';
  const v = n[key];
  if (!v) return cssVar('--vscode-editorWidget-background', '#252526');
  const t = Math.log1p(v) / Math.log1p(graph.max[key]); // 0..1 on a log scale
  const hue = 220 - 200 * t;
  return `hsl(${hue}, 70%, ${45 + 10 * (1 - t)}%)`;
}

function drawGraph() {
  const ctx = graphCanvas.getContext('2d');
  if (!ctx || graphBox.style.display === 'none') return;
  const dpr = window.devicePixelRatio || 1;
  const w = graphBox.clientWidth;
  const h = graphBox.clientHeight;
  if (graphCanvas.width !== w * dpr || graphCanvas.height !== h * dpr) {
    graphCanvas.width = w * dpr;
    graphCanvas.height = h * dpr;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.setTransform(dpr * graph.scale, 0, 0, dpr * graph.scale, dpr * graph.tx, dpr * graph.ty);
  // Only what is in view is drawn, so thousands of nodes stay smooth.
  const x0 = -graph.tx / graph.scale;
  const y0 = -graph.ty / graph.scale;
  const x1 = x0 + w / graph.scale;
  const y1 = y0 + h / graph.scale;
  ctx.strokeStyle = cssVar('--vscode-editorLineNumber-foreground', '#858585');
  ctx.lineWidth = 1 / graph.scale;
  ctx.beginPath();
  for (const [a, b] of graph.edges) {
    const p = graph.nodes[a];
    const q = graph.nodes[b];
    if (Math.max(p.y, q.y) < y0 || Math.min(p.y, q.y) > y1) continue;
    ctx.moveTo(p.x, p.y + p.h / 2);
    ctx.lineTo(q.x, q.y - q.h / 2);
  }
  ctx.stroke();
  const showText = graph.scale > 0.45;
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  for (const n of graph.nodes) {
    if (n.x + n.w / 2 < x0 || n.x - n.w / 2 > x1 || n.y + n.h / 2 < y0 || n.y - n.h / 2 > y1) continue;
    ctx.fillStyle = nodeColor(n);
    ctx.fillRect(n.x - n.w / 2, n.y - n.h / 2, n.w, n.h);
    if (n.i === graph.selected) {
      ctx.strokeStyle = cssVar('--vscode-focusBorder', '#007fd4');
      ctx.lineWidth = 3 / graph.scale;
      ctx.strokeRect(n.x - n.w / 2, n.y - n.h / 2, n.w, n.h);
    }
    if (showText) {
      ctx.fillStyle = cssVar('--vscode-editor-foreground', '#ddd');
      ctx.fillText(n.op, n.x, n.y, n.w - 4);
    }
  }
}

function centerOn(i: number) {
  const n = graph.nodes[i];
  if (!n) return;
  graph.tx = graphBox.clientWidth / 2 - n.x * graph.scale;
  graph.ty = graphBox.clientHeight / 2 - n.y * graph.scale;
  drawGraph();
}

let drag: { x: number; y: number; moved: boolean } | undefined;
graphBox.addEventListener('mousedown', (e) => (drag = { x: e.clientX, y: e.clientY, moved: false }));
window.addEventListener('mousemove', (e) => {
  if (!drag) return;
  const dx = e.clientX - drag.x;
  const dy = e.clientY - drag.y;
  if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
  graph.tx += dx;
  graph.ty += dy;
  drag.x = e.clientX;
  drag.y = e.clientY;
  requestAnimationFrame(drawGraph);
});
window.addEventListener('mouseup', (e) => {
  const d = drag;
  drag = undefined;
  if (!d || d.moved || e.target !== graphCanvas) return;
  const r = graphCanvas.getBoundingClientRect();
  const gx = (e.clientX - r.left - graph.tx) / graph.scale;
  const gy = (e.clientY - r.top - graph.ty) / graph.scale;
  const hit = graph.nodes.find((n) => Math.abs(gx - n.x) <= n.w / 2 && Math.abs(gy - n.y) <= n.h / 2);
  if (!hit) return;
  graph.selected = hit.i;
  drawGraph();
  send({ type: 'locate', index: hit.i, sortBy: state.sortBy, descending: state.descending, filter: state.filter });
});
graphBox.addEventListener('wheel', (e) => {
  e.preventDefault();
  const r = graphCanvas.getBoundingClientRect();
  const mx = e.clientX - r.left;
  const my = e.clientY - r.top;
  const f = Math.exp(-e.deltaY * 0.0015);
  const s2 = Math.min(4, Math.max(0.02, graph.scale * f));
  graph.tx = mx - ((mx - graph.tx) * s2) / graph.scale;
  graph.ty = my - ((my - graph.ty) * s2) / graph.scale;
  graph.scale = s2;
  requestAnimationFrame(drawGraph);
}, { passive: false });
window.addEventListener('resize', () => requestAnimationFrame(drawGraph));

function showGraph(g: Json) {
  const d = g as unknown as { nodes: GNode[]; edges: Array<[number, number]>; width: number; height: number; layoutMs: number };
  graph.nodes = d.nodes;
  graph.edges = d.edges;
  graph.width = d.width;
  graph.height = d.height;
  graph.max.params = Math.max(1, ...d.nodes.map((n) => n.params));
  graph.max.macs = Math.max(1, ...d.nodes.map((n) => n.macs));
  graph.scale = Math.min(1, graphBox.clientWidth / Math.max(1, d.width));
  graph.tx = (graphBox.clientWidth - d.width * graph.scale) / 2;
  graph.ty = 8;
  error.textContent = '';
  graphBox.setAttribute('data-nodes', String(d.nodes.length));
  drawGraph();
}

window.addEventListener('message', (ev: MessageEvent<ToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'summary':
      showSummary(m.file, m.summary as unknown as Summary);
      document.body.dataset.summaryMs = String(Math.round(performance.now()));
      reset();
      break;
    case 'layersPage': {
      if (Math.floor(m.requestId / 1_000_000) !== state.version) return; // a stale sort/filter
      state.total = m.total;
      m.rows.forEach((r, k) => state.rows.set(m.offset + k, r as unknown as Row));
      render();
      break;
    }
    case 'tensorDetail':
      showDetail(m.layer, m.detail);
      break;
    case 'graph':
      showGraph(m.graph);
      break;
    case 'sensitivity':
      sensBtn.removeAttribute('disabled');
      showSensitivity(m.result);
      break;
    case 'located':
      if (m.position >= 0) {
        // Make sure the row is loaded, then select it (the detail panel follows).
        request(m.position);
        const trySelect = (tries: number) => (state.rows.has(m.position) ? select(m.position) : tries > 0 && setTimeout(() => trySelect(tries - 1), 50));
        trySelect(40);
      }
      break;
    case 'error':
      error.textContent = m.message;
      if (summaryEl.textContent === 'Reading the model…') {
        // The model could not be read: show only the error, no controls that cannot work.
        summaryEl.textContent = 'This model could not be opened.';
        for (const e of [toolbar, main, charts]) e.style.display = 'none';
      }
      break;
    case 'busy':
      error.textContent = m.stage;
      break;
  }
});

send({ type: 'ready' });
