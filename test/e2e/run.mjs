// Real-VS-Code tests: code-server 4.100.3 + Debian chromium via playwright-core.
// Usage: node test/e2e/run.mjs   (after `bash scripts/setup-e2e.sh` and `npm run build`)
// Screenshots go to .test-artifacts/ — look at them: a UI that passes but looks broken is not done.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const require = createRequire(path.join(root, '.test-tools/package.json'));
const { chromium } = require('playwright-core');
const codeServer = path.join(root, '.test-tools/node_modules/.bin/code-server');
const artifacts = path.join(root, '.test-artifacts');
fs.mkdirSync(artifacts, { recursive: true });

// `--shots DIR`: only screenshots (light and dark) of the views issue 19 is about, into DIR.
// MC_EXT_ROOT: load the extension from another checkout (for "before" screenshots).
const shotsArg = process.argv.indexOf('--shots');
const shotsDir = shotsArg > 0 ? path.resolve(process.argv[shotsArg + 1]) : undefined;
const extRoot = process.env.MC_EXT_ROOT ? path.resolve(process.env.MC_EXT_ROOT) : root;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-e2e-'));
const work = path.join(scratch, 'workspace');
fs.mkdirSync(work);
// A DenseNet-121-like model (650 nodes, long PyTorch-style names, an op without a shape rule), built
// by the engine's own IR code (test/e2e/models.ts), bundled here with esbuild.
{
  const esbuild = createRequire(path.join(root, 'package.json'))('esbuild');
  const bundle = path.join(scratch, 'models.cjs');
  await esbuild.build({ entryPoints: [path.join(root, 'test/e2e/models.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: bundle, external: ['onnxruntime-node', '@tensorflow/*'], logLevel: 'warning' });
  createRequire(bundle)(bundle).writeDenseNetLike(path.join(work, 'densenet_like.onnx'), { unknownOp: true });
}
fs.copyFileSync(path.join(root, 'test/fixtures/digits_cnn.onnx'), path.join(work, 'digits_cnn.onnx'));
// Training data for the Compress panel's training steps (1,200 8x8 digits and their labels).
for (const f of ['digits_train_x.npy', 'digits_train_y.npy']) fs.copyFileSync(path.join(root, 'test/fixtures', f), path.join(work, f));
const brokenBytes = fs.readFileSync(path.join(root, 'test/fixtures/digits_cnn.onnx')).subarray(0, 5000);
fs.writeFileSync(path.join(work, 'broken.onnx'), brokenBytes);
// Other formats the editor opens: a TF.js layers model and a safetensors file (fc: 3×4 weight + 3 bias).
fs.mkdirSync(path.join(work, 'tfjs'));
for (const f of ['model.json', 'group1-shard1of1.bin']) fs.copyFileSync(path.join(root, 'test/fixtures/tfjs', f), path.join(work, 'tfjs', f));
{
  const header = Buffer.from(JSON.stringify({ 'fc.weight': { dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] }, 'fc.bias': { dtype: 'F32', shape: [3], data_offsets: [48, 60] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(path.join(work, 'weights.safetensors'), Buffer.concat([len, header, Buffer.from(Float32Array.from({ length: 15 }, (_, i) => i - 7).buffer)]));
}
const userData = path.join(scratch, 'user');
fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
fs.writeFileSync(path.join(userData, 'User/settings.json'), JSON.stringify({ 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'modelCompressor.benchmarkRuns': 5 }));
const port = 20000 + Math.floor(Math.random() * 20000);
const env = { ...process.env, HOME: scratch, XDG_CONFIG_HOME: path.join(scratch, 'cfg'), XDG_DATA_HOME: path.join(scratch, 'data'), XDG_CACHE_HOME: path.join(scratch, 'cache') };
const server = spawn(codeServer, ['--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--user-data-dir', userData, '--extensions-dir', path.join(scratch, 'ext'),
  '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', '--ignore-last-opened', work], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
let serverLog = '';
server.stdout.on('data', (d) => (serverLog += d));
server.stderr.on('data', (d) => (serverLog += d));
const stop = () => { try { process.kill(-server.pid, 'SIGKILL'); } catch {} };
process.on('exit', stop);

const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try { if ((await fetch(`${base}/healthz`)).ok) break; } catch {}
  if (i > 100) throw new Error(`code-server did not start:\n${serverLog}`);
  await new Promise((r) => setTimeout(r, 200));
}

const bench = process.argv.includes('--bench');
const failures = [];
const check = (ok, what) => { console.log(`${ok ? '✔' : '✘'} ${what}`); if (!ok) failures.push(what); };
const context = await chromium.launchPersistentContext(path.join(scratch, 'browser'), {
  executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1400, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] ?? (await context.newPage());
/** Waits until the active editor tab is `title` (Quick Open switches tabs asynchronously). */
async function activeTab(title, tries = 150) {
  for (let i = 0; i < tries; i++) {
    const t = await page.locator('.tabs-container .tab.active').allTextContents();
    if (t.some((x) => x.trim().startsWith(title))) return true;
    await page.waitForTimeout(100);
  }
  return false;
}
/** Quick Open a file and wait until its tab is active; retried, since the list can re-render under the click. */
async function openFile(query, title) {
  const exact = new RegExp(`^\\s*${title.replace(/[.]/g, '\\.')}\\s*$`);
  for (let attempt = 0; attempt < 4; attempt++) {
    // The Explorer row first (a click activates the file's tab whatever holds focus), Quick Open as the fallback.
    const row = page.locator('.explorer-folders-view .monaco-list-row').filter({ hasText: exact }).first();
    if (attempt % 2 === 0 && (await row.count()) > 0) await row.click();
    else await quickPick('Control+P', query, title);
    if (await activeTab(title, 50)) return;
    await page.keyboard.press('Escape');
  }
  throw new Error(`could not activate ${title}`);
}
/** Types into Quick Open (Ctrl+P) or the palette (F1) and picks the row that shows `text`. */
async function quickPick(key, query, text) {
  const input = page.locator('.quick-input-widget input.input');
  for (let attempt = 0; ; attempt++) {
    // The title bar's command center opens the quick input whatever holds focus (a webview can
    // swallow keys); the '>' prefix makes it the command palette. The key is the fallback.
    if (attempt % 2 === 0) await page.locator('.command-center .command-center-center').first().click({ timeout: 5000 }).catch(() => page.keyboard.press(key));
    else await page.keyboard.press(key);
    try {
      await input.waitFor({ timeout: 10000 });
      await input.fill(`${key === 'F1' ? '>' : ''}${query}`);
      const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: text }).first();
      await row.waitFor({ timeout: 20000 });
      await row.click();
      return;
    } catch (e) {
      if (attempt === 3) throw e;
      await page.keyboard.press('Escape');
    }
  }
}
try {
  // 1. Extension-host tests (mocha inside VS Code): the workbench reports the exit code.
  let exitCode;
  await page.exposeFunction('codeAutomationExit', (code) => { exitCode = code; });

  const ext = `vscode-remote://127.0.0.1:${port}${extRoot}`;
  const payload = (tests) => encodeURIComponent(JSON.stringify([['extensionDevelopmentPath', ext], ...(tests ? [['extensionTestsPath', `${ext}/test/e2e/host/index.js`]] : [])]));
  if (shotsDir) {
    await shots(payload);
    await context.close();
    stop();
    process.exit(0);
  }
  await page.goto(`${base}/?folder=${encodeURIComponent(work)}&payload=${payload(true)}`);
  for (let i = 0; exitCode === undefined && i < 600; i++) await page.waitForTimeout(200);
  check(exitCode === 0, `extension-host tests (exit code ${exitCode})`);

  // 2. UI test in a fresh window with the extension loaded.
  await page.goto(`${base}/?folder=${encodeURIComponent(work)}&payload=${payload(false)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
  await page.waitForTimeout(2000);
  // The window may restore editors the extension-host tests left open in this folder.
  await quickPick('F1', 'View: Close All Editors', 'Close All Editors');
  for (let i = 0; i < 100 && (await page.locator('iframe.webview').count()) > 0; i++) await page.waitForTimeout(100);
  await quickPick('Control+P', 'digits_cnn.onnx', 'digits_cnn.onnx');
  const frame = page.frameLocator('iframe.webview.ready[src*="extensionId=model-compressor.model-compressor"]').frameLocator('iframe#active-frame');
  const params = frame.locator('#total-params b');
  await params.waitFor({ timeout: 60000 });
  check((await params.textContent()) === '356,234', `summary shows total params 356,234 (got ${await params.textContent()})`);
  check((await frame.locator('#weighted-layers b').textContent()) === '5', 'summary shows five weighted layers');
  await frame.locator('.row').first().waitFor({ timeout: 30000 });
  await page.screenshot({ path: path.join(artifacts, 'editor.png') });
  await frame.locator('.hdr span[data-sort="macs"]').click();
  await page.waitForTimeout(800);
  const macs = await frame.locator('.row span[data-col="macs"]').allTextContents();
  const parse = (s) => Number.parseFloat(s) * (s.endsWith('M') ? 1e6 : s.endsWith('K') ? 1e3 : 1);
  const sorted = macs.map(parse);
  check(sorted.length > 3 && sorted.every((v, i) => i === 0 || sorted[i - 1] >= v), `sorting by MACs orders rows descending (${macs.slice(0, 4).join(', ')})`);
  await frame.locator('.row').first().click();
  await frame.locator('#histogram').waitFor({ timeout: 30000 }).catch(() => {});
  check((await frame.locator('#histogram').count()) === 1 && (await frame.locator('#detail h3').textContent()) !== '', 'selecting a layer shows its weight histogram');
  await page.screenshot({ path: path.join(artifacts, 'editor-sorted.png') });
  await frame.locator('#show-graph').click();
  const graphBox = frame.locator('#graph[data-nodes]');
  await graphBox.waitFor({ timeout: 60000 });
  check((await graphBox.getAttribute('data-nodes')) === '11', 'the graph view lays out 11 nodes');
  // Click the first node (top centre of the layout) and expect its row to be selected.
  const box = await frame.locator('#graph-canvas').boundingBox();
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(artifacts, 'graph.png') });
  check(!!box, 'the graph canvas is visible');
  await frame.locator('#sensitivity').click();
  await frame.locator('#sensitivity-chart').waitFor({ timeout: 120000 }).catch(() => {});
  check((await frame.locator('#sensitivity-chart').count()) === 1, 'sensitivity curves are charted');
  await frame.locator('#color-by').selectOption('sensitivity');
  check((await frame.locator('#color-by').inputValue()) === 'sensitivity', 'the graph can be coloured by sensitivity');
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(artifacts, 'sensitivity.png') });
  // The Compress panel: add steps, preview the plan, run, see the result.
  await quickPick('F1', 'Model Compressor: Compress Model', 'Compress Model');
  const findFrame = async (selector) => {
    for (let i = 0; i < 240; i++) {
      const n = await page.locator('iframe.webview.ready').count();
      for (let k = 0; k < n; k++) {
        const f = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame');
        if ((await f.locator(selector).count()) > 0) return f;
      }
      await page.waitForTimeout(500);
    }
    throw new Error(`no webview shows ${selector}`);
  };
  const cp = await findFrame('#add-prune');
  await cp.locator('#add-prune').click();
  await cp.locator('#add-quantize').click();
  check((await cp.locator('.step').count()) === 2, 'two steps composed in the Compress panel');
  await cp.locator('#preview').click();
  await cp.locator('#plan').waitFor({ timeout: 120000 });
  check((await cp.locator('#plan tr').count()) === 4, 'the plan previews params and MACs after each step');
  await cp.locator('#run').click();
  await cp.locator('#result-table').waitFor({ timeout: 180000 });
  check(fs.existsSync(path.join(work, 'digits_cnn.compressed.onnx')), 'the panel wrote digits_cnn.compressed.onnx');
  // The default steps (prune half the channels without recovery, then dynamic int8) break digits_cnn: the result must say so.
  const fidelityRow = (await cp.locator('#result-table tr').allTextContents()).find((t) => t.includes('cosine')) ?? '';
  check((await cp.locator('#warnings .warning').count()) > 0, `a broken compression result shows a warning (${fidelityRow.replace(/\s+/g, ' ').trim()})`);
  await page.screenshot({ path: path.join(artifacts, 'compress.png') });
  // Training in the panel: prune with fine-tune recovery asks for training data, trains with a live
  // chart, and Cancel comes back with the best model so far, which Keep moves into place.
  while ((await cp.locator('.step').count()) > 0) await cp.locator('.step vscode-button').first().click();
  await cp.locator('#add-prune').click();
  await cp.locator('.step[data-step="prune"] select[data-key="recover"]').selectOption('finetune');
  const needs = (await cp.locator('.step[data-step="prune"] .needs').textContent()) ?? '';
  check(/training data and training labels/.test(needs), `the form says fine-tuning needs training data and labels (${needs})`);
  await cp.locator('.step[data-step="prune"] input[data-key="epochsPerStep"]').fill('100');
  await cp.locator('.step[data-step="prune"] input[data-key="epochsPerStep"]').press('Tab');
  await cp.locator('#run').click();
  check(/Pick training data first: recover finetune/.test(await cp.locator('#error').textContent()), 'the panel asks for training data before fine-tuning');
  /** Picks a file for a data slot in the (simple, in-page) file dialog by typing its path. */
  const pickFile = async (slot, file) => {
    await cp.locator(`#pick-${slot}`).click();
    const input = page.locator('.quick-input-widget input.input');
    await input.waitFor({ timeout: 20000 });
    await input.fill(file);
    await page.waitForTimeout(300);
    await input.press('Enter');
    for (let i = 0; i < 100 && (await cp.locator(`#slot-${slot}`).textContent()) !== file; i++) await page.waitForTimeout(100);
    return (await cp.locator(`#slot-${slot}`).textContent()) === file;
  };
  check(await pickFile('train', path.join(work, 'digits_train_x.npy')), 'Training data… fills the training slot');
  check(await pickFile('trainLabels', path.join(work, 'digits_train_y.npy')), 'Training labels… fills the training labels slot');
  check((await cp.locator('.step[data-step="prune"] .needs').count()) === 0, 'the form no longer asks for training data');
  const compressed = path.join(work, 'digits_cnn.compressed.onnx');
  fs.rmSync(compressed, { force: true });
  await cp.locator('#run').click();
  await cp.locator('#train-chart').waitFor({ timeout: 120000 });
  for (let i = 0; i < 100 && Number(await cp.locator('#train').getAttribute('data-points')) < 3; i++) await page.waitForTimeout(100);
  const status = (await cp.locator('#train-status').textContent()) ?? '';
  check(Number(await cp.locator('#train').getAttribute('data-points')) >= 3 && /epoch \d+\/100/.test(status) && /samples\/s/.test(status) && /ETA \d/.test(status), `the live chart draws the loss while training (${status.trim()})`);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: path.join(artifacts, 'training.png') });
  await cp.locator('#cancel').click();
  await cp.locator('#keep').waitFor({ timeout: 120000 });
  check(/best model so far/.test((await cp.locator('#partial').textContent()) ?? '') && (await cp.locator('#result-table').count()) === 1, 'Cancel during training shows the best model so far with Keep and Discard');
  check(!fs.existsSync(compressed), 'nothing is written to the output before Keep');
  await page.screenshot({ path: path.join(artifacts, 'training-cancelled.png') });
  await cp.locator('#keep').click();
  await cp.locator('#partial-outcome').waitFor({ timeout: 60000 });
  check(fs.existsSync(compressed) && !fs.readdirSync(work).some((f) => f.startsWith('.mc-partial-')), 'Keep moves the model into place and leaves no temporary folder');
  // Back to the model editor for the one-click command.
  await openFile('digits_cnn.onnx', 'digits_cnn.onnx');
  await quickPick('F1', 'Quantize Model (INT8)', 'Quantize Model (INT8)');
  // The comparison opens in a second webview; find the one holding it.
  let shown = false;
  for (let i = 0; i < 240 && !shown; i++) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let k = 0; k < n && !shown; k++) {
      shown = (await page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame').locator('#comparison-title').count()) > 0;
    }
    if (!shown) await page.waitForTimeout(500);
  }
  check(shown, 'the before-and-after comparison appears');
  check(fs.existsSync(path.join(work, 'digits_cnn.int8.onnx')), 'one-click INT8 wrote digits_cnn.int8.onnx beside the original');
  await page.screenshot({ path: path.join(artifacts, 'quantized.png') });
  // A truncated model: a one-line error naming the file, no crash, the file untouched, the editor still usable.
  await openFile('broken.onnx', 'broken.onnx');
  const err = await (async () => {
    for (let i = 0; i < 300; i++) {
      const n = await page.locator('iframe.webview.ready').count();
      for (let k = 0; k < n; k++) {
        const e = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame').locator('#error');
        const t = (await e.count()) ? await e.first().textContent() : '';
        if (t && t.includes('broken.onnx')) return t;
      }
      await page.waitForTimeout(100);
    }
    return '';
  })();
  check(err.includes('broken.onnx:') && !err.includes('\n') && !/\bat \S+ \(/.test(err), `a truncated model shows a one-line error (${err.slice(0, 90)})`);
  check(Buffer.compare(fs.readFileSync(path.join(work, 'broken.onnx')), brokenBytes) === 0, 'the broken file is left untouched');
  let hidden = false;
  for (let k = 0; k < (await page.locator('iframe.webview.ready').count()) && !hidden; k++) {
    const f = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame');
    hidden = ((await f.locator('#summary').count()) > 0 && (await f.locator('#summary').textContent()) === 'This model could not be opened.') && !(await f.locator('#quantize').isVisible());
  }
  check(hidden, 'a model that cannot be read offers no controls');
  await page.screenshot({ path: path.join(artifacts, 'broken.png') });
  await openFile('digits_cnn.onnx', 'digits_cnn.onnx');
  let stillWorks = false;
  for (let i = 0; i < 300 && !stillWorks; i++) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let k = 0; k < n && !stillWorks; k++) {
      const p2 = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame').locator('#total-params b');
      stillWorks = (await p2.count()) > 0 && (await p2.first().textContent()) === '356,234';
    }
    if (!stillWorks) await page.waitForTimeout(100);
  }
  check(stillWorks, 'the editor keeps working after the error');
  // Other formats: safetensors opens in the editor by default; TF.js model.json through "Inspect Model".
  const paramsShown = async (want) => {
    for (let i = 0; i < 300; i++) {
      const n = await page.locator('iframe.webview.ready').count();
      for (let k = 0; k < n; k++) {
        const p3 = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame').locator('#total-params b');
        if ((await p3.count()) > 0 && (await p3.first().textContent()) === want) return true;
      }
      await page.waitForTimeout(100);
    }
    return false;
  };
  await openFile('weights.safetensors', 'weights.safetensors');
  check(await paramsShown('15'), 'a .safetensors file opens in the editor with its 15 params');
  await page.screenshot({ path: path.join(artifacts, 'safetensors.png') });
  await openFile('tfjs/model.json', 'model.json');
  await quickPick('F1', 'Model Compressor: Inspect Model', 'Inspect Model');
  check(await paramsShown('1,482'), 'a TF.js model.json opens in the editor through Inspect Model, 1,482 params');
  await page.screenshot({ path: path.join(artifacts, 'tfjs.png') });
  // Sensitivity on the TF.js model: each group pruned alone and run by TensorFlow.js.
  let tfFrame;
  for (let k = 0; k < (await page.locator('iframe.webview.ready').count()) && !tfFrame; k++) {
    const f = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame');
    if ((await f.locator('#total-params b').count()) > 0 && (await f.locator('#total-params b').first().textContent()) === '1,482') tfFrame = f;
  }
  await tfFrame.locator('#sensitivity').click();
  await tfFrame.locator('#sensitivity-chart').waitFor({ timeout: 120000 }).catch(() => {});
  check((await tfFrame.locator('#sensitivity-chart').count()) === 1, 'sensitivity curves are charted for the TF.js model');
  // Compress the TF.js model from its editor: the panel offers the manifest quantization modes.
  await quickPick('F1', 'Model Compressor: Compress Model', 'Compress Model');
  let tp;
  for (let i = 0; i < 240 && !tp; i++) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let k = 0; k < n && !tp; k++) {
      const f = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame');
      if ((await f.locator('#title').count()) > 0 && (await f.locator('#title').textContent()) === 'Compress model.json' && (await f.locator('#add-quantize:not([disabled])').count()) > 0) tp = f;
    }
    if (!tp) await page.waitForTimeout(250);
  }
  if (!tp) throw new Error('the Compress panel for model.json did not appear');
  // Reconstruction needs calibration data: the panel says so instead of starting a job.
  await tp.locator('#add-prune').click();
  await tp.locator('.step[data-step="prune"] select[data-key="recover"]').selectOption('reconstruct');
  const recovers = await tp.locator('.step[data-step="prune"] select[data-key="recover"] option').allTextContents();
  check(recovers.join(',') === 'none,reconstruct', `the TF.js panel offers no retraining (${recovers.join(', ')})`);
  await tp.locator('#run').click();
  check(/Pick calibration data first: recover reconstruct/.test(await tp.locator('#error').textContent()), 'the panel asks for calibration data before reconstruction');
  await tp.locator('.step[data-step="prune"] vscode-button').click();
  await tp.locator('#add-quantize').click();
  const modes = await tp.locator('.step select option').allTextContents();
  check(modes.join(',') === 'uint8,uint16,fp16', `the TF.js panel offers the manifest modes (${modes.join(', ')})`);
  await tp.locator('#run').click();
  await tp.locator('#result-table').waitFor({ timeout: 180000 });
  const sizeRow = await tp.locator('#result-table tr:nth-child(2) td').allTextContents();
  const compressedJson = path.join(work, 'tfjs', 'model.compressed.json');
  check(fs.existsSync(compressedJson) && JSON.parse(fs.readFileSync(compressedJson, 'utf8')).weightsManifest[0].weights.some((w) => w.dtype === 'float32' && w.quantization?.dtype === 'uint8'), 'the panel wrote tfjs/model.compressed.json with uint8 weights');
  check(sizeRow[0] === 'size' && Number.parseFloat(sizeRow[3]) < 0.8, `the TF.js result is smaller (${sizeRow.join(' | ')})`);
  await page.screenshot({ path: path.join(artifacts, 'tfjs-compress.png') });
  await denseNetChecks();
  if (bench) await speed();
} catch (e) {
  await page.screenshot({ path: path.join(artifacts, 'failure.png') }).catch(() => {});
  failures.push(String(e?.message ?? e).split('\n')[0]);
  console.log('✘', failures[failures.length - 1]);
} finally {
  await context.close();
  stop();
}
/** The first webview frame where `selector` exists (and its text includes `text`, when given). */
async function frameWith(selector, text = '', tries = 600) {
  for (let i = 0; i < tries; i++) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let k = 0; k < n; k++) {
      const f = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame');
      const l = f.locator(selector);
      if ((await l.count()) > 0 && ((await l.first().textContent()) ?? '').includes(text)) return f;
    }
    await page.waitForTimeout(200);
  }
  throw new Error(`no webview shows ${selector} ${text}`);
}
function findNode(f, q) {
  return f.locator('#graph-find').evaluate((e, query) => {
    e.value = query;
    e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
  }, q);
}
/** Issue 19: a 600+ node DenseNet-like model is navigable and its partial MAC total is marked. */
async function denseNetChecks() {
  await openFile('densenet_like.onnx', 'densenet_like.onnx');
  const f = await frameWith('.meta', 'densenet_like.onnx');
  const macs = (await f.locator('#total-macs').textContent()) ?? '';
  check(/^≥ /.test((await f.locator('#total-macs b').textContent()) ?? '') && /\(\d+ layers unknown\)/.test(macs), `the header marks a partial MAC total (${macs})`);
  await f.locator('.row').first().waitFor({ timeout: 60000 });
  const t0 = Date.now();
  await f.locator('#show-graph').click();
  const gb = f.locator('#graph[data-nodes][data-view]');
  await gb.waitFor({ timeout: 120000 });
  const fitMs = Date.now() - t0;
  const v = JSON.parse(await gb.getAttribute('data-view'));
  const boxes = Number(await gb.getAttribute('data-nodes'));
  check(boxes >= 400 && v.width * v.scale <= v.vw + 1 && v.height * v.scale <= v.vh + 1, `the ${boxes}-box graph fits the view when shown (scale ${v.scale.toFixed(3)}, ${fitMs} ms from click to fitted)`);
  await page.screenshot({ path: path.join(artifacts, 'densenet-graph.png') });
  await findNode(f, 'denselayer12/conv2');
  await f.locator('#graph[data-centred-at]').waitFor({ timeout: 10000 });
  await page.waitForTimeout(300);
  const w = JSON.parse(await gb.getAttribute('data-view'));
  const at = JSON.parse(await gb.getAttribute('data-centred-at'));
  const dx = w.tx + at.x * w.scale - w.vw / 2;
  const dy = w.ty + at.y * w.scale - w.vh / 2;
  check(Math.abs(dx) < 2 && Math.abs(dy) < 2 && w.scale >= 1 && /denselayer12\/conv2/.test(at.label), `searching a node name centres it, zoomed in to read it (${at.label}, off by ${dx.toFixed(1)}, ${dy.toFixed(1)} px)`);
  await page.screenshot({ path: path.join(artifacts, 'densenet-find.png') });
  await f.locator('#show-table').click();
  await f.locator('.row.sel').waitFor({ timeout: 10000 }).catch(() => {});
  const sel = (await f.locator('.row.sel span[data-col="name"]').count()) ? await f.locator('.row.sel span[data-col="name"]').getAttribute('title') : '';
  const drawn = await f.locator('.row').count();
  check(sel === at.label && drawn > 15, `back in the table, the found node's row is selected and shown, rows drawn around it (${sel}, ${drawn} rows)`);
  await page.screenshot({ path: path.join(artifacts, 'densenet-table.png') });
}

