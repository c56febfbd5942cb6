// The JavaScript runtime against the Python runtime, case by case. tests/test_js_runtime.py
// trains small models of every task, runs specc.runtime on them and writes the cases (inputs
// and Python's answers) to the JSON file named by $SPECC_JS_CASES; without it, this file skips.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as specc from '../src/index.js';

const path = process.env.SPECC_JS_CASES;
const cases = path ? JSON.parse(readFileSync(path, 'utf-8')).cases : [];
const TOLERANCE = 1e-5; // probabilities and decoded values (float32 graphs; observed: 0)

function maxDiff(got, want) {
  assert.equal(got.length, want.length, `lengths ${got.length} and ${want.length}`);
  let worst = 0;
  for (let i = 0; i < got.length; i++)
    worst = Math.max(worst, Math.abs(Number(got[i]) - Number(want[i])));
  return worst;
}

function close(got, want, what) {
  const d = maxDiff(got, want);
  assert.ok(d <= TOLERANCE, `${what}: max abs difference ${d} > ${TOLERANCE}`);
}

const tensor = (t) => ({
  data: t.dtype === 'int64' ? BigInt64Array.from(t.data, BigInt) : Float32Array.from(t.data),
  dims: t.dims,
});

const run = {
  async classify(c) {
    const model = await specc.load(c.folder);
    const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, tensor(v)]));
    const got = await model.predict(
      model.inputs.length === 1 ? inputs[model.inputs[0].name] : inputs,
    );
    assert.deepEqual(got.classes, c.expected.classes);
    assert.deepEqual(got.labels, c.expected.labels);
    close(got.probabilities.flat(), c.expected.probabilities.flat(), 'probabilities');
  },
  async classify_text(c) {
    const model = await specc.load(c.folder);
    assert.deepEqual(
      c.texts.map((t) => model.tokenizer.encode(t)),
      c.expected.ids,
    );
    const got = await model.predictText(c.texts);
    assert.deepEqual(got.classes, c.expected.classes);
    assert.deepEqual(got.labels, c.expected.labels);
    close(got.probabilities.flat(), c.expected.probabilities.flat(), 'probabilities');
  },
  async regress(c) {
    const model = await specc.load(c.folder);
    const got = await model.predict(tensor(c.inputs[model.inputs[0].name]));
    assert.deepEqual(got.dims, c.expected.dims);
    close(got.data, c.expected.data, 'values');
  },
  async generate(c) {
    const lm = await specc.LanguageModel.open(c.folder);
    assert.equal(await lm.generate(c.prompt, c.options), c.expected);
  },
  async generate_error(c) {
    const lm = await specc.LanguageModel.open(c.folder);
    await assert.rejects(
      lm.generate(c.prompt, c.options),
      (e) => e instanceof specc.InputError && e.message.includes(c.expected),
    );
  },
  async translate(c) {
    const s2s = await specc.Seq2Seq.open(c.folder);
    assert.deepEqual(await s2s.translate(c.sources, c.options), c.expected);
  },
  async caption(c) {
    const s2s = await specc.Seq2Seq.open(c.folder);
    assert.deepEqual(await s2s.caption(tensor(c.images), c.options), c.expected);
  },
  async encode(c) {
    const ae = await specc.Autoencoder.open(c.folder);
    const got = await ae.encode(tensor(c.x), { logVar: true });
    close((got.mean ?? got).data, c.expected.data, 'codes');
  },
  async decode(c) {
    const ae = await specc.Autoencoder.open(c.folder);
    const got = await ae.decode(tensor(c.z));
    assert.deepEqual(got.dims, c.expected.dims);
    close(got.data, c.expected.data, 'decoded images');
  },
  async generator(c) {
    const gen = await specc.Generator.open(c.folder);
    const got = await gen.generate(tensor(c.z));
    assert.deepEqual(got.dims, c.expected.dims);
    close(got.data, c.expected.data, 'generated images');
  },
  async tokenize(c) {
    const description = JSON.parse(readFileSync(c.specc_json, 'utf-8'));
    const tokenizer = new specc.Tokenizer(description.tokenizers[c.tokenizer]);
    c.texts.forEach((text, i) => {
      assert.deepEqual(
        tokenizer.split(text),
        c.expected.tokens[i],
        `tokens of ${JSON.stringify(text)}`,
      );
      assert.deepEqual(tokenizer.encode(text), c.expected.ids[i], `ids of ${JSON.stringify(text)}`);
      assert.equal(
        tokenizer.decode(c.expected.ids[i]),
        c.expected.decoded[i],
        `decoding ${JSON.stringify(text)}`,
      );
    });
  },
  async preprocess(c) {
    const description = JSON.parse(readFileSync(`${c.folder}/specc.json`, 'utf-8'));
    const input = description.inputs[0];
    const got = specc.applySteps(Float32Array.from(c.raw.data), c.raw.dims, input.preprocess);
    assert.deepEqual(got.dims, c.expected.dims);
    const d = maxDiff(got.data, c.expected.data);
    assert.ok(d <= 1e-6, `preprocessed input: max abs difference ${d}`);
  },
};

for (const c of cases) {
  test(`${c.kind}: ${c.name}`, async () => {
    if (!run[c.kind]) throw new Error(`unknown case kind ${c.kind}`);
    await run[c.kind](c);
  });
}

test(
  'the cases file',
  { skip: path ? false : 'no $SPECC_JS_CASES (tests/test_js_runtime.py writes it)' },
  () => {
    assert.ok(cases.length > 0);
  },
);
