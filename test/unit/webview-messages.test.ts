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
