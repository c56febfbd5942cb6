#!/usr/bin/env node
// specc's commands that serve a trained model, in JavaScript on onnxruntime-node: the same
// arguments and the same printed output as the Python CLI's.
//
//   node bin/specc-js.mjs predict runs/lenet5 --input x.npy
//   node bin/specc-js.mjs sample runs/char_lm --prompt "The " -n 200 -t 0
//   node bin/specc-js.mjs translate runs/seq2seq_reverse --input 12345 --beam 4

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as specc from '../src/index.js';
import { parseNpy } from '../src/npy.js';

/** Python's format(v, '.6g'). */
function formatG(v, precision = 6) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mantissa, exp] = v.toExponential(precision - 1).split('e');
  const e = Number(exp);
  const strip = (s) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (e < -4 || e >= precision) {
    return `${strip(mantissa)}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return strip(v.toFixed(precision - 1 - e));
}

const commands = {
  async predict(folder, args) {
    const { values } = parseArgs({
      args,
      options: { input: { type: 'string', short: 'i' }, json: { type: 'boolean' } },
    });
    const x = parseNpy(new Uint8Array(await readFile(values.input)));
    const model = await specc.load(folder);
    const info = model.inputs[0];
    const cast = info.dtype === x.dtype ? x : { dims: x.dims, data: Array.from(x.data, Number) };
    const result = await model.predict(cast);
    if (model.task === 'regression') {
      const width = result.data.length / result.dims[0];
      const rows = [];
      for (let i = 0; i < result.dims[0]; i++)
        rows.push(Array.from(result.data.subarray(i * width, (i + 1) * width)));
      console.log(
        values.json
          ? JSON.stringify(rows)
          : rows.map((r) => r.map((v) => formatG(v)).join(' ')).join('\n'),
      );
      return;
    }
    const rows = result.classes.map((c, i) => ({
      index: i,
      class: c,
      label: result.labels[i],
      probability: result.probabilities[i][c],
    }));
    if (values.json) console.log(JSON.stringify(rows));
    else for (const r of rows) console.log(`${r.index}\t${r.label}\t${r.probability.toFixed(4)}`);
  },

  async sample(folder, args) {
    const { values } = parseArgs({
      args,
      options: {
        prompt: { type: 'string', short: 'p', default: '' },
        n: { type: 'string', short: 'n', default: '200' },
        temperature: { type: 'string', short: 't', default: '1' },
        'top-k': { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
      },
    });
    const lm = await specc.LanguageModel.open(folder);
    const text = await lm.generate(values.prompt, {
      maxTokens: Number(values.n),
      temperature: Number(values.temperature),
      topK: values['top-k'] === undefined ? null : Number(values['top-k']),
      topP: values['top-p'] === undefined ? null : Number(values['top-p']),
      seed: values.seed === undefined ? null : BigInt(values.seed),
    });
    console.log(text);
  },

  async translate(folder, args) {
    const { values } = parseArgs({
      args,
      options: {
        input: { type: 'string', short: 'i', multiple: true },
        file: { type: 'string', short: 'f' },
        beam: { type: 'string' },
        'length-penalty': { type: 'string', default: '0' },
        sample: { type: 'boolean', default: false },
        temperature: { type: 'string', short: 't', default: '1' },
        'top-k': { type: 'string' },
        seed: { type: 'string' },
        'max-len': { type: 'string' },
        'batch-size': { type: 'string', default: '64' },
      },
    });
    let sources = values.input ?? [];
    if (values.file) {
      const raw = values.file === '-' ? await readStdin() : await readFile(values.file, 'utf-8');
      sources = raw.split(/\r\n|\r|\n/).filter((l) => l.trim());
    }
    const s2s = await specc.Seq2Seq.open(folder);
    const options = {
      method: values.beam !== undefined ? 'beam' : values.sample ? 'sample' : 'greedy',
      beamSize: values.beam !== undefined ? Number(values.beam) : 4,
      lengthPenalty: Number(values['length-penalty']),
      temperature: Number(values.temperature),
      topK: values['top-k'] === undefined ? null : Number(values['top-k']),
      seed: values.seed === undefined ? null : BigInt(values.seed),
      maxLen: values['max-len'] === undefined ? undefined : Number(values['max-len']),
    };
    const size = Number(values['batch-size']);
    for (let i = 0; i < sources.length; i += size) {
      for (const line of await s2s.translate(sources.slice(i, i + size), options))
        console.log(line);
    }
  },
};

async function readStdin() {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

const [command, folder, ...rest] = process.argv.slice(2);
if (!commands[command] || !folder) {
  console.error('usage: specc-js predict|sample|translate FOLDER [options as for specc]');
  process.exit(2);
}
try {
  await commands[command](folder, rest);
} catch (e) {
  console.error(`error: ${e.message}`);
  process.exit(e instanceof specc.SpeccRuntimeError ? 1 : 3);
}
