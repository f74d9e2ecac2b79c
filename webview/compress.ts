/**
 * The Compress panel UI: compose steps with their options, pick data (by slot; the host
 * holds the paths), preview params/MACs after each step, run, and compare before and after.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { cssVar, el } from './dom';
import { WARNING_CSS, warningsBox } from './warnings';
import { EXIT_CURVE_CSS, exitView, type ExitView } from './exit-curve';
import { Chart, BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
import type { CompressChoices, DataSlot, FromCompress, ToCompress } from '../src/protocol/compress';
import type { Json } from '../src/protocol/worker';

declare function acquireVsCodeApi(): { postMessage(m: FromCompress): void; getState(): unknown; setState(s: unknown): void };
const vscode = acquireVsCodeApi();
const send = (m: FromCompress) => vscode.postMessage(m);

type Step =
  | { step: 'prune'; ratio: number; criterion: string; recover: 'none' | 'reconstruct' }
  | { step: 'substitute'; kind: 'depthwise' | 'lowrank'; multiplier: number; targetParams: number }
  | { step: 'quantize'; mode: string; method: string };

const state = (vscode.getState() as { steps?: Step[] } | undefined) ?? {};
const steps: Step[] = state.steps ?? [];
const persist = () => vscode.setState({ steps });
/** What this model's format supports; nothing until the host says (init). */
let choices: CompressChoices = { steps: [], quantizeModes: [], substituteKinds: [], pruneCriteria: [], recover: [] };

const style = el('style');
style.textContent = `body{font-family:var(--vscode-font-family);color:var(--vscode-foreground);padding:8px 16px}
.step{display:flex;gap:10px;align-items:center;padding:6px 8px;margin:4px 0;border:1px solid var(--vscode-panel-border)}
.step b{min-width:7em}label{display:flex;gap:4px;align-items:center}
input,select{background:var(--vscode-input-background);color:var(--vscode-input-foreground);border:1px solid var(--vscode-input-border,transparent);padding:2px 4px}
input[type=number]{width:5em}.row{display:flex;gap:8px;align-items:center;margin:8px 0}
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 10px;text-align:right;border-bottom:1px solid var(--vscode-panel-border)}th:first-child,td:first-child{text-align:left}
#error{color:var(--vscode-errorForeground)}code{font-family:var(--vscode-editor-font-family)}${WARNING_CSS}${EXIT_CURVE_CSS}`;
document.head.append(style);

const app = document.getElementById('app')!;
const title = el('h2', { id: 'title' }, 'Compress');
const outLine = el('p');
const list = el('div', { id: 'steps' });
const adders = el('div', { class: 'row' });
const adderButtons = new Map<Step['step'], HTMLElement>();
for (const [kind, label] of [['prune', '+ Prune'], ['substitute', '+ Substitute'], ['quantize', '+ Quantize']] as const) {
  const b = el('vscode-button', { id: `add-${kind}`, secondary: '' }, label);
  b.addEventListener('click', () => choices.steps.includes(kind) && addStep(kind));
  adderButtons.set(kind, b);
  adders.append(b);
}
const data = el('div', { class: 'row' });
const slots: Record<DataSlot, HTMLElement> = { calib: el('code', {}, 'none'), eval: el('code', {}, 'none'), labels: el('code', {}, 'none') };
for (const [slot, label] of [['calib', 'Calibration data'], ['eval', 'Evaluation data'], ['labels', 'Labels']] as const) {
  const b = el('vscode-button', { id: `pick-${slot}`, secondary: '' }, `${label}…`);
  b.addEventListener('click', () => send({ type: 'pick', slot }));
  data.append(b, slots[slot]);
}
const actions = el('div', { class: 'row' });
const preview = el('vscode-button', { id: 'preview' }, 'Preview plan');
const run = el('vscode-button', { id: 'run' }, 'Run');
const save = el('vscode-button', { id: 'save', secondary: '' }, 'Save recipe…');
const open = el('vscode-button', { id: 'open-output', secondary: '', disabled: '' }, 'Open output');
actions.append(preview, run, save, open);
const error = el('div', { id: 'error' });
const previewBox = el('div', { id: 'preview-box' });
const resultBox = el('div', { id: 'result' });
app.append(title, outLine, el('h3', {}, 'Steps'), list, adders, el('h3', {}, 'Data'), data, actions, error, previewBox, resultBox);

