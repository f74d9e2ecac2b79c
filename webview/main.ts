/**
 * The model editor UI. Browser code: it imports only src/protocol and browser libraries.
 * The summary paints as soon as it arrives; the layer table (table.ts) is virtualised and
 * pulls rows from the host in pages; the graph (graph.ts) is laid out by the worker.
 * This file builds the page and routes messages; state.ts holds what the views share.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { ArcElement, BarController, BarElement, CategoryScale, Chart, DoughnutController, Legend, LinearScale, LineController, LineElement, PointElement, Title, Tooltip } from 'chart.js';
import type { ToWebview } from '../src/protocol/webview';
import { detail, showDetail, showRow } from './detail';
import { el } from './dom';
import * as graph from './graph';
import { send, state } from './state';
import { charts, sensBox, sensitivityProgress, showSensitivity, showSummary, summaryEl, type Summary } from './summary';
import * as table from './table';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, DoughnutController, ArcElement, LineController, LineElement, PointElement, Title, Tooltip, Legend);

// Timings relative to this frame's navigation start, for the speed measurements.
document.body.dataset.scriptMs = String(Math.round(performance.now()));
const own = performance.getEntriesByType('resource').find((e) => e.name.includes('webview.js')) as PerformanceResourceTiming | undefined;
if (own) document.body.dataset.fetch = `${Math.round(own.startTime)}-${Math.round(own.responseEnd)}`;

const style = el('style');
style.textContent = `
body{font-family:var(--vscode-font-family);font-size:var(--vscode-font-size);color:var(--vscode-foreground);background:var(--vscode-editor-background);margin:0;padding:8px 12px}
#summary{display:flex;flex-wrap:wrap;gap:6px 24px;margin-bottom:8px}#summary .metric b{font-size:1.3em;display:block}
#summary .partial b,.warn{color:var(--vscode-editorWarning-foreground)}.meta{min-width:0;overflow-wrap:anywhere}
#toolbar{display:flex;flex-wrap:wrap;gap:6px 8px;align-items:center;margin:8px 0}#search{flex:1 1 14em;min-width:12em;max-width:32em}
#graph-tools{display:flex;flex-wrap:wrap;gap:6px;align-items:center}#graph-find{min-width:14em}
#main{display:grid;grid-template-columns:minmax(0,7fr) minmax(260px,3fr);gap:12px}
@media (max-width:760px){#main{grid-template-columns:minmax(0,1fr)}#detail{max-height:40vh;overflow:auto}}
#table{border:1px solid var(--vscode-panel-border);height:60vh;overflow:auto;position:relative;outline:none}
#table:focus{outline:1px solid var(--vscode-focusBorder)}
.hdr,.row{display:grid;grid-template-columns:var(--cols);height:${table.ROW}px;line-height:${table.ROW}px;white-space:nowrap;min-width:min-content}
.hdr{position:sticky;top:0;background:var(--vscode-editorWidget-background);font-weight:600;z-index:1;cursor:pointer}
.hdr>span{position:relative}.hdr>span:hover{text-decoration:underline}
.grip{position:absolute;right:0;top:0;bottom:0;width:6px;cursor:col-resize;border-right:1px solid var(--vscode-panel-border);padding:0!important}
.row{position:absolute;left:0;right:0;cursor:pointer}
.row:hover{background:var(--vscode-list-hoverBackground)}.row.sel{background:var(--vscode-list-activeSelectionBackground);color:var(--vscode-list-activeSelectionForeground)}
.hdr>span,.row span{overflow:hidden;text-overflow:clip;padding:0 6px}.num{text-align:right}
#graph{border:1px solid var(--vscode-panel-border);height:60vh;position:relative;overflow:hidden;cursor:grab}#graph-canvas{width:100%;height:100%;display:block}
#minimap{position:absolute;right:6px;bottom:6px;border:1px solid var(--vscode-panel-border);background:var(--vscode-editor-background);opacity:.92;cursor:pointer}
#legend{position:absolute;left:6px;bottom:6px;padding:2px 6px;background:var(--vscode-editorWidget-background);border:1px solid var(--vscode-panel-border);font-size:.9em}
.ramp{display:inline-block;width:70px;height:9px;vertical-align:middle;margin:0 4px}
select{background:var(--vscode-dropdown-background);color:var(--vscode-dropdown-foreground);border:1px solid var(--vscode-dropdown-border);padding:2px;max-width:22em}
#detail{min-width:0;overflow-wrap:anywhere}#detail h3{margin:4px 0;overflow-wrap:anywhere}
#detail table{width:100%;table-layout:fixed;border-collapse:collapse;margin-bottom:6px}#detail th{width:7.5em;text-align:left;font-weight:normal;opacity:.8;vertical-align:top}
#detail td{overflow-wrap:anywhere;padding:1px 4px}#detail .hist{height:180px}#error{color:var(--vscode-errorForeground)}
#sensitivity-box:empty{display:none}#sensitivity-box{margin:8px 0}#sens-progress{width:100%}.sens-chart{height:300px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:12px;margin-top:12px}.charts div{height:260px}`;
document.head.append(style);

const app = document.getElementById('app')!;
const error = el('div', { id: 'error' });
const status = (s: string) => (error.textContent = s);
const toolbar = el('div', { id: 'toolbar' });
const search = el('vscode-textfield', { id: 'search', placeholder: 'Filter layers by name or op', value: state.filter }) as HTMLElement & { value: string };
const quant = el('vscode-button', { id: 'quantize' }, 'Quantize (INT8)');
quant.addEventListener('click', () => send({ type: 'command', command: 'quantizeInt8' }));
const counter = el('span', { id: 'count' });
const tableBtn = el('vscode-button', { id: 'show-table', secondary: '' }, 'Table');
const graphBtn = el('vscode-button', { id: 'show-graph', secondary: '' }, 'Graph');
const sensBtn = el('vscode-button', { id: 'sensitivity', secondary: '' }, 'Sensitivity');
sensBtn.addEventListener('click', () => {
  sensBtn.setAttribute('disabled', '');
  sensitivityProgress('starting');
  send({ type: 'sensitivity' });
});
graph.graphTools.style.display = 'none';
toolbar.append(search, quant, tableBtn, graphBtn, sensBtn, counter, graph.graphTools);
const main = el('div', { id: 'main' });
graph.graphBox.style.display = 'none';
main.append(table.table, graph.graphBox, detail);
app.append(error, summaryEl, toolbar, sensBox, main, charts);

/** Set while a pick in the graph is being located in the table (the graph then keeps its view). */
let pickedInGraph = false;
table.onRowSelected((row) => {
  if (!row) return;
  graph.setSelected(row.index);
  if (graph.isShown() && !pickedInGraph) graph.centerOn(row.index, false);
  pickedInGraph = false;
  showRow(row);
});
graph.onNodePicked((i) => {
  pickedInGraph = true;
  send({ type: 'locate', index: i, sortBy: state.sortBy, descending: state.descending, filter: state.filter });
});

