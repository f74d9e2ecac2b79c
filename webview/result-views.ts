/**
 * Per-step result views of the Compress panel. The before/after table is common to every
 * run; a step with more to show (e.g. the early-exit threshold curve) registers a view here,
 * and the panel calls it with that step's summary after drawing the table.
 */
import type { CompressResultDto, StepSummaryDto } from '../src/protocol/jobs';

/** Draws into `box` (already in the page) for the step at `index` of `result.steps`. */
export type ResultView = (box: HTMLElement, step: StepSummaryDto, index: number, result: CompressResultDto) => void;

const views = new Map<string, ResultView>();

/** Registers the result view of a step id (one per step; a later one replaces it). */
export function registerResultView(step: string, view: ResultView): void {
  views.set(step, view);
}

/** One box per step that has a registered view, each drawn by it. */
export function stepResultBoxes(result: CompressResultDto): HTMLElement[] {
  const out: HTMLElement[] = [];
  result.steps.forEach((s, i) => {
    const view = views.get(s.step);
    if (!view) return;
    const box = document.createElement('div');
    box.className = 'step-result';
    box.dataset.step = s.step;
    out.push(box);
    // Drawn once the box is in the page (charts measure their container).
    queueMicrotask(() => view(box, s, i, result));
  });
  return out;
}
