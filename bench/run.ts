/**
 * `npm run bench`: speed and memory targets, each printed as a ratio against a baseline
 * measured in the same run (these machines are noisy). Pass names to run a subset.
 */
import { benchInspect } from './inspect';
import { benchRunner } from './runner';
import { benchDynamicForms, benchQuantizeSpeed } from './quantize';
import { benchLinalg } from './linalg';
import { benchMatrix } from './matrix';
import { benchMemory } from './memory';
import { benchTfjs } from './tfjs';
import { benchUi } from './ui';
import { benchMethods } from './methods';
import { benchTrain } from './train';
import { benchExits } from './exits';

const suites: Record<string, () => void | Promise<void>> = {
  inspect: benchInspect,
  runner: benchRunner,
  quantize: benchQuantizeSpeed,
  dynamic: benchDynamicForms,
  linalg: benchLinalg,
  tfjs: benchTfjs,
  ui: benchUi,
  methods: benchMethods,
  train: benchTrain,
  memory: benchMemory,
  matrix: benchMatrix,
  exits: benchExits,
};

/** Long suites (a minute or more each) that run only when named: `npm run bench -- memory matrix exits`. */
const OPT_IN = new Set(['memory', 'matrix', 'exits']);

async function main() {
  const only = process.argv.slice(2);
  for (const [name, fn] of Object.entries(suites)) {
    if (only.length ? !only.includes(name) : OPT_IN.has(name)) continue;
    await fn();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
