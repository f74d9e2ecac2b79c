/**
 * The summary header (totals, marked when partial), the charts below the table, and the
 * sensitivity section, which appears in view with its progress while the scan runs.
 */
import { Chart } from 'chart.js';
import type { SensitivityDto } from '../src/protocol/webview';
import { cssVar, el } from './dom';
import { fmt, fmtBytes, middleEllipsis, SERIES_COLOURS, shapeStr } from './state';

export interface Summary {
  format: string;
  irVersion: number;
  opset: Record<string, number>;
  producer: string;
  fileSizeBytes: number;
  inputs: Array<{ name: string; dtype: string; shape: Array<number | string | null> | null }>;
  outputs: Array<{ name: string; dtype: string; shape: Array<number | string | null> | null }>;
  totals: { params: number; bytes: number; macs: number; flops: number; nodes: number; unknownMacsNodes?: number; dequantizedBytes?: number };
  byOpType: Array<{ op: string; count: number; params: number; macs: number }>;
  topByMacs: Array<{ name: string; macs: number }>;
  topByParams: Array<{ name: string; params: number }>;
  unknownShapeOps?: string[];
  /** Symbolic input dims given default sizes for the MAC figures (e.g. `x[2]=224 (image height)`). */
  assumedDims?: string[];
  weightedLayers: number;
}

export const summaryEl = el('div', { id: 'summary' }, 'Reading the model…');
export const charts = el('div', { class: 'charts' });
/** Sensitivity: progress while it runs, then the chart, right under the toolbar. */
export const sensBox = el('div', { id: 'sensitivity-box' });

const fg = () => cssVar('--vscode-foreground', '#ccc');

/** The MACs figure: "≥ 1.26G" with the count of layers whose MACs are unknown, when some are. */
export function macsText(s: Summary): { value: string; label: string; title: string } {
  const unknown = s.totals.unknownMacsNodes ?? 0;
  if (!unknown) return { value: fmt(s.totals.macs), label: 'MACs', title: '' };
  const ops = s.unknownShapeOps?.length ? ` Shape inference has no rule for: ${s.unknownShapeOps.join(', ')}.` : '';
  return {
    value: `≥ ${fmt(s.totals.macs)}`,
    label: `MACs (${unknown} layer${unknown === 1 ? '' : 's'} unknown)`,
    title: `A partial total: ${unknown} layer(s) have unknown output shapes, so their MACs (shown as ? in the table) are not counted.${ops}`,
  };
}

export function showSummary(file: string, s: Summary): void {
  summaryEl.replaceChildren();
  const metric = (label: string, value: string, id: string, title = '') => {
    const d = el('div', { class: `metric${title ? ' partial' : ''}`, id, ...(title ? { title } : {}) });
    d.append(el('b', {}, value), document.createTextNode(label));
    summaryEl.append(d);
  };
  metric('total params', s.totals.params.toLocaleString('en-US'), 'total-params');
  // The stored size; weights the file keeps narrower (TF.js uint8/float16) say what they take dequantized.
  const deq = s.totals.dequantizedBytes;
  metric(deq === undefined ? 'weight bytes' : `weight bytes stored (${fmtBytes(deq)} dequantized)`, fmtBytes(s.totals.bytes), 'total-bytes');
  const m = macsText(s);
  metric(m.label, m.value, 'total-macs', m.title);
  metric('weighted layers', String(s.weightedLayers), 'weighted-layers');
  metric('nodes', String(s.totals.nodes), 'nodes');
  const meta = el('div', { class: 'meta' });
  meta.append(el('div', {}, `${file.split(/[\\/]/).pop()} — ${s.format}${s.format === 'onnx' ? `, IR ${s.irVersion}, opset ${Object.entries(s.opset).map(([d, v]) => (d === 'ai.onnx' ? v : `${d} ${v}`)).join(', ')}` : ''}${s.producer ? `, ${s.producer}` : ''}`));
  meta.append(el('div', {}, `inputs: ${s.inputs.map((i) => `${i.name} ${i.dtype}${shapeStr(i.shape)}`).join(', ')}`));
  meta.append(el('div', {}, `outputs: ${s.outputs.map((o) => `${o.name} ${o.dtype}${shapeStr(o.shape)}`).join(', ')}`));
  if (s.assumedDims?.length) meta.append(el('div', { id: 'assumed-dims' }, `MACs per sample, with ${s.assumedDims.join(', ')}`));
  if (m.title) meta.append(el('div', { class: 'warn', id: 'partial-note' }, m.title));
  summaryEl.append(meta);
  drawCharts(s);
}

