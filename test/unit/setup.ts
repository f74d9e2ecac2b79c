// Loaded by mocha before any test file (.mocharc.json "require"): ONNX Runtime's telemetry must be
// off before onnxruntime-node loads, and test helpers load it directly.
import * as fs from 'fs';

process.env.ORT_DISABLE_TELEMETRY = '1';

/** Temporary folders made by `tmpDir` (helpers/ort.ts); removed after the run unless MC_KEEP_TMP=1. */
const made: Set<string> = ((globalThis as { __mcTmpDirs?: Set<string> }).__mcTmpDirs ??= new Set());

export const mochaHooks = {
  afterAll(): void {
    if (process.env.MC_KEEP_TMP === '1') return;
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
    made.clear();
  },
};
