// Unit tests that need no trained model: numpy's random stream, tokens, resizing, picking.
// (parity.test.js compares whole models with the Python runtime.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pick, resizeBilinear, Rng, Tokenizer } from '../src/index.js';
import { parseNpy } from '../src/npy.js';
import { npSum } from '../src/tensor.js';

test('Rng draws what numpy.random.default_rng(seed).random() draws', () => {
  // printed by numpy 2.4: default_rng(0).random(2), default_rng(12345678901234567890).random(2)
  const a = new Rng(0);
  assert.deepEqual([a.random(), a.random()], [0.6369616873214543, 0.2697867137638703]);
  const b = new Rng(12345678901234567890n);
  assert.deepEqual([b.random(), b.random()], [0.004224879795573511, 0.6523439976170509]);
});

test('Rng normals are repeatable and standard', () => {
  const draw = (seed) => {
    const r = new Rng(seed);
    return Array.from({ length: 4000 }, () => r.normal());
  };
  assert.deepEqual(draw(3), draw(3));
  const xs = draw(4);
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.08, `${mean} ${variance}`);
});

const ascii = {
  level: 'word',
  lowercase: true,
  special: { pad: 0, unk: 1, bos: 2, eos: 3 },
  // Python's \w and \s restricted to ASCII, enough for these cases
  split: {
    word: [
      [48, 57],
      [65, 90],
      [95, 95],
      [97, 122],
    ],
    space: [
      [9, 13],
      [28, 32],
    ],
  },
  tokens: ['<pad>', '<unk>', '<bos>', '<eos>', 'the', 'plot', '.', '(', 'dull', ')', ','],
};

test('word tokens: the pattern, lowercasing, <unk>, and joining as specc joins', () => {
  const t = new Tokenizer(ascii);
  assert.deepEqual(t.split('The plot (dull), <pad>.'), [
    'the',
    'plot',
    '(',
    'dull',
    ')',
    ',',
    '<',
    'pad',
    '>',
    '.',
  ]);
  assert.deepEqual(t.encode('The PLOT, nope.'), [4, 5, 10, 1, 6]);
  assert.equal(t.decode([2, 4, 5, 7, 8, 9, 10, 4, 6, 3, 0]), 'the plot ( dull), the.'); // detokenize's output in Python
  assert.deepEqual(t.unknown(['the', 'nope', '<pad>']), ['nope', '<pad>']);
});

test('character tokens are code points, emoji and combining marks included', () => {
  const t = new Tokenizer({
    ...ascii,
    level: 'char',
    lowercase: false,
    tokens: ['<pad>', '<unk>', '<bos>', '<eos>', 'a', '😀', 'e', '\u0301'],
  });
  assert.deepEqual(t.split('a😀e\u0301'), ['a', '😀', 'e', '\u0301']);
  assert.deepEqual(t.encode('a😀e\u0301x'), [4, 5, 6, 7, 1]);
  assert.throws(() => t.encodeStrict('ax', 'the prompt'), /the prompt holds "x"/);
});

test('bilinear resize: the same size is the identity; 2x2 -> 4x4 as torch computes it', () => {
  const x = Float32Array.from([0, 1, 2, 3]);
  assert.deepEqual(Array.from(resizeBilinear(x, [1, 2, 2], [2, 2])), [0, 1, 2, 3]);
  // torch.nn.functional.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode="bilinear")
  const want = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3];
  assert.deepEqual(Array.from(resizeBilinear(x, [1, 2, 2], [4, 4])), want);
});

test('pick: greedy never picks the excluded ids; top_k 1 is greedy; a seed repeats', () => {
  const row = Float32Array.from([9, 8, 7, 1, 2, 3]);
  assert.equal(pick(row, { temperature: 0 }, new Rng(0)), 5);
  assert.equal(pick(row, { temperature: 1, topK: 1 }, new Rng(0)), 5);
  const draws = (seed) => {
    const rng = new Rng(seed);
    return Array.from({ length: 20 }, () => pick(row, { temperature: 1.5, topP: 0.9 }, rng));
  };
  assert.deepEqual(draws(7), draws(7));
  assert.ok(draws(7).every((t) => t >= 3));
});

test("sums round as numpy's pairwise sum does", () => {
  const xs = Float64Array.from({ length: 1000 }, (_, i) => 1 / (i + 1));
  assert.equal(npSum(xs), 7.485470860550345); // numpy.sum(1 / numpy.arange(1, 1001))
});

test('.npy files: header, dtype and dims', () => {
  // numpy.save of numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const padded = header.padEnd(117, ' ') + '\n';
  const bytes = new Uint8Array(10 + padded.length + 24);
  bytes.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, padded.length, 0]);
  bytes.set(new TextEncoder().encode(padded), 10);
  bytes.set(new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5]).buffer), 10 + padded.length);
  const x = parseNpy(bytes);
  assert.deepEqual([x.dtype, x.dims, Array.from(x.data)], ['float32', [2, 3], [0, 1, 2, 3, 4, 5]]);
});
