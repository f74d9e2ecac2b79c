import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { JOB_DEFAULTS } from '../../src/core/jobs';
import { runJob } from '../../src/worker/jobs';
import { cli } from './cli.test';
import { FIXTURES, tmpDir } from './helpers/ort';

describe('one job layer for the CLI and the editor', () => {
  it('the editor and the CLI use the same defaults (bench runs, evaluation samples, data label)', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));
    assert.equal(pkg.contributes.configuration.properties['modelCompressor.benchmarkRuns'].default, JOB_DEFAULTS.benchRuns);
    const help = cli(['compress', '--help']).stdout.replace(/\s+/g, ' ');
    assert.ok(help.includes(`--runs <N> Latency runs per model in the report. (default: ${JOB_DEFAULTS.benchRuns})`), help);

    // The same recipe without evaluation data, once from the CLI, once as the editor's worker job.
    const dir = tmpDir();
    const model = path.join(FIXTURES, 'digits_cnn.onnx');
    const recipe = { steps: [{ step: 'quantize', mode: 'fp16' }] };
    const file = path.join(dir, 'r.recipe.json');
    fs.writeFileSync(file, JSON.stringify(recipe));
    const c = cli(['compress', model, '--recipe', file, '--runs', '3', '-o', path.join(dir, 'cli.onnx'), '--json']);
    assert.equal(c.code, 0, c.stderr);
    const fromCli = JSON.parse(c.stdout) as { fidelity: { samples: number; data: string } };
    const fromEditor = (await runJob({ kind: 'compress', model, output: path.join(dir, 'editor.onnx'), recipe, benchRuns: 3 }, { signal: new AbortController().signal, progress: () => {} })) as unknown as {
      report: { fidelity: { samples: number; data: string } };
    };
    assert.equal(fromEditor.report.fidelity.samples, fromCli.fidelity.samples);
    assert.equal(fromEditor.report.fidelity.data, fromCli.fidelity.data);
    assert.match(fromCli.fidelity.data, /random samples/);
  });
});
