import * as vscode from 'vscode';
import type { GraphDto, ToWebview } from '../protocol/webview';
import { webviewHtml } from './html';
import { parseFromWebview } from './webview-messages';
import type { WorkerClient } from './worker-client';

/**
 * The readonly model editor: opens at once with a summary (inspect job), then the webview
 * pulls the layer table in pages from the worker. Only DTOs cross into the webview.
 */
export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider {
  static readonly viewType = 'modelCompressor.modelEditor';

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly client: WorkerClient,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(doc: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const dist = vscode.Uri.joinPath(this.ctx.extensionUri, 'dist');
    panel.webview.options = { enableScripts: true, localResourceRoots: [dist, vscode.Uri.joinPath(this.ctx.extensionUri, 'media')] };
    panel.iconPath = { light: vscode.Uri.joinPath(this.ctx.extensionUri, 'media', 'editor-light.svg'), dark: vscode.Uri.joinPath(this.ctx.extensionUri, 'media', 'editor-dark.svg') };
    panel.webview.html = webviewHtml(panel.webview, panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')), 'Model Compressor');
    const file = doc.uri.fsPath;
    const post = (m: ToWebview) => void panel.webview.postMessage(m);
    // Start reading at once, while VS Code is still creating the webview; the graph is laid
    // out in the background after the summary, so the Graph view is usually ready when asked.
    const summary = this.client.job({ kind: 'inspect', model: file });
    let graph: Promise<GraphDto> | undefined;
    let background: ReturnType<typeof setTimeout> | undefined;
    const graphOnce = () => {
      clearTimeout(background);
      return (graph ??= this.client.job({ kind: 'graph', model: file }));
    };
    // Not at once: the first seconds belong to the table (layout takes both cores).
    summary.then(() => (background = setTimeout(() => void graphOnce().catch(() => undefined), 2000)), () => undefined);
    panel.onDidDispose(() => clearTimeout(background));
    const fail = (e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    panel.webview.onDidReceiveMessage(async (raw) => {
      const m = parseFromWebview(raw);
      if (!m) return; // untrusted: unknown shapes are dropped
      try {
        switch (m.type) {
          case 'ready':
            post({ type: 'summary', file, summary: await summary });
            break;
          case 'layers': {
            const r = await this.client.job({ kind: 'layers', model: file, offset: m.offset, limit: m.limit, sortBy: m.sortBy, descending: m.descending, filter: m.filter });
            if ('rows' in r) post({ type: 'layersPage', requestId: m.requestId, total: r.total, offset: r.offset, rows: r.rows });
            break;
          }
          case 'graph':
            // A collapsed scope is laid out anew; the plain graph is laid out once.
            post({ type: 'graph', graph: m.collapse?.length ? await this.client.job({ kind: 'graph', model: file, collapse: m.collapse }) : await graphOnce() });
            break;
          case 'sensitivity': {
            const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Measuring pruning sensitivity', cancellable: true }, (progress, token) => {
              const ctl = new AbortController();
              token.onCancellationRequested(() => ctl.abort());
              // Progress shows in the panel itself (in view) and in the notification (which can cancel).
              return this.client.job({ kind: 'sensitivity', model: file }, {
                signal: ctl.signal,
                onProgress: (stage, f) => {
                  progress.report({ message: f === undefined ? stage : `${stage} ${(f * 100).toFixed(0)}%` });
                  post({ type: 'busy', stage: `sensitivity: ${stage}`, fraction: f });
                },
              });
            });
            post({ type: 'sensitivity', result });
            break;
          }
          case 'locate': {
            const r = await this.client.job({ kind: 'layers', model: file, offset: 0, limit: 1, sortBy: m.sortBy, descending: m.descending, filter: m.filter, locate: m.index });
            if ('position' in r) post({ type: 'located', index: m.index, position: r.position });
            break;
          }
          case 'tensor':
            post({ type: 'tensorDetail', layer: m.layer, detail: await this.client.job({ kind: 'tensor', model: file, layer: m.layer }) });
            break;
          case 'command':
            await vscode.commands.executeCommand(`modelCompressor.${m.command}`, doc.uri);
            break;
        }
      } catch (e) {
        fail(e);
      }
    });
  }
}
