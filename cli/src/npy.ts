// Array files: NumPy .npy (format 1.0, 2.0, 3.0) and raw little-endian data. Only the header is
// read up front; the data is read in pieces of whole rows (readRows), so a file far larger than
// memory is scored in bounded memory.

import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';

/** A problem with an input file (exit code 1); the message names the file. */
export class DataError extends Error {
  override name = 'DataError';
}

export type DType = 'float16' | 'float32' | 'float64' | 'bool' | 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64';

/** NumPy's one-character kind and byte size of each dtype we read (little-endian). */
const DTYPES: Record<DType, { kind: 'f' | 'b' | 'u' | 'i'; size: number }> = {
  float16: { kind: 'f', size: 2 },
  float32: { kind: 'f', size: 4 },
  float64: { kind: 'f', size: 8 },
  bool: { kind: 'b', size: 1 },
  uint8: { kind: 'u', size: 1 },
  int8: { kind: 'i', size: 1 },
  int16: { kind: 'i', size: 2 },
  uint16: { kind: 'u', size: 2 },
  int32: { kind: 'i', size: 4 },
  uint32: { kind: 'u', size: 4 },
  int64: { kind: 'i', size: 8 },
  uint64: { kind: 'u', size: 8 },
};

/** Names `--dtype` accepts: ours, and NumPy's short codes (`f4`, `<f4`, `u1`, …). */
export function parseDType(name: string): DType | undefined {
  if (name in DTYPES) return name as DType;
  const m = /^[<|]?([fbui])(\d)$/.exec(name);
  if (m === null) return undefined;
  const kind = m[1]!;
  const size = Number(m[2]);
  return (Object.keys(DTYPES) as DType[]).find((d) => DTYPES[d].kind === kind && DTYPES[d].size === size);
}

export const DTYPE_NAMES = Object.keys(DTYPES).join(', ');

export const isFloat = (d: DType): boolean => DTYPES[d].kind === 'f';
export const isInteger = (d: DType): boolean => DTYPES[d].kind === 'i' || DTYPES[d].kind === 'u';

/** An array in a file: where its data starts, its element type and shape (C order). */
export interface ArrayFile {
  path: string;
  dtype: DType;
  shape: number[];
  /** Number of elements: the product of the shape (1 for a 0-d array). */
  size: number;
  /** Byte offset of the data. */
  offset: number;
  /** 'npy' (with its format version) or 'raw'. */
  format: string;
  /** False for a raw file given no shape: only its size is known (a shape check compares sizes). */
  shapeKnown: boolean;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

async function withFile<T>(path: string, fn: (fh: FileHandle, bytes: number) => Promise<T>): Promise<T> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new DataError(`${path}: cannot read (${why})`);
  }
  try {
    const st = await fh.stat();
    // open() succeeds on a directory on Linux; reading it fails without naming it.
    if (!st.isFile()) throw new DataError(`${path}: cannot read (${st.isDirectory() ? 'is a directory' : 'not a regular file'})`);
    return await fn(fh, st.size);
  } finally {
    await fh.close().catch(() => undefined); // a failed close must not hide the real error
  }
}

/** What the first bytes say: a .npy file, a .npz (zip) archive, an empty file, or something else. */
async function sniff(path: string): Promise<'npy' | 'npz' | 'empty' | 'other'> {
  return withFile(path, async (fh, bytes) => {
    if (bytes === 0) return 'empty';
    const head = new Uint8Array(MAGIC.length);
    await fh.read(head, 0, MAGIC.length, 0);
    if (MAGIC.every((b, i) => head[i] === b)) return 'npy';
    return head[0] === 0x50 && head[1] === 0x4b ? 'npz' : 'other';
  });
}

