import { registerChannelRule } from '../rules';
import { layoutSize, type Layout } from '../types';

/**
 * Concat along channels: the output's layout is the inputs' layouts at their offsets; an
 * input whose channels no group owns is a fixed segment. Along another axis: not followed.
 */
registerChannelRule(['Concat'], {
  trace(n, t) {
    const out = n.outputs[0];
    const rank = t.shapes.get(out)?.shape?.length ?? 0;
    const axis = n.int('axis', 0);
    if (!(axis === 1 || (rank > 0 && axis === 1 - rank))) {
      t.markUnsafe(n.inputs.filter((i) => t.layout(i)).map((c) => t.layout(c)!).flat(), 'Concat along an axis other than channels');
      return;
    }
    const layout: Layout = [];
    let offset = 0;
    let ok = true;
    for (const i of n.inputs) {
      const l = t.layout(i);
      const c = t.channelsOf(i);
      if (l) {
        for (const s of l) layout.push({ ...s, offset: offset + s.offset });
        offset += layoutSize(l);
      } else if (c !== undefined) {
        layout.push({ group: -1, offset, size: c, block: 1, start: 0 });
        offset += c;
      } else ok = false;
    }
    if (!ok) {
      t.markUnsafe(layout, 'Concat with an input of unknown channel count');
      return;
    }
    t.setLayout(out, layout);
  },
});
