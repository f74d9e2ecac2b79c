/**
 * Text that came from a file, made safe to print. Control characters (C0 such as ESC, BEL,
 * CR, LF, NUL; DEL; C1 such as CSI U+009B) and the Unicode bidirectional overrides (U+202A–
 * U+202E, U+2066–U+2069) are written as escapes (`\x1b`, `\n`, `\u202e`), so a tensor name
 * cannot move the cursor, set the terminal title, clear the screen or split a one-line error.
 * JSON output needs no help: JSON.stringify escapes C0 already.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function printable(s: string): string {
  return s.replace(UNSAFE, (c) => NAMED[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * Multi-line output (a report, a table) made safe for a terminal: like `printable`, but the
 * line feeds the tool itself laid out are kept. The last guard before stdout and stderr.
 */
export function terminalSafe(s: string): string {
  return s.replace(UNSAFE, (c) => (c === '\n' ? c : printable(c)));
}
