// Text from a language model's step graph (runtime/generate.py): the prompt goes through the
// graph once, then one token per call with the recurrent state carried forward.

import { InputError } from './errors.js';
import { Folder } from './folder.js';
import { Rng } from './random.js';
import { argmax, lastRows, npSum } from './tensor.js';
import { Tokenizer } from './text.js';

/**
 * The next token of one row of logits, as runtime/generate.py's `pick`: greedy at temperature 0,
 * else drawn from the softmax at that temperature, cut to the top_k likeliest and to the
 * smallest set holding top_p. `never` ids are never picked. With the same seed, the draws are
 * numpy's (see random.js), so sampled text equals Python's.
 */
export function pick(row, { temperature = 1, topK = null, topP = null, never = [0, 1, 2] }, rng) {
  const logits = Float64Array.from(row);
  for (const id of never) logits[id] = -Infinity;
  if (temperature === 0) return argmax(logits);
  for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
  if (topK !== null && topK < logits.length) {
    const kth = Float64Array.from(logits).sort()[logits.length - topK];
    for (let i = 0; i < logits.length; i++) if (logits[i] < kth) logits[i] = -Infinity;
  }
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let probs = logits.map((v) => Math.exp(v - max));
  let total = npSum(probs);
  probs = probs.map((p) => p / total);
  if (topP !== null && topP < 1) {
    const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b);
    // the mass of the tokens ranked above each token, as numpy's cumsum(sorted) - sorted
    let cumulative = 0;
    const drop = new Uint8Array(probs.length);
    for (const i of order) {
      cumulative += probs[i];
      if (cumulative - probs[i] >= topP) drop[i] = 1;
    }
    probs = probs.map((p, i) => (drop[i] ? 0 : p));
    total = npSum(probs);
    probs = probs.map((p) => p / total);
  }
  const cumulative = new Float64Array(probs.length);
  let sum = 0;
  probs.forEach((p, i) => (cumulative[i] = sum += p));
  const draw = rng.random() * cumulative[cumulative.length - 1];
  let chosen = 0;
  for (const c of cumulative) if (c < draw) chosen++;
  return Math.min(chosen, probs.length - 1);
}

/** Check sampling options as the Python runtime does. */
export function checkSampling({ temperature = 1, topK = null, topP = null }) {
  if (!(temperature >= 0))
    throw new InputError(`temperature must be >= 0 (0: greedy), got ${temperature}`);
  if (topK !== null && !(Number.isInteger(topK) && topK >= 1)) {
    throw new InputError(`top_k must be a whole number >= 1, got ${topK}`);
  }
  if (topP !== null && !(topP > 0 && topP <= 1))
    throw new InputError(`top_p must be in (0, 1], got ${topP}`);
}

export class LanguageModel {
  static async open(source, options = {}) {
    const folder = source instanceof Folder ? source : await Folder.open(source, options);
    if (!folder.description.generate) {
      throw new InputError(
        `this folder holds a ${folder.task} model; generating text needs task: language_model`,
      );
    }
    return new LanguageModel(folder, await folder.session(folder.description.generate.graph));
  }

  constructor(folder, session) {
    this.folder = folder;
    this.session = session;
    this.ort = folder.ort;
    this.protocol = folder.description.generate;
    this.tokenizer = new Tokenizer(folder.description.tokenizers[this.protocol.tokenizer]);
    this.special = this.protocol.special;
  }

  /** Token ids of a prompt; a token the model never saw is an InputError, not a silent <unk>. */
  encode(text) {
    return this.tokenizer.encodeStrict(text, 'the prompt');
  }

  decode(ids) {
    return this.tokenizer.decode(ids);
  }

  /** The states before the first token: zeros, or the learned values repeated along the batch. */
  initialState(batch = 1) {
    return this.protocol.states.map((s) => {
      const dims = s.dims.map((d) => (d === 'batch' ? batch : d));
      const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
      if (s.initial !== 'zeros') {
        const start = s.initial.flat(Infinity); // batch 1
        const outer = dims.slice(0, s.batch_axis).reduce((a, b) => a * b, 1);
        const inner = start.length / outer;
        for (let o = 0; o < outer; o++) {
          for (let b = 0; b < batch; b++) {
            data.set(start.slice(o * inner, (o + 1) * inner), (o * batch + b) * inner);
          }
        }
      }
      return new this.ort.Tensor('float32', data, dims);
    });
  }

  /** (batch, time) ids from a state -> {logits (batch, time, vocab), state: the next state}. */
  async step(ids, state) {
    const flat = ids.flat();
    const tokens = new this.ort.Tensor('int64', BigInt64Array.from(flat, BigInt), [
      ids.length,
      ids[0].length,
    ]);
    const feeds = { [this.protocol.tokens]: tokens };
    this.protocol.states.forEach((s, i) => (feeds[s.name] = state[i]));
    const out = await this.session.run(feeds);
    return {
      logits: out[this.protocol.logits],
      state: this.protocol.states.map((s) => out[s.output]),
    };
  }

  /** The prompt and up to maxTokens tokens after it, as text. */
  async generate(prompt = '', options = {}) {
    const { maxTokens = 200, temperature = 1, topK = null, topP = null, seed = null } = options;
    const stopAtEos = options.stopAtEos ?? true;
    if (!(Number.isInteger(maxTokens) && maxTokens >= 0)) {
      throw new InputError(`max_tokens must be a whole number >= 0, got ${maxTokens}`);
    }
    checkSampling({ temperature, topK, topP });
    const ids = this.encode(prompt);
    const rng = new Rng(seed);
    let { logits, state } = await this.step([[this.special.bos, ...ids]], this.initialState(1));
    const written = [];
    const never = this.protocol.pick.never;
    for (let n = 0; n < maxTokens; n++) {
      const token = pick(lastRows(logits)[0], { temperature, topK, topP, never }, rng);
      if (token === this.special.eos && stopAtEos) break;
      written.push(token);
      options.onToken?.(token, this.tokenizer.tokens[token]);
      ({ logits, state } = await this.step([[token]], state));
    }
    return this.decode([...ids, ...written]);
  }
}
