// Codec names: one parser from a job's codec string to a structured spec, one formatter back to the
// canonical string, and builders for the per-element codec and the model-level codec.
//
// Grammar (case-sensitive, no spaces):
//   value    := 'f32' | 'f16' | 'int8' | ('q8' | 'q4' | 'q2') [':sr']
//   codec    := value
//             | 'topk:' F ['/' value]        top-k, kept values through `value` (default f32)
//             | 'randomk:' F ['/' value]     random-k, kept values through `value` (default f32)
//             | 'chunktop:' C ['/' value]    the largest |x| of every chunk of C, kept values through `value`
//             | 'cocktail' [':' F ',' F]     random-k F1 → top-k F2 of those → q4:sr (default 0.1,0.1)
//             | 'powersgd:' R ['/' value]    PowerSGD rank R on 2-D tensors, `value` elsewhere (default int8)
//   F        := a decimal fraction in (0, 1] ('0.01', '.5', '1', '1e-3')
//   R        := an integer >= 1 (decimal digits)
//   C        := an integer in [2, 65536] (decimal digits)
// qB is blockwise quantization (quant/quant.ts) with B bits, block QUANT_BLOCK = 64, nearest rounding;
// ':sr' selects stochastic rounding (needs a codec context, which the model codec passes on).
// int8 is int8.ts (block 256, nearest). random-k scales nothing (scale 'none', for error feedback).
//
// Canonical form (formatCodecSpec): fractions and ranks as String(number) (shortest round-trip
// decimal), default parts left out: 'topk:0.1/f32' → 'topk:0.1', 'powersgd:2/int8' → 'powersgd:2',
// 'cocktail:0.1,0.1' → 'cocktail', 'topk:0.10' → 'topk:0.1', 'powersgd:02' → 'powersgd:2'.
import type { Codec } from './codec';
import { composeCodecs } from './compose';
import { int8Codec } from './int8/int8';
import { modelCodec, powerSgdPolicy, type ModelCodec, type TensorSpec } from './model-codec';
import { f16Codec, f32Codec } from './plain/plain';
import { blockQuantCodec, type QuantBits, type Rounding } from './quant/quant';
import { randomkCodec } from './randomk/randomk';
import { topkCodec } from './topk/topk';
import { chunkTopCodec, CHUNK_MAX, CHUNK_MIN } from './chunktop/chunktop';

/** Values per f32 step of the qB codecs named here. */
export const QUANT_BLOCK = 64;
/** CocktailSGD-like defaults of 'cocktail': random-k keeps 10%, top-k 10% of those (1% overall), values q4:sr. */
export const COCKTAIL_RANDOMK = 0.1;
export const COCKTAIL_TOPK = 0.1;

export type ValueSpec =
  { kind: 'f32' } | { kind: 'f16' } | { kind: 'int8' } | { kind: 'quant'; bits: QuantBits; rounding: Rounding };

export type CodecSpec =
  | ValueSpec
  | { kind: 'topk'; fraction: number; values: ValueSpec }
  | { kind: 'randomk'; fraction: number; values: ValueSpec }
  | { kind: 'chunktop'; chunk: number; values: ValueSpec }
  | { kind: 'cocktail'; randomk: number; topk: number }
  | { kind: 'powersgd'; rank: number; fallback: ValueSpec };

/** The cocktail's value codec: 4-bit, stochastic rounding. */
export const COCKTAIL_VALUES: ValueSpec = { kind: 'quant', bits: 4, rounding: 'stochastic' };

const VALUE_FORMS = 'f32, f16, int8, q8, q4, q2 (q8/q4/q2 optionally with :sr)';

/** The accepted forms, for error messages and docs. */
export const CODEC_FORMS =
  `f32 | f16 | int8 | q8, q4, q2 [:sr] | topk:F[/V] | ` +
  `randomk:F[/V] | chunktop:C[/V] | cocktail[:F,F] | powersgd:R[/V]` +
  ` (F a fraction in (0, 1], R an integer rank >= 1, C an integer chunk ` +
  `length in [${CHUNK_MIN}, ${CHUNK_MAX}], V one of ${VALUE_FORMS})`;

function fail(s: string, what: string): never {
  throw new RangeError(`codec ${JSON.stringify(s)}: ${what}; accepted forms: ${CODEC_FORMS}`);
}

const DECIMAL = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?$/;

