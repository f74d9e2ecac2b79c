// Runs inside the VS Code extension host (extensionTestsPath). Plain CommonJS so it needs no build.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');

async function run() {
  const results = [];
  const test = async (name, fn) => {
    try {
      await fn();
      results.push(`✔ ${name}`);
    } catch (e) {
      results.push(`✘ ${name}: ${e && e.message}`);
    }
  };
  const ext = vscode.extensions.all.find((e) => e.packageJSON.name === 'model-compressor');
  await test('the extension is present and activates', async () => {
    assert.ok(ext, 'extension found');
    await ext.activate();
  });
  await test('commands are registered', async () => {
    const all = await vscode.commands.getCommands(true);
    for (const c of ['modelCompressor.inspect', 'modelCompressor.compress', 'modelCompressor.quantizeInt8', 'modelCompressor.benchmark', 'modelCompressor.compareModels', 'modelCompressor.probeWebview']) assert.ok(all.includes(c), c);
  });
  const folder = vscode.workspace.workspaceFolders[0].uri.fsPath;
  const model = path.join(folder, 'digits_cnn.onnx');
  await test('opening digits_cnn.onnx resolves the custom editor', async () => {
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(model), 'modelCompressor.modelEditor');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab && tab.input && tab.input.viewType && tab.input.viewType.endsWith('modelCompressor.modelEditor'), `active tab ${JSON.stringify(tab && tab.input)}`);
  });
  await test('one-click INT8 writes the new file and leaves the original byte-identical', async () => {
    const before = fs.readFileSync(model);
    const out = path.join(folder, 'digits_cnn.int8.onnx');
    if (fs.existsSync(out)) fs.unlinkSync(out);
    const r = await vscode.commands.executeCommand('modelCompressor.quantizeInt8', vscode.Uri.file(model));
    assert.ok(r && r.output === out, `result ${JSON.stringify(r && r.output)}`);
    assert.ok(fs.statSync(out).size < 0.3 * before.length);
    assert.ok(fs.readFileSync(model).equals(before));
    fs.unlinkSync(out);
  });
  await test('a TF.js model.json opens with the editor as an option', async () => {
    const dir = path.join(folder, 'tfjs');
    const src = path.join(__dirname, '../../fixtures/tfjs');
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(path.join(dir, 'model.json')), 'modelCompressor.modelEditor.tfjs');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab && tab.input && String(tab.input.viewType).endsWith('modelCompressor.modelEditor.tfjs'), `active tab ${JSON.stringify(tab && tab.input)}`);
  });
  console.log(results.join('\n'));
  const failed = results.filter((r) => r.startsWith('✘'));
  if (failed.length) throw new Error(`${failed.length} extension-host test(s) failed:\n${failed.join('\n')}`);
}

module.exports = { run };
