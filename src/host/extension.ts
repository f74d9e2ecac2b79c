import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { openCompressPanel } from './compress-panel';
import { escapeHtml } from './html';
import { ModelEditorProvider } from './model-editor';
import type { QuickQuantizeDto } from '../protocol/jobs';
import { JobError, WorkerClient } from './worker-client';

/**
 * The extension host: the only code that imports vscode. It owns the worker client and
 * turns commands into worker jobs with progress and cancellation.
 */

let client: WorkerClient | undefined;

export function activate(ctx: vscode.ExtensionContext): void {
  client = new WorkerClient(ctx.asAbsolutePath(path.join('dist', 'worker.js')));
  client.onCrash = (m) => void vscode.window.showErrorMessage(m);
  ctx.subscriptions.push({ dispose: () => client?.dispose() });
  ctx.subscriptions.push(
    vscode.window.registerCustomEditorProvider(ModelEditorProvider.viewType, new ModelEditorProvider(ctx, client), {
      supportsMultipleEditorsPerDocument: true,
      webviewOptions: { retainContextWhenHidden: false },
    }),
    // TF.js model.json: the same editor, offered as an option ("Open With…"), since model.json is also plain JSON.
    vscode.window.registerCustomEditorProvider(`${ModelEditorProvider.viewType}.tfjs`, new ModelEditorProvider(ctx, client), { supportsMultipleEditorsPerDocument: true }),
    vscode.commands.registerCommand('modelCompressor.inspect', async (uri?: vscode.Uri) => {
      const target = uri ?? (await pickModel('Inspect', true));
      const json = !!target && /\.json$/i.test(target.fsPath);
      // The Explorer offers this on every .json (a menu cannot read content): say so when it is not a model.
      if (target && json && !looksLikeTfjsModel(target.fsPath)) {
        void vscode.window.showErrorMessage(`${path.basename(target.fsPath)} is not a TF.js model: it has no "modelTopology" or "weightsManifest".`);
        return;
      }
      const view = json ? `${ModelEditorProvider.viewType}.tfjs` : ModelEditorProvider.viewType;
      if (target) await vscode.commands.executeCommand('vscode.openWith', target, view);
    }),
    vscode.commands.registerCommand('modelCompressor.quantizeInt8', (uri?: vscode.Uri) => quantizeInt8(uri)),
    // From the INT8 result view (command links): calibrate on data the user picks, open the output.
    vscode.commands.registerCommand('modelCompressor.quantizeInt8WithData', (file?: string) => quantizeInt8(file ? vscode.Uri.file(file) : undefined, true)),
    vscode.commands.registerCommand('modelCompressor.openOutput', (file?: string) => file && vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), ModelEditorProvider.viewType)),
    vscode.commands.registerCommand('modelCompressor.compress', async (uri?: vscode.Uri) => {
      const target = uri ?? (await pickModel('Compress', /\.(onnx|json)$/i));
      if (target && client) openCompressPanel(ctx, client, target);
    }),
    vscode.commands.registerCommand('modelCompressor.benchmark', (uri?: vscode.Uri) => benchmark(uri)),
    vscode.commands.registerCommand('modelCompressor.probeWebview', () => probeWebview()),
    vscode.commands.registerCommand('modelCompressor.compareModels', () => compareModels()),
  );
}

/** A TF.js model.json names its topology and weights manifest near the top (checked in the first MiB). */
function looksLikeTfjsModel(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(2 ** 20, fs.fstatSync(fd).size));
      fs.readSync(fd, buf, 0, buf.length, 0);
      const head = buf.toString('utf8');
      return /^\s*\{/.test(head) && /"(modelTopology|weightsManifest)"\s*:/.test(head);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

export function deactivate(): void {
  client?.dispose();
  client = undefined;
}

/** The active model, or one the user picks. `anyFormat`: every format the inspector reads, or a pattern of the ones allowed; else ONNX only. */
async function pickModel(verb: string, anyFormat: boolean | RegExp = false): Promise<vscode.Uri | undefined> {
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input as { uri?: vscode.Uri } | undefined;
  const ok = anyFormat instanceof RegExp ? anyFormat : anyFormat ? /\.(onnx|tflite|safetensors|json)$/i : /\.onnx$/i;
  if (tab?.uri && ok.test(tab.uri.fsPath)) return tab.uri;
  const all = ['onnx', 'tflite', 'safetensors', 'json'];
  const filters: Record<string, string[]> = anyFormat ? { Models: all.filter((e) => ok.test(`x.${e}`)) } : { 'ONNX models': ['onnx'] };
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters, openLabel: verb });
  return picked?.[0];
}

function settings() {
  const c = vscode.workspace.getConfiguration('modelCompressor');
  return { benchmarkRuns: c.get<number>('benchmarkRuns'), outputPattern: c.get<string>('outputPattern', '${name}.int8.onnx'), threads: c.get<number>('ortThreads', 0), calib: c.get<string>('defaultCalibrationData', '') };
}

