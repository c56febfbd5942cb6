// Decoding a seq2seq model (runtime/translate.py): encoder.onnx once per batch of sources,
// step.onnx once per written token; greedy, beam search or sampling.

import { InputError } from './errors.js';
import { Folder } from './folder.js';
import { pick } from './generate.js';
import { Rng } from './random.js';
import { argmax, lastRows, npSum, repeat, take, toTensor } from './tensor.js';
import { Tokenizer } from './text.js';

const METHODS = ['greedy', 'beam', 'sample'];

export class Seq2Seq {
  static async open(source, options = {}) {
    const folder = source instanceof Folder ? source : await Folder.open(source, options);
    const protocol = folder.description.translate;
    if (!protocol) {
      throw new InputError(
        `this folder holds a ${folder.task} model; translating needs task: seq2seq`,
      );
    }
    const [encoder, step] = await Promise.all([
      folder.session(protocol.encoder.graph),
      folder.session(protocol.step.graph),
    ]);
    return new Seq2Seq(folder, encoder, step);
  }

  constructor(folder, encoder, stepper) {
    this.folder = folder;
    this.ort = folder.ort;
    this.encoder = encoder;
    this.stepper = stepper;
    const d = folder.description;
    this.protocol = d.translate;
    const src = this.protocol.encoder.source;
    this.sourceTokenizer = src.tokenizer ? new Tokenizer(d.tokenizers[src.tokenizer]) : null;
    this.targetTokenizer = new Tokenizer(d.tokenizers[this.protocol.target.tokenizer]);
    this.special = this.protocol.special;
    this.maxLen = this.protocol.max_len;
  }

  /** Padded source ids and lengths; an unknown token is an InputError naming it. */
  encodeTexts(texts) {
    if (!this.sourceTokenizer)
      throw new InputError('this model reads images, not text: call caption(images)');
    const rows = texts.map((text, n) => {
      const tokens = this.sourceTokenizer.split(text);
      if (!tokens.length) throw new InputError(`input ${n + 1} is empty`);
      if (this.sourceTokenizer.unknown(tokens).length) {
        const known = this.sourceTokenizer.tokens.slice(4, 44).map((t) => JSON.stringify(t));
        throw new InputError(
          `input ${n + 1} holds ${JSON.stringify(this.sourceTokenizer.unknown(tokens)[0])}, which ` +
            `is not in the source vocabulary (${known.join(', ')})`,
        );
      }
      return tokens.map((t) => this.sourceTokenizer.index.get(t));
    });
    const longest = this.protocol.max_source_len;
    const tooLong = rows.findIndex((r) => longest && r.length > longest);
    if (tooLong >= 0) {
      throw new InputError(
        `input ${tooLong + 1} has ${rows[tooLong].length} tokens; this model's learned positions cover ${longest}`,
      );
    }
    const width = Math.max(...rows.map((r) => r.length));
    const data = new BigInt64Array(rows.length * width); // <pad> is 0
    rows.forEach((r, i) => data.set(r.map(BigInt), i * width));
    return {
      ids: new this.ort.Tensor('int64', data, [rows.length, width]),
      lengths: new this.ort.Tensor(
        'int64',
        BigInt64Array.from(rows, (r) => BigInt(r.length)),
        [rows.length],
      ),
    };
  }

  /** Decode each text (options as in decode); one output string per input. */
  async translate(texts, options = {}) {
    const single = typeof texts === 'string';
    const { ids, lengths } = this.encodeTexts(single ? [texts] : texts);
    const out = (await this.decode(ids, lengths, options)).map((s) =>
      this.targetTokenizer.decode(s),
    );
    return single ? out[0] : out;
  }

  /** Decode image sources (batch, ...image dims) to text. */
  async caption(images, options = {}) {
    const source = toTensor(this.ort, images, 'float32', this.protocol.encoder.source.name);
    return (await this.decode(source, null, options)).map((s) => this.targetTokenizer.decode(s));
  }

  /**
   * Token ids written for each source, without <bos>/<eos>. Options: method ('greedy' | 'beam' |
   * 'sample'), beamSize (4), lengthPenalty (0), maxLen, temperature (1), topK, seed.
   */
  async decode(source, lengths = null, options = {}) {
    const {
      method = 'greedy',
      beamSize = 4,
      lengthPenalty = 0,
      temperature = 1,
      topK = null,
      seed = null,
    } = options;
    if (!METHODS.includes(method))
      throw new InputError(`unknown decoding method '${method}': use one of ${METHODS.join(', ')}`);
    if (method === 'beam' && !(Number.isInteger(beamSize) && beamSize >= 1)) {
      throw new InputError(`beam_size must be a whole number >= 1, got ${beamSize}`);
    }
    const maxLen = options.maxLen ?? this.maxLen;
    if (!(Number.isInteger(maxLen) && maxLen >= 1))
      throw new InputError(`max_len must be a whole number >= 1, got ${maxLen}`);
    if (method === 'sample' && !(temperature > 0))
      throw new InputError(`temperature must be > 0 for sampling, got ${temperature}`);
    const batch = source.dims[0];
    const start = await this.start(source, lengths);
    if (method === 'beam') return this.beam(batch, start, beamSize, lengthPenalty, maxLen);
    const rng = new Rng(seed);
    let { states } = start;
    const { memories, extra } = start;
    let tokens = Array.from({ length: batch }, () => this.special.bos);
    const done = new Array(batch).fill(false);
    const written = Array.from({ length: batch }, () => []);
    const never =
      method === 'greedy' ? [this.special.pad, this.special.bos] : this.protocol.sample.never;
    for (let t = 0; t < maxLen; t++) {
      const out = await this.step(tokens, memories, extra, states);
      states = out.states;
      const chosen = lastRows(out.logits).map((row) => {
        if (method !== 'greedy') return pick(row, { temperature, topK, never }, rng);
        const masked = Float64Array.from(row);
        for (const id of never) masked[id] = -Infinity;
        return argmax(masked);
      });
      chosen.forEach((c, b) => {
        if (done[b]) return;
        if (c === this.special.eos) done[b] = true;
        else written[b].push(c);
      });
      if (done.every(Boolean)) break;
      tokens = chosen;
    }
    return written;
  }

