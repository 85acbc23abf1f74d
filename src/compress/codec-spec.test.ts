import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import type { CodecContext } from './codec';
import {
  buildModelCodec,
  buildVectorCodec,
  canonicalCodecName,
  COCKTAIL_RANDOMK,
  COCKTAIL_TOPK,
  COCKTAIL_VALUES,
  formatCodecSpec,
  modelCodecByName,
  parseCodecSpec,
  QUANT_BLOCK,
  type CodecSpec,
  type ValueSpec,
} from './codec-spec';
import { int8Codec, int8Scale, INT8_BLOCK } from './int8/int8';
import type { TensorSpec } from './model-codec';
import { quantLevels, quantStep } from './quant/quant';
import { randomkIndices } from './randomk/randomk';
import { keepCount } from './sparse';
import { bitLength } from './bits';
import { topkIndices } from './topk/topk';
import { layoutOf } from './layout.test-helper';

/**
 * Odd sizes; 2-D tensors on both sides of PowerSGD's r·(rows+cols) < rows·cols rule; ln spans 2 int8 blocks and 5 q
 * blocks.
 */
const LAYOUT = layoutOf([
  ['w1', [13, 37]],
  ['b1', [37]],
  ['w2', [29, 11]],
  ['b2', [11]],
  ['w3', [3, 5]], // PowerSGD at rank 1 (8 < 15), fallback at rank 2 (16 >= 15)
  ['ln', [301]],
]);
const N = 1164;

/** Accepted strings and their canonical forms. */
const FORMS: [string, string][] = [
  ['f32', 'f32'],
  ['f16', 'f16'],
  ['int8', 'int8'],
  ['q8', 'q8'],
  ['q4', 'q4'],
  ['q2', 'q2'],
  ['q8:sr', 'q8:sr'],
  ['q4:sr', 'q4:sr'],
  ['q2:sr', 'q2:sr'],
  ['topk:0.1', 'topk:0.1'],
  ['topk:0.1/f32', 'topk:0.1'],
  ['topk:0.10', 'topk:0.1'],
  ['topk:1e-1', 'topk:0.1'],
  ['topk:.05/q4', 'topk:0.05/q4'],
  ['topk:0.2/q2:sr', 'topk:0.2/q2:sr'],
  ['topk:1/f16', 'topk:1/f16'],
  ['topk:0.3/int8', 'topk:0.3/int8'],
  ['randomk:0.25', 'randomk:0.25'],
  ['randomk:0.25/f32', 'randomk:0.25'],
  ['randomk:0.5/q8:sr', 'randomk:0.5/q8:sr'],
  ['randomk:1/q4', 'randomk:1/q4'],
  ['chunktop:32', 'chunktop:32'],
  ['chunktop:032/f32', 'chunktop:32'],
  ['chunktop:2/q2', 'chunktop:2/q2'],
  ['chunktop:7/q4:sr', 'chunktop:7/q4:sr'],
  ['chunktop:65536/f16', 'chunktop:65536/f16'],
  ['cocktail', 'cocktail'],
  ['cocktail:0.1,0.1', 'cocktail'],
  ['cocktail:0.5,0.2', 'cocktail:0.5,0.2'],
  ['powersgd:1', 'powersgd:1'],
  ['powersgd:02/int8', 'powersgd:2'],
  ['powersgd:2/f16', 'powersgd:2/f16'],
  ['powersgd:3/q4:sr', 'powersgd:3/q4:sr'],
  ['powersgd:2/f32', 'powersgd:2/f32'],
];
const CANONICAL = [...new Set(FORMS.map(([, c]) => c))];

