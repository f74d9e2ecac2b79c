/**
 * Warnings of a compression report (a fidelity or accuracy collapse, random-weight reference
 * models, …), computed by the engine and shown above the figures so a broken result never
 * looks fine. A warning is a line, or a message with what helps.
 */
import { el } from './dom';

type Warning = string | { message: string; help?: string | string[] };

export function warningsBox(report: { warnings?: Warning[] }): HTMLElement[] {
  const ws = Array.isArray(report.warnings) ? report.warnings : [];
  if (!ws.length) return [];
  const box = el('div', { id: 'warnings', role: 'alert' });
  for (const w of ws) {
    const item = el('div', { class: 'warning' });
    // A one-line warning reads "<what collapsed>. What helps: <…>": the first part is the headline.
    const [message, ...rest] = typeof w === 'string' ? w.split(/(?<=\.)\s+(?=What helps:)/) : [w.message];
    item.append(el('b', {}, `⚠ ${message}`));
    const help = typeof w === 'string' ? rest : Array.isArray(w.help) ? w.help : w.help ? [w.help] : [];
    if (help.length) {
      const ul = el('ul');
      for (const h of help) ul.append(el('li', {}, h));
      item.append(ul);
    }
    box.append(item);
  }
  return [box];
}

export const WARNING_CSS = `#warnings{margin:8px 0}.warning{border-left:4px solid var(--vscode-editorWarning-foreground);background:var(--vscode-inputValidation-warningBackground,rgba(204,167,0,.12));padding:6px 10px;margin:4px 0}.warning b{color:var(--vscode-editorWarning-foreground)}.warning ul{margin:4px 0 0 0;padding-left:1.2em}`;
