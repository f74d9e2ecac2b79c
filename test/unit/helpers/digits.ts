import * as path from 'path';
import type { Model } from '../../../src/core/ir/graph';
import { bindDataset, parseDataSpecs, readLabels } from '../../../src/core/runtime/data/dataset';
import { ModelSession } from '../../../src/core/runtime/session';
import { FIXTURES } from './ort';

const fx = (f: string) => path.join(FIXTURES, f);

/** The digits training set (1,200) and test set (597), bound to `model`'s input, with labels. */
export async function digitsData(model: Model) {
  const s = await ModelSession.create(model, { allowSpinning: false });
  try {
    return {
      train: bindDataset(s.inputs, parseDataSpecs([fx('digits_train_x.npy')])),
      trainLabels: readLabels(fx('digits_train_y.npy')),
      test: bindDataset(s.inputs, parseDataSpecs([fx('digits_test_x.npy')])),
      testLabels: readLabels(fx('digits_test_y.npy')),
    };
  } finally {
    await s.release();
  }
}

