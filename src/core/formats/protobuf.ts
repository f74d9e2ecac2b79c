/**
 * Minimal protobuf wire-format codec.
 *
 * The reader never copies length-delimited payloads: `bytes()` returns a view onto the
 * input buffer, which is what keeps tensor data lazy. Every read is bounds-checked and
 * throws `WireError` on malformed input, so callers can turn it into a user-facing message.
 *
 * The writer collects output as a list of chunks. Large byte payloads are appended by
 * reference (no copy), so serialising a model with gigabytes of weights does not
 * duplicate them in memory.
 */

export class WireError extends Error {}

export const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  StartGroup = 3,
  EndGroup = 4,
  Fixed32 = 5,
}

import type { Int64 } from '../ir/dtype';
export type { Int64 };

const TWO_32 = 4294967296;

export class ProtoReader {
  pos: number;
  readonly end: number;
  private readonly view: DataView;

  constructor(readonly buf: Uint8Array, start = 0, end = buf.length) {
    this.pos = start;
    this.end = end;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a field tag; returns [fieldNumber, wireType]. */
  tag(): [number, number] {
    const t = this.uint32();
    const field = t >>> 3;
    const wt = t & 7;
    if (field === 0) throw new WireError(`invalid field number 0 at byte ${this.pos}`);
    if (wt > 5) throw new WireError(`invalid wire type ${wt} at byte ${this.pos}`);
    return [field, wt];
  }

  /** Varint that must fit in 32 bits (tags, lengths, enums). */
  uint32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.buf[this.pos++];
      if (i < 5) result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return result > 0xffffffff ? result % TWO_32 : result;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** Varint as int64: number when safe, bigint otherwise (negative values included). */
  int64(): Int64 {
    let lo = 0;
    let hi = 0;
    let i = 0;
    for (; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.buf[this.pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if ((b & 0x80) === 0) break;
    }
    if (i === 10) throw new WireError('varint longer than 10 bytes');
    lo >>>= 0;
    hi >>>= 0;
    if (hi < 0x200000) return hi * TWO_32 + lo; // < 2^53, non-negative
    const big = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
    const n = Number(big);
    return Number.isSafeInteger(n) ? n : big;
  }

  bool(): boolean {
    return this.uint32() !== 0;
  }

  float(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed64(): Int64 {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi < 0x200000) return hi * TWO_32 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** Length-delimited payload as a view (no copy). */
  bytes(): Uint8Array {
    const len = this.uint32();
    this.need(len);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  string(): string {
    const b = this.bytes();
    return textDecoder.decode(b);
  }

  /** A sub-reader over the next length-delimited payload. */
  sub(): ProtoReader {
    const len = this.uint32();
    this.need(len);
    const r = new ProtoReader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  /** Skips a field, returning a view of its complete encoding (tag included) from `tagStart`. */
  skip(wt: number, tagStart: number): Uint8Array {
    switch (wt) {
      case WireType.Varint:
        this.int64();
        break;
      case WireType.Fixed64:
        this.need(8);
        this.pos += 8;
        break;
      case WireType.LengthDelimited: {
        const len = this.uint32();
        this.need(len);
        this.pos += len;
        break;
      }
      case WireType.Fixed32:
        this.need(4);
        this.pos += 4;
        break;
      default:
        throw new WireError(`unsupported wire type ${wt} (groups are not used by ONNX)`);
    }
    return this.buf.subarray(tagStart, this.pos);
  }

  /** Packed or unpacked repeated varints. */
  repeatedInt64(wt: number, out: Int64[]): void {
    if (wt === WireType.LengthDelimited) {
      const r = this.sub();
      while (!r.done) out.push(r.int64());
    } else {
      this.expect(wt, WireType.Varint);
      out.push(this.int64());
    }
  }

  repeatedFloat(wt: number, out: number[]): void {
    if (wt === WireType.LengthDelimited) {
      const r = this.sub();
      while (!r.done) out.push(r.float());
    } else {
      this.expect(wt, WireType.Fixed32);
      out.push(this.float());
    }
  }

  expect(wt: number, want: WireType): void {
    if (wt !== want) throw new WireError(`wire type ${wt} where ${want} was expected at byte ${this.pos}`);
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new WireError(`truncated: needs ${n} bytes at byte ${this.pos}, ${this.end - this.pos} left`);
    }
  }
}

const textDecoder = new TextDecoder('utf-8');
const textEncoder = new TextEncoder();

/** Payloads at least this large are appended by reference instead of copied. */
const BY_REFERENCE = 4096;

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private buf: Uint8Array;
  private pos = 0;
  private flushedLength = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.flushedLength + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.flushedLength += this.pos;
    this.buf = new Uint8Array(256);
    this.pos = 0;
  }

  tag(field: number, wt: WireType): this {
    return this.uint32(((field << 3) | wt) >>> 0);
  }

  uint32(v: number): this {
    this.ensure(5);
    v >>>= 0;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
    return this;
  }

  int64(v: Int64): this {
    this.ensure(10);
    let big: bigint;
    if (typeof v === 'number') {
      if (v >= 0 && v <= 0xffffffff) return this.uint32(v);
      big = BigInt(Math.trunc(v));
    } else big = v;
    let u = BigInt.asUintN(64, big);
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
    return this;
  }

  float(v: number): this {
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.pos, v, true);
    this.pos += 4;
    return this;
  }

  double(v: number): this {
    this.ensure(8);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat64(this.pos, v, true);
    this.pos += 8;
    return this;
  }

  /** Appends raw bytes (already-encoded content); large ones by reference. */
  raw(b: Uint8Array): this {
    if (b.length >= BY_REFERENCE) {
      this.flush();
      this.chunks.push(b);
      this.flushedLength += b.length;
    } else {
      this.ensure(b.length);
      this.buf.set(b, this.pos);
      this.pos += b.length;
    }
    return this;
  }

  // ---- field helpers -------------------------------------------------------

  varintField(field: number, v: Int64): this {
    return this.tag(field, WireType.Varint).int64(v);
  }

  bytesField(field: number, b: Uint8Array): this {
    this.tag(field, WireType.LengthDelimited).uint32(b.length);
    return this.raw(b);
  }

  stringField(field: number, s: string): this {
    return this.bytesField(field, textEncoder.encode(s));
  }

  floatField(field: number, v: number): this {
    return this.tag(field, WireType.Fixed32).float(v);
  }

  messageField(field: number, m: ProtoWriter): this {
    this.tag(field, WireType.LengthDelimited).uint32(m.length);
    return this.append(m);
  }

  packedInt64(field: number, values: readonly Int64[]): this {
    if (values.length === 0) return this;
    const w = new ProtoWriter(values.length * 2 + 8);
    for (const v of values) w.int64(v);
    return this.messageField(field, w);
  }

  packedFloat(field: number, values: ArrayLike<number>): this {
    if (values.length === 0) return this;
    const w = new ProtoWriter(values.length * 4 + 8);
    for (let i = 0; i < values.length; i++) w.float(values[i]);
    return this.messageField(field, w);
  }

  append(other: ProtoWriter): this {
    for (const c of other.finish()) this.raw(c);
    return this;
  }

  /** The encoded message as chunks (views; do not mutate). */
  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }

  /** The encoded message as one contiguous buffer (copies). */
  toBytes(): Uint8Array {
    const chunks = this.finish();
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(this.flushedLength);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

export function encodeUtf8(s: string): Uint8Array {
  return textEncoder.encode(s);
}

export function decodeUtf8(b: Uint8Array): string {
  return textDecoder.decode(b);
}
