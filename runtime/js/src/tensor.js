// Small array helpers: nested JS arrays to ONNX Runtime tensors, rows taken or repeated along an
// axis (recurrent states keep the batch on axis 1), and the float64 math the Python runtime
// does with numpy.

import { InputError } from './errors.js';

const TYPED = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
};

/** The dims of a nested array ([[1, 2], [3, 4]] -> [2, 2]); ragged arrays are an InputError. */
export function shapeOf(value) {
  const dims = [];
  let v = value;
  while (Array.isArray(v)) {
    dims.push(v.length);
    v = v[0];
  }
  return dims;
}

function flatten(value, dims, out, name) {
  const walk = (v, depth) => {
    if (depth === dims.length) {
      out.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== dims[depth]) {
      throw new InputError(
        `input '${name}': a ragged array (every row needs ${dims[depth]} items)`,
      );
    }
    for (const item of v) walk(item, depth + 1);
  };
  walk(value, 0);
  return out;
}

/** An ort.Tensor of `dtype` from a tensor, {data, dims}, or a nested array. */
export function toTensor(ort, value, dtype, name = 'input') {
  if (value instanceof ort.Tensor) {
    if (value.type !== dtype) {
      throw new InputError(`input '${name}': expected ${dtype}, got a ${value.type} tensor`);
    }
    return value;
  }
  const Typed = TYPED[dtype];
  let data, dims;
  if (value && value.data !== undefined && value.dims !== undefined) {
    ({ data, dims } = value);
  } else if (Array.isArray(value)) {
    dims = shapeOf(value);
    data = flatten(value, dims, [], name);
  } else {
    throw new InputError(`input '${name}': expected an array, {data, dims} or a tensor`);
  }
  if (!(data instanceof Typed)) {
    data =
      dtype === 'int64'
        ? BigInt64Array.from(data, (x) => BigInt(x))
        : Typed.from(data, (x) => Number(x));
  }
  return new ort.Tensor(dtype, data, [...dims]);
}

/** Check a tensor against declared dims (names are free, numbers must match). */
export function checkDims(name, tensor, declared) {
  const dims = tensor.dims;
  const wrong =
    dims.length !== declared.length ||
    declared.some((d, i) => typeof d === 'number' && d !== dims[i]);
  if (wrong) {
    const hint = dims.length === declared.length - 1 ? '; add a batch dimension' : '';
    throw new InputError(
      `input '${name}': expected shape (${declared.join(', ')}), got (${dims.join(', ')})${hint}`,
    );
  }
  if (dims[0] === 0) throw new InputError(`input '${name}': the batch is empty`);
}

const size = (dims) => dims.reduce((a, b) => a * b, 1);

/** Rows `index` of a tensor along `axis` (numpy's take). */
export function take(ort, tensor, index, axis) {
  const dims = tensor.dims;
  const outer = size(dims.slice(0, axis));
  const inner = size(dims.slice(axis + 1));
  const n = dims[axis];
  const src = tensor.data;
  const out = new src.constructor(outer * index.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < index.length; j++) {
      const from = (o * n + index[j]) * inner;
      out.set(src.subarray(from, from + inner), (o * index.length + j) * inner);
    }
  }
  const outDims = [...dims];
  outDims[axis] = index.length;
  return new ort.Tensor(tensor.type, out, outDims);
}

/** Each row `k` times, next to each other, along `axis` (numpy's repeat). */
export function repeat(ort, tensor, k, axis) {
  const index = [];
  for (let i = 0; i < tensor.dims[axis]; i++) for (let j = 0; j < k; j++) index.push(i);
  return take(ort, tensor, index, axis);
}

/** The last time step of (batch, time, vocab) logits, one Float32Array per row. */
export function lastRows(logits) {
  const [batch, time, vocab] = logits.dims;
  const rows = [];
  for (let b = 0; b < batch; b++) {
    const from = (b * time + time - 1) * vocab;
    rows.push(logits.data.subarray(from, from + vocab));
  }
  return rows;
}

/** Index of the largest value (the first of equals), as numpy's argmax. */
export function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** numpy's sum: pairwise summation in blocks of 8, so float64 sums round as numpy's do. */
export function npSum(a, from = 0, to = a.length) {
  const n = to - from;
  if (n < 8) {
    let s = 0;
    for (let i = from; i < to; i++) s += a[i];
    return s;
  }
  if (n <= 128) {
    const r = [
      a[from],
      a[from + 1],
      a[from + 2],
      a[from + 3],
      a[from + 4],
      a[from + 5],
      a[from + 6],
      a[from + 7],
    ];
    let i = from + 8;
    for (; i < to - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[i + j];
    let s = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < to; i++) s += a[i];
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return npSum(a, from, from + half) + npSum(a, from + half, to);
}

/** Softmax in float64 of a row (numpy's order of operations). */
export function softmax(row) {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  const e = Float64Array.from(row, (v) => Math.exp(v - max));
  const s = npSum(e);
  return Array.from(e, (v) => v / s);
}
