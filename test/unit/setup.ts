// Loaded by mocha before any test file (.mocharc.json "require"): ONNX Runtime's telemetry must be
// off before onnxruntime-node loads, and test helpers load it directly.
process.env.ORT_DISABLE_TELEMETRY = '1';
