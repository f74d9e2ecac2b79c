/** The detail panel: the selected layer's weights, their statistics and a histogram. */
import { Chart } from 'chart.js';
import type { LayerRow, TensorDetailDto } from '../src/protocol/webview';
import { cssVar, el } from './dom';
import { fmt, fmtBytes, send } from './state';

export const detail = el('div', { id: 'detail' }, 'Select a layer to see its weights.');


let current: LayerRow | undefined;

/** An If's MACs per branch, and which one the totals count. */
function branches(row: LayerRow | undefined): HTMLElement[] {
  const b = row?.branchMacs;
  if (!b?.length) return [];
  const names = b.length === 2 ? ['then', 'else'] : b.map((_, k) => `branch ${k}`);
  return [el('p', { class: 'branches' }, `MACs per branch: ${b.map((m, k) => `${names[k]} ${fmt(m)}`).join(', ')}. Only one branch runs, so the totals count the largest (${fmt(Math.max(...b))}).`)];
}

/** Asks for a row's weights, or says it has none. */
export function showRow(row: LayerRow | undefined): void {
  if (!row) return;
  current = row;
  if (row.weights > 0) send({ type: 'tensor', layer: row.name });
  else detail.replaceChildren(el('h3', {}, row.name), ...branches(row), el('p', { class: 'no-weights' }, `${row.op} has no weights of its own${row.noWeights ? `: ${row.noWeights}` : ''}.`));
}

let histChart: Chart | undefined;
export function showDetail(layer: string, det: TensorDetailDto): void {
  detail.replaceChildren(el('h3', {}, layer), ...branches(current?.name === layer ? current : undefined));
  for (const w of det.weights) {
    const t = el('table');
    const add = (k: string, v: string) => {
      const tr = el('tr');
      tr.append(el('th', {}, k), el('td', {}, v));
      t.append(tr);
    };
    add('tensor', `${w.name} ${w.dtype}[${w.shape.join(', ')}]`);
    add('params', w.params.toLocaleString('en-US'));
    if (w.stored) add('bytes', `${fmtBytes(w.stored.bytes)} stored as ${w.stored.dtype}; ${fmtBytes(w.bytes ?? 0)} as ${w.dtype}`);
    else if (w.bytes !== undefined) add('bytes', fmtBytes(w.bytes));
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
  if (!h) return;
  const box = el('div', { class: 'hist' });
  const canvas = el('canvas', { id: 'histogram', 'aria-label': 'weight histogram' });
  box.append(canvas);
  detail.append(box);
  histChart?.destroy();
  const step = (h.max - h.min) / h.counts.length;
  const fg = cssVar('--vscode-foreground', '#ccc');
  histChart = new Chart(canvas, {
    type: 'bar',
    data: { labels: h.counts.map((_, i) => (h.min + (i + 0.5) * step).toPrecision(3)), datasets: [{ label: 'weights', data: h.counts, backgroundColor: cssVar('--vscode-charts-blue', '#3794ff'), barPercentage: 1, categoryPercentage: 1 }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { x: { ticks: { maxTicksLimit: 6, color: fg } }, y: { ticks: { color: fg } } } },
  });
}