/** Reads a .npy header: dtype, shape, where the data starts; checks the file holds all the data. */
export async function openNpy(path: string): Promise<ArrayFile> {
  return withFile(path, async (fh, bytes) => {
    const fail = (why: string): never => {
      throw new DataError(`${path}: ${why}`);
    };
    const pre = new Uint8Array(12);
    const got = (await fh.read(pre, 0, 12, 0)).bytesRead;
    if (got < 10 || !MAGIC.every((b, i) => pre[i] === b)) fail('not a .npy file (no \\x93NUMPY magic string); for raw data give --dtype and --shape');
    const major = pre[6]!;
    const minor = pre[7]!;
    if (major < 1 || major > 3) fail(`.npy format version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`);
    const dv = new DataView(pre.buffer);
    // Version 1.0: a 2-byte header length; 2.0 and 3.0: 4 bytes (3.0: the header is UTF-8).
    const lenBytes = major === 1 ? 2 : 4;
    if (got < 8 + lenBytes) fail('truncated .npy header');
    const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
    const offset = 8 + lenBytes + headerLen;
    if (offset > bytes) fail(`truncated .npy header (${headerLen} bytes announced, the file has ${bytes} in all)`);
    const raw = new Uint8Array(headerLen);
    await fh.read(raw, 0, headerLen, 8 + lenBytes);
    const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw);
    const { dtype, shape, fortran } = parseHeader(header, fail);
    const size = shape.reduce((a, b) => a * b, 1);
    // Fortran order is the same bytes as C order when at most one axis is longer than 1.
    if (fortran && shape.filter((d) => d > 1).length > 1) {
      fail(`Fortran-ordered array (shape [${shape.join(', ')}]) is not supported; save np.ascontiguousarray(a) instead`);
    }
    const dataBytes = size * DTYPES[dtype].size;
    if (bytes - offset < dataBytes) {
      fail(`truncated: shape [${shape.join(', ')}] of ${dtype} needs ${dataBytes} bytes of data, the file has ${bytes - offset}`);
    }
    if (bytes - offset > dataBytes) fail(`${bytes - offset - dataBytes} bytes after the data that shape [${shape.join(', ')}] of ${dtype} does not account for`);
    return { path, dtype, shape, size, offset, format: `npy ${major}.${minor}`, shapeKnown: true };
  });
}

/** The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }. */
function parseHeader(header: string, fail: (why: string) => never): { dtype: DType; shape: number[]; fortran: boolean } {
  const descrList = /'descr'\s*:\s*\[/.exec(header);
  if (descrList) fail('structured arrays (a list of fields as dtype) are not supported');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) fail(`bad .npy header: ${JSON.stringify(header.trim())}`);
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^\d+L?$/.test(s) ? Number.parseInt(s, 10) : fail(`bad .npy header: shape (${shapeText})`)));
  if (shape.some((d) => !Number.isSafeInteger(d))) fail(`bad .npy header: shape (${shapeText})`);
  if (descr!.startsWith('>') && !/^>[bui]1$/.test(descr!)) {
    fail(`big-endian data (${descr}) is not supported; save a.astype(a.dtype.newbyteorder('<')) instead`);
  }
  if (descr === '|O' || descr === 'O') fail('object arrays (dtype object) are not supported');
  const dtype = parseDType(descr!.replace(/^>/, '|'));
  if (dtype === undefined) fail(`dtype ${descr} is not supported (supported: ${DTYPE_NAMES}, little-endian)`);
  return { dtype: dtype!, shape, fortran: fortran === 'True' };
}

/** A raw little-endian file of `dtype` elements; `shape` defaults to one axis over the whole file. */
export async function openRaw(path: string, dtype: DType, shape: number[] | undefined): Promise<ArrayFile> {
  return withFile(path, async (_fh, bytes) => {
    const item = DTYPES[dtype].size;
    if (bytes % item !== 0) throw new DataError(`${path}: ${bytes} bytes is not a whole number of ${dtype} elements (${item} bytes each)`);
    const s = shape ?? [bytes / item];
    const size = s.reduce((a, b) => a * b, 1);
    if (size * item !== bytes) {
      throw new DataError(`${path}: shape [${s.join(', ')}] of ${dtype} needs ${size * item} bytes, the file has ${bytes}`);
    }
    return { path, dtype, shape: s, size, offset: 0, format: 'raw', shapeKnown: shape !== undefined };
  });
}

