import type { Graph, Model, Node } from './graph';

/** Deep-enough copy of a graph for transforms and training: new node, value and initializer lists and maps; tensors shared until replaced. */
export function cloneGraphShallow(g: Graph): Graph {
  const c = Object.assign(Object.create(Object.getPrototypeOf(g)), g) as Graph;
  c.nodes = g.nodes.map((n) => {
    const m = Object.assign(Object.create(Object.getPrototypeOf(n)), n) as Node;
    m.inputs = [...n.inputs];
    m.outputs = [...n.outputs];
    m.attributes = new Map(n.attributes);
    return m;
  });
  c.inputs = g.inputs.map((v) => ({ ...v }));
  c.outputs = g.outputs.map((v) => ({ ...v }));
  c.valueInfo = new Map(g.valueInfo);
  c.initializers = new Map(g.initializers);
  c.sparseInitializers = [...g.sparseInitializers];
  return c;
}

/** A model copy whose graph lists can be edited without touching the original. */
export function cloneModel(m: Model): Model {
  const c = Object.assign(Object.create(Object.getPrototypeOf(m)), m) as Model;
  c.graph = cloneGraphShallow(m.graph);
  c.opsetImports = m.opsetImports.map((o) => ({ ...o }));
  c.metadata = [...m.metadata];
  c.source = m.source?.clone();
  return c;
}
