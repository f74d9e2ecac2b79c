/**
 * A minimal, bounds-checked FlatBuffers reader: tables, vtables, scalars, strings and
 * vectors, addressed by field number (slot 4 + 2·id in the vtable). Every offset is
 * checked against the buffer, so a corrupt or hostile file fails with a message instead of
 * reading out of bounds or looping.
 */

/** A table's position in the buffer. */
export type Table = number;

export class FlatReader {
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly fail: (why: string) => never,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private check(pos: number, size: number, what: string): void {
    if (!Number.isSafeInteger(pos) || pos < 0 || pos + size > this.buf.length) this.fail(`corrupt FlatBuffer: ${what} at byte ${pos} lies outside the file (${this.buf.length} bytes)`);
  }

  private u32(pos: number, what: string): number {
    this.check(pos, 4, what);
    return this.view.getUint32(pos, true);
  }

  root(): Table {
    return this.tableAt(this.u32(0, 'root offset'), 'root table');
  }

  private tableAt(pos: number, what: string): Table {
    this.check(pos, 4, what);
    const vt = pos - this.view.getInt32(pos, true);
    this.check(vt, 4, `${what} vtable`);
    const size = this.view.getUint16(vt, true);
    if (size < 4 || size % 2) this.fail(`corrupt FlatBuffer: ${what} has a vtable of ${size} bytes`);
    this.check(vt, size, `${what} vtable`);
    return pos;
  }

  /** Absolute position of field `id`, or 0 when absent. */
  private field(t: Table, id: number): number {
    const vt = t - this.view.getInt32(t, true);
    const slot = 4 + 2 * id;
    if (slot >= this.view.getUint16(vt, true)) return 0;
    const off = this.view.getUint16(vt + slot, true);
    if (!off) return 0;
    if (off >= 65536 || t + off > this.buf.length) this.fail(`corrupt FlatBuffer: field ${id} of the table at ${t} is out of range`);
    return t + off;
  }

  int8(t: Table, id: number, dflt: number): number {
    const p = this.field(t, id);
    if (!p) return dflt;
    this.check(p, 1, 'byte field');
    return this.view.getInt8(p);
  }

  int32(t: Table, id: number, dflt: number): number {
    const p = this.field(t, id);
    if (!p) return dflt;
    this.check(p, 4, 'int field');
    return this.view.getInt32(p, true);
  }

  uint32(t: Table, id: number, dflt: number): number {
    const p = this.field(t, id);
    return p ? this.u32(p, 'uint field') : dflt;
  }

  uint64(t: Table, id: number): number {
    const p = this.field(t, id);
    if (!p) return 0;
    this.check(p, 8, 'ulong field');
    const v = this.view.getBigUint64(p, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`corrupt FlatBuffer: a 64-bit offset or size (${v}) is beyond any file`);
    return Number(v);
  }

  private target(t: Table, id: number): number {
    const p = this.field(t, id);
    if (!p) return 0;
    return p + this.u32(p, 'offset field');
  }

  table(t: Table, id: number): Table | null {
    const p = this.target(t, id);
    return p ? this.tableAt(p, `table field ${id}`) : null;
  }

  private vector(t: Table, id: number, elem: number): { start: number; length: number } | null {
    const p = this.target(t, id);
    if (!p) return null;
    const length = this.u32(p, 'vector length');
    this.check(p + 4, length * elem, `vector of ${length} elements`);
    return { start: p + 4, length };
  }

  string(t: Table, id: number): string | undefined {
    const v = this.vector(t, id, 1);
    return v ? Buffer.from(this.buf.buffer, this.buf.byteOffset + v.start, v.length).toString('utf8') : undefined;
  }

  /** A [ubyte] vector as a position and length in the buffer (no copy). */
  bytesAt(t: Table, id: number): { offset: number; length: number } | null {
    const v = this.vector(t, id, 1);
    return v ? { offset: v.start, length: v.length } : null;
  }

  ints(t: Table, id: number): number[] {
    const v = this.vector(t, id, 4);
    return v ? Array.from({ length: v.length }, (_, i) => this.view.getInt32(v.start + 4 * i, true)) : [];
  }

  floats(t: Table, id: number): number[] {
    const v = this.vector(t, id, 4);
    return v ? Array.from({ length: v.length }, (_, i) => this.view.getFloat32(v.start + 4 * i, true)) : [];
  }

  longs(t: Table, id: number): number[] {
    const v = this.vector(t, id, 8);
    return v ? Array.from({ length: v.length }, (_, i) => Number(this.view.getBigInt64(v.start + 8 * i, true))) : [];
  }

  tables(t: Table, id: number): Table[] {
    const v = this.vector(t, id, 4);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, i) => {
      const p = v.start + 4 * i;
      return this.tableAt(p + this.u32(p, 'table offset'), `table ${i} of vector field ${id}`);
    });
  }
}
