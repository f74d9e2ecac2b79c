import type { DataSlot, FromCompress } from '../protocol/compress';
import { plainJson } from './webview-messages';
import { EXIT_RUN_ID, EXIT_THRESHOLD_MAX, EXIT_THRESHOLD_MIN } from '../protocol/exits';

/** Validates Compress-panel messages (untrusted). Recipes are validated again by the engine. */
const SLOTS: DataSlot[] = ['calib', 'eval', 'labels'];

export function parseFromCompress(m: unknown): FromCompress | undefined {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return undefined;
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'ready':
    case 'openOutput':
      return { type: o.type };
    case 'pick':
      return SLOTS.includes(o.slot as DataSlot) ? { type: 'pick', slot: o.slot as DataSlot } : undefined;
    case 'preview':
    case 'run':
    case 'saveRecipe': {
      // Depth, size and shape bounded without recursion (a recipe nested 5,000 deep is dropped).
      const recipe = o.recipe && typeof o.recipe === 'object' ? plainJson(o.recipe) : undefined;
      return recipe ? ({ type: o.type, recipe } as FromCompress) : undefined;
    }
    case 'reexport': {
      const { id, threshold: t } = o;
      const ok = typeof id === 'string' && EXIT_RUN_ID.test(id) && typeof t === 'number' && Number.isFinite(t) && t >= EXIT_THRESHOLD_MIN && t <= EXIT_THRESHOLD_MAX;
      return ok ? { type: 'reexport', id, threshold: t } : undefined;
    }
    default:
      return undefined;
  }
}
