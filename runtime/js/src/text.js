// Tokens as specc makes them (runtime/text.py), from a tokenizer entry of specc.json.
//
// Python's `\w` is Unicode-aware and differs from every JavaScript spelling of it: JS's `\w` is
// ASCII-only, and `[\p{L}\p{N}_]` still disagrees at the edges (Python's `\w` holds no
// combining marks and no connector punctuation but '_'). specc.json therefore lists the code
// points of Python's `\w` and `\s` as ranges, and the pattern is built from them.

import { InputError } from './errors.js';

const SPECIALS = 4; // <pad> <unk> <bos> <eos>

const hex = (c) => `\\u{${c.toString(16)}}`;
const charClass = (ranges) =>
  ranges.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join('');

function inRanges(ranges, code) {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (code < ranges[mid][0]) hi = mid - 1;
    else if (code > ranges[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}

export class Tokenizer {
  /** `entry`: one of specc.json's `tokenizers` (level, lowercase, split, join, tokens). */
  constructor(entry) {
    this.entry = entry;
    this.level = entry.level;
    this.lowercase = entry.lowercase;
    this.tokens = entry.tokens;
    this.special = entry.special;
    this.index = new Map(entry.tokens.map((t, i) => [t, i]));
    if (this.level === 'word') {
      const word = charClass(entry.split.word);
      const space = charClass(entry.split.space);
      // Python: \w+|[^\w\s]
      this.pattern = new RegExp(`[${word}]+|[^${word}${space}]`, 'gu');
      this.wordRanges = entry.split.word;
    }
  }

  get size() {
    return this.tokens.length;
  }

  /** The text's tokens: code points, or the pattern's matches (after lowercasing if asked). */
  split(text) {
    // toLowerCase, like Python's str.lower, applies the full mapping and Final_Sigma
    const t = this.lowercase ? text.toLowerCase() : text;
    return this.level === 'char' ? Array.from(t) : (t.match(this.pattern) ?? []);
  }

  /** Tokens a model cannot read as given: not in the vocabulary, or a special's name. */
  unknown(tokens) {
    return tokens.filter((t) => !this.index.has(t) || this.index.get(t) < SPECIALS);
  }

  /** Ids of the text; a token not in the vocabulary is <unk> (1), as for specc's data. */
  encode(text) {
    return this.split(text).map((t) => this.index.get(t) ?? this.special.unk);
  }

  /** Ids of the text, where an unknown token is an InputError naming it (prompts, sources). */
  encodeStrict(text, what = 'the text') {
    const tokens = this.split(text);
    const unknown = this.unknown(tokens);
    if (unknown.length) {
      const known = this.tokens.slice(SPECIALS);
      const shown =
        this.level === 'char' && known.join('').length <= 120
          ? `: ${JSON.stringify(known.join(''))}`
          : '';
      throw new InputError(
        `${what} holds ${JSON.stringify(unknown[0])}, which is not in this model's vocabulary ` +
          `(${this.size} ${this.level} tokens${shown})`,
      );
    }
    return tokens.map((t) => this.index.get(t));
  }

  isAlnum(ch) {
    const code = ch.codePointAt(0);
    return code !== 0x5f && inRanges(this.wordRanges, code); // \w is alphanumerics and '_'
  }

  /** Text of ids: specials dropped; characters concatenated, words joined as specc joins them. */
  decode(ids) {
    const tokens = [];
    for (const id of ids) if (Number(id) >= SPECIALS) tokens.push(this.tokens[Number(id)]);
    if (this.level === 'char') return tokens.join('');
    let out = '';
    for (const tok of tokens) {
      const first = String.fromCodePoint(tok.codePointAt(0));
      const glue = !out || (!this.isAlnum(first) && !'([{"\''.includes(first));
      out += glue ? tok : ' ' + tok;
    }
    return out;
  }
}
