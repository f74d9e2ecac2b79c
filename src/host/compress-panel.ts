import * as path from 'path';
import * as vscode from 'vscode';
import type { DataSlot, ToCompress } from '../protocol/compress';
import { parseFromCompress } from './compress-messages';
import { webviewHtml } from './html';
import { JobError, type WorkerClient } from './worker-client';

/** The file dialog of each data slot: folders (image data) except for labels. */
const PICK: Record<DataSlot, { label: string; folders: boolean }> = {
  calib: { label: 'Use for calibration', folders: true },
  eval: { label: 'Use for evaluation', folders: true },
  labels: { label: 'Use as evaluation labels', folders: false },
  train: { label: 'Use for training', folders: true },
  trainLabels: { label: 'Use as training labels', folders: false },
};

/**
 * The Compress panel: compose steps (forms from the engine's step registry), preview their
 * effect, run them in the worker with progress, a live training chart and Cancel, compare
 * before and after, open the output, save the recipe for the CLI
 * (`model-compressor compress --recipe`). Cancel during training comes back with the best
 * model so far in a temporary file, which the user keeps (moved into place) or discards.
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
  /** The running compression (Cancel aborts it). */
  let running: AbortController | undefined;
  /** A cancelled run's temporary output, until kept or discarded. */
  let partial: string | undefined;
  const post = (m: ToCompress) => void panel.webview.postMessage(m);
  const dropPartial = async () => {
    const token = partial;
    partial = undefined;
    if (token) await client.job({ kind: 'resolvePartial', partial: token, output, keep: false }).catch(() => undefined);
  };
  panel.onDidDispose(() => {
    running?.abort();
    void dropPartial();
    if (exitRuns.size) void client.job({ kind: 'exitsDrop', ids: [...exitRuns] }).catch(() => undefined);
  });
  panel.webview.onDidReceiveMessage(async (raw) => {
    try {
      // Inside the try: nothing a webview sends may become an unhandled rejection in the host.
      const m = parseFromCompress(raw);
      if (!m) return;
      switch (m.type) {
        case 'ready': {
          const { format, forms } = await client.job({ kind: 'stepForms', model: model.fsPath });
          post({ type: 'init', model: name, format, output, data: { ...picked }, forms });
          if (!forms.length) post({ type: 'error', message: `${name}: ${format} models are read-only here; Compress works on ONNX and TF.js models` });
          break;
        }
        case 'pick': {
          const how = PICK[m.slot];
          const labels = !how.folders;
          const files = await vscode.window.showOpenDialog({
            canSelectMany: false,
            canSelectFiles: true,
            canSelectFolders: how.folders,
            filters: labels ? { Labels: ['npy', 'pb'] } : { 'Data (.npy, .pb, or an image folder)': ['npy', 'pb'] },
            openLabel: how.label,
          });
          if (files?.[0]) {
            picked[m.slot] = files[0].fsPath;
            post({ type: 'picked', slot: m.slot, file: files[0].fsPath });
          }
          break;
        }
        case 'preview': {
          const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Model Compressor: previewing the plan' }, () =>
            client.job({ kind: 'plan', model: model.fsPath, recipe: m.recipe, calib: picked.calib, train: picked.train, trainLabels: picked.trainLabels }),
          );
          post({ type: 'preview', steps: r.steps, before: r.before });
          break;
        }
        case 'run': {
          if (running) return;
          await dropPartial();
          const config = vscode.workspace.getConfiguration('modelCompressor');
          const ctl = new AbortController();
          running = ctl;
          try {
            const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Compressing ${name}`, cancellable: true }, (progress, token) => {
              token.onCancellationRequested(() => ctl.abort());
              let stage = '';
              return client.job(
                {
                  kind: 'compress',
                  model: model.fsPath,
                  output,
                  recipe: m.recipe,
                  calib: picked.calib,
                  eval: picked.eval,
                  labels: picked.labels,
                  train: picked.train,
                  trainLabels: picked.trainLabels,
                  benchRuns: config.get<number>('benchmarkRuns'),
                  threads: config.get('ortThreads', 0),
                  keepOnCancel: true,
                },
                {
                  signal: ctl.signal,
                  onProgress: (s) => {
                    progress.report({ message: s });
                    // The recipe step that trains ("step 1/2 (prune)"), for the chart's status line.
                    stage = /^step \d+\/\d+ \([^)]+\)/.exec(s)?.[0] ?? stage;
                  },
                  onTrainProgress: (batch) => post({ type: 'train', progress: batch, stage }),
                },
              );
            });
            if (result.cancelled) partial = result.cancelled.partial;
            else wrote = true;
            if (result.exits) exitRuns.add(result.exits.id);
            post({ type: 'result', result });
          } finally {
            running = undefined;
          }
          break;
        }
        case 'cancel':
          running?.abort();
          break;
        case 'resolvePartial': {
          const token = partial;
          if (!token) return;
          partial = undefined;
          const r = await client.job({ kind: 'resolvePartial', partial: token, output, keep: m.keep });
          if (r.output) wrote = true;
          post({ type: 'resolved', kept: m.keep, output: r.output ?? undefined });
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