function addStep(kind: Step['step']) {
  if (kind === 'prune') steps.push({ step: 'prune', ratio: 0.5, criterion: choices.pruneCriteria[0], recover: 'none' });
  else if (kind === 'substitute') steps.push({ step: 'substitute', kind: choices.substituteKinds[0] as 'lowrank', multiplier: 1, targetParams: 0.5 });
  else steps.push({ step: 'quantize', mode: choices.quantizeModes[0], method: 'minmax' });
  // Quantization needs float weights, so it stays last.
  steps.sort((a, b) => Number(a.step === 'quantize') - Number(b.step === 'quantize'));
  renderSteps();
}

function select(value: string, options: string[], onChange: (v: string) => void): HTMLSelectElement {
  const s = el('select') as HTMLSelectElement;
  for (const o of options) s.append(el('option', { value: o }, o));
  s.value = value;
  s.addEventListener('change', () => onChange(s.value));
  return s;
}
function num(value: number, min: number, max: number, step: number, onChange: (v: number) => void): HTMLInputElement {
  const i = el('input', { type: 'number', min: String(min), max: String(max), step: String(step), value: String(value) }) as HTMLInputElement;
  i.addEventListener('change', () => onChange(Number(i.value)));
  return i;
}
const labelled = (text: string, control: HTMLElement) => {
  const l = el('label', {}, `${text} `);
  l.append(control);
  return l;
};

function renderSteps() {
  persist();
  list.replaceChildren();
  if (!steps.length) list.append(el('p', {}, 'Add steps below. They run in order; quantization comes last.'));
  steps.forEach((s, i) => {
    const row = el('div', { class: 'step', 'data-step': s.step });
    row.append(el('b', {}, `${i + 1}. ${s.step}`));
    if (s.step === 'prune') {
      row.append(labelled('remove', num(s.ratio, 0.05, 0.95, 0.05, (v) => (s.ratio = v))), el('span', {}, 'of channels'));
      row.append(labelled('criterion', select(s.criterion, choices.pruneCriteria, (v) => (s.criterion = v))));
      if (choices.recover.length > 1) row.append(labelled('recovery', select(s.recover, choices.recover, (v) => (s.recover = v as 'none'))));
    } else if (s.step === 'substitute') {
      row.append(labelled('kind', select(s.kind, choices.substituteKinds, (v) => ((s.kind = v as 'lowrank'), renderSteps()))));
      if (s.kind === 'depthwise') row.append(labelled('multiplier', num(s.multiplier, 1, 9, 1, (v) => (s.multiplier = v))));
      else row.append(labelled('keep params', num(s.targetParams, 0.05, 0.95, 0.05, (v) => (s.targetParams = v))));
    } else {
      row.append(labelled('mode', select(s.mode, choices.quantizeModes, (v) => ((s.mode = v), renderSteps()))));
      if (s.mode === 'static') row.append(labelled('calibration', select(s.method, ['minmax', 'percentile', 'entropy'], (v) => (s.method = v))));
    }
    const rm = el('vscode-button', { secondary: '' }, 'Remove');
    rm.addEventListener('click', () => {
      steps.splice(i, 1);
      renderSteps();
    });
    row.append(rm);
    list.append(row);
  });
}

function recipe(): Json {
  const out = steps.map((s): Record<string, Json> =>
      s.step === 'prune'
        ? { step: 'prune', structured: true, ratio: s.ratio, criterion: s.criterion, recover: s.recover }
        : s.step === 'substitute'
          ? s.kind === 'depthwise'
            ? { step: 'substitute', kind: 'depthwise', multiplier: s.multiplier }
            : { step: 'substitute', kind: 'lowrank', targetParams: s.targetParams }
          : { step: 'quantize', mode: s.mode, ...(s.mode === 'static' ? { options: { method: s.method } } : {}) },
  );
  return { steps: out };
}