function showView(which: 'table' | 'graph') {
  table.table.style.display = which === 'table' ? '' : 'none';
  graph.graphBox.style.display = which === 'graph' ? '' : 'none';
  graph.graphTools.style.display = which === 'graph' ? '' : 'none';
  search.style.display = which === 'table' ? '' : 'none';
  if (which === 'graph') {
    graph.ensureRequested(status);
    graph.draw();
  } else table.shown();
}
tableBtn.addEventListener('click', () => showView('table'));
graphBtn.addEventListener('click', () => showView('graph'));

let filterTimer: ReturnType<typeof setTimeout> | undefined;
search.addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    state.filter = search.value ?? '';
    table.reset();
  }, 150);
});

window.addEventListener('message', (ev: MessageEvent<ToWebview>) => {
  const m = ev.data;
  switch (m.type) {
    case 'summary': {
      const s = m.summary as unknown as Summary;
      showSummary(m.file, s);
      // One-click INT8 is for ONNX; sensitivity runs on ONNX (ORT) and TF.js layers models (TensorFlow.js).
      quant.style.display = s.format === 'onnx' ? '' : 'none';
      sensBtn.style.display = s.format === 'onnx' || s.format === 'tfjs-layers' ? '' : 'none';
      document.body.dataset.summaryMs = String(Math.round(performance.now()));
      table.reset();
      break;
    }
    case 'layersPage':
      table.addPage(m.requestId, m.total, m.offset, m.rows);
      counter.textContent = `${state.total} layers`;
      break;
    case 'tensorDetail':
      showDetail(m.layer, m.detail);
      break;
    case 'graph':
      status('');
      graph.showGraph(m.graph);
      document.body.dataset.graphMs = String(Math.round(performance.now()));
      break;
    case 'sensitivity':
      sensBtn.removeAttribute('disabled');
      for (const [k, v] of showSensitivity(m.result)) graph.sensitivityByLabel.set(k, v);
      graph.draw();
      break;
    case 'located':
      if (m.position >= 0) table.selectWhenLoaded(m.position);
      break;
    case 'error':
      error.textContent = m.message;
      sensBtn.removeAttribute('disabled');
      if (sensBox.querySelector('progress')) sensBox.replaceChildren();
      if (summaryEl.textContent === 'Reading the model…') {
        // The model could not be read: show only the error, no controls that cannot work.
        summaryEl.textContent = 'This model could not be opened.';
        for (const e of [toolbar, main, charts]) e.style.display = 'none';
      }
      break;
    case 'busy':
      if (m.stage.startsWith('sensitivity:')) sensitivityProgress(m.stage.slice(12).trim(), m.fraction);
      else error.textContent = m.done ? '' : m.stage;
      break;
  }
});

send({ type: 'ready' });