function drawCharts(s: Summary): void {
  const c1 = el('canvas', { id: 'op-chart', 'aria-label': 'MACs by op type' });
  const c2 = el('canvas', { id: 'macs-chart', 'aria-label': 'layers with the most MACs' });
  const b1 = el('div');
  const b2 = el('div');
  b1.append(c1);
  b2.append(c2);
  charts.replaceChildren(b1, b2);
  const colour = fg();
  // MACs only: a slice of params beside slices of MACs would compare unlike quantities.
  const ops = s.byOpType.filter((o) => o.macs > 0).sort((a, b) => b.macs - a.macs);
  const shown = ops.slice(0, 9);
  const rest = ops.slice(9).reduce((t, o) => t + o.macs, 0);
  const labels = shown.map((o) => o.op).concat(rest ? ['other'] : []);
  new Chart(c1, {
    type: 'doughnut',
    data: { labels, datasets: [{ data: shown.map((o) => o.macs).concat(rest ? [rest] : []), backgroundColor: labels.map((_, i) => SERIES_COLOURS[i % SERIES_COLOURS.length]), borderWidth: 0 }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: 'MACs by op type', color: colour }, legend: { position: 'right', labels: { color: colour, boxWidth: 12 } }, tooltip: { callbacks: { label: (c) => ` ${fmt(c.raw as number)} MACs` } } } },
  });
  const paramsOf = new Map(s.topByParams.map((l) => [l.name, l.params]));
  const top = s.topByMacs.slice(0, 10);
  const font = `12px ${getComputedStyle(document.body).fontFamily}`;
  new Chart(c2, {
    type: 'bar',
    data: { labels: top.map((l) => middleEllipsis(l.name, 170, font)), datasets: [{ label: 'MACs', data: top.map((l) => l.macs), backgroundColor: SERIES_COLOURS[1] }] },
    options: {
      indexAxis: 'y',
      animation: false,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        title: { display: true, text: 'layers with the most MACs', color: colour },
        tooltip: { callbacks: { title: (c) => top[c[0].dataIndex].name, label: (c) => ` ${fmt(c.raw as number)} MACs, ${fmt(paramsOf.get(top[c.dataIndex].name) ?? null)} params` } },
      },
      scales: { x: { ticks: { color: colour, callback: (v) => fmt(Number(v)) } }, y: { ticks: { color: colour, autoSkip: false } } },
    },
  });
}

// ---- sensitivity ---------------------------------------------------------------------

let sensChart: Chart | undefined;

/** Progress of the scan, in the panel itself (in view). */
export function sensitivityProgress(stage: string, fraction?: number): void {
  let p = sensBox.querySelector('progress');
  if (!p) {
    sensBox.replaceChildren(el('span', { id: 'sens-stage' }), el('progress', { id: 'sens-progress', max: '1' }));
    p = sensBox.querySelector('progress')!;
    sensBox.scrollIntoView({ block: 'nearest' });
  }
  sensBox.querySelector('#sens-stage')!.textContent = `Sensitivity: ${stage}${fraction === undefined ? '' : ` ${(fraction * 100).toFixed(0)}%`}`;
  if (fraction === undefined) p.removeAttribute('value');
  else p.value = fraction;
}

/** Charts the ten most sensitive groups and returns each group's loss at 50% (for the graph colours). */
export function showSensitivity(res: SensitivityDto): Map<string, number> {
  const at50 = new Map<string, number>();
  for (const c of res.curves) {
    const p = c.points.find((x) => x.ratio === 0.5) ?? c.points[Math.floor(c.points.length / 2)];
    if (p) at50.set(c.group, p.drop);
  }
  const top = [...res.curves].sort((a, b) => (b.points[b.points.length - 1]?.drop ?? 0) - (a.points[a.points.length - 1]?.drop ?? 0)).slice(0, 10);
  const holder = el('div', { class: 'sens-chart' });
  const canvas = el('canvas', { id: 'sensitivity-chart', 'aria-label': 'pruning sensitivity curves' });
  holder.append(canvas);
  sensBox.replaceChildren(holder);
  sensChart?.destroy();
  const colour = fg();
  const font = `12px ${getComputedStyle(document.body).fontFamily}`;
  sensChart = new Chart(canvas, {
    type: 'line',
    data: {
      labels: top[0]?.points.map((p) => `${Math.round(p.ratio * 100)}%`) ?? [],
      datasets: top.map((c, i) => ({ label: middleEllipsis(c.group, 200, font), data: c.points.map((p) => p.drop), borderColor: SERIES_COLOURS[i], backgroundColor: SERIES_COLOURS[i], tension: 0.2 })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { position: 'right', labels: { color: colour, boxWidth: 12 } }, title: { display: true, text: `${res.metric} loss when one group is pruned alone (${res.data}); the ten most sensitive groups`, color: colour } },
      scales: { x: { title: { display: true, text: 'channels removed', color: colour }, ticks: { color: colour } }, y: { title: { display: true, text: 'loss', color: colour }, ticks: { color: colour } } },
    },
  });
  sensBox.scrollIntoView({ block: 'nearest' });
  return at50;
}
