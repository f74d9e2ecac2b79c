// Bundles the extension host, worker, CLI and webview with esbuild.
// onnxruntime-node (native) and vscode (provided by the editor) stay external.
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['vscode', 'onnxruntime-node', '@tensorflow/tfjs-node', '@tensorflow/tfjs'],
  logLevel: 'warning',
};
const entries = [
  { entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' },
  { entryPoints: ['src/core/runtime/bench-child.ts'], outfile: 'dist/bench-child.js' },
  existsSync('src/worker/main.ts') && { entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js' },
  existsSync('src/worker/layout-thread.ts') && { entryPoints: ['src/worker/layout-thread.ts'], outfile: 'dist/layout-thread.js' },
  existsSync('src/host/extension.ts') && { entryPoints: ['src/host/extension.ts'], outfile: 'dist/extension.js' },
].filter(Boolean);
const builds = entries.map((e) => ({ ...common, ...e }));
// TensorFlow.js in one lazily loaded file (only TF.js cross-checks need it).
builds.push({ ...common, entryPoints: ['scripts/tfjs-entry.cjs'], outfile: 'dist/tfjs-bundle.js', external: ['@tensorflow/tfjs-node'], minify: true, sourcemap: false });
for (const [entry, out] of [['webview/main.ts', 'dist/webview.js'], ['webview/compress.ts', 'dist/compress.js']]) {
  if (!existsSync(entry)) continue;
  builds.push({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
}
if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
