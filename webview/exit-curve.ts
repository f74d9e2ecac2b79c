/**
 * The result view of an early-exit step: accuracy (or agreement) against expected MACs over
 * one confidence threshold shared by every exit, the model written now marked on it, the
 * per-exit table, and a threshold slider. Moving the slider shows the curve's point for that
 * threshold; releasing it re-exports the model at that threshold (debounced; one request at a
 * time, the latest value wins), and the table shows what was written.
 */
import '@vscode-elements/elements/dist/vscode-label/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import { Chart, Legend, LinearScale, LineElement, LogarithmicScale, PointElement, ScatterController, Tooltip } from 'chart.js';
import type { ExitsReexportDto, ExitsResultDto, ExitTableDto, FromExits, ToExits } from '../src/protocol/exits';
import { cssVar, el } from './dom';

Chart.register(ScatterController, PointElement, LineElement, LinearScale, LogarithmicScale, Legend, Tooltip);

export const EXIT_CURVE_CSS = `#exit-view input[type=range]{width:260px;accent-color:var(--vscode-focusBorder)}
#exit-view .status{opacity:.85}#exit-view vscode-progress-ring{width:16px;height:16px}`;

/** Labelled ticks of the logarithmic MAC axis (in per cent). */
const LOG_TICKS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200];

/** Milliseconds between releasing the slider and the re-export request. */
const DEBOUNCE_MS = 250;

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const sc = (x: number | null) => (x === null ? '–' : x.toFixed(4));
const count = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(Math.round(n)));

function tableOf(t: ExitTableDto, metric: string): HTMLTableElement {
  const ratio = (m: number) => (t.originalMacs > 0 ? `${(m / t.originalMacs).toFixed(3)}x` : '–');
  const table = el('table', { id: 'exit-table' });
  const head = el('tr');
  for (const h of ['exit', 'tensor', 'at MACs', 'threshold', 'leaving', metric, 'MACs paid']) head.append(el('th', {}, h));
  table.append(head);
  const rows = t.exits.map((e, k) => [String(k), e.tensor, pct(e.position), e.threshold === null ? 'off' : e.threshold.toFixed(3), pct(e.samples), sc(e.score), `${count(e.macs)} (${ratio(e.macs)})`]);
  rows.push([String(t.exits.length), 'final output', '100%', '–', pct(t.final.samples), sc(t.final.score), `${count(t.final.macs)} (${ratio(t.final.macs)})`]);
  rows.push(['all', '', '', '', '100%', `${sc(t.score)} (original ${sc(t.originalScore)})`, `${count(t.expectedMacs)} expected (${ratio(t.expectedMacs)})`]);
  for (const r of rows) {
    const tr = el('tr');
    for (const c of r) tr.append(el('td', {}, c));
    table.append(tr);
  }
  return table;
}

export interface ExitView {
  root: HTMLElement;
  /** Handles the host's answer to a re-export; false for other messages. */
  onMessage(m: ToExits): boolean;
}

