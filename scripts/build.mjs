// Bundles the extension host, worker, CLI and webview with esbuild.
// onnxruntime-node (native) and vscode (provided by the editor) stay external.
import * as esbuild from 'esbuild';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const watch = process.argv.includes('--watch');
// `--outdir DIR --cli-only`: the CLI and TensorFlow.js bundles alone, elsewhere (the unit test of the bundle uses it).
const at = process.argv.indexOf('--outdir');
const dist = at > 0 ? process.argv[at + 1] : 'dist';
const cliOnly = process.argv.includes('--cli-only');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['vscode', 'onnxruntime-node', '@tensorflow/tfjs-node', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'],
  logLevel: 'warning',
};
const entries = [
  { entryPoints: ['src/cli/main.ts'], outfile: `${dist}/cli.js` },
  !cliOnly && { entryPoints: ['src/core/runtime/bench-child.ts'], outfile: `${dist}/bench-child.js` },
  !cliOnly && existsSync('src/worker/main.ts') && { entryPoints: ['src/worker/main.ts'], outfile: `${dist}/worker.js` },
  !cliOnly && existsSync('src/worker/layout-thread.ts') && { entryPoints: ['src/worker/layout-thread.ts'], outfile: `${dist}/layout-thread.js` },
  !cliOnly && existsSync('src/host/extension.ts') && { entryPoints: ['src/host/extension.ts'], outfile: `${dist}/extension.js` },
].filter(Boolean);
const builds = entries.map((e) => ({ ...common, ...e }));
// TensorFlow.js and its WebAssembly backend in one lazily loaded file (only TF.js work needs it),
// with the backend's binaries beside it. Node never uses the threaded build (no worker support there).
mkdirSync(dist, { recursive: true });
const wasmDir = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) copyFileSync(path.join(wasmDir, f), path.join(dist, f));
builds.push({ ...common, entryPoints: ['scripts/tfjs-entry.cjs'], outfile: `${dist}/tfjs-bundle.js`, external: ['@tensorflow/tfjs-node'], minify: true, sourcemap: false });
for (const [entry, out] of [['webview/main.ts', 'dist/webview.js'], ['webview/compress.ts', 'dist/compress.js']]) {
  if (cliOnly || !existsSync(entry)) continue;
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