/** Screenshots of the table with long names, the 600-node graph and a broken result, light and dark (`--shots DIR`). */
async function shots(payload) {
  fs.mkdirSync(shotsDir, { recursive: true });
  const tag = process.env.MC_SHOTS_TAG ?? 'after';
  await page.goto(`${base}/?folder=${encodeURIComponent(work)}&payload=${payload(false)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
  await page.waitForTimeout(2000);
  for (const [name, theme] of [['light', 'Light Modern'], ['dark', 'Dark Modern']]) {
    const shot = (what) => page.screenshot({ path: path.join(shotsDir, `${tag}-${what}-${name}.png`) });
    await quickPick('F1', 'View: Close All Editors', 'Close All Editors');
    await quickPick('F1', 'Preferences: Color Theme', 'Preferences: Color Theme');
    // The theme list fills in after the picker opens: wait for it, then filter.
    const rows = page.locator('.quick-input-list .monaco-list-row');
    for (let i = 0; i < 100 && (await rows.count()) < 3; i++) await page.waitForTimeout(100);
    await page.locator('.quick-input-widget input.input').fill(theme);
    await rows.filter({ hasText: new RegExp(`^\\s*${theme}`) }).first().click();
    await page.waitForTimeout(1500);
    await openFile('densenet_like.onnx', 'densenet_like.onnx');
    const f = await frameWith('.meta', 'densenet_like.onnx');
    await f.locator('.row').nth(5).waitFor({ timeout: 60000 });
    await f.locator('.row').nth(6).click();
    await page.waitForTimeout(1500);
    await shot('table');
    await f.locator('#show-graph').click();
    await f.locator('#graph[data-nodes]').waitFor({ timeout: 120000 });
    await page.waitForTimeout(1500);
    await shot('graph');
    if (await f.locator('#graph-find').count()) await findNode(f, 'denselayer12/conv2');
    else {
      const box = await f.locator('#graph-canvas').boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + 40);
      for (let i = 0; i < 8; i++) await page.mouse.wheel(0, -300);
    }
    await page.waitForTimeout(1000);
    await shot('graph-zoomed');
    await openFile('digits_cnn.onnx', 'digits_cnn.onnx');
    await quickPick('F1', 'Model Compressor: Compress Model', 'Compress Model');
    const cp = await frameWith('#add-prune');
    await cp.locator('#add-prune').click();
    await cp.locator('#add-quantize').click();
    await page.waitForTimeout(500);
    await shot('compress');
    await cp.locator('#run').click();
    await cp.locator('#result-table').waitFor({ timeout: 180000 });
    await page.waitForTimeout(800);
    await shot('broken-result');
  }
}

async function speed() {
  // Editor speed in the browser: MobileNetV2's summary, and a 5,000-node model's table and graph.
  fs.copyFileSync(path.join(root, 'test/fixtures/mobilenet_v2.onnx'), path.join(work, 'mobilenet_v2.onnx'));
  const big = path.join(os.tmpdir(), 'model-compressor-bench', 'graph-5000.onnx');
  if (!fs.existsSync(big)) throw new Error('run `npm run bench -- ui` first: it generates graph-5000.onnx');
  fs.copyFileSync(big, path.join(work, 'graph_5000.onnx'));
  const editorFor = async (name) => {
    const before = await page.locator('iframe.webview.ready').count();
    const t0 = Date.now();
    await quickPick('Control+P', name, name);
    let loaded;
    for (let i = 0; i < 600; i++) {
      const n = await page.locator('iframe.webview.ready').count();
      if (loaded === undefined && n > before) loaded = Date.now() - t0;
      for (let k = 0; k < n; k++) {
        const f = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame');
        const meta = f.locator('.meta');
        if ((await meta.count()) && ((await meta.first().textContent()) ?? '').includes(name)) {
          const body = f.locator('body');
          return { f, ms: Date.now() - t0, script: await body.getAttribute('data-script-ms'), summary: await body.getAttribute('data-summary-ms'), fetch: await body.getAttribute('data-fetch') };
        }
      }
      await page.waitForTimeout(20);
    }
    throw new Error(`${name} did not open`);
  };
  // Baseline in the same run: a minimal webview with one inline script.
  await quickPick('F1', 'Measure Webview Start-up', 'Measure Webview Start-up');
  let probeMs;
  for (let i = 0; i < 300 && probeMs === undefined; i++) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let k = 0; k < n; k++) {
      const f = page.frameLocator('iframe.webview.ready').nth(k).frameLocator('iframe#active-frame');
      if (await f.locator('#probe').count()) probeMs = await f.locator('body').getAttribute('data-script-ms');
    }
    if (probeMs === undefined) await page.waitForTimeout(20);
  }
  const mb = await editorFor('mobilenet_v2.onnx');
  const big5k = await editorFor('graph_5000.onnx');
  const f = big5k.f;
  await f.locator('.row').first().waitFor();
  const firstRow = async () => f.locator('.row span:nth-child(2)').first().textContent();
  const timed = async (action, changed) => {
    const before = await firstRow();
    const t0 = Date.now();
    await action();
    for (let i = 0; i < 500 && (await firstRow()) === before === changed; i++) await page.waitForTimeout(5);
    return Date.now() - t0;
  };
  const sortMs = await timed(() => f.locator('.hdr span[data-sort="macs"]').click(), true);
  const filterMs = await timed(() => f.locator('#search').evaluate((e) => { e.value = 'relu4'; e.dispatchEvent(new Event('input')); }), true);
  const t0 = Date.now();
  await f.locator('#show-graph').click();
  await f.locator('#graph[data-nodes]').waitFor({ timeout: 60000 });
  const graphMs = Date.now() - t0;
  // Fitted: the first frame drawn at the fit-to-view scale (data-view is written by that draw).
  await f.locator('#graph[data-view]').waitFor({ timeout: 60000 });
  const fitMs = Date.now() - t0;
  const layoutMs = await f.locator('#graph').getAttribute('data-layout-ms');
  await page.screenshot({ path: path.join(artifacts, 'graph-5000.png') });
  console.log(`speed: MobileNetV2 summary painted ${mb.ms} ms after Quick Open; inside the webview: bundle fetched ${mb.fetch} ms, script ran at ${mb.script} ms, summary painted at ${mb.summary} ms after the frame started; a minimal webview's script ran at ${probeMs} ms (VS Code's own start-up), so the editor's share is ${Number(mb.summary) - Number(probeMs)} ms (target 500); 5,000 nodes: sort ${sortMs} ms, filter ${filterMs} ms incl. 150 ms debounce (target 200); graph shown ${graphMs} ms, fitted to the view ${fitMs} ms after the click (worker layout ${layoutMs} ms) (target 3000)`);
}

console.log(`${failures.length ? 0 : 1} passed, ${failures.length ? 1 : 0} failed`);
process.exit(failures.length ? 1 : 0);