/** Runs a worker job under a cancellable progress notification. */
async function withJob<T>(title: string, run: (signal: AbortSignal, report: (stage: string) => void) => Promise<T>): Promise<T | undefined> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
    const ctl = new AbortController();
    token.onCancellationRequested(() => ctl.abort());
    try {
      return await run(ctl.signal, (stage) => progress.report({ message: stage }));
    } catch (e) {
      if (e instanceof JobError && e.kind === 'cancelled') {
        void vscode.window.showInformationMessage(`${title}: cancelled`);
        return undefined;
      }
      void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
      return undefined;
    }
  });
}

/** What the INT8 result view shows: the engine's quick INT8, or a static compression on the user's data. */
type QuickQuantizeResult = Omit<QuickQuantizeDto, 'quantizedNodes' | 'skippedNodes'> &
  Partial<Pick<QuickQuantizeDto, 'quantizedNodes' | 'skippedNodes'>> & {
    /** What the calibration ran on, when the user gave data. */
    calibratedOn?: string;
  };

/**
 * One-click INT8. With calibration data (the `modelCompressor.defaultCalibrationData` setting,
 * or a file or folder picked from the result view) it is static int8 calibrated on that data;
 * without, the engine's policy on generated samples, and the result view says so.
 */
export async function quantizeInt8(uri?: vscode.Uri, pickData = false): Promise<QuickQuantizeResult | undefined> {
  const target = uri ?? (await pickModel('Quantize'));
  if (!target || !client) return undefined;
  const name = path.basename(target.fsPath).replace(/\.onnx$/i, '');
  const output = path.join(path.dirname(target.fsPath), settings().outputPattern.replace('${name}', name));
  let calib = settings().calib ? path.resolve(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(target.fsPath), settings().calib) : '';
  if (pickData) {
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, canSelectFiles: true, canSelectFolders: true, filters: { 'Calibration data': ['npy', 'pb'] }, openLabel: 'Calibrate on this', defaultUri: vscode.Uri.file(path.dirname(target.fsPath)) });
    if (!picked?.[0]) return undefined;
    calib = picked[0].fsPath;
  }
  const r = await withJob(`Quantizing ${path.basename(target.fsPath)} to INT8`, async (signal, report) => {
    const run = { benchRuns: settings().benchmarkRuns, threads: settings().threads };
    if (!calib) return client!.job({ kind: 'quickQuantize', model: target.fsPath, output, ...run }, { signal, onProgress: report });
    const c = await client!.job({ kind: 'compress', model: target.fsPath, output, recipe: { steps: [{ step: 'quantize', mode: 'static' }] }, calib, ...run }, { signal, onProgress: report });
    return { output: c.output, mode: 'static', reason: `static int8 calibrated on ${path.basename(calib)}`, notes: [], slowerBecause: '', calibratedOn: calib, report: c.report };
  });
  if (r) showComparison(target.fsPath, r);
  return r;
}

/** The mode in plain words (the engine's reason, with its terms, stays in a tooltip). */
function modeInWords(r: QuickQuantizeResult): string {
  if (r.mode === 'dynamic') return 'Dynamic INT8: weights are stored as 8-bit integers and activations are converted as the model runs. Chosen because most of the compute is in matrix multiplications, where this works well without calibration data.';
  if (r.calibratedOn) return `Static INT8: weights and activations are 8-bit integers; the activation ranges were measured on your data (${r.calibratedOn}).`;
  return 'Static INT8: weights and activations are 8-bit integers; the activation ranges were measured on 16 generated random inputs, which rarely look like real inputs. Calibrate on real data for a result you can trust.';
}

function showComparison(input: string, r: QuickQuantizeResult): void {
  const panel = vscode.window.createWebviewPanel('modelCompressor.comparison', `INT8: ${path.basename(input)}`, vscode.ViewColumn.Beside, {
    enableScripts: false,
    // Only these two commands can be run from the page's links.
    enableCommandUris: ['modelCompressor.openOutput', 'modelCompressor.quantizeInt8WithData'],
  });
  const b = r.report.before;
  const a = r.report.after;
  const o = r.report.fidelity?.outputs[0];
  const lat = r.report.latencyMs;
  const row = (k: string, x: string, y: string, c: string) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(x)}</td><td>${escapeHtml(y)}</td><td>${escapeHtml(c)}</td></tr>`;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;
  const cmd = (id: string, arg: string, text: string, elId: string) => `<a id="${elId}" href="command:${id}?${encodeURIComponent(JSON.stringify([arg]))}">${escapeHtml(text)}</a>`;
  const slower = lat && lat.ratioP50 > 1.02 ? `<p class="warn">Slower than the original on this machine (${lat.ratioP50.toFixed(2)}x)${r.slowerBecause ? `: ${escapeHtml(r.slowerBecause)}` : ''}</p>` : '';
  const warnings = (r.report.warnings ?? []).map((w) => {
    // A warning reads "<what collapsed>. What helps: <…>": the first part is the headline.
    const [msg, ...help] = w.split(/(?<=\.)\s+(?=What helps:)/);
    return `<div class="warning"><b>⚠ ${escapeHtml(msg)}</b>${help.length ? `<ul>${help.map((h) => `<li>${escapeHtml(h)}</li>`).join('')}</ul>` : ''}</div>`;
  });
  const counts = r.quantizedNodes !== undefined ? `<p>${r.quantizedNodes} nodes quantized, ${r.skippedNodes?.length ?? 0} left in float.</p>` : '';
  panel.webview.html = `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>body{font-family:var(--vscode-font-family);color:var(--vscode-foreground);padding:12px;overflow-wrap:anywhere}table{border-collapse:collapse}th,td{padding:4px 12px;text-align:right;border-bottom:1px solid var(--vscode-panel-border)}th{text-align:left}.warn{color:var(--vscode-editorWarning-foreground)}code{font-family:var(--vscode-editor-font-family)}
