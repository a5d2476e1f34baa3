/**
 * @module test/data/tiny-parquet
 * A minimal Parquet writer for tests (no Parquet writer is installed and hyparquet only reads):
 * one row group, one PLAIN-encoded, uncompressed v1 data page per column, REQUIRED columns of
 * UTF-8 strings (BYTE_ARRAY), int64 or double. Metadata is Thrift compact protocol, per
 * https://github.com/apache/parquet-format/blob/master/src/main/thrift/parquet.thrift.
 */

type Column =
  | { name: string; type: 'string'; values: string[] }
  | { name: string; type: 'int64'; values: bigint[] }
  | { name: string; type: 'double'; values: number[] };

class Thrift {
  bytes: number[] = [];
  private last: number[] = [0];
  varint(v: bigint): void {
    let x = v;
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }
  zigzag(v: number | bigint): void {
    const b = BigInt(v);
    this.varint(b >= 0n ? b << 1n : (-b << 1n) - 1n);
  }
  field(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1]!;
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.last[this.last.length - 1] = id;
  }
  i32(id: number, v: number): void {
    this.field(id, 5);
    this.zigzag(v);
  }
  i64(id: number, v: number | bigint): void {
    this.field(id, 6);
    this.zigzag(v);
  }
  binary(id: number, s: string): void {
    this.field(id, 8);
    const b = Buffer.from(s, 'utf8');
    this.varint(BigInt(b.length));
    this.bytes.push(...b);
  }
  beginStruct(id: number): void {
    this.field(id, 12);
    this.last.push(0);
  }
  endStruct(): void {
    this.bytes.push(0);
    this.last.pop();
  }
  beginList(id: number, elemType: number, size: number): void {
    this.field(id, 9);
    if (size < 15) this.bytes.push((size << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(BigInt(size));
    }
  }
  listStruct(): void {
    this.last.push(0);
  }
  /** ends a list element struct (or, at top level, the outer struct) */
  end(): void {
    this.bytes.push(0);
    if (this.last.length > 1) this.last.pop();
  }
}

const PHYSICAL = { string: 6, int64: 2, double: 5 } as const;

function plain(col: Column): Buffer {
  const parts: Buffer[] = [];
  for (const v of col.values) {
    if (col.type === 'string') {
      const b = Buffer.from(v as string, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    } else if (col.type === 'int64') {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(v as bigint);
      parts.push(b);
    } else {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v as number);
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

export function writeTinyParquet(columns: Column[]): Buffer {
  const numRows = columns[0]!.values.length;
  const chunks: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const metas: { col: Column; offset: number; size: number }[] = [];
  for (const col of columns) {
    const data = plain(col);
    const h = new Thrift();
    h.i32(1, 0); // type DATA_PAGE
    h.i32(2, data.length); // uncompressed_page_size
    h.i32(3, data.length); // compressed_page_size
    h.beginStruct(5); // data_page_header
    h.i32(1, numRows);
    h.i32(2, 0);
    h.i32(3, 3);
    h.i32(4, 3); // num_values, PLAIN, RLE, RLE
    h.endStruct();
    h.end();
    const page = Buffer.concat([Buffer.from(h.bytes), data]);
    metas.push({ col, offset, size: page.length });
    chunks.push(page);
    offset += page.length;
  }
  const m = new Thrift();
  m.i32(1, 1); // version
  m.beginList(2, 12, columns.length + 1); // schema
  m.listStruct();
  m.binary(4, 'schema');
  m.i32(5, columns.length);
  m.end(); // root
  for (const col of columns) {
    m.listStruct();
    m.i32(1, PHYSICAL[col.type]);
    m.i32(3, 0);
    m.binary(4, col.name);
    if (col.type === 'string') m.i32(6, 0); // converted_type UTF8
    m.end();
  }
  m.i64(3, numRows); // num_rows
  m.beginList(4, 12, 1); // row_groups
  m.listStruct();
  m.beginList(1, 12, columns.length); // columns
  for (const { col, offset: off, size } of metas) {
    m.listStruct();
    m.i64(2, off); // file_offset
    m.beginStruct(3); // meta_data
    m.i32(1, PHYSICAL[col.type]);
    m.beginList(2, 5, 1);
    m.zigzag(0); // encodings [PLAIN]
    m.beginList(3, 8, 1);
    {
      const b = Buffer.from(col.name);
      m.varint(BigInt(b.length));
      m.bytes.push(...b);
    }
    m.i32(4, 0); // UNCOMPRESSED
    m.i64(5, numRows);
    m.i64(6, size);
    m.i64(7, size);
    m.i64(9, off);
    m.endStruct();
    m.end();
  }
  m.i64(2, offset - 4); // total_byte_size
  m.i64(3, numRows);
  m.end();
  m.end(); // FileMetaData
  const meta = Buffer.from(m.bytes);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(meta.length);
  chunks.push(meta, len, Buffer.from('PAR1'));
  return Buffer.concat(chunks);
}
