import { z } from 'zod';
import type { Model } from '../../ir/graph';
import { defineStep, option } from '../step';
import { substituteDepthwise } from './onnx/depthwise';
import { substituteLowRank } from './onnx/lowrank';
import type { LayerSubstitution, SubstituteSkip } from './types';

/** Substitute options, declared once. */
export const substituteOptions = z.strictObject({
  kind: option(z.enum(['lowrank', 'depthwise']), 'Conv → depthwise-separable pair, or dense layer → low-rank factors.', {
    valueSwitches: true,
    formats: { lowrank: ['onnx'] },
  }),
  multiplier: option(z.number().int().min(1).max(64).optional(), 'Depthwise: channel multiplier of the depthwise conv (default 1).', {
    placeholder: 'm',
    form: { min: 1, max: 9, step: 1, initial: 1, when: { key: 'kind', values: ['depthwise'] } },
  }),
  energy: option(z.number().gt(0).lte(1).optional(), 'Low-rank: keep the smallest rank that holds this fraction of the spectral energy.', { placeholder: 'f' }),
  rank: option(z.number().int().min(1).max(65536).optional(), 'Low-rank: the same rank for every layer.', { placeholder: 'r' }),
  targetParams: option(z.number().gt(0).lt(1).optional(), 'Low-rank: fraction of each layer’s weight params to keep, ranks allocated globally.', {
    placeholder: 'f',
    form: { min: 0.05, max: 0.95, step: 0.05, initial: 0.5, when: { key: 'kind', values: ['lowrank'] } },
  }),
  plain: option(z.boolean().default(false), 'Low-rank: plain SVD even when calibration data is given (default: whitened by the data).'),
  layers: option(z.array(z.string()).optional(), 'Only these layers (node names), comma separated.', { placeholder: 'n1,n2' }),
  maxError: option(z.number().gt(0).optional(), 'Per-layer error budget: a layer whose relative output error on the calibration data (or, for depthwise without data, its weight error) exceeds it is skipped. Depthwise without --multiplier defaults to 0.25 and picks each layer\'s multiplier within it.', { placeholder: 'e' }),
  refit: option(z.boolean().default(true), 'Depthwise: refit the pair by least squares on the calibration data.', { switches: { off: 'no-refit' } }),
});
export type SubstituteStepOptions = z.output<typeof substituteOptions>;

export interface SubstituteOutcome {
  model: Model;
  layers: LayerSubstitution[];
  skipped: SubstituteSkip[];
}

export const substituteStep = defineStep({
  id: 'substitute',
  summary: 'replace convolutions with depthwise-separable pairs, or dense layers with low-rank factors',
  formats: ['onnx', 'tfjs-layers'],
  options: substituteOptions,
  example: 'substitute model.onnx --lowrank --target-params 0.5 --calib calib.npy -o model.lowrank.onnx',
  check(o) {
    if (o.kind === 'depthwise' && (o.energy !== undefined || o.rank !== undefined || o.targetParams !== undefined || o.plain)) {
      return '«energy», «rank», «targetParams» and «plain» go with «kind» lowrank';
    }
    if (o.kind === 'lowrank' && o.multiplier !== undefined) return '«multiplier» goes with «kind» depthwise';
    if ([o.energy, o.rank, o.targetParams].filter((x) => x !== undefined).length > 1) return 'choose one of «energy», «rank» or «targetParams»';
    return undefined;
  },
  needsCalib: (o) => (o.maxError !== undefined && o.kind === 'lowrank' ? '«maxError» with «kind» lowrank (the error is measured on calibration data)' : undefined),
  async apply(model, o, ctx): Promise<{ model: Model; detail: string; outcome: SubstituteOutcome }> {
    const common = { layers: o.layers, maxError: o.maxError, calib: ctx.calib, signal: ctx.signal };
    const r =
      o.kind === 'depthwise'
        ? await substituteDepthwise(model, { ...common, multiplier: o.multiplier, refit: o.refit })
        : await substituteLowRank(model, { ...common, energy: o.energy, rank: o.rank, targetParams: o.targetParams, plain: o.plain });
    return { model: r.model, detail: `${r.layers.length} layers (${o.kind})`, outcome: r };
  },
});
