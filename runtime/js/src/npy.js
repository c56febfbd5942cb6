// Reading NumPy's .npy files (format 1.0-3.0, C order, little-endian numbers): what
// `specc predict --input X.npy` reads, so the JavaScript CLI takes the same files.

import { InputError } from './errors.js';

const KINDS = {
  '<f4': ['float32', Float32Array],
  '<f8': ['float64', Float64Array],
  '<i8': ['int64', BigInt64Array],
  '<i4': ['int32', Int32Array],
  '|u1': ['uint8', Uint8Array],
};

/** {dtype, dims, data} of a .npy file's bytes. */
export function parseNpy(bytes) {
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== '\x93NUMPY') throw new InputError('not a .npy file');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!KINDS[descr])
    throw new InputError(
      `.npy arrays of ${descr} are not read here (float32, float64, int64, int32, uint8 are)`,
    );
  if (fortran)
    throw new InputError('.npy in Fortran order is not read here; save a C-ordered array');
  const dims = shape
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const [dtype, Typed] = KINDS[descr];
  const offset = start + headerLength;
  const count = dims.reduce((a, b) => a * b, 1);
  const copy = bytes.slice(offset, offset + count * Typed.BYTES_PER_ELEMENT); // aligned
  return { dtype, dims, data: new Typed(copy.buffer, 0, count) };
}