/** Opens an array file: .npy by its magic string, otherwise raw when a dtype is given. */
export async function openArray(path: string, raw?: { dtype?: DType | undefined; shape?: number[] | undefined }): Promise<ArrayFile> {
  const kind = await sniff(path);
  if (kind === 'npy') {
    if (raw?.dtype !== undefined || raw?.shape !== undefined) throw new DataError(`${path}: a .npy file has its own dtype and shape; --dtype and --shape are for raw files`);
    return openNpy(path);
  }
  if (kind === 'npz') throw new DataError(`${path}: a .npz archive (zip), not an array: save the array itself, np.save('x.npy', np.load('${basename(path)}')['name'])`);
  if (kind === 'empty') throw new DataError(`${path}: empty file`);
  if (raw?.dtype === undefined) {
    throw new DataError(`${path}: not a .npy file (no \\x93NUMPY magic string); for raw little-endian data give its dtype and shape`);
  }
  return openRaw(path, raw.dtype, raw.shape);
}

/** What {@link readElements} returns per dtype: the kernels' types (Float32Array, Uint8Array, Int32Array). */
export type Elements = Float32Array | Uint8Array | Int32Array;

/**
 * Reads elements [start, start + count) of `a`, converted: floats to Float32Array (float16 and
 * float64 rounded to float32), bool/uint8 to Uint8Array, other integers to Int32Array (values
 * outside int32 throw a DataError naming the element).
 */
export async function readElements(fh: FileHandle, a: ArrayFile, start: number, count: number): Promise<Elements> {
  const item = DTYPES[a.dtype].size;
  const buf = new ArrayBuffer(count * item);
  const bytes = new Uint8Array(buf);
  let done = 0;
  while (done < bytes.length) {
    const { bytesRead } = await fh.read(bytes, done, bytes.length - done, a.offset + start * item + done);
    if (bytesRead === 0) throw new DataError(`${a.path}: the file ended early (was it changed while being read?)`);
    done += bytesRead;
  }
  switch (a.dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return Float32Array.from(new Float64Array(buf));
    case 'float16':
      return halfToFloat(new Uint16Array(buf));
    case 'bool':
    case 'uint8':
      return bytes;
    case 'int8':
      return Int32Array.from(new Int8Array(buf));
    case 'int16':
      return Int32Array.from(new Int16Array(buf));
    case 'uint16':
      return Int32Array.from(new Uint16Array(buf));
    case 'int32':
      return new Int32Array(buf);
    case 'uint32':
    case 'int64':
    case 'uint64': {
      const src = a.dtype === 'uint32' ? new Uint32Array(buf) : a.dtype === 'int64' ? new BigInt64Array(buf) : new BigUint64Array(buf);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = src[i]!;
        if (v > 2147483647 || v < -2147483648) throw new DataError(`${a.path}: element ${start + i} is ${v}, beyond any label or 0/1 target (outside the int32 range)`);
        out[i] = Number(v);
      }
      return out;
    }
  }
}

let halfTable: Float32Array | undefined;

/** IEEE half → float32 through a 65,536-entry table (exact: every half is a float32). */
function halfToFloat(h: Uint16Array): Float32Array {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const sign = i & 0x8000 ? -1 : 1;
      const exp = (i >> 10) & 0x1f;
      const frac = i & 0x3ff;
      halfTable[i] =
        exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
    }
  }
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = halfTable[h[i]!]!;
  return out;
}

/** Opens the file for reading pieces with {@link readElements}. */
export async function openForReading(a: ArrayFile): Promise<FileHandle> {
  try {
    return await open(a.path, 'r');
  } catch (e) {
    throw new DataError(`${a.path}: cannot read (${(e as Error).message})`);
  }
}

/** Writes a float32, uint8 or int32/int64 array as .npy 1.0 (the sample batch). */
export function npyBytes(data: Float32Array | Uint8Array | Int32Array | BigInt64Array, shape: number[]): Uint8Array {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Uint8Array ? '|u1' : data instanceof Int32Array ? '<i4' : '<i8';
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // The header, padded with spaces and ended by \n, makes the data start at a multiple of 64.
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