function parseFraction(s: string, part: string, who: string): number {
  const f = DECIMAL.test(part) ? Number(part) : NaN;
  if (!(f > 0 && f <= 1)) fail(s, `the ${who} fraction ${JSON.stringify(part)} must be a decimal number in (0, 1]`);
  return f;
}

/** Decimal digits as an integer in [lo, hi]; otherwise a RangeError saying `the ${who} "part" must be ${limit}`. */
function parseInteger(s: string, part: string, who: string, lo: number, hi: number, limit: string): number {
  const r = /^[0-9]+$/.test(part) ? Number(part) : NaN;
  if (!(Number.isSafeInteger(r) && r >= lo && r <= hi)) fail(s, `the ${who} ${JSON.stringify(part)} must be ${limit}`);
  return r;
}

function parseValue(s: string, part: string, role: string): ValueSpec {
  if (part === 'f32' || part === 'f16' || part === 'int8') return { kind: part };
  const m = /^q([248])(:sr)?$/.exec(part);
  if (m) return { kind: 'quant', bits: Number(m[1]) as QuantBits, rounding: m[2] ? 'stochastic' : 'nearest' };
  return fail(s, `the ${role} ${JSON.stringify(part)} is not one of ${VALUE_FORMS}`);
}

/** Parses a job's codec string (grammar above); throws a RangeError naming the string and the bad part. */
export function parseCodecSpec(s: string): CodecSpec {
  if (typeof s !== 'string') fail(String(s), `a codec name must be a string, got ${typeof s}`);
  const colon = s.indexOf(':');
  const head = colon < 0 ? s : s.slice(0, colon);
  const rest = colon < 0 ? undefined : s.slice(colon + 1);
  const slash = rest === undefined ? -1 : rest.indexOf('/');
  const arg = rest === undefined || slash < 0 ? rest : rest.slice(0, slash);
  const inner = slash < 0 ? undefined : rest!.slice(slash + 1);
  switch (head) {
    case 'f32':
    case 'f16':
    case 'int8':
    case 'q8':
    case 'q4':
    case 'q2':
      if (rest !== undefined && !/^q[248]$/.test(head))
        fail(s, `${head} takes no parameter (got ${JSON.stringify(':' + rest)})`);
      if (rest !== undefined && rest !== 'sr')
        fail(s, `the rounding ${JSON.stringify(rest)} of ${head} must be 'sr' (stochastic) or absent (nearest)`);
      return parseValue(s, s, 'codec');
    case 'topk':
    case 'randomk': {
      if (arg === undefined || arg === '') fail(s, `${head} needs a fraction, as ${head}:F or ${head}:F/V`);
      const fraction = parseFraction(s, arg, head);
      const values: ValueSpec = inner === undefined ? { kind: 'f32' } : parseValue(s, inner, `${head} value codec`);
      return { kind: head, fraction, values };
    }
    case 'chunktop': {
      if (arg === undefined || arg === '') fail(s, 'chunktop needs a chunk length, as chunktop:C or chunktop:C/V');
      const chunk = parseInteger(
        s,
        arg,
        'chunktop chunk length',
        CHUNK_MIN,
        CHUNK_MAX,
        `an integer in [${CHUNK_MIN}, ${CHUNK_MAX}]`,
      );
      const values: ValueSpec = inner === undefined ? { kind: 'f32' } : parseValue(s, inner, 'chunktop value codec');
      return { kind: 'chunktop', chunk, values };
    }
    case 'cocktail': {
      if (rest === undefined) return { kind: 'cocktail', randomk: COCKTAIL_RANDOMK, topk: COCKTAIL_TOPK };
      const parts = rest.split(',');
      if (parts.length !== 2)
        fail(
          s,
          `cocktail takes two fractions, as cocktail:F,F (random-k, then top-k of those), got ${JSON.stringify(rest)}`,
        );
      return {
        kind: 'cocktail',
        randomk: parseFraction(s, parts[0], 'cocktail random-k'),
        topk: parseFraction(s, parts[1], 'cocktail top-k'),
      };
    }
    case 'powersgd': {
      if (arg === undefined || arg === '') fail(s, 'powersgd needs a rank, as powersgd:R or powersgd:R/V');
      const rank = parseInteger(s, arg, 'powersgd rank', 1, Number.MAX_SAFE_INTEGER, 'an integer >= 1');
      const fallback: ValueSpec =
        inner === undefined ? { kind: 'int8' } : parseValue(s, inner, 'powersgd fallback codec');
      return { kind: 'powersgd', rank, fallback };
    }
    default:
      return fail(s, `unknown codec name ${JSON.stringify(head)}`);
  }
}

