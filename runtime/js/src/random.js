// numpy's default random generator, PCG64 seeded through SeedSequence, so that a seeded
// `generate` draws the same numbers as specc.runtime's `np.random.default_rng(seed)`: the same
// seed gives the same sampled text in Python and JavaScript. 128-bit arithmetic uses BigInt.

const M32 = 0xffffffffn;
const M64 = (1n << 64n) - 1n;
const M128 = (1n << 128n) - 1n;
const MULT = 0x2360ed051fc65da44385df649fccf645n; // PCG's default 128-bit multiplier

// SeedSequence's hash constants (numpy/random/bit_generator.pyx)
const INIT_A = 0x43b0d7e5;
const MULT_A = 0x931e8875;
const INIT_B = 0x8b51f9dd;
const MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const POOL_SIZE = 4;

const mul32 = (a, b) => Math.imul(a, b) >>> 0;

/** numpy's SeedSequence(seed).generate_state(words, uint32) for a non-negative integer seed. */
export function seedSequence(seed, words) {
  let big = BigInt(seed);
  if (big < 0n) throw new RangeError('a seed must be a non-negative integer');
  const entropy = [];
  do {
    entropy.push(Number(big & M32));
    big >>= 32n;
  } while (big > 0n);
  let hashConst = INIT_A;
  const hashmix = (value) => {
    value = (value ^ hashConst) >>> 0;
    hashConst = mul32(hashConst, MULT_A);
    value = mul32(value, hashConst);
    return (value ^ (value >>> 16)) >>> 0;
  };
  const mix = (x, y) => {
    const r = (mul32(MIX_MULT_L, x) - mul32(MIX_MULT_R, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = [];
  for (let i = 0; i < POOL_SIZE; i++) pool.push(hashmix(i < entropy.length ? entropy[i] : 0));
  for (let src = 0; src < POOL_SIZE; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  for (let src = POOL_SIZE; src < entropy.length; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  let h = INIT_B;
  const out = [];
  for (let i = 0; i < words; i++) {
    let v = (pool[i % POOL_SIZE] ^ h) >>> 0;
    h = mul32(h, MULT_B);
    v = mul32(v, h);
    out.push((v ^ (v >>> 16)) >>> 0);
  }
  return out;
}

/** numpy.random.default_rng(seed): random() gives the same doubles as numpy for the same seed. */
export class Rng {
  constructor(seed) {
    if (seed === undefined || seed === null) {
      // no seed: fresh entropy, as numpy does
      seed = Math.floor(Math.random() * 2 ** 52) + Math.floor(Math.random() * 2 ** 20) * 2 ** 32;
    }
    const w = seedSequence(seed, 8).map(BigInt);
    const u64 = (i) => w[i] | (w[i + 1] << 32n); // uint32 pairs viewed as little-endian uint64
    const initState = (u64(0) << 64n) | u64(2);
    const initSeq = (u64(4) << 64n) | u64(6);
    this.inc = ((initSeq << 1n) | 1n) & M128;
    this.state = 0n;
    this.step();
    this.state = (this.state + initState) & M128;
    this.step();
    this.spare = null;
  }

  step() {
    this.state = (this.state * MULT + this.inc) & M128;
  }

  /** The next 64 random bits (PCG64's XSL-RR output), as a BigInt. */
  nextUint64() {
    this.step();
    const s = this.state;
    const x = ((s >> 64n) ^ s) & M64;
    const rot = s >> 122n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & M64;
  }

  /** A double in [0, 1), as numpy's Generator.random(). */
  random() {
    return Number(this.nextUint64() >> 11n) / 9007199254740992;
  }

  /** A standard normal draw (Box-Muller on random()); repeatable, but not numpy's ziggurat draws. */
  normal() {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}