test('codec names: every accepted form parses, formats to its canonical string, and the canonical string round-trips', () => {
  for (const [s, canon] of FORMS) {
    const spec = parseCodecSpec(s);
    assert.equal(formatCodecSpec(spec), canon, s);
    assert.equal(canonicalCodecName(s), canon, s);
    assert.deepEqual(parseCodecSpec(canon), spec, s);
    assert.equal(modelCodecByName(s, LAYOUT).name, canon, s);
  }
  assert.deepEqual(parseCodecSpec('q4:sr'), { kind: 'quant', bits: 4, rounding: 'stochastic' });
  assert.deepEqual(parseCodecSpec('q2'), { kind: 'quant', bits: 2, rounding: 'nearest' });
  assert.deepEqual(parseCodecSpec('topk:0.01/q4'), {
    kind: 'topk',
    fraction: 0.01,
    values: { kind: 'quant', bits: 4, rounding: 'nearest' },
  });
  assert.deepEqual(parseCodecSpec('chunktop:32/q2'), {
    kind: 'chunktop',
    chunk: 32,
    values: { kind: 'quant', bits: 2, rounding: 'nearest' },
  });
  assert.equal(buildVectorCodec(parseCodecSpec('chunktop:32/q2')).name, 'chunktop(32)>q2-block64-nearest');
  assert.deepEqual(parseCodecSpec('cocktail'), { kind: 'cocktail', randomk: 0.1, topk: 0.1 });
  assert.deepEqual(COCKTAIL_VALUES, { kind: 'quant', bits: 4, rounding: 'stochastic' });
  assert.deepEqual(parseCodecSpec('powersgd:4'), { kind: 'powersgd', rank: 4, fallback: { kind: 'int8' } });
  // Specs built by hand format canonically too.
  const hand: CodecSpec[] = [
    { kind: 'topk', fraction: 1e-7, values: { kind: 'f16' } },
    { kind: 'randomk', fraction: 1 / 3, values: { kind: 'quant', bits: 8, rounding: 'nearest' } },
    { kind: 'cocktail', randomk: 0.1, topk: 0.05 },
    { kind: 'powersgd', rank: 123456, fallback: { kind: 'quant', bits: 2, rounding: 'stochastic' } },
  ];
  for (const spec of hand) assert.deepEqual(parseCodecSpec(formatCodecSpec(spec)), spec, formatCodecSpec(spec));
  assert.equal(formatCodecSpec(hand[0]), 'topk:1e-7/f16');
  // The per-element codecs are the modules' own.
  assert.equal(buildVectorCodec(parseCodecSpec('int8')), int8Codec);
  assert.equal(buildVectorCodec(parseCodecSpec('q4:sr')).name, `q4-block${QUANT_BLOCK}-stochastic`);
  assert.equal(buildVectorCodec(parseCodecSpec('cocktail')).name, 'randomk(0.1)>topk(0.1)>q4-block64-stochastic');
  assert.equal(buildVectorCodec(parseCodecSpec('topk:0.05/q4')).name, 'topk(0.05)>q4-block64-nearest');
  assert.throws(
    () => buildVectorCodec(parseCodecSpec('powersgd:2')),
    /codec "powersgd:2": powersgd is a model-level codec/,
  );
});

const FORMS_TAIL =
  '; accepted forms: f32 | f16 | int8 | q8, q4, q2 [:sr] | topk:F[/V] | randomk:F[/V] | chunktop:C[/V] | ' +
  'cocktail[:F,F] | powersgd:R[/V] (F a fraction in (0, 1], R an integer rank >= 1, C an integer chunk length in [2, ' +
  '65536], V one of f32, f16, int8, q8, q4, q2 (q8/q4/q2 optionally with :sr))';

