// Raw values to model inputs, by the `preprocess` of a specc.json input: the steps specc's data
// stage took (compiler/data.py), done the same way, so a client feeds what training fed.

import { InputError } from './errors.js';

const f = Math.fround; // float32 rounding: torch resizes float32 images in float32

/**
 * Bilinear resize of (channels, height, width) float32 data to `to` = [height, width], as
 * torch.nn.functional.interpolate(mode="bilinear", align_corners=False) computes it.
 */
export function resizeBilinear(data, dims, to) {
  const [c, h, w] = dims.length === 3 ? dims : [1, ...dims];
  const [oh, ow] = to;
  const axis = (inSize, outSize) => {
    const scale = f(inSize / outSize);
    const out = [];
    for (let i = 0; i < outSize; i++) {
      let src = f(f(scale * f(i + 0.5)) - 0.5);
      if (src < 0) src = 0;
      const i0 = Math.floor(src);
      const i1 = i0 + (i0 < inSize - 1 ? 1 : 0);
      const l1 = Math.min(Math.max(f(src - i0), 0), 1);
      out.push([i0, i1, f(1 - l1), l1]);
    }
    return out;
  };
  const ys = axis(h, oh);
  const xs = axis(w, ow);
  const out = new Float32Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    for (let y = 0; y < oh; y++) {
      const [y0, y1, wy0, wy1] = ys[y];
      for (let x = 0; x < ow; x++) {
        const [x0, x1, wx0, wx1] = xs[x];
        const row = (yy) =>
          f(f(data[base + yy * w + x0] * wx0) + f(data[base + yy * w + x1] * wx1));
        out[(ch * oh + y) * ow + x] = f(f(row(y0) * wy0) + f(row(y1) * wy1));
      }
    }
  }
  return out;
}

/**
 * A raw value (Float32Array with its dims) through an input's preprocess steps -> {data, dims}.
 * `scale` multiplies; `resize` (torch bilinear) resizes; the PIL steps of an image folder
 * (color, resize, scale, layout) are for pictures the caller decodes (see the web page).
 */
export function applySteps(raw, rawDims, preprocess) {
  let data = Float32Array.from(raw);
  let dims = [...rawDims];
  for (const step of preprocess?.steps ?? []) {
    if (step.op === 'scale') {
      const by = f(step.by);
      data = data.map((v) => f(v * by));
    } else if (step.op === 'resize' && step.mode === 'bilinear' && step.library === undefined) {
      data = resizeBilinear(data, dims, step.to);
      dims = [...dims.slice(0, dims.length - 2), ...step.to];
    } else if (step.op === 'color' || step.op === 'layout' || step.op === 'resize') {
      // image files: decoded and resized by the caller (a browser canvas, or an image library)
    } else {
      throw new InputError(`unknown preprocessing step '${step.op}'`);
    }
  }
  return { data, dims };
}

/**
 * scikit-learn's digits from a 32x32 bitmap (1 = ink): the ink counted in each 4x4 block,
 * 0..16, as the UCI optdigits set was made. `bitmap`: 1024 values, row by row.
 */
export function digitsFromBitmap(bitmap) {
  const out = new Float32Array(64);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) if (bitmap[y * 32 + x]) out[(y >> 2) * 8 + (x >> 2)] += 1;
  }
  return out;
}

/** One CSV row ({column: value} or values in file order with `header`) in the model's column order. */
export function csvRow(row, columns, header = null) {
  const get = header ? (c) => row[header.indexOf(c)] : (c) => row[c];
  return Float32Array.from(columns, (c) => {
    const v = Number(get(c));
    if (get(c) === undefined || get(c) === '' || Number.isNaN(v)) {
      throw new InputError(`column '${c}' needs a number, got ${JSON.stringify(get(c))}`);
    }
    return v;
  });
}
