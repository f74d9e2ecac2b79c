// Largest files and functions (lines), from the TypeScript AST: `node scripts/sizes.mjs [N] [dirs…]`.
import * as fs from 'fs';
import * as path from 'path';
import ts from 'typescript';

const args = process.argv.slice(2);
const top = /^\d+$/.test(args[0] ?? '') ? Number(args.shift()) : 10;
const roots = args.length ? args : ['src', 'webview'];
const files = [];
const walk = (d) => {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) files.push(p);
  }
};
roots.forEach(walk);

const fileRows = [];
const fnRows = [];
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  fileRows.push({ file, lines: sf.getLineAndCharacterOfPosition(sf.end).line + 1 });
  const visit = (node, owner) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const a = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const b = sf.getLineAndCharacterOfPosition(node.end).line;
      const name = node.name?.getText(sf) ?? owner ?? '(anonymous)';
      fnRows.push({ file, name, lines: b - a + 1 });
    }
    const next = ts.isVariableDeclaration(node) || ts.isPropertyAssignment(node) ? node.name.getText(sf) : owner;
    ts.forEachChild(node, (c) => visit(c, next));
  };
  visit(sf, undefined);
}
fileRows.sort((a, b) => b.lines - a.lines);
fnRows.sort((a, b) => b.lines - a.lines);
console.log(`largest files (${roots.join(', ')}):`);
for (const r of fileRows.slice(0, top)) console.log(`  ${String(r.lines).padStart(5)}  ${r.file}`);
console.log('largest functions:');
for (const r of fnRows.slice(0, top)) console.log(`  ${String(r.lines).padStart(5)}  ${r.name}  (${r.file})`);
