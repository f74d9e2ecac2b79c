/**
 * The Compress panel's step forms, drawn from the engine's step registry (`stepForms`, sent in
 * the init message): a new registry step or option appears here with no webview edit. The
 * controls keep values within the form's bounds; the worker validates the recipe itself.
 */
import { el } from './dom';
import type { DataSlot } from '../src/protocol/compress';
import type { DataNeedDto, FormFieldDto, RecipeDto, RecipeValue, StepFormDto } from '../src/protocol/jobs';

export type FieldValue = string | number | boolean;

/** One composed step: its id and a value per form field (dotted keys). */
export interface StepState {
  step: string;
  values: Record<string, FieldValue>;
}

const SLOT_NAMES: Record<DataNeedDto, string> = { calib: 'calibration data', train: 'training data', trainLabels: 'training labels' };

export function newStep(form: StepFormDto): StepState {
  return { step: form.step, values: Object.fromEntries(form.fields.map((f) => [f.key, f.initial])) };
}

/** Whether a field applies, given the other values (`when`). */
export function applies(f: FormFieldDto, s: StepState): boolean {
  return !f.when || f.when.values.map(String).includes(String(s.values[f.when.key]));
}

/** A value the field accepts: a listed choice, a number within bounds, a boolean; else the field's initial value. */
function fit(f: FormFieldDto, v: FieldValue | undefined): FieldValue {
  if (f.kind === 'choice') return f.values?.map(String).includes(String(v)) ? f.values.find((x) => String(x) === String(v))! : f.initial;
  if (f.kind === 'boolean') return typeof v === 'boolean' ? v : f.initial;
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(f.max ?? v, Math.max(f.min ?? v, v)) : f.initial;
}

/** A step kept from an earlier session, made to fit this format's form (undefined: the format has no such step). */
export function fitToForm(s: StepState, forms: StepFormDto[]): StepState | undefined {
  const form = forms.find((f) => f.step === s.step);
  if (!form) return undefined;
  return { step: s.step, values: Object.fromEntries(form.fields.map((f) => [f.key, fit(f, s.values?.[f.key])])) };
}

/** Steps marked `last` (quantization) after the others, keeping the order otherwise. */
export function ordered(steps: StepState[], forms: StepFormDto[]): StepState[] {
  const last = (s: StepState) => Number(!!forms.find((f) => f.step === s.step)?.last);
  return steps.map((s, i) => [s, i] as const).sort((a, b) => last(a[0]) - last(b[0]) || a[1] - b[1]).map(([s]) => s);
}

/** The recipe of the composed steps: the fields that apply, dotted keys nested (`options.method`). */
export function recipeOf(steps: StepState[], forms: StepFormDto[]): RecipeDto {
  return {
    steps: steps.map((s) => {
      const out: { step: string; [k: string]: RecipeValue } = { step: s.step };
      for (const f of forms.find((x) => x.step === s.step)?.fields ?? []) {
        if (!applies(f, s)) continue;
        const v = s.values[f.key];
        const [head, ...rest] = f.key.split('.');
        if (!rest.length) out[head] = v;
        else {
          const inner = (out[head] ??= {}) as Record<string, FieldValue>;
          inner[rest.join('.')] = v;
        }
      }
      return out;
    }),
  };
}

/** What a step's chosen values need and which slots are empty: `what` names the option, e.g. "recover finetune". */
export function missingData(s: StepState, form: StepFormDto | undefined, filled: (slot: DataSlot) => boolean): Array<{ slot: DataNeedDto; what: string }> {
  const out: Array<{ slot: DataNeedDto; what: string }> = [];
  for (const f of form?.fields ?? []) {
    if (!applies(f, s)) continue;
    const v = s.values[f.key];
    for (const slot of f.needs?.[String(v)] ?? []) if (!filled(slot)) out.push({ slot, what: f.kind === 'boolean' ? f.label : `${f.label} ${String(v)}` });
  }
  return out;
}

/** "Pick calibration data first: recover reconstruct runs the model on it." */
export function missingMessage(m: { slot: DataNeedDto; what: string }): string {
  const uses = m.slot === 'calib' ? 'runs the model on it' : m.slot === 'train' ? 'trains on it' : 'trains on them';
  return `Pick ${SLOT_NAMES[m.slot]} first: ${m.what} ${uses}.`;
}

function control(f: FormFieldDto, s: StepState, changed: (rerender: boolean) => void): HTMLElement {
  const v = s.values[f.key];
  // A field others depend on (`when`) redraws the row when it changes.
  const rerender = true;
  if (f.kind === 'choice') {
    const sel = el('select', { 'data-key': f.key, title: f.description });
    for (const o of f.values ?? []) sel.append(el('option', { value: String(o) }, String(o)));
    sel.value = String(v);
    sel.addEventListener('change', () => {
      s.values[f.key] = f.values!.find((x) => String(x) === sel.value)!;
      changed(rerender);
    });
    return sel;
  }
  if (f.kind === 'boolean') {
    const box = el('input', { type: 'checkbox', 'data-key': f.key, title: f.description });
    box.checked = v === true;
    box.addEventListener('change', () => {
      s.values[f.key] = box.checked;
      changed(rerender);
    });
    return box;
  }
  const input = el('input', { type: 'number', 'data-key': f.key, title: f.description, min: String(f.min), max: String(f.max), step: String(f.step), value: String(v) });
  input.addEventListener('change', () => {
    // Within the form's bounds; a value out of them snaps back to the nearest bound.
    s.values[f.key] = fit(f, Number(input.value));
    input.value = String(s.values[f.key]);
    changed(false);
  });
  return input;
}

/** One step's row: its controls (only the fields that apply) and what data it still needs. */
export function stepRow(s: StepState, index: number, form: StepFormDto, filled: (slot: DataSlot) => boolean, changed: (rerender: boolean) => void, remove: () => void): HTMLElement {
  const row = el('div', { class: 'step', 'data-step': s.step, title: form.summary });
  row.append(el('b', {}, `${index + 1}. ${s.step}`));
  for (const f of form.fields) {
    if (!applies(f, s)) continue;
    const l = el('label', { title: f.description }, `${f.label} `);
    l.append(control(f, s, changed));
    row.append(l);
  }
  const missing = missingData(s, form, filled);
  if (missing.length) {
    const names = [...new Set(missing.map((m) => SLOT_NAMES[m.slot]))];
    row.append(el('span', { class: 'needs', 'data-needs': missing.map((m) => m.slot).join(' ') }, `needs ${names.join(' and ')} (Data below)`));
  }
  const rm = el('vscode-button', { secondary: '' }, 'Remove');
  rm.addEventListener('click', remove);
  row.append(rm);
  return row;
}
