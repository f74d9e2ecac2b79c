import type { DataSlot, FromCompress } from '../protocol/compress';

/** Validates Compress-panel messages (untrusted). Recipes are validated again by the engine. */
const SLOTS: DataSlot[] = ['calib', 'eval', 'labels'];

export function parseFromCompress(m: unknown): FromCompress | undefined {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return undefined;
  const o = m as Record<string, unknown>;
  const recipeOk = (r: unknown) => !!r && typeof r === 'object' && JSON.stringify(r).length < 100_000;
  switch (o.type) {
    case 'ready':
    case 'openOutput':
      return { type: o.type };
    case 'pick':
      return SLOTS.includes(o.slot as DataSlot) ? { type: 'pick', slot: o.slot as DataSlot } : undefined;
    case 'preview':
    case 'run':
    case 'saveRecipe':
      return recipeOk(o.recipe) ? { type: o.type, recipe: JSON.parse(JSON.stringify(o.recipe)) } : undefined;
    default:
      return undefined;
  }
}
