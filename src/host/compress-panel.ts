import * as path from 'path';
import * as vscode from 'vscode';
import type { DataSlot, ToCompress } from '../protocol/compress';
import { parseFromCompress } from './compress-messages';
import { webviewHtml } from './html';
import { JobError, type WorkerClient } from './worker-client';

/**
 * The Compress panel: compose steps, preview their effect, run them in the worker with
 * progress and Cancel, compare before and after, open the output, save the recipe for the
 * CLI (`model-compressor compress --recipe`).
 */
export function openCompressPanel(ctx: vscode.ExtensionContext, client: WorkerClient, model: vscode.Uri): vscode.WebviewPanel {
  const dist = vscode.Uri.joinPath(ctx.extensionUri, 'dist');
  const name = path.basename(model.fsPath);
  const panel = vscode.window.createWebviewPanel('modelCompressor.compress', `Compress ${name}`, vscode.ViewColumn.Active, { enableScripts: true, localResourceRoots: [dist, vscode.Uri.joinPath(ctx.extensionUri, 'media')] });
  panel.webview.html = webviewHtml(panel.webview, panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'compress.js')), `Compress ${name}`);
  // Same format as the input: model.json → model.compressed.json beside it.
  const ext = /\.json$/i.test(name) ? '.json' : '.onnx';
  const output = path.join(path.dirname(model.fsPath), `${name.replace(/\.(onnx|json)$/i, '')}.compressed${ext}`);
  const picked: Partial<Record<DataSlot, string>> = {};
  const dflt = vscode.workspace.getConfiguration('modelCompressor').get<string>('defaultCalibrationData', '');
  if (dflt) {
    const folder = vscode.workspace.getWorkspaceFolder(model)?.uri.fsPath ?? path.dirname(model.fsPath);
    picked.calib = path.isAbsolute(dflt) ? dflt : path.join(folder, dflt);
  }
  let wrote = false;
  // Early-exit runs this panel made: the worker keeps their trained state until the panel closes.
  const exitRuns = new Set<string>();
  panel.onDidDispose(() => exitRuns.size && void client.job({ kind: 'exitsDrop', ids: [...exitRuns] }).catch(() => undefined));
  const post = (m: ToCompress) => void panel.webview.postMessage(m);
  panel.webview.onDidReceiveMessage(async (raw) => {
    try {
      // Inside the try: nothing a webview sends may become an unhandled rejection in the host.
      const m = parseFromCompress(raw);
      if (!m) return;
      switch (m.type) {
        case 'ready': {
          const { format, choices } = await client.job({ kind: 'recipeChoices', model: model.fsPath });
          post({ type: 'init', model: name, format, output, calib: picked.calib, choices });
          if (!choices.steps.length) post({ type: 'error', message: `${name}: ${format} models are read-only here; Compress works on ONNX and TF.js models` });
          break;
        }
        case 'pick': {
          const files = await vscode.window.showOpenDialog({
            canSelectMany: false,
            canSelectFiles: true,
            canSelectFolders: m.slot !== 'labels',
            filters: m.slot === 'labels' ? { Labels: ['npy', 'pb'] } : { 'Data (.npy, .pb, or an image folder)': ['npy', 'pb'] },
            openLabel: m.slot === 'calib' ? 'Use for calibration' : m.slot === 'eval' ? 'Use for evaluation' : 'Use as labels',
          });
          if (files?.[0]) {
            picked[m.slot] = files[0].fsPath;
            post({ type: 'picked', slot: m.slot, file: files[0].fsPath });
          }
          break;
        }
        case 'preview': {
          const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Model Compressor: previewing the plan' }, () =>
            client.job({ kind: 'plan', model: model.fsPath, recipe: m.recipe, calib: picked.calib }),
          );
          post({ type: 'preview', steps: r.steps, before: r.before });
          break;
        }
        case 'run': {
          const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Compressing ${name}`, cancellable: true }, async (progress, token) => {
            const ctl = new AbortController();
            token.onCancellationRequested(() => ctl.abort());
            return client.job({ kind: 'compress', model: model.fsPath, output, recipe: m.recipe, calib: picked.calib, eval: picked.eval, labels: picked.labels, benchRuns: vscode.workspace.getConfiguration('modelCompressor').get<number>('benchmarkRuns'), threads: vscode.workspace.getConfiguration('modelCompressor').get('ortThreads', 0) }, { signal: ctl.signal, onProgress: (stage) => progress.report({ message: stage }) });
          });
          wrote = true;
          if (result.exits) exitRuns.add(result.exits.id);
          post({ type: 'result', result: result });
          break;
        }
        case 'saveRecipe': {
          const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(path.dirname(model.fsPath), `${path.basename(model.fsPath).replace(/\.(onnx|json)$/i, '')}.recipe.json`)), filters: { 'Recipe (JSON)': ['json'] } });
          if (target) await vscode.workspace.fs.writeFile(target, Buffer.from(`${JSON.stringify(m.recipe, null, 2)}\n`));
          break;
        }
        case 'reexport': {
          if (!exitRuns.has(m.id)) {
            post({ type: 'reexportFailed', id: m.id, message: 'not an early-exit run of this panel' });
            break;
          }
          try {
            const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Model Compressor: re-exporting the early exits' }, () => client.job({ kind: 'exitsReexport', id: m.id, threshold: m.threshold }));
            post({ type: 'reexported', result });
          } catch (e) {
            post({ type: 'reexportFailed', id: m.id, message: e instanceof Error ? e.message : String(e) });
          }
          break;
        }
        case 'openOutput':
          if (wrote) await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(output), ext === '.json' ? 'modelCompressor.modelEditor.tfjs' : 'modelCompressor.modelEditor');
          break;
      }
    } catch (e) {
      post({ type: 'error', message: e instanceof JobError && e.kind === 'cancelled' ? 'cancelled' : e instanceof Error ? e.message : String(e) });
    }
  });
  return panel;
}
