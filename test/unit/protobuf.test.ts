import { strict as assert } from 'assert';
import { ProtoReader, ProtoWriter, WireError } from '../../src/core/formats/protobuf';

describe('protobuf wire codec', () => {
  it('round-trips int64 varints including negatives and values past 2^53', () => {
    const values: Array<number | bigint> = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1, -1, -(2 ** 40), 9223372036854775807n, -9223372036854775808n];
    const w = new ProtoWriter();
    for (const v of values) w.int64(v);
    const r = new ProtoReader(w.toBytes());
    for (const v of values) assert.equal(r.int64(), v);
    assert.ok(r.done);
  });

  it('encodes -1 as a 10-byte varint, as protobuf requires', () => {
    assert.equal(new ProtoWriter().int64(-1).toBytes().length, 10);
  });

  it('returns length-delimited payloads as views, without copying', () => {
    const payload = new Uint8Array(10000).fill(7);
    const w = new ProtoWriter().bytesField(9, payload);
    const buf = w.toBytes();
    const r = new ProtoReader(buf);
    r.tag();
    const v = r.bytes();
    assert.equal(v.buffer, buf.buffer);
    assert.equal(v.length, 10000);
  });

  it('rejects truncated input and bad wire types with WireError', () => {
    const buf = new ProtoWriter().bytesField(1, new Uint8Array(50)).toBytes();
    const r = new ProtoReader(buf.subarray(0, 20));
    r.tag();
    assert.throws(() => r.bytes(), WireError);
    assert.throws(() => new ProtoReader(Uint8Array.of(0x0f)).tag(), WireError); // wire type 7
    assert.throws(() => new ProtoReader(Uint8Array.of(0x80, 0x80)).uint32(), WireError);
  });
});
