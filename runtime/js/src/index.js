// specc's JavaScript runtime: a `specc train` folder (specc.json and its ONNX graphs) used from
// Node (onnxruntime-node) or a browser (onnxruntime-web), as specc.runtime is used from Python.
//
//   import * as specc from 'specc-runtime';
//   const model = await specc.load('runs/lenet5');            // Node: onnxruntime-node
//   const { classes, labels, probabilities } = await model.predict(images);
//   const lm = await specc.LanguageModel.open('runs/char_lm');
//   await lm.generate('The ', { maxTokens: 200, temperature: 0.8, topK: 20, seed: 0 });
//   const s2s = await specc.Seq2Seq.open('runs/seq2seq_reverse');
//   await s2s.translate(['12345'], { method: 'beam', beamSize: 4 });
//   In a browser: specc.open(url, { ort }) with `import * as ort from 'onnxruntime-web'`.

import { Folder } from './folder.js';
import { Autoencoder, Generator } from './generative.js';
import { LanguageModel } from './generate.js';
import { Model } from './model.js';
import { Seq2Seq } from './translate.js';

export { InputError, ModelLoadError, SpeccRuntimeError } from './errors.js';
export { Folder } from './folder.js';
export { Autoencoder, Generator } from './generative.js';
export { checkSampling, LanguageModel, pick } from './generate.js';
export { Model, probabilitiesOf } from './model.js';
export { applySteps, csvRow, digitsFromBitmap, resizeBilinear } from './preprocess.js';
export { Rng } from './random.js';
export { Tokenizer } from './text.js';
export { Seq2Seq } from './translate.js';

/** A folder's model.onnx as a Model (as specc.runtime.load). */
export async function load(source, options = {}) {
  return Model.open(source, options);
}

/** The object that fits the folder's task: Model, LanguageModel, Seq2Seq, Autoencoder or Generator. */
export async function open(source, options = {}) {
  const folder = source instanceof Folder ? source : await Folder.open(source, options);
  const d = folder.description;
  if (d.generate) return LanguageModel.open(folder);
  if (d.translate) return Seq2Seq.open(folder);
  if (d.autoencoder) return Autoencoder.open(folder);
  if (d.gan) return Generator.open(folder);
  return Model.open(folder);
}
