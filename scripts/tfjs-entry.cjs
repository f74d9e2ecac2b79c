// Entry for dist/tfjs-bundle.js: TensorFlow.js (pure JS) and its WebAssembly backend bundled once,
// loaded lazily by the engine (src/core/runtime/tfjs.ts) so that the packaged extension needs no
// node_modules for them. The backend's .wasm files are copied beside the bundle by build.mjs.
module.exports = { tf: require('@tensorflow/tfjs'), wasm: require('@tensorflow/tfjs-backend-wasm') };
