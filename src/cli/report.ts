import type { EvaluationReport } from '../core/runtime/evaluate';
import { printable } from '../core/util/text';
import { fmtBytes, fmtCount, table } from './format';

const pct = (a: number, b: number) => (b ? `${((a / b) * 100).toFixed(1)}%` : '');

/** The text report every compression command prints. */
export function renderReport(
  title: string,
  input: string,
  output: string,
  r: EvaluationReport,
  notes: string[],
  /** How many nodes/layers the command changed, or its own line for it (train counts weight tensors). */
  changed: number | string,
  skipped: Array<{ name: string; op: string; reason: string }>,
  mixed?: { target: string; keptInFloat: string[]; achieved: number },
  slowerBecause?: string,
): string {
  const lines = [`${title}: ${input} → ${output}`, ''];
  const rows: string[][] = [
    ['size', fmtBytes(r.before.sizeBytes), fmtBytes(r.after.sizeBytes), `${(r.after.sizeBytes / r.before.sizeBytes).toFixed(3)}x`],
    ['params', fmtCount(r.before.params), fmtCount(r.after.params), pct(r.after.params, r.before.params)],
    ['MACs', fmtCount(r.before.macs), fmtCount(r.after.macs), pct(r.after.macs, r.before.macs)],
  ];
  if (r.latencyMs) {
    rows.push(['latency p50', `${r.latencyMs.before.p50.toFixed(2)} ms`, `${r.latencyMs.after.p50.toFixed(2)} ms`, `${r.latencyMs.ratioP50.toFixed(3)}x`]);
  }
  if (r.fidelity?.accuracy) {
    const a = r.fidelity.accuracy;
    rows.push(['accuracy', a.reference.toFixed(4), a.candidate.toFixed(4), `${((a.candidate - a.reference) * 100).toFixed(2)} pp`]);
  }
  lines.push(table(['', 'before', 'after', 'change'], rows));
  if (r.fidelity) {
    const o = r.fidelity.outputs[0];
    lines.push('');
    lines.push(
      `fidelity on ${r.fidelity.data}${/samples/.test(r.fidelity.data) ? '' : ` (${r.fidelity.samples} samples)`}${r.fidelity.runtime === 'ONNX Runtime' ? '' : `, run by ${r.fidelity.runtime}`}: cosine ${o.cosine.toFixed(5)}, SQNR ${o.sqnrDb === null ? 'inf' : o.sqnrDb.toFixed(2)} dB, max|Δ| ${o.maxAbsDiff.toExponential(2)}` +
        (o.top1Agreement !== undefined ? `, top-1 agreement ${o.top1Agreement.toFixed(4)}` : ''),
    );
  }
  if (r.latencyNote) lines.push(`note: ${printable(r.latencyNote)}`);
  if (r.note) lines.push(`note: ${printable(r.note)}`);
  if (r.latencyMs && r.latencyMs.ratioP50 > 1.02) {
    lines.push(`note: the result is slower than the original here (${r.latencyMs.ratioP50.toFixed(2)}x p50, interleaved runs on this CPU)${slowerBecause ? `: ${printable(slowerBecause)}` : ''}`);
  }
  lines.push('', typeof changed === 'string' ? changed : `changed: ${changed}   left as they were: ${skipped.length}`);
  const reasons = new Map<string, number>();
  for (const s of skipped) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
  for (const [why, n] of reasons) lines.push(`  ${n} × ${printable(why)}`);
  if (mixed) lines.push(`accuracy-aware: ${mixed.target}; achieved ${mixed.achieved.toFixed(4)}; kept in float: ${printable(mixed.keptInFloat.join(', ')) || 'none'}`);
  if (r.layers?.length) {
    const worst = [...r.layers].filter((l) => l.sqnrDb !== null).sort((a, b) => a.sqnrDb! - b.sqnrDb!).slice(0, 8);
    if (worst.length) {
      lines.push('', 'lowest per-layer SQNR (output vs float):');
      lines.push(table(['layer', 'SQNR dB'], worst.map((l) => [l.name, l.sqnrDb!.toFixed(2)])));
    }
  }
  if (notes.length) lines.push('', ...notes.map((n) => `note: ${printable(n)}`));
  if (r.warnings?.length) lines.push('', ...r.warnings.map((w) => `warning: ${printable(w)}`));
  return lines.join('\n');
}
