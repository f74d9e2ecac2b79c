#!/usr/bin/env node
'use strict';
// ONNX Runtime's telemetry stays off in this process and its children: set before it loads.
process.env.ORT_DISABLE_TELEMETRY = '1';
// The CLI is bundled by `npm run build` (run automatically by `npm install`).
require('../dist/cli.js').main();