/** Builds the view for `dto`; `post` sends re-export requests to the host. */
export function exitView(dto: ExitsResultDto, post: (m: FromExits) => void): ExitView {
  const metric = dto.metric;
  const curve = [...dto.curve].sort((a, b) => a.threshold - b.threshold);
  const orig = dto.calibrated.originalMacs || 1;
  const point = (p: { expectedMacs: number; score: number }) => ({ x: +((100 * p.expectedMacs) / orig).toFixed(2), y: +(100 * p.score).toFixed(2) });
  const nearest = (t: number) => curve.reduce((best, p) => (Math.abs(p.threshold - t) < Math.abs(best.threshold - t) ? p : best), curve[0]);

  const root = el('div', { id: 'exit-view' });
  const box = el('div');
  box.style.height = '240px';
  box.style.maxWidth = '640px';
  const canvas = el('canvas', { id: 'exit-curve', 'aria-label': `${metric} against expected MACs over the exit threshold`, 'data-points': String(curve.length) });
  box.append(canvas);

  const calibratedT = dto.calibrated.thresholds.filter((t): t is number => t !== null);
  const initial = calibratedT.length ? Math.max(...calibratedT) : 1;
  const step = curve.length > 1 ? curve[1].threshold - curve[0].threshold : 0.01;
  const slider = el('input', { id: 'exit-threshold', type: 'range', min: String(curve[0]?.threshold ?? 0), max: String(curve[curve.length - 1]?.threshold ?? 1), step: String(step), value: String(initial) });
  const value = el('code', { id: 'exit-threshold-value' }, initial.toFixed(3));
  const ring = el('vscode-progress-ring');
  ring.hidden = true;
  const status = el('span', { id: 'exit-status', class: 'status' });
  const label = el('vscode-label', { for: 'exit-threshold' }, 'Threshold (every exit)');
  const row = el('div', { class: 'row' });
  row.append(label, slider, value, ring, status);
  const current = el('p', { id: 'exit-current' });
  let table = tableOf(dto.calibrated, metric);
  const measured = el('p', { id: 'exit-measured' });
  const same = calibratedT.length > 0 && calibratedT.every((t) => t === calibratedT[0]) && calibratedT.length === dto.calibrated.thresholds.length;
  current.textContent = `Written now: the calibrated thresholds (${dto.calibrated.thresholds.map((t) => (t === null ? 'off' : t.toFixed(3))).join(' / ')})${same ? '' : ', one per exit; the slider sets one threshold for every exit'}.`;
  root.append(
    el('h3', {}, 'Early exits'),
    el('p', {}, `Each point of the curve is one confidence threshold shared by every exit, measured on the evaluation data: a lower threshold leaves earlier, with fewer MACs and usually a lower ${metric}. Per-sample semantics at batch 1.`),
    box,
    row,
    current,
    table,
    measured,
  );

  const fg = cssVar('--vscode-foreground', '#ccc');
  const chart = new Chart(canvas, {
    type: 'scatter',
    data: {
      datasets: [
        { label: 'threshold curve', data: curve.map(point), showLine: true, borderColor: cssVar('--vscode-charts-blue', '#3794ff'), backgroundColor: cssVar('--vscode-charts-blue', '#3794ff'), pointRadius: 2 },
        { label: 'written', data: [point(dto.calibrated)], borderColor: cssVar('--vscode-charts-green', '#89d185'), backgroundColor: cssVar('--vscode-charts-green', '#89d185'), pointRadius: 7, pointStyle: 'rectRot' },
        { label: 'slider', data: [point(nearest(initial))], borderColor: cssVar('--vscode-charts-orange', '#d18616'), backgroundColor: 'transparent', pointRadius: 8, pointBorderWidth: 2 },
        { label: 'original', data: [point({ expectedMacs: orig, score: dto.calibrated.originalScore })], borderColor: fg, backgroundColor: fg, pointRadius: 4, pointStyle: 'crossRot', pointBorderWidth: 2 },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { labels: { color: fg } } },
      scales: {
        // Logarithmic: the points that matter sit at a few per cent of the MACs.
        x: { type: 'logarithmic', title: { display: true, text: 'expected MACs, % of the original (log scale)', color: fg }, ticks: { color: fg, callback: (v) => (LOG_TICKS.includes(Number(v)) ? String(v) : '') } },
        y: { title: { display: true, text: `${metric} (%)`, color: fg }, ticks: { color: fg } },
      },
    },
  });

  const show = (t: number) => {
    const p = nearest(t);
    value.textContent = t.toFixed(3);
    status.textContent = `curve: ${((100 * p.expectedMacs) / orig).toFixed(1)}% of the MACs, ${metric} ${p.score.toFixed(4)}`;
    chart.data.datasets[2].data = [point(p)];
    chart.update('none');
  };
  show(initial);

  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight = false;
  let queued: number | undefined;
  const request = (t: number) => {
    if (inFlight) return void (queued = t);
    inFlight = true;
    ring.hidden = false;
    status.textContent = `re-exporting at ${t.toFixed(3)}…`;
    post({ type: 'reexport', id: dto.id, threshold: t });
  };
  slider.addEventListener('input', () => show(Number(slider.value)));
  slider.addEventListener('change', () => {
    clearTimeout(timer);
    timer = setTimeout(() => request(Number(slider.value)), DEBOUNCE_MS);
  });
  const settle = () => {
    inFlight = false;
    ring.hidden = true;
    if (queued !== undefined) {
      const t = queued;
      queued = undefined;
      request(t);
    }
  };

  const written = (r: ExitsReexportDto) => {
    const next = tableOf(r.table, metric);
    table.replaceWith(next);
    table = next;
    chart.data.datasets[1].data = [point(r.table)];
    chart.update('none');
    current.textContent = `Written now: threshold ${r.threshold.toFixed(3)} at every exit, to ${r.output}.`;
    status.textContent = `written: ${((100 * r.table.expectedMacs) / orig).toFixed(1)}% of the MACs, ${metric} ${r.table.score.toFixed(4)}`;
    const m = r.measured;
    measured.textContent = m.samples
      ? `Checked in ONNX Runtime at batch 1 on ${m.samples} evaluation samples: leaving at each exit ${m.fractions.map(pct).join(' / ')}, ${metric} ${m.score.toFixed(4)}.`
      : 'Every head is an output of this model (multi-output form): the thresholds are in its metadata.';
  };

  return {
    root,
    onMessage(m: ToExits): boolean {
      if (m.type === 'reexported' && m.result.id === dto.id) {
        written(m.result);
        settle();
        return true;
      }
      if (m.type === 'reexportFailed' && m.id === dto.id) {
        status.textContent = `re-export failed: ${m.message}`;
        settle();
        return true;
      }
      return false;
    },
  };
}
