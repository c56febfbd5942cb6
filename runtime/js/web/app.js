// The page `specc export --web` writes: loads model/specc.json, then builds the interface that
// fits the task (an image to draw or drop, a table row, a text, a prompt, a source, latent
// sliders) and runs the model in the browser through specc's JavaScript runtime on
// onnxruntime-web. Every answer is also left as JSON in #result's data-json (with a run count
// in data-run), which is how the tests read it.

import * as ort from './ort/ort.wasm.bundle.min.mjs';
import * as specc from './specc/index.js';

// A plain static server does not send the cross-origin-isolation headers threads need.
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL('./ort/', import.meta.url).href;

const app = document.getElementById('app');
const statusLine = document.getElementById('status');
let runs = 0;

// ------------------------------------------------------------------------- small DOM helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false)
      node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function card(title, ...children) {
  return el('section', { class: 'card grow' }, el('h2', {}, title), ...children);
}

function setStatus(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

/** Show an answer, and leave it as JSON for scripts (and tests) to read. */
function publish(result) {
  const out = document.getElementById('result');
  runs += 1;
  out.dataset.json = JSON.stringify(result);
  out.dataset.run = String(runs);
  setStatus('done', `done (${runs} run${runs === 1 ? '' : 's'})`);
}

async function busy(what, fn) {
  setStatus('busy', what);
  try {
    return await fn();
  } catch (e) {
    setStatus('error', e.message);
    console.error(e);
    return undefined;
  }
}

const resultNode = () => el('output', { id: 'result', 'data-run': '0' });

function bars(labels, probabilities, top = 10) {
  const order = [...probabilities.keys()].sort((a, b) => probabilities[b] - probabilities[a]);
  const shown = order.slice(0, top);
  return el(
    'div',
    { class: 'bars' },
    shown.map((i, k) => [
      el('span', { class: k === 0 ? 'top' : '' }, labels[i]),
      el(
        'div',
        { class: 'bar' },
        el('span', { style: `width:${(100 * probabilities[i]).toFixed(1)}%` }),
      ),
      el('span', { class: 'num' }, (100 * probabilities[i]).toFixed(1) + '%'),
    ]),
  );
}

// ------------------------------------------------------------------------- pictures

/** Draw (C, H, W) values in [0, 1] (gray for one channel) onto a canvas, `scale` px a pixel. */
function paint(canvas, data, dims, scale = 8) {
  const [c, h, w] = dims.length === 3 ? dims : [1, ...dims.slice(-2)];
  canvas.width = w * scale;
  canvas.height = h * scale;
  const small = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) {
      const v = data[(c === 3 ? k : 0) * h * w + i];
      small.data[4 * i + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
    small.data[4 * i + 3] = 255;
  }
  const tmp = new OffscreenCanvas(w, h);
  tmp.getContext('2d').putImageData(small, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, w * scale, h * scale);
  return canvas;
}

const pixels = (data, dims, scale, title) =>
  paint(el('canvas', { class: 'pixels', title }), data, dims, scale);

/** A grid of images (n, C, H, W) on one canvas, with a gray gap like specc's save_grid. */
function paintGrid(canvas, tensor, columns, scale = 3) {
  const [n, ...item] = tensor.dims;
  const [c, h, w] = item.length === 3 ? item : [1, ...item.slice(-2)];
  const rows = Math.ceil(n / columns);
  const W = columns * (w + 1) + 1;
  const H = rows * (h + 1) + 1;
  const all = new Float32Array(c * H * W).fill(0.5);
  for (let i = 0; i < n; i++) {
    const top = 1 + Math.floor(i / columns) * (h + 1);
    const left = 1 + (i % columns) * (w + 1);
    for (let k = 0; k < c; k++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          all[k * H * W + (top + y) * W + left + x] = tensor.data[((i * c + k) * h + y) * w + x];
  }
  return paint(canvas, all, [c, H, W], scale);
}

/** Gray levels (0..255) of a canvas's pixels, by ITU-R 601-2 luma as PIL's "L". */
function grayOf(imageData) {
  const d = imageData.data;
  const out = new Float64Array(imageData.width * imageData.height);
  for (let i = 0; i < out.length; i++) {
    out[i] = (d[4 * i] * 299 + d[4 * i + 1] * 587 + d[4 * i + 2] * 114) / 1000;
  }
  return out;
}

/** Area-average resize of a (h, w) map to (oh, ow): every source pixel counts by its overlap. */
function boxResize(src, h, w, oh, ow) {
  const out = new Float64Array(oh * ow);
  const sy = h / oh;
  const sx = w / ow;
  for (let y = 0; y < oh; y++) {
    const y0 = y * sy;
    const y1 = y0 + sy;
    for (let x = 0; x < ow; x++) {
      const x0 = x * sx;
      const x1 = x0 + sx;
      let sum = 0;
      for (let yy = Math.floor(y0); yy < Math.ceil(y1); yy++) {
        const wy = Math.min(y1, yy + 1) - Math.max(y0, yy);
        for (let xx = Math.floor(x0); xx < Math.ceil(x1); xx++) {
          const wx = Math.min(x1, xx + 1) - Math.max(x0, xx);
          sum += src[yy * w + xx] * wy * wx;
        }
      }
      out[y * ow + x] = sum / (sy * sx);
    }
  }
  return out;
}

/** The ink's bounding box, as a square around its centre (a drawn digit, centred as optdigits'). */
function inkBox(ink, h, w) {
  let top = h;
  let bottom = -1;
  let left = w;
  let right = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (ink[y * w + x] > 0.05) {
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
        left = Math.min(left, x);
        right = Math.max(right, x);
      }
  if (bottom < 0) return null;
  const side = Math.max(bottom - top, right - left) + 1;
  const cy = (top + bottom + 1) / 2;
  const cx = (left + right + 1) / 2;
  return { y: Math.round(cy - side / 2), x: Math.round(cx - side / 2), side };
}

function crop(ink, h, w, box) {
  const out = new Float64Array(box.side * box.side);
  for (let y = 0; y < box.side; y++)
    for (let x = 0; x < box.side; x++) {
      const sy = box.y + y;
      const sx = box.x + x;
      if (sy >= 0 && sy < h && sx >= 0 && sx < w) out[y * box.side + x] = ink[sy * w + sx];
    }
  return out;
}

/** A picture (canvas) -> the model's input, following the input's `preprocess`. */
function pictureToInput(canvas, input, { drawn }) {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const h = canvas.height;
  const w = canvas.width;
  const pre = input.preprocess;
  const dims = input.dims.slice(1);
  if (pre?.source === 'digits') {
    // scikit-learn's digits: ink counted in 4x4 blocks of a 32x32 bitmap (0..16). The ink is
    // the light or the dark, whichever the picture has less of.
    const gray = grayOf(image);
    const mean = gray.reduce((a, b) => a + b, 0) / gray.length;
    let ink = gray.map((g) => (mean < 128 ? g / 255 : (255 - g) / 255));
    let size = [h, w];
    if (drawn) {
      // a drawing is cropped to its ink and centred, as optdigits' bitmaps were normalized
      const box = inkBox(ink, h, w);
      if (!box) return null;
      const pad = Math.round(box.side * 0.08);
      ink = crop(ink, h, w, { y: box.y - pad, x: box.x - pad, side: box.side + 2 * pad });
      size = [box.side + 2 * pad, box.side + 2 * pad];
    }
    const bitmap =
      size[0] === 32 && size[1] === 32 ? ink : boxResize(ink, size[0], size[1], 32, 32);
    const raw = new Float32Array(64);
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) raw[(y >> 2) * 8 + (x >> 2)] += bitmap[y * 32 + x];
    const shaped = specc.applySteps(raw, pre.raw_dims, pre);
    return { raw, rawDims: pre.raw_dims, data: shaped.data, dims };
  }
  // Other pictures: resized to the input's size, gray or RGB, scaled to [0, 1], channels first.
  const [c, oh, ow] = dims.length === 3 ? dims : [1, ...dims.slice(-2)];
  const data = new Float32Array(c * oh * ow);
  const channels =
    c === 1
      ? [grayOf(image)]
      : [0, 1, 2].map((k) => Float64Array.from({ length: h * w }, (_, i) => image.data[4 * i + k]));
  channels.forEach((plane, k) => {
    const small = oh === h && ow === w ? plane : boxResize(plane, h, w, oh, ow);
    for (let i = 0; i < oh * ow; i++) data[k * oh * ow + i] = small[i] / 255;
  });
  return { data, dims };
}

/** A canvas to draw on with the mouse, a pen or a finger; `onDone` after each stroke. */
function drawingPad(size, onDone) {
  const canvas = el('canvas', {
    class: 'draw',
    width: size,
    height: size,
    'aria-label': 'draw here',
  });
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, size, size);
  };
  clear();
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * size) / r.width, ((e.clientY - r.top) * size) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = size / 11;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const end = () => {
    if (last) onDone();
    last = null;
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointerleave', end);
  // a dropped picture, shown fitted on the pad (its pixels are read from the file itself)
  const show = (picture) => {
    clear();
    const k = Math.min(size / picture.width, size / picture.height);
    const w = picture.width * k;
    const h = picture.height * k;
    ctx.imageSmoothingEnabled = picture.width >= size / 4;
    ctx.drawImage(picture, (size - w) / 2, (size - h) / 2, w, h);
  };
  return { canvas, clear, show };
}

