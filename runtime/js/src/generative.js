// Autoencoders, VAEs and GAN generators (runtime/generative.py): encode, decode, reconstruct,
// sample, interpolate.

import { InputError } from './errors.js';
import { Folder } from './folder.js';
import { Rng } from './random.js';
import { toTensor } from './tensor.js';

function normals(ort, n, dim, seed) {
  if (!(Number.isInteger(n) && n >= 1))
    throw new InputError(`n must be a whole number >= 1, got ${n}`);
  const rng = new Rng(seed);
  return new ort.Tensor(
    'float32',
    Float32Array.from({ length: n * dim }, () => rng.normal()),
    [n, dim],
  );
}

export class Autoencoder {
  static async open(source, options = {}) {
    const folder = source instanceof Folder ? source : await Folder.open(source, options);
    const p = folder.description.autoencoder;
    if (!p) throw new InputError(`this folder holds a ${folder.task} model, not an autoencoder`);
    const [encoder, decoder] = await Promise.all([
      folder.session(p.encoder.graph),
      folder.session(p.decoder.graph),
    ]);
    return new Autoencoder(folder, encoder, decoder);
  }

  constructor(folder, encoder, decoder) {
    this.folder = folder;
    this.ort = folder.ort;
    this.encoder = encoder;
    this.decoder = decoder;
    this.protocol = folder.description.autoencoder;
    this.dim = this.protocol.latent.dim;
    this.variational = this.protocol.latent.type === 'gaussian';
  }

  /** Codes of a batch of inputs: a VAE's latent means ({mean, logVar} with {logVar: true}). */
  async encode(x, { logVar = false } = {}) {
    const p = this.protocol.encoder;
    const out = await this.encoder.run({ [p.input]: toTensor(this.ort, x, 'float32', p.input) });
    const [first, second] = p.outputs.map((name) => out[name]);
    return this.variational && logVar ? { mean: first, logVar: second } : first;
  }

  /** Codes (n, dim) -> outputs (n, ...the input's dims). */
  async decode(z) {
    const p = this.protocol.decoder;
    const codes = toTensor(this.ort, z, 'float32', p.input);
    if (codes.dims.length !== 2 || codes.dims[1] !== this.dim) {
      throw new InputError(
        `codes must have shape (batch, ${this.dim}), got (${codes.dims.join(', ')})`,
      );
    }
    return (await this.decoder.run({ [p.input]: codes }))[p.output];
  }

  async reconstruct(x) {
    return this.decode(await this.encode(x));
  }

  /** n draws from the prior N(0, I), decoded (a VAE only). Seeded draws repeat, but are not numpy's. */
  async sample(n, { seed = null } = {}) {
    if (!this.variational) {
      throw new InputError(
        "sampling needs a VAE latent (latent: {type: gaussian, ...}); a plain autoencoder's codes follow no known distribution",
      );
    }
    return this.decode(normals(this.ort, n, this.dim, seed));
  }

  /** Decoded points on the straight line between the codes of inputs a and b (batches of one). */
  async interpolate(a, b, steps = 8) {
    if (steps < 2) throw new InputError(`steps must be at least 2, got ${steps}`);
    const za = (await this.encode(a)).data;
    const zb = (await this.encode(b)).data;
    const z = new Float32Array(steps * this.dim);
    for (let s = 0; s < steps; s++) {
      const t = Math.fround(s / (steps - 1));
      for (let d = 0; d < this.dim; d++) z[s * this.dim + d] = (1 - t) * za[d] + t * zb[d];
    }
    return this.decode({ data: z, dims: [steps, this.dim] });
  }
}

export class Generator {
  static async open(source, options = {}) {
    const folder = source instanceof Folder ? source : await Folder.open(source, options);
    const p = folder.description.gan;
    if (!p) throw new InputError(`this folder holds a ${folder.task} model, not a GAN`);
    return new Generator(folder, await folder.session(p.generator.graph));
  }

  constructor(folder, session) {
    this.folder = folder;
    this.ort = folder.ort;
    this.session = session;
    this.protocol = folder.description.gan;
    this.dim = this.protocol.latent.dim;
  }

  /** Images for noise z (n, dim). */
  async generate(z) {
    const p = this.protocol.generator;
    return (await this.session.run({ [p.input]: toTensor(this.ort, z, 'float32', p.input) }))[
      p.output
    ];
  }

  /** n images from z ~ N(0, I). Seeded draws repeat, but are not numpy's. */
  async sample(n, { seed = null } = {}) {
    return this.generate(normals(this.ort, n, this.dim, seed));
  }
}
