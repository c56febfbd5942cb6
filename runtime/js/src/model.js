// A specc model.onnx: run it, or ask a classifier for classes, labels and probabilities
// (runtime/session.py's Model).

import { InputError } from './errors.js';
import { Folder } from './folder.js';
import { checkDims, softmax, toTensor } from './tensor.js';
import { Tokenizer } from './text.js';

/** Class probabilities (float64 numbers) of one output row, by the output's kind. */
export function probabilitiesOf(kind, row) {
  if (kind === 'logits') return softmax(row);
  if (kind === 'log_probabilities') return Array.from(row, Math.exp);
  if (kind === 'probabilities') return Array.from(row, Number);
  let p = Number(row[0]);
  if (kind === 'binary_logit') p = 1 / (1 + Math.exp(-p));
  return [1 - p, p];
}

export class Model {
  /** Open a run folder (a path under Node, a URL in a browser); options: {ort, sessionOptions}. */
  static async open(source, options = {}) {
    const folder = source instanceof Folder ? source : await Folder.open(source, options);
    return new Model(folder, await folder.session('model'));
  }

  constructor(folder, session) {
    this.folder = folder;
    this.session = session;
    this.ort = folder.ort;
    const d = folder.description;
    this.description = d;
    this.task = d.task;
    this.inputs = d.inputs;
    this.output = d.output;
    this.outputKind = d.output.kind;
    this.labels = d.output.labels;
    const tokens = d.inputs.find((i) => i.role === 'tokens' && i.tokenizer);
    this.tokenizer = tokens ? new Tokenizer(d.tokenizers[tokens.tokenizer]) : null;
  }

  /** Tensors for each input by name, checked against the declared dtypes and dims. */
  feeds(inputs) {
    const names = this.inputs.map((i) => i.name);
    const unknown = Object.keys(inputs).filter((k) => !names.includes(k));
    const missing = names.filter((k) => !(k in inputs));
    if (unknown.length || missing.length) {
      const parts = [];
      if (unknown.length) parts.push(`unknown input ${unknown.map((n) => `'${n}'`).join(', ')}`);
      if (missing.length) parts.push(`missing input ${missing.map((n) => `'${n}'`).join(', ')}`);
      const takes = this.inputs.map((i) => `${i.name}: ${i.dtype} (${i.dims.join(', ')})`);
      throw new InputError(`${parts.join('; ')}; the model takes ${takes.join(', ')}`);
    }
    const feeds = {};
    for (const info of this.inputs) {
      const t = toTensor(this.ort, inputs[info.name], info.dtype, info.name);
      checkDims(info.name, t, info.dims);
      feeds[info.name] = t;
    }
    return feeds;
  }

  /** Run with {input name: value}; returns {output name: ort.Tensor}. */
  async run(inputs) {
    return this.session.run(this.feeds(inputs));
  }

  /** The first output for a one-input model's x (or {name: value} for several). */
  async call(x) {
    const inputs = this.#named(x);
    return (await this.run(inputs))[this.output.name];
  }

  #named(x) {
    if (x && !Array.isArray(x) && !(x instanceof this.ort.Tensor) && x.data === undefined) {
      return x; // already {name: value}
    }
    if (this.inputs.length !== 1) {
      throw new InputError(
        `pass inputs by name: {${this.inputs.map((i) => `${i.name}: ...`).join(', ')}}`,
      );
    }
    return { [this.inputs[0].name]: x };
  }

  /** Class probabilities, one array of float64 numbers per example (classifiers). */
  async probabilities(x) {
    if (this.task !== 'classification') {
      throw new InputError(
        `probabilities() is for classifiers; this model's task is '${this.task}'`,
      );
    }
    return this.probabilitiesFrom(await this.call(x));
  }

  probabilitiesFrom(output) {
    const [n] = output.dims;
    const width = output.data.length / n;
    const rows = [];
    for (let i = 0; i < n; i++) {
      rows.push(probabilitiesOf(this.outputKind, output.data.subarray(i * width, (i + 1) * width)));
    }
    return rows;
  }

  /** Classifier: {classes, labels, probabilities}. Regression: the output tensor. */
  async predict(x) {
    if (this.task === 'regression') return this.call(x);
    return this.#prediction(await this.probabilities(x));
  }

  #prediction(probabilities) {
    const classes = probabilities.map((row) => row.indexOf(Math.max(...row)));
    const names = this.labels ?? probabilities[0].map((_, i) => String(i));
    return { classes, labels: classes.map((c) => names[c]), probabilities };
  }

  /** Token ids and lengths for texts, as specc's text data makes them (unknown words: <unk>). */
  encodeTexts(texts) {
    if (!this.tokenizer) throw new InputError('this model reads no text');
    const rows = texts.map((t, i) => {
      const ids = this.tokenizer.encode(t);
      if (!ids.length) throw new InputError(`text ${i + 1} holds no tokens`);
      return ids;
    });
    const width = Math.max(...rows.map((r) => r.length));
    const data = new BigInt64Array(rows.length * width); // <pad> is 0
    rows.forEach((r, i) => data.set(r.map(BigInt), i * width));
    const ids = new this.ort.Tensor('int64', data, [rows.length, width]);
    const lengths = new this.ort.Tensor(
      'int64',
      BigInt64Array.from(rows, (r) => BigInt(r.length)),
      [rows.length],
    );
    const feeds = {};
    for (const info of this.inputs) {
      if (info.role === 'tokens') feeds[info.name] = ids;
      else if (info.role === 'lengths') feeds[info.name] = lengths;
      else throw new InputError(`input '${info.name}' is not text; pass inputs by name`);
    }
    return feeds;
  }

  /** A text classifier's {classes, labels, probabilities} for a list of texts. */
  async predictText(texts) {
    const single = typeof texts === 'string';
    const out = await this.run(this.encodeTexts(single ? [texts] : texts));
    return this.#prediction(this.probabilitiesFrom(out[this.output.name]));
  }
}
