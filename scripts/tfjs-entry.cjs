// Entry for dist/tfjs-bundle.js: TensorFlow.js (pure JS) bundled once, loaded lazily by the engine
// (src/core/runtime/tfjs.ts) so that the packaged extension needs no node_modules for it.
module.exports = require('@tensorflow/tfjs');