  /** Run the encoder: {memories, states, extra: the step's other inputs (source lengths)}. */
  async start(source, lengths) {
    const enc = this.protocol.encoder;
    const feeds = { [enc.source.name]: source };
    if (enc.lengths) {
      if (!lengths)
        throw new InputError('this model reads padded token ids: pass their lengths too');
      feeds[enc.lengths] = lengths;
    }
    const out = await this.encoder.run(feeds);
    const step = this.protocol.step;
    return {
      memories: step.memories.map((m) => out[m.from_encoder_output]),
      states: step.states.map((s) => out[s.initial.from_encoder_output]),
      extra: step.from_encoder_inputs.map((name) => feeds[name]),
    };
  }

  /** One decoder call: {logits (batch, 1, vocabulary), states: the next states}. */
  async step(tokens, memories, extra, states) {
    const p = this.protocol.step;
    const feeds = {
      [p.tokens]: new this.ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [
        tokens.length,
        1,
      ]),
    };
    p.memories.forEach((m, i) => (feeds[m.name] = memories[i]));
    p.from_encoder_inputs.forEach((name, i) => (feeds[name] = extra[i]));
    p.states.forEach((s, i) => (feeds[s.name] = states[i]));
    const out = await this.stepper.run(feeds);
    return { logits: out[p.logits], states: p.states.map((s) => out[s.output]) };
  }

  /**
   * Beam search as runtime/translate.py's _beam, step for step: per source, the k best live
   * continuations among the 2k best; the first k that end (<eos>) are the candidates, scored by
   * log-probability / ((5 + length) / 6) ** lengthPenalty.
   */
  async beam(batch, start, k, alpha, maxLen) {
    const { ort } = this;
    const { pad, bos, eos } = this.special;
    const axes = this.protocol.step.states.map((s) => s.batch_axis);
    const memories = start.memories.map((m) => repeat(ort, m, k, 0));
    const extra = start.extra.map((e) => repeat(ort, e, k, 0));
    let states = start.states.map((s, i) => repeat(ort, s, k, axes[i]));
    let scores = Array.from({ length: batch }, () => [0, ...new Array(k - 1).fill(-Infinity)]);
    let seqs = Array.from({ length: batch * k }, () => []); // live sequences, row b * k + j
    const finished = Array.from({ length: batch }, () => []);
    let tokens = new Array(batch * k).fill(bos);
    const norm = (score, length) => score / ((5 + length) / 6) ** alpha;
    for (let t = 0; t < maxLen; t++) {
      const out = await this.step(tokens, memories, extra, states);
      states = out.states;
      const rows = lastRows(out.logits);
      const vocab = rows[0].length;
      const logp = rows.map((row) => {
        let max = -Infinity;
        for (const v of row) if (v > max) max = v;
        const shifted = Float64Array.from(row, (v) => v - max);
        const lse = Math.log(npSum(shifted.map(Math.exp)));
        const lp = shifted.map((v) => v - lse);
        lp[pad] = -Infinity; // never written
        lp[bos] = -Infinity;
        return lp;
      });
      const nextRows = [];
      const nextTokens = new Array(batch * k).fill(0);
      const nextScores = [];
      for (let b = 0; b < batch; b++) {
        // the 2k best of k * vocab continuations, best first, ties by index (a stable sort)
        const best = [];
        for (let j = 0; j < k; j++) {
          const lp = logp[b * k + j];
          for (let v = 0; v < vocab; v++) {
            const value = scores[b][j] + lp[v];
            best.push([value, j * vocab + v]);
          }
        }
        best.sort((x, y) => (y[0] > x[0]) - (y[0] < x[0]) || x[1] - y[1]);
        const top = best.slice(0, 2 * k);
        const rowScores = new Array(k).fill(-Infinity);
        let live = 0;
        for (const [value, index] of top) {
          if (!Number.isFinite(value) || live >= k) continue;
          const parent = Math.floor(index / vocab);
          const token = index % vocab;
          if (token === eos) {
            if (finished[b].length < k)
              finished[b].push([norm(value, t + 1), seqs[b * k + parent]]);
          } else {
            rowScores[live] = value;
            nextRows[b * k + live] = b * k + parent;
            nextTokens[b * k + live] = token;
            live++;
          }
        }
        for (let j = 0; j < k; j++)
          if (nextRows[b * k + j] === undefined) nextRows[b * k + j] = b * k; // dead slots copy row 0
        nextScores.push(rowScores);
      }
      if (finished.every((f) => f.length >= k)) break;
      scores = nextScores;
      seqs = nextRows.map((r, i) => [...seqs[r], nextTokens[i]]);
      states = states.map((s, i) => take(ort, s, nextRows, axes[i]));
      tokens = nextTokens;
    }
    return finished.map((f, b) => {
      let options = f;
      if (!options.length) {
        // nothing ended within maxLen: the best unfinished
        options = [];
        for (let j = 0; j < k; j++) {
          if (Number.isFinite(scores[b][j]))
            options.push([norm(scores[b][j], seqs[b * k + j].length), seqs[b * k + j]]);
        }
      }
      let choice = options[0];
      for (const o of options) if (o[0] > choice[0]) choice = o;
      return [...choice[1]];
    });
  }
}
