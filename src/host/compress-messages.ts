import { DATA_SLOTS, type DataSlot, type FromCompress } from '../protocol/compress';
import type { RecipeDto, RecipeValue } from '../protocol/jobs';
import { plainJson } from './webview-messages';
import { EXIT_RUN_ID, EXIT_THRESHOLD_MAX, EXIT_THRESHOLD_MIN } from '../protocol/exits';

/** Validates Compress-panel messages (untrusted). Recipes are validated again by the engine (options, ranges, rules). */

const isPlain = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** An option value of the recipe DTO's shape: plain, a list of strings, or one level of nested options. */
function isRecipeValue(v: unknown): v is RecipeValue {
  if (isPlain(v) || isStrings(v)) return true;
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => isPlain(x) || isStrings(x));
}

/** A recipe of the DTO's shape (plain JSON within the size limits), else undefined. */
export function asRecipe(raw: unknown): RecipeDto | undefined {
  // Depth, size and shape bounded without recursion (a recipe nested 5,000 deep is dropped).
  const r = raw && typeof raw === 'object' ? (plainJson(raw) as { steps?: unknown } | undefined) : undefined;
  if (!r || !Array.isArray(r.steps)) return undefined;
  for (const s of r.steps as unknown[]) {
    if (!s || typeof s !== 'object' || Array.isArray(s)) return undefined;
    const o = s as Record<string, unknown>;
    if (typeof o.step !== 'string' || !Object.values(o).every(isRecipeValue)) return undefined;
  }
  return { steps: r.steps as RecipeDto['steps'] };
}

export function parseFromCompress(m: unknown): FromCompress | undefined {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return undefined;
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'ready':
    case 'openOutput':
    case 'cancel':
      return { type: o.type };
    case 'pick':
      return DATA_SLOTS.includes(o.slot as DataSlot) ? { type: 'pick', slot: o.slot as DataSlot } : undefined;
    case 'resolvePartial':
      return typeof o.keep === 'boolean' ? { type: 'resolvePartial', keep: o.keep } : undefined;
    case 'preview':
    case 'run':
    case 'saveRecipe': {
      const recipe = asRecipe(o.recipe);
      return recipe ? { type: o.type, recipe } : undefined;
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
