import * as fs from 'fs';
import * as path from 'path';
import { saveModel } from '../src/core/formats/registry';
import { DataType } from '../src/core/ir/dtype';
import { Graph, Model, Node } from '../src/core/ir/graph';
import { Tensor } from '../src/core/ir/tensor';
import { WorkerClient } from '../src/host/worker-client';
import { benchDir, median, report } from './util';
import { sharedFixture } from './runner';
import { writeDenseNetLike } from '../test/e2e/models';

/** A model with `n` nodes: a chain of small MatMul → Add → Relu blocks with skip connections. */
function bigGraph(n: number): string {
  const file = path.join(benchDir(), `graph-${n}.onnx`);
  if (fs.existsSync(file)) return file;
  const g = new Graph('big');
  g.inputs.push({ name: 'x', type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['n', 16] } });
  let cur = 'x';
  for (let i = 0; g.nodes.length < n; i++) {
    const w = `w${i}`;
    g.initializers.set(w, Tensor.fromArray(w, DataType.FLOAT, [16, 16], Float32Array.from({ length: 256 }, (_, k) => Math.sin(k + i) * 0.1)));
    g.nodes.push(new Node('MatMul', [cur, w], [`m${i}`], `mm${i}`));
    g.nodes.push(new Node('Add', [`m${i}`, cur], [`a${i}`], `add${i}`));
    g.nodes.push(new Node('Relu', [`a${i}`], [`r${i}`], `relu${i}`));
    cur = `r${i}`;
  }
  g.outputs.push({ name: cur, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: ['n', 16] } });
  const m = new Model(g);
  m.opsetImports = [{ domain: '', version: 17 }];
  saveModel(m, file);
  return file;
}

/** Editor speed: summary of MobileNetV2; sort, filter and layout of a 5,000-node model (all via the worker). */
export async function benchUi(): Promise<void> {
  const client = new WorkerClient(path.join(__dirname, '../src/worker/main.js'));
  const rows: Array<[string, string]> = [];
  try {
    const mobilenet = sharedFixture('mobilenet_v2.onnx') ?? path.join(__dirname, '../../test/fixtures/mobilenet_v2.onnx');
    await client.job({ kind: 'sleep', ms: 1 }); // start the worker first: its start-up is paid once per session
    let t = Date.now();
    await client.job({ kind: 'inspect', model: mobilenet });
    rows.push(['MobileNetV2 summary (open + analyse, cold)', `${Date.now() - t} ms   (target: paints within 500 ms)`]);
    const file = bigGraph(5000);
    t = Date.now();
    await client.job({ kind: 'inspect', model: file });
    rows.push(['5,000-node model summary', `${Date.now() - t} ms`]);
    const sortTimes: number[] = [];
    const filterTimes: number[] = [];
    for (const [k, key] of (['macs', 'params', 'name', 'op'] as const).entries()) {
      t = Date.now();
      await client.job({ kind: 'layers', model: file, offset: 0, limit: 200, sortBy: key, descending: k % 2 === 0 });
      sortTimes.push(Date.now() - t);
      t = Date.now();
      await client.job({ kind: 'layers', model: file, offset: 0, limit: 200, filter: ['relu', 'mm12', 'add', 'zzz'][k] });
      filterTimes.push(Date.now() - t);
    }
    rows.push(['sort 5,000 rows (first page), median of 4 keys', `${median(sortTimes)} ms   (target < 200 ms)`]);
    rows.push(['filter 5,000 rows (first page), median of 4', `${median(filterTimes)} ms   (target < 200 ms)`]);
    t = Date.now();
    const g = await client.job({ kind: 'graph', model: file });
    rows.push([`graph layout, ${g.nodes.length} boxes (dagre, 2 threads, chunked, wrapped into columns)`, `${g.layoutMs} ms layout, ${Date.now() - t} ms end to end   (target < 3 s)`]);
    // A DenseNet-121-like model: weights read through Identity nodes are folded into their convs.
    const dense = writeDenseNetLike(path.join(benchDir(), 'densenet-like.onnx'), { unknownOp: true });
    const s = await client.job({ kind: 'inspect', model: dense });
    t = Date.now();
    const d = await client.job({ kind: 'graph', model: dense });
    rows.push([`graph layout, DenseNet-like: ${s.totals.nodes} layers drawn as ${d.nodes.length} boxes`, `${d.layoutMs} ms layout, ${Date.now() - t} ms end to end`]);
  } finally {
    client.dispose();
  }
  report('model editor speed (worker side; the webview renders only visible rows)', rows);
}