.warning{border-left:4px solid var(--vscode-editorWarning-foreground);background:var(--vscode-inputValidation-warningBackground,rgba(204,167,0,.12));padding:6px 10px;margin:8px 0}.warning b{color:var(--vscode-editorWarning-foreground)}.actions a{margin-right:16px}</style></head>
<body><h2 id="comparison-title">Before and after INT8</h2>
${warnings.length ? `<div id="warnings" role="alert">${warnings.join('')}</div>` : ''}
<p title="${escapeHtml(r.reason)}">${escapeHtml(modeInWords(r))}</p><p>Written to <code>${escapeHtml(r.output)}</code>; the original is unchanged.</p>
<p class="actions">${cmd('modelCompressor.openOutput', r.output, 'Open output', 'open-output')}${r.mode === 'static' ? cmd('modelCompressor.quantizeInt8WithData', input, r.calibratedOn ? 'Calibrate on other data…' : 'Calibrate on real data…', 'calibrate') : ''}</p>
<table id="comparison"><tr><th></th><th>before</th><th>after</th><th>change</th></tr>
${row('size', mib(b.sizeBytes), mib(a.sizeBytes), `${(a.sizeBytes / b.sizeBytes).toFixed(3)}x`)}
${row('params', b.params.toLocaleString('en-US'), a.params.toLocaleString('en-US'), '')}
${lat ? row('latency p50', `${lat.before.p50.toFixed(2)} ms`, `${lat.after.p50.toFixed(2)} ms`, `${lat.ratioP50.toFixed(3)}x`) : ''}
${o ? row('fidelity (cosine)', '1', o.cosine.toFixed(5), o.top1Agreement !== undefined ? `top-1 agreement ${o.top1Agreement.toFixed(3)}` : '') : ''}
</table>${slower}${counts}
${r.notes.map((n) => `<p>${escapeHtml(n)}</p>`).join('')}</body></html>`;
}

async function benchmark(uri?: vscode.Uri): Promise<void> {
  const target = uri ?? (await pickModel('Benchmark'));
  if (!target || !client) return;
  const r = await withJob(`Benchmarking ${path.basename(target.fsPath)}`, (signal, report) =>
    client!.job({ kind: 'bench', models: [target.fsPath], runs: settings().benchmarkRuns, threads: settings().threads }, { signal, onProgress: report }),
  );
  const m = r?.models[0];
  if (m) void vscode.window.showInformationMessage(`${path.basename(target.fsPath)}: p50 ${m.latencyMs.p50.toFixed(2)} ms, p90 ${m.latencyMs.p90.toFixed(2)} ms, ${m.throughput.toFixed(1)}/s, peak RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
}

/**
 * Diagnostic: a minimal webview whose one inline script records when it ran. The speed
 * measurement compares the model editor against it, so VS Code's own webview start-up is
 * separated from the extension's time.
 */
function probeWebview(): void {
  const panel = vscode.window.createWebviewPanel('modelCompressor.probe', 'Webview start-up probe', vscode.ViewColumn.Active, { enableScripts: true, localResourceRoots: [] });
  const nonce = require('crypto').randomBytes(16).toString('base64');
  panel.webview.html = `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'nonce-${nonce}'"></head>
<body><p id="probe">probe</p><script nonce="${nonce}">document.body.dataset.scriptMs = String(Math.round(performance.now()));</script></body></html>`;
}

async function compareModels(): Promise<void> {
  const picks = await vscode.window.showOpenDialog({ canSelectMany: true, filters: { 'ONNX models': ['onnx'] }, openLabel: 'Compare (reference first)' });
  if (!picks || picks.length !== 2 || !client) {
    if (picks) void vscode.window.showWarningMessage('Choose exactly two models: the reference and the candidate.');
    return;
  }
  const r = await withJob('Comparing models', (signal, report) =>
    client!.job({ kind: 'compare', reference: picks[0].fsPath, candidate: picks[1].fsPath }, { signal, onProgress: report }),
  );
  if (r) {
    const o = r.outputs[0];
    void vscode.window.showInformationMessage(`${o.name}: cosine ${o.cosine.toFixed(5)}, max|Δ| ${o.maxAbsDiff.toExponential(2)}${o.top1Agreement !== undefined ? `, top-1 agreement ${o.top1Agreement.toFixed(3)}` : ''} on ${r.samples} random samples`);
  }
}
