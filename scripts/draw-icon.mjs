// Draws media/icon.png (the extension's 128x128 marketplace icon) with pngjs: a wide layer of
// network nodes on the left, wired to a narrower layer on the right, on a dark rounded square.
// Each pixel is 4x4 supersampled for anti-aliased edges. Run: node scripts/draw-icon.mjs
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';

const SIZE = 128;
const SS = 4; // samples per pixel along each axis

// Shapes are signed-distance functions in pixel units (negative inside), painted in order.
const roundedRect = (x0, y0, x1, y1, r) => (x, y) => {
  const qx = Math.max(x0 + r - x, 0, x - (x1 - r));
  const qy = Math.max(y0 + r - y, 0, y - (y1 - r));
  const outside = Math.hypot(qx, qy);
  const inside = Math.min(Math.max(x0 + r - x, x - (x1 - r), y0 + r - y, y - (y1 - r)), 0);
  return outside + inside - r;
};
const circle = (cx, cy, r) => (x, y) => Math.hypot(x - cx, y - cy) - r;
const segment = (ax, ay, bx, by, w) => (x, y) => {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - ax - t * dx, y - ay - t * dy) - w / 2;
};

const BG_TOP = [38, 50, 76];
const BG_BOTTOM = [20, 26, 40];
const WIRE = [120, 160, 220];
const LEFT = [110, 200, 255];
const RIGHT = [255, 196, 72];

const left = [20, 40, 60, 80, 100, 120].map((y) => [30, (y - 70) * 0.9 + 64]);
const right = [44, 64, 84].map((y) => [98, y]);
const layers = [];
layers.push({ sdf: roundedRect(4, 4, 124, 124, 24), color: (x, y) => BG_TOP.map((c, i) => c + ((BG_BOTTOM[i] - c) * y) / SIZE) });
for (const [ax, ay] of left) for (const [bx, by] of right) layers.push({ sdf: segment(ax, ay, bx, by, 2.2), color: () => WIRE, alpha: 0.55 });
// The arrow of compression, under the right-hand layer.
layers.push({ sdf: segment(50, 112, 78, 112, 5), color: () => RIGHT });
layers.push({ sdf: segment(78, 112, 70, 104, 5), color: () => RIGHT });
layers.push({ sdf: segment(78, 112, 70, 120, 5), color: () => RIGHT });
for (const [x, y] of left) layers.push({ sdf: circle(x, y, 7.5), color: () => LEFT });
for (const [x, y] of right) layers.push({ sdf: circle(x, y, 9.5), color: () => RIGHT });

const png = new PNG({ width: SIZE, height: SIZE });
for (let py = 0; py < SIZE; py++) {
  for (let px = 0; px < SIZE; px++) {
    let r = 0, g = 0, b = 0, a = 0;
    for (let sy = 0; sy < SS; sy++) {
      for (let sx = 0; sx < SS; sx++) {
        const x = px + (sx + 0.5) / SS;
        const y = py + (sy + 0.5) / SS;
        // Composite the layers front to back at this sample ("over" operator, premultiplied).
        let cr = 0, cg = 0, cb = 0, ca = 0;
        for (const l of layers) {
          if (l.sdf(x, y) > 0) continue;
          const al = l.alpha ?? 1;
          const c = l.color(x, y);
          cr = c[0] * al + cr * (1 - al);
          cg = c[1] * al + cg * (1 - al);
          cb = c[2] * al + cb * (1 - al);
          ca = al + ca * (1 - al);
        }
        r += cr;
        g += cg;
        b += cb;
        a += ca;
      }
    }
    const n = SS * SS;
    const o = (py * SIZE + px) * 4;
    // Un-premultiply the averaged colour; alpha is the coverage.
    png.data[o] = a ? Math.round(r / a) : 0;
    png.data[o + 1] = a ? Math.round(g / a) : 0;
    png.data[o + 2] = a ? Math.round(b / a) : 0;
    png.data[o + 3] = Math.round((a / n) * 255);
  }
}
const out = new URL('../media/icon.png', import.meta.url);
writeFileSync(out, PNG.sync.write(png));
console.log(`wrote ${out.pathname} (${SIZE}x${SIZE})`);
