/**
 * The Compress panel UI: compose steps with their options (forms from the engine's step
 * registry), pick data (by slot; the host holds the paths), preview params/MACs after each
 * step, run with a live training chart and Cancel, and compare before and after.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { Chart, BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip } from 'chart.js';
import { cssVar, el } from './dom';
import { stepResultBoxes } from './result-views';
import { fitToForm, missingData, missingMessage, newStep, ordered, recipeOf, stepRow, type StepState } from './step-forms';
import { TrainChart } from './train-chart';
import { WARNING_CSS, warningsBox } from './warnings';
import { EXIT_CURVE_CSS, exitView, type ExitView } from './exit-curve';
import { DATA_SLOTS, type DataSlot, type FromCompress, type ToCompress } from '../src/protocol/compress';
import type { CompressResultDto, StepFormDto } from '../src/protocol/jobs';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

declare function acquireVsCodeApi(): { postMessage(m: FromCompress): void; getState(): unknown; setState(s: unknown): void };
const vscode = acquireVsCodeApi();
const send = (m: FromCompress) => vscode.postMessage(m);

const state = (vscode.getState() as { steps?: StepState[] } | undefined) ?? {};
let steps: StepState[] = Array.isArray(state.steps) ? state.steps : [];
const persist = () => vscode.setState({ steps });
/** The steps and options this model's format supports; nothing until the host says (init). */
let forms: StepFormDto[] = [];
const formOf = (step: string) => forms.find((f) => f.step === step);

const style = el('style');
style.textContent = `body{font-family:var(--vscode-font-family);color:var(--vscode-foreground);padding:8px 16px}
.step{display:flex;flex-wrap:wrap;gap:10px;align-items:center;padding:6px 8px;margin:4px 0;border:1px solid var(--vscode-panel-border)}
.step b{min-width:7em}label{display:flex;gap:4px;align-items:center}
.needs{color:var(--vscode-editorWarning-foreground)}
input,select{background:var(--vscode-input-background);color:var(--vscode-input-foreground);border:1px solid var(--vscode-input-border,transparent);padding:2px 4px}
input[type=number]{width:5em}.row{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 10px;text-align:right;border-bottom:1px solid var(--vscode-panel-border)}th:first-child,td:first-child{text-align:left}
.train-chart{height:220px;max-width:720px}#train-status vscode-progress-ring{width:16px;height:16px}
#partial{border-left:4px solid var(--vscode-editorInfo-foreground,#3794ff);padding:6px 10px;margin:8px 0}
#error{color:var(--vscode-errorForeground)}code{font-family:var(--vscode-editor-font-family)}${WARNING_CSS}${EXIT_CURVE_CSS}`;
document.head.append(style);

const app = document.getElementById('app')!;
const title = el('h2', { id: 'title' }, 'Compress');
const outLine = el('p');
const list = el('div', { id: 'steps' });
const adders = el('div', { class: 'row' });
const SLOT_LABELS: Record<DataSlot, string> = { calib: 'Calibration data', eval: 'Evaluation data', labels: 'Labels', train: 'Training data', trainLabels: 'Training labels' };
const slots = Object.fromEntries(DATA_SLOTS.map((s) => [s, el('code', { id: `slot-${s}` }, 'none')])) as Record<DataSlot, HTMLElement>;
const filled = (slot: DataSlot) => slots[slot].textContent !== 'none';
const dataRows = [['calib', 'eval', 'labels'], ['train', 'trainLabels']].map((group) => {
  const row = el('div', { class: 'row' });
  for (const slot of group as DataSlot[]) {
    const b = el('vscode-button', { id: `pick-${slot}`, secondary: '' }, `${SLOT_LABELS[slot]}…`);
    b.addEventListener('click', () => send({ type: 'pick', slot }));
    row.append(b, slots[slot]);
  }
  return row;
});
const actions = el('div', { class: 'row' });
const preview = el('vscode-button', { id: 'preview' }, 'Preview plan');
const run = el('vscode-button', { id: 'run' }, 'Run');
const cancel = el('vscode-button', { id: 'cancel', secondary: '', disabled: '' }, 'Cancel');
const save = el('vscode-button', { id: 'save', secondary: '' }, 'Save recipe…');
const open = el('vscode-button', { id: 'open-output', secondary: '', disabled: '' }, 'Open output');
actions.append(preview, run, cancel, save, open);
const error = el('div', { id: 'error' });
const previewBox = el('div', { id: 'preview-box' });
const chart = new TrainChart();
const partialBox = el('div', { id: 'partial', hidden: '' });
const resultBox = el('div', { id: 'result' });
app.append(title, outLine, el('h3', {}, 'Steps'), list, adders, el('h3', {}, 'Data'), ...dataRows, actions, error, previewBox, chart.box, partialBox, resultBox);

function addStep(form: StepFormDto) {
  steps.push(newStep(form));
  // Steps marked last (quantization needs float weights) stay at the end.
  steps = ordered(steps, forms);
  renderSteps();
}

