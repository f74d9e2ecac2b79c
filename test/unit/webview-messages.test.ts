import { strict as assert } from 'assert';
import { parseFromWebview } from '../../src/host/webview-messages';

describe('webview messages are untrusted input', () => {
  it('accepts exactly the known shapes', () => {
    assert.deepEqual(parseFromWebview({ type: 'ready' }), { type: 'ready' });
    const l = { type: 'layers', requestId: 3, offset: 0, limit: 100, sortBy: 'macs', descending: true, filter: 'conv' };
    assert.deepEqual(parseFromWebview({ ...l, extra: 'dropped' }), l);
    assert.deepEqual(parseFromWebview({ type: 'command', command: 'quantizeInt8' }), { type: 'command', command: 'quantizeInt8' });
    assert.deepEqual(parseFromWebview({ type: 'graph' }), { type: 'graph' });
    assert.deepEqual(parseFromWebview({ type: 'locate', index: 3, sortBy: 'index', descending: false, filter: '' }), { type: 'locate', index: 3, sortBy: 'index', descending: false, filter: '' });
    assert.equal(parseFromWebview({ type: 'locate', index: -3, sortBy: 'index', descending: false, filter: '' }), undefined);
  });

  it('drops anything else', () => {
    const bad: unknown[] = [
      null, 'ready', [], { type: 'eval', code: 'x' },
      { type: 'layers', requestId: 1, offset: -1, limit: 10, sortBy: 'macs', descending: false, filter: '' },
      { type: 'layers', requestId: 1, offset: 0, limit: 1e9, sortBy: 'macs', descending: false, filter: '' },
      { type: 'layers', requestId: 1, offset: 0, limit: 10, sortBy: '__proto__', descending: false, filter: '' },
      { type: 'layers', requestId: 1, offset: 0, limit: 10, sortBy: 'macs', descending: 'yes', filter: '' },
      { type: 'layers', requestId: 1, offset: 0, limit: 10, sortBy: 'macs', descending: false, filter: 'x'.repeat(201) },
      { type: 'tensor', layer: 42 },
      { type: 'command', command: 'workbench.action.terminal.new' },
    ];
    for (const b of bad) assert.equal(parseFromWebview(b), undefined, JSON.stringify(b)?.slice(0, 80));
  });
});

describe('Compress panel messages are untrusted input', () => {
  const { parseFromCompress } = require('../../src/host/compress-messages') as typeof import('../../src/host/compress-messages');
  it('accepts slots and recipes, never paths', () => {
    assert.deepEqual(parseFromCompress({ type: 'pick', slot: 'calib' }), { type: 'pick', slot: 'calib' });
    assert.deepEqual(parseFromCompress({ type: 'run', recipe: { steps: [] } }), { type: 'run', recipe: { steps: [] } });
    assert.equal(parseFromCompress({ type: 'pick', slot: '/etc/passwd' }), undefined);
    assert.equal(parseFromCompress({ type: 'run', recipe: 'rm -rf /' }), undefined);
    assert.equal(parseFromCompress({ type: 'run', recipe: { s: 'x'.repeat(200_000) } }), undefined);
    assert.equal(parseFromCompress({ type: 'openOutput', path: '/etc/passwd' })!.type, 'openOutput');
    assert.equal((parseFromCompress({ type: 'openOutput', path: '/etc/passwd' }) as Record<string, unknown>).path, undefined, 'extra fields are dropped');
  });

  it('takes the training slots, Cancel and Keep/Discard, and recipes only of the recipe shape', () => {
    assert.deepEqual(parseFromCompress({ type: 'pick', slot: 'train' }), { type: 'pick', slot: 'train' });
    assert.deepEqual(parseFromCompress({ type: 'pick', slot: 'trainLabels' }), { type: 'pick', slot: 'trainLabels' });
    assert.deepEqual(parseFromCompress({ type: 'cancel' }), { type: 'cancel' });
    assert.deepEqual(parseFromCompress({ type: 'resolvePartial', keep: false }), { type: 'resolvePartial', keep: false });
    assert.equal(parseFromCompress({ type: 'resolvePartial', keep: 'yes' }), undefined);
    assert.equal(parseFromCompress({ type: 'resolvePartial' }), undefined);
    const recipe = { steps: [{ step: 'quantize', mode: 'static', options: { method: 'entropy', qat: true, exclude: ['a', 'b'] } }] };
    assert.deepEqual(parseFromCompress({ type: 'run', recipe }), { type: 'run', recipe });
    for (const bad of [{ steps: [{ mode: 'static' }] }, { steps: [{ step: 1 }] }, { steps: [['prune']] }, { steps: [{ step: 'prune', ratio: null }] }, { steps: [{ step: 'quantize', options: { a: { b: 1 } } }] }, { steps: 'prune' }]) {
      assert.equal(parseFromCompress({ type: 'preview', recipe: bad }), undefined, JSON.stringify(bad));
    }
  });
});