const bytes = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const fmt = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}K` : String(n));
function tableOf(id: string, head: string[], rows: string[][]): HTMLTableElement {
  const t = el('table', { id });
  const tr = el('tr');
  for (const h of head) tr.append(el('th', {}, h));
  t.append(tr);
  for (const r of rows) {
    const row = el('tr');
    for (const c of r) row.append(el('td', {}, c));
    t.append(row);
  }
  return t;
}

/** Steps that read calibration data: say so in the panel before the engine has to refuse. */
function needsCalibration(): string | undefined {
  if (slots.calib.textContent !== 'none') return undefined;
  const s = steps.find((x) => (x.step === 'quantize' && x.mode === 'static') || (x.step === 'prune' && (x.criterion === 'entropy' || x.recover === 'reconstruct')));
  if (!s) return undefined;
  const what = s.step === 'prune' ? (s.criterion === 'entropy' ? 'the entropy criterion' : 'reconstruction') : 'static quantization';
  return `Pick calibration data first: ${what} runs the model on it.`;
}

const busy = (on: boolean) => [preview, run].forEach((b) => (on ? b.setAttribute('disabled', '') : b.removeAttribute('disabled')));
preview.addEventListener('click', () => {
  if (!steps.length) return void (error.textContent = 'Add at least one step.');
  const calib = needsCalibration();
  if (calib) return void (error.textContent = calib);
  error.textContent = '';
  previewBox.textContent = 'Previewing…';
  busy(true);
  send({ type: 'preview', recipe: recipe() });
});
run.addEventListener('click', () => {
  if (!steps.length) return void (error.textContent = 'Add at least one step.');
  const calib = needsCalibration();
  if (calib) return void (error.textContent = calib);
  error.textContent = '';
  resultBox.textContent = 'Running…';
  busy(true);
  send({ type: 'run', recipe: recipe() });
});
save.addEventListener('click', () => send({ type: 'saveRecipe', recipe: recipe() }));
open.addEventListener('click', () => send({ type: 'openOutput' }));

let exits: ExitView | undefined;
window.addEventListener('message', (ev: MessageEvent<ToCompress>) => {
  const m = ev.data;
  switch (m.type) {
    case 'init':
      title.textContent = `Compress ${m.model}`;
      outLine.textContent = `Output: ${m.output} (the original is never changed)`;
      if (m.calib) slots.calib.textContent = m.calib;
      choices = m.choices;
      for (const [kind, b] of adderButtons) b.toggleAttribute('disabled', !choices.steps.includes(kind));
      // Steps kept from an earlier session of this panel must fit this format.
      for (let i = steps.length - 1; i >= 0; i--) {
        const s = steps[i];
        if (!choices.steps.includes(s.step)) steps.splice(i, 1);
        else if (s.step === 'quantize' && !choices.quantizeModes.includes(s.mode)) s.mode = choices.quantizeModes[0];
        else if (s.step === 'substitute' && !choices.substituteKinds.includes(s.kind)) s.kind = choices.substituteKinds[0] as 'lowrank';
        else if (s.step === 'prune') {
          if (!choices.pruneCriteria.includes(s.criterion)) s.criterion = choices.pruneCriteria[0];
          if (!choices.recover.includes(s.recover)) s.recover = 'none';
        }
      }
      renderSteps();
      break;
    case 'picked':
      slots[m.slot].textContent = m.file;
      break;
    case 'preview': {
      busy(false);
      const before = m.before as { params: number; macs: number };
      const st = m.steps as Array<{ step: string; detail: string; params: number; macs: number }>;
      previewBox.replaceChildren(el('h3', {}, 'Plan'), tableOf('plan', ['step', 'what changes', 'params after', 'MACs after'], [['original', '', fmt(before.params), fmt(before.macs)], ...st.map((s) => [s.step, s.detail, `${fmt(s.params)} (${((s.params / before.params) * 100).toFixed(0)}%)`, `${fmt(s.macs)} (${((s.macs / before.macs) * 100).toFixed(0)}%)`])]));
      break;
    }
    case 'result': {
      busy(false);
      open.removeAttribute('disabled');
      const r = m.result as { output: string; report: { warnings?: Parameters<typeof warningsBox>[0]['warnings']; latencyNote?: string; before: { sizeBytes: number; params: number; macs: number }; after: { sizeBytes: number; params: number; macs: number }; latencyMs?: { before: { p50: number }; after: { p50: number }; ratioP50: number }; fidelity?: { data: string; runtime?: string; samples: number; outputs: Array<{ cosine: number; top1Agreement?: number }>; accuracy?: { reference: number; candidate: number } } } };
      const { before: b, after: a, latencyMs: l, fidelity: f } = r.report;
      const rows = [
        ['size', bytes(b.sizeBytes), bytes(a.sizeBytes), `${(a.sizeBytes / b.sizeBytes).toFixed(3)}x`],
        ['params', fmt(b.params), fmt(a.params), `${((a.params / b.params) * 100).toFixed(1)}%`],
        ['MACs', fmt(b.macs), fmt(a.macs), `${((a.macs / b.macs) * 100).toFixed(1)}%`],
      ];
      if (l) rows.push(['latency p50', `${l.before.p50.toFixed(2)} ms`, `${l.after.p50.toFixed(2)} ms`, `${l.ratioP50.toFixed(3)}x`]);
      if (f?.accuracy) rows.push(['accuracy', f.accuracy.reference.toFixed(4), f.accuracy.candidate.toFixed(4), `${((f.accuracy.candidate - f.accuracy.reference) * 100).toFixed(2)} pp`]);
      if (f) rows.push(['fidelity (cosine)', '1', f.outputs[0].cosine.toFixed(5), f.outputs[0].top1Agreement !== undefined ? `top-1 agreement ${f.outputs[0].top1Agreement.toFixed(3)}` : '']);
      const on = [f ? `Fidelity measured on ${f.data}${f.data.includes(`${f.samples} `) ? '' : ` (${f.samples} samples)`}${f.runtime ? `, run by ${f.runtime}` : ''}${/random/.test(f.data) ? ': pick evaluation data and labels for accuracy' : ''}.` : '', r.report.latencyNote ? `Note: ${r.report.latencyNote}.` : ''].filter(Boolean).join(' ');
      const chartBox = el('div');
      chartBox.style.height = '200px';
      chartBox.style.maxWidth = '640px';
      const canvas = el('canvas', { id: 'result-chart', 'aria-label': 'before and after, as a percentage of the original' });
      chartBox.append(canvas);
      resultBox.replaceChildren(el('h3', {}, 'Before and after'), ...warningsBox(r.report), tableOf('result-table', ['', 'before', 'after', 'change'], rows), chartBox, el('p', {}, on), el('p', {}, `Written to ${r.output}`));
      // An early-exit step: its threshold curve, table and slider (exit-curve.ts).
      exits = m.result.exits ? exitView(m.result.exits, send) : undefined;
      if (exits) resultBox.append(exits.root);
      const css = cssVar;
      const fg = css('--vscode-foreground', '#ccc');
      const labels = ['size', 'params', 'MACs', ...(l ? ['latency p50'] : [])];
      const after = [a.sizeBytes / b.sizeBytes, a.params / b.params, a.macs / b.macs, ...(l ? [l.ratioP50] : [])].map((x) => +(x * 100).toFixed(1));
      new Chart(canvas, {
        type: 'bar',
        data: { labels, datasets: [{ label: 'before', data: labels.map(() => 100), backgroundColor: css('--vscode-charts-blue', '#3794ff') }, { label: 'after', data: after, backgroundColor: css('--vscode-charts-green', '#89d185') }] },
        options: { animation: false, maintainAspectRatio: false, plugins: { legend: { labels: { color: fg } } }, scales: { x: { ticks: { color: fg } }, y: { title: { display: true, text: '% of the original', color: fg }, ticks: { color: fg } } } },
      });
      break;
    }
    case 'reexported':
    case 'reexportFailed':
      exits?.onMessage(m);
      break;
    case 'error':
      busy(false);
      error.textContent = m.message;
      if (resultBox.textContent === 'Running…') resultBox.textContent = '';
      if (previewBox.textContent === 'Previewing…') previewBox.textContent = '';
      break;
  }
});

renderSteps();
send({ type: 'ready' });
