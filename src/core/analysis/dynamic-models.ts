import type { Model } from '../ir/graph';

/**
 * Models written by dynamic computation (`early-exit`): their control flow is fitted to the
 * weights they were built from, so a transform of the weights alone would break them.
 * - early-exit models (metadata `early_exit`): exit heads and confidence thresholds fitted to
 *   the backbone (BranchyNet, Teerapittayanon et al., 2016);
 * - runtime-widths models (metadata `runtime_widths`): an If on the `width` input runs Slices
 *   of one set of shared weights (slimmable networks, Yu et al., 2019).
 */
export type DynamicKind = 'early-exit' | 'runtime-widths';

/** The kind of dynamic-computation model `model` is, from its metadata, or undefined. */
export function dynamicKind(model: Model): DynamicKind | undefined {
  const keys = new Set(model.metadata.map(([k]) => k));
  if (keys.has('early_exit')) return 'early-exit';
  if (keys.has('runtime_widths')) return 'runtime-widths';
  return undefined;
}

/**
 * Why step `stepId` refuses `model`, in the user's terms, or undefined. Every transform
 * refuses dynamic-computation models (a recipe puts early-exit last for the same reason);
 * the user applies the step to the model the exits or widths were built from, then builds
 * them again.
 */
export function dynamicModelRefusal(model: Model, stepId: string): string | undefined {
  const file = model.path ?? 'the model';
  switch (dynamicKind(model)) {
    case 'early-exit':
      return `${file} is an early-exit model (exit heads and thresholds fitted to its backbone): ${stepId} would change the backbone under them; apply ${stepId} to the model before early-exit, then add the exits again`;
    case 'runtime-widths':
      return `${file} is a runtime-widths model (each width runs a slice of shared weights): ${stepId} cannot keep every width consistent; apply ${stepId} to the full-width model, then build the widths again with early-exit --widths`;
    default:
      return undefined;
  }
}
