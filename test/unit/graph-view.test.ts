import * as assert from 'assert';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { parseFromWebview } from '../../src/host/webview-messages';
import { buildGraph, shortName } from '../../src/worker/graph-layout';
import { denseNetLike } from '../e2e/models';

describe('graph view data', () => {
  const model = denseNetLike({ unknownOp: true });
  const a = analyzeModel(model);
  const inputs = a.inputs.map((i) => i.name);

  it('draws weights inside their op box: Identity-of-initializer layers are folded into the conv that reads them', async () => {
    const g = await buildGraph(a.layers, inputs);
    const identities = a.layers.filter((l) => l.op === 'Identity').length;
    assert.ok(a.layers.length > 600, `a 600+ node model (${a.layers.length})`);
    assert.equal(g.nodes.length, a.layers.length - identities, 'every Identity of a weight is folded, nothing else');
    assert.equal(g.foldedInto.length, identities);
    const byIndex = new Map(g.nodes.map((n) => [n.i, n]));
    for (const [from, into] of g.foldedInto) {
      assert.equal(a.layers[from].op, 'Identity');
      assert.equal(byIndex.get(into)!.op, 'Conv', `${a.layers[from].name} is held by a Conv`);
    }
    const conv0 = g.nodes.find((n) => n.label === '/features/conv0/Conv')!;
    assert.deepEqual(conv0.weights, ['W ⟨16×3×3×3⟩', 'B ⟨16⟩']);
    assert.equal(conv0.short, 'conv0/Conv');
    assert.equal(conv0.shape, '[1, 16, 16, 16]');
    const bn = g.nodes.find((n) => n.label === '/features/norm0/BatchNormalization')!;
    assert.deepEqual(bn.weights, ['scale ⟨16⟩', 'B ⟨16⟩', 'mean ⟨16⟩', '+1 more']);
    for (const [x, y] of g.edges) assert.ok(byIndex.has(x) && byIndex.has(y), 'edges join drawn boxes only');
    // Each box is tall enough for its text lines (op, name, shape, weights) and lies inside the layout.
    for (const n of g.nodes) {
      assert.ok(n.h >= 22 + 13 * (1 + (n.shape ? 1 : 0) + n.weights.length), n.label);
      assert.ok(n.x - n.w / 2 >= -1 && n.x + n.w / 2 <= g.width + 1 && n.y + n.h / 2 <= g.height + 1, `${n.label} inside the layout`);
    }
  });

  it('collapses a name scope into one box holding its layers, params and MACs', async () => {
    const scope = '/features/denseblock1';
    const full = await buildGraph(a.layers, inputs);
    const g = await buildGraph(a.layers, inputs, [`${scope}/`]);
    const inScope = a.layers.filter((l) => l.name.startsWith(`${scope}/`));
    const box = g.nodes.find((n) => n.op === 'scope')!;
    assert.equal(box.label, scope);
    assert.equal(box.members, inScope.length);
    assert.equal(box.params, inScope.reduce((s, l) => s + l.params, 0));
    const drawnInScope = full.nodes.filter((n) => n.label.startsWith(`${scope}/`)).length;
    assert.equal(g.nodes.length, full.nodes.length - drawnInScope + 1);
    assert.deepEqual(g.collapsed, [scope]);
    const pool = g.nodes.find((n) => n.label === '/features/pool0/MaxPool')!;
    const trans = g.nodes.find((n) => n.label === '/features/transition1/norm/BatchNormalization')!;
    assert.ok(g.edges.some(([x, y]) => x === pool.i && y === box.i) && g.edges.some(([x, y]) => x === box.i && y === trans.i), 'the scope box is wired in place of its layers');
  });

  it('keeps the distinguishing tail of a path-like name', () => {
    assert.equal(shortName('/features/denseblock3/denselayer12/conv1/Conv'), 'conv1/Conv');
    assert.equal(shortName('StatefulPartitionedCall'), 'StatefulPartitionedCall');
  });

  it('accepts a collapse request from the webview only as a short list of strings', () => {
    assert.deepEqual(parseFromWebview({ type: 'graph', collapse: ['/features/denseblock3'] }), { type: 'graph', collapse: ['/features/denseblock3'] });
    assert.equal(parseFromWebview({ type: 'graph', collapse: [3] }), undefined);
    assert.equal(parseFromWebview({ type: 'graph', collapse: '/features' }), undefined);
    assert.equal(parseFromWebview({ type: 'graph', collapse: Array.from({ length: 65 }, () => '/a') }), undefined);
  });
});
