import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { ModelError, UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import type { SampleSource } from './sources';

/**
 * Image folders as model input, decoded with pure-JS decoders (pngjs, jpeg-js): each image
 * is resized (bilinear), scaled, normalised with mean/std and laid out NCHW or NHWC.
 */

export interface ImageOptions {
  height: number;
  width: number;
  channels: 1 | 3;
  layout: 'NCHW' | 'NHWC';
  /** Multiplies the 0..255 pixel values first. Default 1/255. */
  scale?: number;
  /** Per channel, subtracted after scaling. Default 0. */
  mean?: number[];
  /** Per channel, divides after subtracting the mean. Default 1. */
  std?: number[];
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

export function listImages(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase()))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Derives layout, size and channels from a model input shape such as [N,3,224,224] or [N,224,224,3]. */
export function imageOptionsFromShape(shape: Array<number | string | null>, base: Partial<ImageOptions> = {}): ImageOptions {
  if (shape.length !== 4) throw new UsageError(`an image input needs a 4-d shape, the model's is [${shape.join(', ')}]`);
  const [, a, b, c] = shape;
  const isCh = (d: unknown) => d === 1 || d === 3;
  let layout = base.layout;
  if (!layout) layout = isCh(a) ? 'NCHW' : isCh(c) ? 'NHWC' : 'NCHW';
  const [ch, h, w] = layout === 'NCHW' ? [a, b, c] : [c, a, b];
  const height = base.height ?? (typeof h === 'number' ? h : undefined);
  const width = base.width ?? (typeof w === 'number' ? w : undefined);
  const channels = base.channels ?? (ch === 1 ? 1 : 3);
  if (!height || !width) throw new UsageError('the model input has dynamic height/width: give --shape to fix them');
  const defined = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined));
  return { ...defined, layout, height, width, channels };
}

/** The largest decoded image (RGBA bytes) either decoder may allocate: jpeg-js's `maxMemoryUsageInMB`, and checked from a PNG's header. */
export const MAX_DECODED_IMAGE_MB = 512;

/**
 * Refuses a PNG whose IHDR declares more pixels than MAX_DECODED_IMAGE_MB holds as RGBA,
 * before decoding (a small file can declare 20000×20000). PNG spec §11.2.2: IHDR is the
 * first chunk; width and height are big-endian uint32 at bytes 16 and 20.
 */
function checkPngHeader(file: string, buf: Uint8Array): void {
  if (buf.length < 24 || String.fromCharCode(buf[12], buf[13], buf[14], buf[15]) !== 'IHDR') throw new ModelError(file, 'not a valid PNG (no IHDR chunk first)');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const mb = (width * height * 4) / 2 ** 20;
  if (width === 0 || height === 0) throw new ModelError(file, `the PNG declares an empty image (${width}×${height})`);
  if (mb > MAX_DECODED_IMAGE_MB) {
    throw new ModelError(file, `the PNG declares ${width}×${height} pixels (${Math.round(mb)} MiB decoded), over the ${MAX_DECODED_IMAGE_MB} MiB limit for one image`);
  }
}

export function decodeImage(file: string): { width: number; height: number; rgba: Uint8Array } {
  const buf = fs.readFileSync(file);
  if (buf[0] === 0x89 && buf[1] === 0x50) checkPngHeader(file, buf);
  try {
    if (buf[0] === 0x89 && buf[1] === 0x50) {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, rgba: png.data };
    }
    if (buf[0] === 0xff && buf[1] === 0xd8) {
      const j = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: MAX_DECODED_IMAGE_MB });
      return { width: j.width, height: j.height, rgba: j.data };
    }
  } catch (e) {
    throw new ModelError(file, `cannot decode the image (${e instanceof Error ? e.message : String(e)})`);
  }
  throw new ModelError(file, 'not a PNG or JPEG image');
}

/** Bilinear resize of one RGBA image into the output sample, with normalisation. */
export function imageToTensor(img: { width: number; height: number; rgba: Uint8Array }, o: ImageOptions, out: Float32Array, offset: number): void {
  const { height: H, width: W, channels: C } = o;
  const scale = o.scale ?? 1 / 255;
  const mean = o.mean ?? new Array(C).fill(0);
  const std = o.std ?? new Array(C).fill(1);
  const sx = img.width / W;
  const sy = img.height / H;
  for (let y = 0; y < H; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const dy = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, img.width - 1);
      const dx = fx - x0;
      const px = (xx: number, yy: number, ch: number) => img.rgba[(yy * img.width + xx) * 4 + ch];
      const sample = (ch: number) =>
        (px(x0, y0, ch) * (1 - dx) + px(x1, y0, ch) * dx) * (1 - dy) + (px(x0, y1, ch) * (1 - dx) + px(x1, y1, ch) * dx) * dy;
      for (let c = 0; c < C; c++) {
        const v = C === 1 ? 0.299 * sample(0) + 0.587 * sample(1) + 0.114 * sample(2) : sample(c);
        const norm = (v * scale - mean[c]) / std[c];
        const idx = o.layout === 'NCHW' ? c * H * W + y * W + x : (y * W + x) * C + c;
        out[offset + idx] = norm;
      }
    }
  }
}

export function imageFolderSource(dir: string, o: ImageOptions): SampleSource {
  const files = listImages(dir);
  if (files.length === 0) throw new ModelError(dir, 'the folder holds no .png or .jpg images');
  const per = o.height * o.width * o.channels;
  return {
    label: dir,
    dtype: DataType.FLOAT,
    sampleShape: o.layout === 'NCHW' ? [o.channels, o.height, o.width] : [o.height, o.width, o.channels],
    count: files.length,
    read(start, n) {
      const out = new Float32Array(n * per);
      for (let i = 0; i < n; i++) imageToTensor(decodeImage(files[start + i]), o, out, i * per);
      return out;
    },
  };
}