test('codec names: bad strings are RangeErrors naming the string, the bad part, the limit and the accepted forms', () => {
  const bad: [string, string][] = [
    ['', 'unknown codec name ""'],
    ['INT8', 'unknown codec name "INT8"'],
    ['toString', 'unknown codec name "toString"'],
    [' int8', 'unknown codec name " int8"'],
    ['q3', 'unknown codec name "q3"'],
    ['q16', 'unknown codec name "q16"'],
    ['int8 ', 'unknown codec name "int8 "'],
    ['f32:sr', 'f32 takes no parameter (got ":sr")'],
    ['int8:sr', 'int8 takes no parameter (got ":sr")'],
    ['q4:', `the rounding "" of q4 must be 'sr' (stochastic) or absent (nearest)`],
    ['q4:nearest', `the rounding "nearest" of q4 must be 'sr' (stochastic) or absent (nearest)`],
    ['q4:sr:sr', `the rounding "sr:sr" of q4 must be 'sr' (stochastic) or absent (nearest)`],
    ['topk', 'topk needs a fraction, as topk:F or topk:F/V'],
    ['topk:', 'topk needs a fraction, as topk:F or topk:F/V'],
    ['topk:/q4', 'topk needs a fraction, as topk:F or topk:F/V'],
    ['topk:0', 'the topk fraction "0" must be a decimal number in (0, 1]'],
    ['topk:1.5', 'the topk fraction "1.5" must be a decimal number in (0, 1]'],
    ['topk:-0.1', 'the topk fraction "-0.1" must be a decimal number in (0, 1]'],
    ['topk:NaN', 'the topk fraction "NaN" must be a decimal number in (0, 1]'],
    ['topk:Infinity', 'the topk fraction "Infinity" must be a decimal number in (0, 1]'],
    ['topk:0x1', 'the topk fraction "0x1" must be a decimal number in (0, 1]'],
    ['topk:1%', 'the topk fraction "1%" must be a decimal number in (0, 1]'],
    ['topk:0.1/', 'the topk value codec "" is not one of f32, f16, int8, q8, q4, q2 (q8/q4/q2 optionally with :sr)'],
    [
      'topk:0.1/q3',
      'the topk value codec "q3" is not one of f32, f16, int8, q8, q4, q2 (q8/q4/q2 optionally with :sr)',
    ],
    ['topk:0.1/topk:0.1', 'the topk value codec "topk:0.1" is not one of'],
    ['randomk:2', 'the randomk fraction "2" must be a decimal number in (0, 1]'],
    ['randomk:0.5/int8:sr', 'the randomk value codec "int8:sr" is not one of'],
    ['chunktop', 'chunktop needs a chunk length, as chunktop:C or chunktop:C/V'],
    ['chunktop:/q2', 'chunktop needs a chunk length, as chunktop:C or chunktop:C/V'],
    ['chunktop:1', 'the chunktop chunk length "1" must be an integer in [2, 65536]'],
    ['chunktop:65537', 'the chunktop chunk length "65537" must be an integer in [2, 65536]'],
    ['chunktop:0.5', 'the chunktop chunk length "0.5" must be an integer in [2, 65536]'],
    ['chunktop:1e3', 'the chunktop chunk length "1e3" must be an integer in [2, 65536]'],
    ['chunktop:32/topk:0.1', 'the chunktop value codec "topk:0.1" is not one of'],
    ['cocktail:0.1', 'cocktail takes two fractions, as cocktail:F,F (random-k, then top-k of those), got "0.1"'],
    [
      'cocktail:0.1,0.1,0.1',
      'cocktail takes two fractions, as cocktail:F,F (random-k, then top-k of those), got "0.1,0.1,0.1"',
    ],
    ['cocktail:0,0.1', 'the cocktail random-k fraction "0" must be a decimal number in (0, 1]'],
    ['cocktail:0.1,1.01', 'the cocktail top-k fraction "1.01" must be a decimal number in (0, 1]'],
    ['powersgd', 'powersgd needs a rank, as powersgd:R or powersgd:R/V'],
    ['powersgd:', 'powersgd needs a rank, as powersgd:R or powersgd:R/V'],
    ['powersgd:0', 'the powersgd rank "0" must be an integer >= 1'],
    ['powersgd:1.5', 'the powersgd rank "1.5" must be an integer >= 1'],
    ['powersgd:-2', 'the powersgd rank "-2" must be an integer >= 1'],
    ['powersgd:x', 'the powersgd rank "x" must be an integer >= 1'],
    ['powersgd:99999999999999999999', 'the powersgd rank "99999999999999999999" must be an integer >= 1'],
    [
      'powersgd:2/q5',
      'the powersgd fallback codec "q5" is not one of f32, f16, int8, q8, q4, q2 (q8/q4/q2 optionally with :sr)',
    ],
    ['powersgd:2/powersgd:1', 'the powersgd fallback codec "powersgd:1" is not one of'],
  ];
  for (const [s, part] of bad) {
    for (const f of [() => parseCodecSpec(s), () => modelCodecByName(s, LAYOUT)]) {
      assert.throws(
        f,
        (e: unknown) =>
          e instanceof RangeError &&
          e.message.startsWith(`codec ${JSON.stringify(s)}: ${part}`) &&
          e.message.endsWith(FORMS_TAIL),
        s,
      );
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Bounds: per element for the value codecs (the modules' documented bounds), then sparsifiers keep
// their values within the value bound and decode everything else to exactly 0.

const EPS = 2 ** -24;

/** Per-element bound of a value codec on xs (in the order the codec sees them). */
function valueBound(v: ValueSpec, xs: Float32Array): Float64Array {
  const b = new Float64Array(xs.length);
  const blockwise = (block: number, step: (maxabs: number) => number, mult: number, L: number) => {
    for (let lo = 0; lo < xs.length; lo += block) {
      const hi = Math.min(xs.length, lo + block);
      let m = 0;
      for (let i = lo; i < hi; i++) m = Math.max(m, Math.abs(xs[i]));
      const s = step(m);
      // quant/quant.ts: nearest <= s/2, stochastic < s, plus f32 rounding < 2L·2^-24·s.
      for (let i = lo; i < hi; i++) b[i] = mult * s + 2 * L * EPS * s;
    }
  };
  switch (v.kind) {
    case 'f32':
      break;
    case 'f16': // plain.ts: <= 2^-11·|x| for |x| >= 2^-14, <= 2^-25 below
      for (let i = 0; i < xs.length; i++) b[i] = Math.max(2 ** -11 * Math.abs(xs[i]), 2 ** -25);
      break;
    case 'int8': // int8.ts: scale/2
      blockwise(INT8_BLOCK, int8Scale, 0.5, 127);
      break;
    case 'quant': {
      const L = quantLevels(v.bits);
      blockwise(QUANT_BLOCK, (m) => quantStep(m, L), v.rounding === 'nearest' ? 0.5 : 1, L);
      break;
    }
  }
  return b;
}

function checkKept(where: string, y: Float32Array, x: Float32Array, pos: ArrayLike<number>, v: ValueSpec): void {
  const kept = Float32Array.from(pos, (p) => x[p]);
  const bound = valueBound(v, kept);
  const isKept = new Uint8Array(x.length);
  for (let j = 0; j < pos.length; j++) {
    isKept[pos[j]] = 1;
    const err = Math.abs(y[pos[j]] - kept[j]);
    const msg = `${where}: kept element ${pos[j]}: |${y[pos[j]]} − ${kept[j]}| = ${err} > ${bound[j]}`;
    assert.ok(err <= bound[j], msg);
  }
  for (let i = 0; i < x.length; i++) if (!isKept[i]) assert.equal(y[i], 0, `${where}: dropped element ${i}`);
}

const powerSgdApplies = (t: TensorSpec, r: number) => t.shape.length === 2 && r * (t.shape[0] + t.shape[1]) < t.size;

/**
 * Fresh values: uniform, except PowerSGD's tensors, which get a random rank-r product (so one round is exact up to
 * rounding).
 */
function freshValues(spec: CodecSpec, rng: Rng): Float32Array {
  const x = rng.uniformArray(N);
  if (spec.kind !== 'powersgd') return x;
  for (const t of LAYOUT) {
    if (!powerSgdApplies(t, spec.rank)) continue;
    const [rows, cols] = t.shape;
    const u = rng.uniformArray(rows * spec.rank);
    const w = rng.uniformArray(cols * spec.rank);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let k = 0; k < spec.rank; k++) s += u[i * spec.rank + k] * w[j * spec.rank + k];
        x[t.offset + i * cols + j] = s;
      }
    }
  }
  return x;
}

test('codec names: every codec round-trips a fresh random model within its documented bound', () => {
  const rng = new Rng(2024);
  const ctx: CodecContext = { seed: 91, round: 4, stream: 1 };
  const T = LAYOUT.length;
  for (const name of CANONICAL) {
    const spec = parseCodecSpec(name);
    const mc = buildModelCodec(spec, LAYOUT);
    assert.equal(mc.n, N);
    const x = freshValues(spec, rng);
    const bytes = mc.encode(x, ctx);
    if (mc.fixedSize) assert.equal(bytes.length, mc.encodedBytes(N), name);
    else assert.ok(bytes.length <= mc.encodedBytes(N), name);
    const y = mc.decode(bytes, N, ctx);
    LAYOUT.forEach((t, i) => {
      const where = `${name}, tensor ${t.name}`;
      const xs = x.subarray(t.offset, t.offset + t.size);
      const ys = y.subarray(t.offset, t.offset + t.size);
      const tctx: CodecContext = { seed: ctx.seed, round: ctx.round, stream: ctx.stream * T + i };
      const all = Uint32Array.from({ length: t.size }, (_, j) => j);
      switch (spec.kind) {
        case 'topk':
          return checkKept(where, ys, xs, topkIndices(xs, keepCount(spec.fraction, t.size)), spec.values);
        case 'chunktop': {
          // Independently of chunktop.ts: the first index of each chunk's largest |x|, by sorting the chunk.
          const pos: number[] = [];
          for (let lo = 0; lo < t.size; lo += spec.chunk) {
            const ids = Array.from({ length: Math.min(spec.chunk, t.size - lo) }, (_, j) => lo + j);
            ids.sort((a, b) => Math.abs(xs[b]) - Math.abs(xs[a]) || a - b);
            pos.push(ids[0]);
          }
          return checkKept(where, ys, xs, pos, spec.values);
        }
        case 'randomk':
          return checkKept(where, ys, xs, randomkIndices(tctx, t.size, keepCount(spec.fraction, t.size)), spec.values);
        case 'cocktail': {
          const idx1 = randomkIndices(tctx, t.size, keepCount(spec.randomk, t.size));
          const sub = Float32Array.from(idx1, (p) => xs[p]);
          const idx2 = topkIndices(sub, keepCount(spec.topk, idx1.length));
          return checkKept(
            where,
            ys,
            xs,
            Array.from(idx2, (j) => idx1[j]),
            COCKTAIL_VALUES,
          );
        }
        case 'powersgd': {
          if (!powerSgdApplies(t, spec.rank)) return checkKept(where, ys, xs, all, spec.fallback);
          // COMPRESSION-powersgd.md states ‖decode − M‖_F <= (2 + 2√r)·2^-24·‖M‖_F for rank(M) <= r. Here
          // M is a rank-r product rounded to f32 (so only nearly rank r); seen up to 8.3·2^-24·‖M‖_F (29×11, r =
          // 2, f16 fallback case), above that bound, so this checks 16·2^-24·‖M‖_F: exact up to rounding.

          let err = 0;
          let norm = 0;
          for (let j = 0; j < t.size; j++) {
            err += (ys[j] - xs[j]) ** 2;
            norm += xs[j] ** 2;
          }
          const bound = 16 * EPS * Math.sqrt(norm);
          assert.ok(Math.sqrt(err) <= bound, `${where}: ‖error‖ ${Math.sqrt(err)} > ${bound}`);
          return;
        }
        default:
          return checkKept(where, ys, xs, all, spec);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Sizes: bytes = 8 + Σ_i (4 + 4·⌈b_i/4⌉), b_i from each module's size rule.

const pad4 = (b: number) => 4 * Math.ceil(b / 4);

function valueBytes(v: ValueSpec, n: number): number {
  switch (v.kind) {
    case 'f32':
      return 4 * n;
    case 'f16':
      return 4 * Math.ceil(n / 2);
    case 'int8':
      return 4 * Math.ceil(n / 256) + 4 * Math.ceil(n / 4);
    case 'quant':
      return 4 * Math.ceil(n / QUANT_BLOCK) + 4 * Math.ceil((n * v.bits) / 32);
  }
}

function topkBytes(fraction: number, n: number, v: ValueSpec): number {
  const k = keepCount(fraction, n);
  return 8 + Math.min(4 * Math.ceil(n / 32), 4 * Math.ceil((k * bitLength(n - k)) / 32)) + valueBytes(v, k);
}

function tensorBytes(spec: CodecSpec, t: TensorSpec): number {
  switch (spec.kind) {
    case 'topk':
      return topkBytes(spec.fraction, t.size, spec.values);
    case 'randomk':
      return valueBytes(spec.values, keepCount(spec.fraction, t.size));
    case 'chunktop': {
      const m = Math.ceil(t.size / spec.chunk);
      return 4 * Math.ceil((m * bitLength(spec.chunk - 1)) / 32) + valueBytes(spec.values, m);
    }
    case 'cocktail':
      return topkBytes(spec.topk, keepCount(spec.randomk, t.size), COCKTAIL_VALUES);
    case 'powersgd':
      return powerSgdApplies(t, spec.rank)
        ? 4 * spec.rank * (t.shape[0] + t.shape[1])
        : valueBytes(spec.fallback, t.size);
    default:
      return valueBytes(spec, t.size);
  }
}

/**
 * Model payload bytes over LAYOUT (1164 parameters; f32 would be 4688): exact, or the maximum where top-k is involved.
 */
const BYTES: Record<string, number> = {
  f32: 4688,
  f16: 2372,
  int8: 1244,
  q8: 1292,
  q4: 708,
  q2: 416,
  'q8:sr': 1292,
  'q4:sr': 708,
  'q2:sr': 416,
  'topk:0.1': 700,
  'topk:0.05/q4': 232,
  'topk:0.2/q2:sr': 340,
  'topk:1/f16': 2420,
  'topk:0.3/int8': 624,
  'randomk:0.25': 1208,
  'randomk:0.5/q8:sr': 676,
  'randomk:1/q4': 708,
  'chunktop:32': 232,
  'chunktop:2/q2': 328,
  'chunktop:7/q4:sr': 236,
  'chunktop:65536/f16': 80,
  cocktail: 152,
  'cocktail:0.5,0.2': 260,
  'powersgd:1': 796,
  'powersgd:2': 1144,
  'powersgd:2/f16': 1488,
  'powersgd:3/q4:sr': 1332,
  'powersgd:2/f32': 2208,
};

test('codec names: payload bytes of each named codec over a fixed layout (exact; the maximum for top-k)', () => {
  const got: Record<string, number> = {};
  for (const name of CANONICAL) {
    const spec = parseCodecSpec(name);
    const mc = modelCodecByName(name, LAYOUT);
    const formula = 8 + LAYOUT.reduce((a, t) => a + 4 + pad4(tensorBytes(spec, t)), 0);
    assert.equal(mc.encodedBytes(N), formula, name);
    const sparse = spec.kind === 'topk' || spec.kind === 'cocktail';
    assert.equal(mc.fixedSize, !sparse, name);
    got[name] = mc.encodedBytes(N);
  }
  assert.deepEqual(got, BYTES);
  assert.equal(COCKTAIL_RANDOMK * COCKTAIL_TOPK, 0.010000000000000002); // 1% of the values overall
});