function formatValue(v: ValueSpec): string {
  return v.kind === 'quant' ? `q${v.bits}${v.rounding === 'stochastic' ? ':sr' : ''}` : v.kind;
}

/** The canonical string of a spec; parseCodecSpec(formatCodecSpec(x)) deep-equals x. */
export function formatCodecSpec(spec: CodecSpec): string {
  switch (spec.kind) {
    case 'topk':
    case 'randomk':
      return `${spec.kind}:${spec.fraction}${spec.values.kind === 'f32' ? '' : '/' + formatValue(spec.values)}`;
    case 'chunktop':
      return `chunktop:${spec.chunk}${spec.values.kind === 'f32' ? '' : '/' + formatValue(spec.values)}`;
    case 'cocktail':
      return spec.randomk === COCKTAIL_RANDOMK && spec.topk === COCKTAIL_TOPK
        ? 'cocktail'
        : `cocktail:${spec.randomk},${spec.topk}`;
    case 'powersgd':
      return `powersgd:${spec.rank}${spec.fallback.kind === 'int8' ? '' : '/' + formatValue(spec.fallback)}`;
    default:
      return formatValue(spec);
  }
}

/** parseCodecSpec then formatCodecSpec. */
export function canonicalCodecName(s: string): string {
  return formatCodecSpec(parseCodecSpec(s));
}

function buildValue(v: ValueSpec): Codec {
  switch (v.kind) {
    case 'f32':
      return f32Codec;
    case 'f16':
      return f16Codec;
    case 'int8':
      return int8Codec;
    case 'quant':
      return blockQuantCodec({ bits: v.bits, block: QUANT_BLOCK, rounding: v.rounding });
  }
}

/** The per-element codec of a spec; powersgd has none (it needs the tensor shapes: use buildModelCodec). */
export function buildVectorCodec(spec: CodecSpec): Codec {
  switch (spec.kind) {
    case 'topk':
      return topkCodec({ fraction: spec.fraction, values: buildValue(spec.values) });
    case 'randomk':
      return randomkCodec({ fraction: spec.fraction, values: buildValue(spec.values) });
    case 'chunktop':
      return chunkTopCodec({ chunk: spec.chunk, values: buildValue(spec.values) });
    case 'cocktail':
      return composeCodecs(
        randomkCodec({ fraction: spec.randomk }),
        topkCodec({ fraction: spec.topk }),
        buildValue(COCKTAIL_VALUES),
      );
    case 'powersgd':
      throw new RangeError(
        `codec ${JSON.stringify(formatCodecSpec(spec))}: powersgd is a ` +
          `model-level codec (it needs tensor shapes); use buildModelCodec`,
      );
    default:
      return buildValue(spec);
  }
}

/** The model codec of a spec over a layout, named by the spec's canonical string. */
export function buildModelCodec(spec: CodecSpec, layout: readonly TensorSpec[]): ModelCodec {
  const name = formatCodecSpec(spec);
  if (spec.kind === 'powersgd')
    return modelCodec(layout, powerSgdPolicy(spec.rank, buildValue(spec.fallback)), { name });
  return modelCodec(layout, { vector: buildVectorCodec(spec) }, { name });
}

/**
 * The model codec for a job's codec string over a layout, named by its canonical form: the grammar,
 * the defaults and the errors are this file's (parseCodecSpec, then buildModelCodec). 'int8'
 * sends every tensor through int8; 'powersgd:R' sends 2-D tensors through PowerSGD rank R where that
 * saves space and the rest through int8 ('powersgd:R/V' through V). A bad string throws a RangeError
 * naming it, the part that is wrong and the accepted forms.
 */
export function modelCodecByName(spec: string, layout: readonly TensorSpec[]): ModelCodec {
  return buildModelCodec(parseCodecSpec(spec), layout);
}

/** Longest codec name a job or a message may carry. */
export const MAX_CODEC_NAME = 64;

/** The canonical form of a codec name; throws a RangeError naming what is wrong and the accepted forms. */
export function checkCodecName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_CODEC_NAME) {
    throw new RangeError(`codec name must be a string of 1..${MAX_CODEC_NAME} characters, got ${JSON.stringify(name)}`);
  }
  return canonicalCodecName(name);
}