/** Redraws the steps; `stepsChanged`: a plan shown for other steps would mislead, so it goes. */
function renderSteps(stepsChanged = true) {
  persist();
  if (stepsChanged && previewBox.textContent !== 'Previewing…') previewBox.replaceChildren();
  list.replaceChildren();
  if (!steps.length) list.append(el('p', {}, 'Add steps below. They run in order; quantization comes last.'));
  steps.forEach((s, i) => {
    const form = formOf(s.step);
    if (!form) return;
    list.append(
      stepRow(s, i, form, filled, (redraw) => (redraw ? renderSteps() : (persist(), previewBox.replaceChildren())), () => {
        steps.splice(i, 1);
        renderSteps();
      }),
    );
  });
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

/** The first data slot a chosen option needs and the panel has not got: say so before the engine has to refuse. */
function missing(): string | undefined {
  for (const s of steps) {
    const m = missingData(s, formOf(s.step), filled)[0];
    if (m) return missingMessage(m);
  }
  return undefined;
}

const busy = (on: boolean) => {
  for (const b of [preview, run]) b.toggleAttribute('disabled', on);
  cancel.toggleAttribute('disabled', !on);
};
function start(kind: 'preview' | 'run'): boolean {
  if (!steps.length) return void (error.textContent = 'Add at least one step.'), false;
  const need = missing();
  if (need) return void (error.textContent = need), false;
  error.textContent = '';
  chart.reset();
  busy(true);
  send({ type: kind, recipe: recipeOf(steps, forms) });
  return true;
}
preview.addEventListener('click', () => start('preview') && (previewBox.textContent = 'Previewing…'));
run.addEventListener('click', () => {
  if (!start('run')) return;
  partialBox.hidden = true;
  open.setAttribute('disabled', '');
  resultBox.textContent = 'Running…';
});
cancel.addEventListener('click', () => {
  cancel.setAttribute('disabled', '');
  send({ type: 'cancel' });
});
save.addEventListener('click', () => send({ type: 'saveRecipe', recipe: recipeOf(steps, forms) }));
open.addEventListener('click', () => send({ type: 'openOutput' }));

/** After Cancel during training: the best model so far is in a temporary file; keep it or drop it. */
function showPartial(c: NonNullable<CompressResultDto['cancelled']>) {
  const keep = el('vscode-button', { id: 'keep' }, 'Keep');
  const discard = el('vscode-button', { id: 'discard', secondary: '' }, 'Discard');
  const decide = (k: boolean) => {
    keep.setAttribute('disabled', '');
    discard.setAttribute('disabled', '');
    send({ type: 'resolvePartial', keep: k });
  };
  keep.addEventListener('click', () => decide(true));
  discard.addEventListener('click', () => decide(false));
  const skipped = c.step < steps.length ? ` Steps after step ${c.step} did not run.` : '';
  partialBox.replaceChildren(
    el('p', {}, `Cancelled during step ${c.step} (${c.stepId}) while training: ${c.detail}.${skipped} The best model so far was verified and saved to a temporary file; its figures are below.`),
    el('div', { class: 'row' }, ''),
  );
  partialBox.lastElementChild!.append(keep, discard);
  partialBox.hidden = false;
}

/** The early-exit step's view (threshold curve, table, slider) of the last result, if any. */
let exits: ExitView | undefined;

function showResult(r: CompressResultDto) {
  const { before: b, after: a, latencyMs: l, fidelity: f } = r.report;
  const rows = [
    ['size', bytes(b.sizeBytes), bytes(a.sizeBytes), `${(a.sizeBytes / b.sizeBytes).toFixed(3)}x`],
    ['params', fmt(b.params), fmt(a.params), `${((a.params / b.params) * 100).toFixed(1)}%`],
    ['MACs', fmt(b.macs), fmt(a.macs), `${((a.macs / b.macs) * 100).toFixed(1)}%`],
  ];
  if (l) rows.push(['latency p50', `${l.before.p50.toFixed(2)} ms`, `${l.after.p50.toFixed(2)} ms`, `${l.ratioP50.toFixed(3)}x`]);
  if (f?.accuracy) rows.push(['accuracy', f.accuracy.reference.toFixed(4), f.accuracy.candidate.toFixed(4), `${((f.accuracy.candidate - f.accuracy.reference) * 100).toFixed(2)} pp`]);
  if (f) rows.push(['fidelity (cosine)', '1', f.outputs[0].cosine.toFixed(5), f.outputs[0].top1Agreement !== undefined ? `top-1 agreement ${f.outputs[0].top1Agreement.toFixed(3)}` : '']);
  const on = [f ? `Fidelity measured on ${f.data}${f.data.includes(`${f.samples} `) ? '' : ` (${f.samples} samples)`}${f.runtime ? `, run by ${f.runtime}` : ''}${/random/.test(f.data) ? ': pick evaluation data and labels for accuracy' : ''}.` : '', r.report.latencyNote ? `Note: ${r.report.latencyNote}.` : '', r.report.note ? `Note: ${r.report.note}.` : ''].filter(Boolean).join(' ');
  const chartBox = el('div');
  chartBox.style.height = '200px';
  chartBox.style.maxWidth = '640px';
  const canvas = el('canvas', { id: 'result-chart', 'aria-label': 'before and after, as a percentage of the original' });
  chartBox.append(canvas);
  const written = r.cancelled ? `Temporary file: ${r.output} (Keep moves it to the output)` : `Written to ${r.output}`;
  resultBox.replaceChildren(el('h3', {}, 'Before and after'), ...warningsBox(r.report), tableOf('result-table', ['', 'before', 'after', 'change'], rows), chartBox, el('p', {}, on), el('p', { id: 'written' }, written), ...stepResultBoxes(r));
  // An early-exit step: its threshold curve, table and slider (exit-curve.ts).
  exits = r.exits ? exitView(r.exits, send) : undefined;
  if (exits) resultBox.append(exits.root);
  const fg = cssVar('--vscode-foreground', '#ccc');
  const labels = ['size', 'params', 'MACs', ...(l ? ['latency p50'] : [])];
  const after = [a.sizeBytes / b.sizeBytes, a.params / b.params, a.macs / b.macs, ...(l ? [l.ratioP50] : [])].map((x) => +(x * 100).toFixed(1));
  new Chart(canvas, {
    type: 'bar',
    data: { labels, datasets: [{ label: 'before', data: labels.map(() => 100), backgroundColor: cssVar('--vscode-charts-blue', '#3794ff') }, { label: 'after', data: after, backgroundColor: cssVar('--vscode-charts-green', '#89d185') }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { labels: { color: fg } } }, scales: { x: { ticks: { color: fg } }, y: { title: { display: true, text: '% of the original', color: fg }, ticks: { color: fg } } } },
  });
}

window.addEventListener('message', (ev: MessageEvent<ToCompress>) => {
  const m = ev.data;
  switch (m.type) {
    case 'init': {
      title.textContent = `Compress ${m.model}`;
      outLine.textContent = `Output: ${m.output} (the original is never changed)`;
      for (const slot of DATA_SLOTS) slots[slot].textContent = m.data[slot] ?? 'none';
      forms = m.forms;
      adders.replaceChildren();
      for (const form of forms) {
        const b = el('vscode-button', { id: `add-${form.step}`, secondary: '', title: form.summary }, `+ ${form.step[0].toUpperCase()}${form.step.slice(1)}`);
        b.addEventListener('click', () => addStep(form));
        adders.append(b);
      }
      // Steps kept from an earlier session of this panel must fit this format's forms.
      steps = ordered(steps.map((s) => fitToForm(s, forms)).filter((s): s is StepState => !!s), forms);
      renderSteps();
      break;
    }
    case 'picked':
      slots[m.slot].textContent = m.file;
      // Redraws the steps' "needs … data" notes; the plan stays (the steps did not change).
      renderSteps(false);
      break;
    case 'preview': {
      busy(false);
      chart.done();
      const before = m.before;
      previewBox.replaceChildren(el('h3', {}, 'Plan'), tableOf('plan', ['step', 'what changes', 'params after', 'MACs after'], [['original', '', fmt(before.params), fmt(before.macs)], ...m.steps.map((s) => [s.step, s.detail, `${fmt(s.params)} (${((s.params / before.params) * 100).toFixed(0)}%)`, `${fmt(s.macs)} (${((s.macs / before.macs) * 100).toFixed(0)}%)`])]));
      break;
    }
    case 'train':
      chart.add(m.progress, m.stage);
      break;
    case 'result':
      busy(false);
      chart.done(m.result.cancelled ? 'cancelled' : undefined);
      if (m.result.cancelled) showPartial(m.result.cancelled);
      else open.removeAttribute('disabled');
      showResult(m.result);
      break;
    case 'resolved':
      partialBox.replaceChildren(el('p', { id: 'partial-outcome' }, m.kept ? `Kept: written to ${m.output ?? ''}.` : 'Discarded: the temporary file was deleted.'));
      if (m.kept) {
        open.removeAttribute('disabled');
        const w = document.getElementById('written');
        if (w) w.textContent = `Written to ${m.output ?? ''}`;
      }
      break;
    case 'reexported':
    case 'reexportFailed':
      exits?.onMessage(m);
      break;
    case 'error':
      busy(false);
      chart.done(m.message === 'cancelled' ? 'cancelled' : undefined);
      error.textContent = m.message;
      if (resultBox.textContent === 'Running…') resultBox.textContent = '';
      if (previewBox.textContent === 'Previewing…') previewBox.textContent = '';
      break;
  }
});

renderSteps();
send({ type: 'ready' });
