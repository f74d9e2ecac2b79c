/** Human-readable number formatting for CLI tables. */
import { maxOf } from '../core/util/arrays';
import { printable } from '../core/util/text';

export function fmtCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return '?';
  if (Math.abs(n) >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '?';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${u[i]}`;
}

export function fmtGrouped(n: number): string {
  return n.toLocaleString('en-US');
}

/** Renders rows as an aligned text table; numeric-looking columns are right-aligned. */
export function table(headers: string[], rows: string[][], maxWidth = 48): string {
  const cut = (raw: string) => {
    const s = printable(raw);
    return s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s;
  };
  const all = [headers, ...rows].map((r) => r.map(cut));
  const widths = headers.map((_, c) => maxOf(all.map((r) => (r[c] ?? '').length)));
  const numeric = headers.map((_, c) => rows.length > 0 && rows.every((r) => /^[-\d.,?%]+\s*[A-Za-z]*$/.test(r[c] ?? '')));
  const line = (r: string[]) =>
    r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}