/** A file input that also takes dropped files; `onImage(canvas)` with the decoded picture. */
function imageDrop(onImage) {
  const input = el('input', { type: 'file', accept: 'image/*', id: 'file' });
  const zone = el(
    'div',
    { class: 'drop' },
    el('label', { for: 'file' }, 'Drop an image here, or '),
    input,
  );
  const load = async (file) => {
    const bitmap = await createImageBitmap(file);
    const canvas = el('canvas', { width: bitmap.width, height: bitmap.height });
    canvas.getContext('2d').drawImage(bitmap, 0, 0);
    onImage(canvas);
  };
  input.addEventListener('change', () => input.files[0] && load(input.files[0]));
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer.files[0]) load(e.dataTransfer.files[0]);
  });
  return zone;
}

async function loadExamples() {
  try {
    const response = await fetch('model/examples.json');
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

function exampleStrip(examples, dims, onPick, count = 12) {
  if (!examples?.rows?.length) return null;
  return el(
    'div',
    { class: 'examples' },
    examples.rows.slice(0, count).map((row, i) => {
      const scale = Math.max(1, Math.round(40 / dims[dims.length - 1]));
      const c = pixels(Float32Array.from(row), dims, scale, `example ${i + 1}`);
      c.addEventListener('click', () => onPick(Float32Array.from(row), i));
      c.dataset.example = String(i);
      return c;
    }),
  );
}

// ------------------------------------------------------------------------- tasks

function classNames(model, n) {
  return model.labels ?? Array.from({ length: n }, (_, i) => String(i));
}

function showPrediction(target, model, prediction, extra = {}) {
  const probs = prediction.probabilities[0];
  const names = classNames(model, probs.length);
  target.replaceChildren(
    el(
      'p',
      { class: 'answer', id: 'answer' },
      prediction.labels[0],
      el('small', {}, `${(100 * probs[prediction.classes[0]]).toFixed(1)}%`),
    ),
    bars(names, probs),
  );
  publish({
    classes: prediction.classes,
    labels: prediction.labels,
    probabilities: prediction.probabilities,
    ...extra,
  });
}

function showValues(target, tensor, name, extra = {}) {
  const values = Array.from(tensor.data);
  target.replaceChildren(
    el(
      'p',
      { class: 'answer', id: 'answer' },
      values.map((v) => v.toFixed(4)).join(', '),
      el('small', {}, name),
    ),
  );
  publish({ values, dims: tensor.dims, ...extra });
}

async function imageModel(folder, examples) {
  const model = await specc.Model.open(folder);
  const input = model.inputs[0];
  const dims = input.dims.slice(1);
  // a flat input (pixels in a row) is shown as the picture it was made from
  const view = dims.length >= 2 ? dims : (input.preprocess?.raw_dims ?? [1, 1, dims[0]]);
  const answer = el('div', {}, el('p', { class: 'hint' }, 'Draw or drop a picture.'));
  const seen = el('div', { class: 'row' });
  const run = (prepared, source) =>
    busy('running the model…', async () => {
      const x = { data: prepared.data, dims: [1, ...dims] };
      const views = [];
      if (prepared.raw)
        views.push(
          el(
            'figure',
            {},
            pixels(
              prepared.raw.map((v) => v / 16),
              prepared.rawDims,
              8,
              'raw',
            ),
            el('figcaption', { class: 'hint' }, 'ink counts (8x8)'),
          ),
        );
      views.push(
        el(
          'figure',
          {},
          pixels(prepared.data, view, view[view.length - 1] > 16 ? 4 : 8, 'input'),
          el('figcaption', { class: 'hint' }, `model input ${dims.join('x')}`),
        ),
      );
      seen.replaceChildren(...views);
      const extra = { source, input: Array.from(prepared.data) };
      if (model.task === 'classification')
        showPrediction(answer, model, await model.predict(x), extra);
      else showValues(answer, await model.predict(x), model.output.name, extra);
    });
  const pad = drawingPad(256, () => {
    const prepared = pictureToInput(pad.canvas, input, { drawn: true });
    if (prepared) run(prepared, 'drawing');
  });
  const drop = imageDrop((canvas) => {
    pad.show(canvas);
    run(pictureToInput(canvas, input, { drawn: false }), 'file');
  });
  const strip = exampleStrip(examples, view, (row, i) => run({ data: row }, `example ${i}`));
  const digits = input.preprocess?.source === 'digits';
  app.append(
    el(
      'div',
      { class: 'row' },
      card(
        'Input',
        pad.canvas,
        el(
          'div',
          { class: 'controls' },
          el('button', { class: 'secondary', onclick: () => pad.clear() }, 'Clear'),
        ),
        drop,
        el(
          'p',
          { class: 'hint' },
          digits
            ? "A drawing is cropped to its ink and centred; a file is taken whole. Ink is whichever of light or dark the picture has less of; it is counted in 4x4 blocks of a 32x32 bitmap, as scikit-learn's digits were made."
            : `Pictures are resized to ${dims.slice(-2).join('x')}.`,
        ),
        strip ? [el('p', { class: 'hint' }, 'Or pick an example from the data:'), strip] : null,
      ),
      card(model.task === 'classification' ? 'Prediction' : 'Output', answer, seen, resultNode()),
    ),
  );
}

async function textClassifier(folder, examples) {
  const model = await specc.Model.open(folder);
  const box = el('textarea', { id: 'text', rows: 4, placeholder: 'Type a text…' });
  const answer = el('div', {}, el('p', { class: 'hint' }, 'Type a text and press Classify.'));
  const classify = () =>
    busy('running the model…', async () => {
      const text = box.value;
      const tokens = model.tokenizer.split(text);
      showPrediction(answer, model, await model.predictText([text]), { text, tokens });
      const unknown = new Set(model.tokenizer.unknown(tokens));
      answer.append(
        el(
          'p',
          { class: 'hint' },
          `${tokens.length} tokens: `,
          tokens
            .map((t) =>
              unknown.has(t) ? el('s', { title: 'not in the vocabulary: read as <unk>' }, t) : t,
            )
            .flatMap((t) => [t, ' ']),
        ),
      );
    });
  const pick = examples?.texts?.length
    ? el(
        'select',
        { id: 'examples', onchange: (e) => ((box.value = e.target.value), classify()) },
        el('option', { value: '' }, 'an example…'),
        examples.texts.map((t) => el('option', { value: t }, t)),
      )
    : null;
  box.value = examples?.texts?.[0] ?? '';
  app.append(
    el(
      'div',
      { class: 'row' },
      card(
        'Text',
        box,
        el(
          'div',
          { class: 'controls' },
          el('button', { id: 'run', onclick: classify }, 'Classify'),
          pick,
        ),
        el(
          'p',
          { class: 'hint' },
          `${model.tokenizer.level}-level tokens${model.tokenizer.lowercase ? ', lowercased' : ''}; ${model.tokenizer.size} in the vocabulary (others read as <unk>).`,
        ),
      ),
      card('Prediction', answer, resultNode()),
    ),
  );
}

async function tabular(folder, examples) {
  const model = await specc.Model.open(folder);
  const input = model.inputs[0];
  const width = input.dims[input.dims.length - 1];
  const columns = input.preprocess?.columns ?? Array.from({ length: width }, (_, i) => `x${i}`);
  const fields = columns.map((c, i) =>
    el('input', {
      type: 'number',
      step: 'any',
      value: examples?.rows?.[0]?.[i] ?? 0,
      'data-column': c,
    }),
  );
  const answer = el('div', {}, el('p', { class: 'hint' }, 'Edit the row and press Predict.'));
  const predict = () =>
    busy('running the model…', async () => {
      const row = specc.csvRow(
        Object.fromEntries(fields.map((f) => [f.dataset.column, f.value])),
        columns,
      );
      const x = { data: row, dims: [1, ...input.dims.slice(1)] };
      const extra = { input: Array.from(row) };
      if (model.task === 'classification')
        showPrediction(answer, model, await model.predict(x), extra);
      else showValues(answer, await model.predict(x), model.output.name, extra);
    });
  const pick = examples?.rows?.length
    ? el(
        'select',
        {
          id: 'examples',
          onchange: (e) => {
            const row = examples.rows[Number(e.target.value)];
            fields.forEach((f, i) => (f.value = row[i]));
            predict();
          },
        },
        examples.rows.map((_, i) =>
          el(
            'option',
            { value: i },
            `example ${i + 1}${examples.targets ? ` (${examples.targets[i]})` : ''}`,
          ),
        ),
      )
    : null;
  const note =
    input.preprocess?.standardize?.where === 'in_graph'
      ? 'Raw values: the model standardizes them itself.'
      : '';
  app.append(
    el(
      'div',
      { class: 'row' },
      card(
        'Row',
        el(
          'table',
          { class: 'values' },
          columns.map((c, i) => el('tr', {}, el('th', {}, c), el('td', {}, fields[i]))),
        ),
        el(
          'div',
          { class: 'controls' },
          el('button', { id: 'run', onclick: predict }, 'Predict'),
          pick,
        ),
        el('p', { class: 'hint' }, note),
      ),
      card(model.task === 'classification' ? 'Prediction' : 'Output', answer, resultNode()),
    ),
  );
}

function numberField(id, label, value, attrs = {}) {
  const input = el('input', { type: 'number', id, value, ...attrs });
  return [el('label', { for: id }, label, input), input];
}

async function languageModel(folder, examples) {
  const lm = await specc.LanguageModel.open(folder);
  const prompt = el('textarea', { id: 'prompt', rows: 3 });
  prompt.value = examples?.prompts?.[0] ?? '';
  const temperature = el('input', {
    type: 'range',
    id: 'temperature',
    min: 0,
    max: 2,
    step: 0.05,
    value: 0.8,
  });
  const shown = el('span', { id: 'temperature-value' }, '0.80');
  temperature.addEventListener(
    'input',
    () => (shown.textContent = Number(temperature.value).toFixed(2)),
  );
  const [tokensLabel, maxTokens] = numberField('max-tokens', 'tokens', 200, { min: 0, step: 1 });
  const [topKLabel, topK] = numberField('top-k', 'top-k', '', {
    min: 1,
    step: 1,
    placeholder: 'all',
  });
  const [topPLabel, topP] = numberField('top-p', 'top-p', '', {
    min: 0,
    max: 1,
    step: 0.01,
    placeholder: '1',
  });
  const [seedLabel, seed] = numberField('seed', 'seed', 0, { min: 0, step: 1 });
  const output = el('pre', { class: 'generated', id: 'generated' });
  const go = el('button', { id: 'run' }, 'Generate');
  go.addEventListener('click', () =>
    busy('generating…', async () => {
      go.disabled = true;
      try {
        const text = prompt.value;
        const options = {
          maxTokens: Number(maxTokens.value),
          temperature: Number(temperature.value),
          topK: topK.value === '' ? null : Number(topK.value),
          topP: topP.value === '' ? null : Number(topP.value),
          seed: seed.value === '' ? null : Number(seed.value),
        };
        const newText = el('span');
        output.replaceChildren(el('b', {}, text), newText);
        const written = [];
        options.onToken = (id) => {
          written.push(id);
          newText.textContent = lm
            .decode([...lm.encode(text), ...written])
            .slice(lm.decode(lm.encode(text)).length);
        };
        const result = await lm.generate(text, options);
        output.replaceChildren(el('b', {}, text), result.slice(text.length));
        publish({ text: result, prompt: text, options: { ...options, onToken: undefined } });
      } finally {
        go.disabled = false;
      }
    }),
  );
  const sample = lm.tokenizer.tokens
    .slice(4)
    .filter((t) => t.trim())
    .slice(0, 60)
    .join(lm.tokenizer.level === 'char' ? '' : ' ');
  app.append(
    el(
      'div',
      { class: 'row' },
      card(
        'Prompt',
        prompt,
        el(
          'div',
          { class: 'controls' },
          el('label', { for: 'temperature' }, 'temperature', temperature, shown),
          tokensLabel,
          topKLabel,
          topPLabel,
          seedLabel,
        ),
        el('div', { class: 'controls' }, go),
        el(
          'p',
          { class: 'hint' },
          `Temperature 0 writes the likeliest token each time; higher draws more freely. The same seed draws the same text here and in Python (specc sample). ${lm.tokenizer.size} ${lm.tokenizer.level} tokens: ${sample}…`,
        ),
      ),
    ),
    el('div', { class: 'row' }, card('Text', output, resultNode())),
  );
}

async function seq2seq(folder, examples) {
  const s2s = await specc.Seq2Seq.open(folder);
  if (!s2s.sourceTokenizer) return captioning(s2s, examples);
  const sources = el('textarea', { id: 'sources', rows: 5 });
  sources.value = (examples?.sources ?? []).slice(0, 3).join('\n');
  const method = el(
    'select',
    { id: 'method' },
    ['greedy', 'beam', 'sample'].map((m) => el('option', { value: m }, m)),
  );
  const [beamLabel, beam] = numberField('beam-size', 'beams', 4, { min: 1, step: 1 });
  const [penaltyLabel, penalty] = numberField('length-penalty', 'length penalty', 0, { step: 0.1 });
  const [tempLabel, temperature] = numberField('temperature', 'temperature', 1, {
    min: 0.05,
    step: 0.05,
  });
  const [seedLabel, seed] = numberField('seed', 'seed', 0, { min: 0, step: 1 });
  const output = el('ol', { class: 'outputs', id: 'outputs' });
  const go = el('button', { id: 'run' }, 'Translate');
  go.addEventListener('click', () =>
    busy('decoding…', async () => {
      const lines = sources.value.split('\n').filter((l) => l.trim());
      const options = {
        method: method.value,
        beamSize: Number(beam.value),
        lengthPenalty: Number(penalty.value),
        temperature: Number(temperature.value),
        seed: seed.value === '' ? null : Number(seed.value),
      };
      const outputs = await s2s.translate(lines, options);
      output.replaceChildren(...outputs.map((o) => el('li', {}, o)));
      publish({ sources: lines, outputs, options });
    }),
  );
  app.append(
    el(
      'div',
      { class: 'row' },
      card(
        'Sources, one per line',
        sources,
        el(
          'div',
          { class: 'controls' },
          el('label', { for: 'method' }, 'decoding', method),
          beamLabel,
          penaltyLabel,
          tempLabel,
          seedLabel,
        ),
        el('div', { class: 'controls' }, go),
        el(
          'p',
          { class: 'hint' },
          `Greedy writes the likeliest token each step; beam search keeps the best partial outputs (scored by log-probability / ((5 + length) / 6) ^ length penalty); sample draws. Source tokens: ${s2s.sourceTokenizer.tokens.slice(4).join(' ')}`,
        ),
      ),
      card('Outputs', output, resultNode()),
    ),
  );
}

async function captioning(s2s, examples) {
  const input = { ...s2s.protocol.encoder.source };
  const dims = input.dims.slice(1);
  const output = el('p', { class: 'answer', id: 'answer' });
  const seen = el('div');
  const run = (prepared, source) =>
    busy('decoding…', async () => {
      seen.replaceChildren(pixels(prepared.data, dims, 8, 'input'));
      const [caption] = await s2s.caption({ data: prepared.data, dims: [1, ...dims] });
      output.textContent = caption;
      publish({ outputs: [caption], source, input: Array.from(prepared.data) });
    });
  const pad = drawingPad(240, () =>
    run(pictureToInput(pad.canvas, input, { drawn: false }), 'drawing'),
  );
  const drop = imageDrop((canvas) => {
    pad.show(canvas);
    run(pictureToInput(canvas, input, { drawn: false }), 'file');
  });
  const strip = exampleStrip(examples, dims, (row, i) => run({ data: row }, `example ${i}`));
  app.append(
    el(
      'div',
      { class: 'row' },
      card(
        'Picture',
        pad.canvas,
        el(
          'div',
          { class: 'controls' },
          el('button', { class: 'secondary', onclick: () => pad.clear() }, 'Clear'),
        ),
        drop,
        strip ? [el('p', { class: 'hint' }, 'Or pick an example from the data:'), strip] : null,
      ),
      card('Caption', output, seen, resultNode()),
    ),
  );
}

/** Sliders for a latent code, plus a text field that takes the whole code at once. */
function latentControls(dim, onChange) {
  const shown = Math.min(dim, 16);
  const z = new Float32Array(dim);
  const sliders = [];
  const values = [];
  const code = el('input', { type: 'text', id: 'code', size: 40 });
  const sync = () => (code.value = Array.from(z, (v) => Number(v.toFixed(3))).join(', '));
  const grid = el('div', { class: 'sliders' });
  for (let i = 0; i < shown; i++) {
    const s = el('input', { type: 'range', min: -3, max: 3, step: 0.01, value: 0, 'data-dim': i });
    const v = el('span', { class: 'num' }, '0.00');
    s.addEventListener('input', () => {
      z[i] = Number(s.value);
      v.textContent = z[i].toFixed(2);
      sync();
      onChange(z, 'sliders');
    });
    sliders.push(s);
    values.push(v);
    grid.append(el('span', {}, `z${i}`), s, v);
  }
  const set = (next, source) => {
    z.set(next);
    sliders.forEach((s, i) => ((s.value = z[i]), (values[i].textContent = z[i].toFixed(2))));
    sync();
    onChange(z, source);
  };
  code.addEventListener('change', () => {
    const parts = code.value.split(',').map((p) => Number(p.trim()));
    if (parts.length === dim && parts.every(Number.isFinite)) set(parts, 'code');
    else setStatus('error', `the code needs ${dim} numbers, separated by commas`);
  });
  sync();
  const form = el(
    'div',
    {},
    grid,
    el('div', { class: 'controls' }, el('label', { for: 'code' }, 'code', code)),
    dim > shown
      ? el(
          'p',
          { class: 'hint' },
          `sliders for the first ${shown} of ${dim} dimensions; the field takes all`,
        )
      : null,
  );
  return { form, set, z };
}

async function generative(folder, examples) {
  const d = folder.description;
  const isVae = !!d.autoencoder;
  const runner = isVae ? await specc.Autoencoder.open(folder) : await specc.Generator.open(folder);
  const decode = (z) => (isVae ? runner.decode(z) : runner.generate(z));
  const dim = runner.dim;
  const gridCanvas = el('canvas', { class: 'pixels', id: 'samples' });
  const [seedLabel, seed] = numberField('seed', 'seed', 0, { min: 0, step: 1 });
  const one = el('canvas', { class: 'pixels', id: 'decoded' });
  let sampleZ = null;
  const draw = () =>
    busy('sampling…', async () => {
      const n = 64;
      const rng = new specc.Rng(seed.value === '' ? null : Number(seed.value));
      sampleZ = Float32Array.from({ length: n * dim }, () => rng.normal());
      const images = await decode({ data: sampleZ, dims: [n, dim] });
      paintGrid(gridCanvas, images, 8, 4);
      publish({
        kind: 'samples',
        seed: Number(seed.value),
        z: Array.from(sampleZ),
        images: Array.from(images.data),
        dims: images.dims,
      });
    });
  const controls = latentControls(dim, (z, source) =>
    busy('decoding…', async () => {
      const image = await decode({ data: Float32Array.from(z), dims: [1, dim] });
      paint(one, image.data, image.dims.slice(1), 16);
      publish({
        kind: 'decode',
        source,
        z: Array.from(z),
        image: Array.from(image.data),
        dims: image.dims,
      });
    }),
  );
  gridCanvas.addEventListener('click', (e) => {
    // a click on a sample puts its code on the sliders
    if (!sampleZ) return;
    const r = gridCanvas.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * 8);
    const row = Math.floor(((e.clientY - r.top) / r.height) * 8);
    controls.set(
      sampleZ.slice((row * 8 + col) * dim, (row * 8 + col + 1) * dim),
      `sample ${row * 8 + col}`,
    );
  });
  const sections = [
    card(
      'Samples from N(0, I)',
      gridCanvas,
      el(
        'div',
        { class: 'controls' },
        seedLabel,
        el('button', { id: 'sample', onclick: draw }, 'New samples'),
      ),
      el('p', { class: 'hint' }, 'Click a sample to put its code on the sliders.'),
    ),
    card('Latent code', controls.form, one, resultNode()),
  ];
  if (isVae && dim === 2) {
    // a 2-D latent: the map of what each point decodes to
    const steps = 15;
    const z = new Float32Array(steps * steps * 2);
    for (let r = 0; r < steps; r++)
      for (let c = 0; c < steps; c++) {
        z[(r * steps + c) * 2] = -2.5 + (5 * c) / (steps - 1);
        z[(r * steps + c) * 2 + 1] = 2.5 - (5 * r) / (steps - 1);
      }
    const map = el('canvas', { class: 'pixels', id: 'latent-map' });
    paintGrid(map, await decode({ data: z, dims: [steps * steps, 2] }), steps, 3);
    map.addEventListener('click', (e) => {
      const r = map.getBoundingClientRect();
      controls.set(
        [-2.5 + (5 * (e.clientX - r.left)) / r.width, 2.5 - (5 * (e.clientY - r.top)) / r.height],
        'map',
      );
    });
    sections.push(
      card(
        'The latent plane, z in [-2.5, 2.5]²',
        map,
        el('p', { class: 'hint' }, 'Click anywhere to decode that point.'),
      ),
    );
  }
  if (isVae) {
    const strip = exampleStrip(examples, d.inputs[0].dims.slice(1), async (row) => {
      const code = await runner.encode({ data: row, dims: [1, ...d.inputs[0].dims.slice(1)] });
      controls.set(code.data, 'encoded example');
    });
    if (strip)
      sections.push(
        card(
          'Encode an example',
          strip,
          el('p', { class: 'hint' }, 'Its latent mean goes on the sliders.'),
        ),
      );
  }
  app.append(el('div', { class: 'row' }, ...sections));
  const origin = await decode({ data: new Float32Array(dim), dims: [1, dim] });
  paint(one, origin.data, origin.dims.slice(1), 16); // the code at the origin, until one is chosen
  await draw();
}

// ------------------------------------------------------------------------- start

async function main() {
  const folder = await specc.Folder.open(new URL('./model/', location.href), { ort });
  const d = folder.description;
  const examples = await loadExamples();
  document.title = `${d.name} · specc`;
  document.getElementById('title').textContent = d.name;
  const input = d.inputs[0];
  const kind =
    {
      classification: 'classifier',
      regression: 'regression',
      language_model: 'language model',
      seq2seq: 'sequence to sequence',
      autoencoder:
        d.autoencoder?.latent.type === 'gaussian' ? 'variational autoencoder' : 'autoencoder',
      gan: 'GAN generator',
    }[d.task] ?? d.task;
  document.getElementById('subtitle').textContent =
    `${kind} · trained with specc ${d.specc_version} · spec ${d.spec_sha256.slice(0, 12)}`;
  document.getElementById('versions').textContent =
    `onnxruntime-web ${ort.env.versions?.web ?? ''}`;
  if (d.task === 'language_model') await languageModel(folder, examples);
  else if (d.task === 'seq2seq') await seq2seq(folder, examples);
  else if (d.task === 'autoencoder' || d.task === 'gan') await generative(folder, examples);
  else if (input.role === 'tokens') await textClassifier(folder, examples);
  else if (input.role === 'image' || input.dims.length >= 3) await imageModel(folder, examples);
  else await tabular(folder, examples);
  window.speccFolder = folder; // for the console
  if (statusLine.dataset.state !== 'done') setStatus('ready', 'ready: the model runs in this page');
}

main().catch((e) => {
  setStatus('error', e.message);
  console.error(e);
});
