// PowerSGD (Vogels, Karimireddy & Jaggi 2019), rank r, for one 2-D tensor M [rows, cols] (row-major),
// in the parameter-server setting: each worker sends its own low-rank factors and the server
// decodes each payload on its own, so no Q has to be shared between workers.
//
// One encode is one step of subspace (power) iteration, warm-started from the previous round:
//   Â  = M · 2^-e               e = floor(log2 max|M|): an exact power-of-two rescaling, so every
//                                  intermediate is O(1) (an f32 port cannot underflow on tiny M)
//   Q̂  = orth(Q)                Q [cols, r]: the previous round's Âᵀ·P, or drawn from ctx at the start
//   P  = orth(Â · Q̂)            [rows, r], orthonormal columns
//   P̃  = f32(P)                 what is sent
//   Q' = f32(2^e · Âᵀ · P̃)      [cols, r], what is sent; Âᵀ·P̃ is kept as the next round's Q
// decode(P̃, Q') = P̃ · Q'ᵀ ≈ P̃ P̃ᵀ M: the projection of M onto span(P̃). The decoder needs no state.
//
// orth() is classical Gram–Schmidt applied twice per column ("twice is enough") in float64. A column
// whose norm after both passes is at most τ·ref (τ = 2^-30; ref = ‖Â‖_F for P, the previous round's
// ‖Â‖_F for a warm-started Q, the largest column norm for a freshly drawn Q) carries no usable
// direction, and is REPLACED by a deterministic fresh direction: the coordinate vector e_j least
// covered by the columns already accepted (j maximising 1 − Σ_i V[j,i]², ties to the smallest j),
// orthogonalised twice and normalised. Its residual norm is ≥ 1/√len, because the k < len accepted
// orthonormal columns cover at most k of the len coordinate directions' squared length. So P̃ and Q̂
// always have r orthonormal columns (r ≤ min(rows, cols)), the decode stays a projection of M (a
// fresh P direction p adds p·pᵀM, which can only lower the error), and a column that died (rank(M)
// < r, a zero row, a zero update) is revived next round instead of staying zero forever.
//
// Payload (no header; the shape is the codec's): P̃ row-major [rows, r] (P̃[i,k] at float i·r + k),
// then Q' row-major [cols, r] (Q'[j,k] at float rows·r + j·r + k), f32 little-endian:
//   encodedBytes(rows·cols) = 4·r·(rows + cols)   exactly.
// An input whose max |x| is below 2^-126 (zero, or only f32 subnormals, which a GPU may flush) is
// sent as an all-zero payload and leaves the warm start untouched.
//
// Error: for rank(M) ≤ r one round is exact up to f32 rounding of the payload and of the decode,
// ‖decode − M‖_F ≤ (2 + 2√r)·2^-24·‖M‖_F (+ f64 terms ~1e-15·‖M‖_F); in general the error is
// ‖(I − P̃P̃ᵀ)M‖_F plus the same rounding, which approaches the best rank-r error √(Σ_{i>r} σ_i²)
// as warm-started rounds on a slowly changing M repeat the power iteration.
//
// Randomness: the initial Q (first encode after construction or reset(), or start(ctx)) is drawn
// from a counter-based hash of (ctx.seed, ctx.stream, ctx.round, element index), uniform in (-1, 1),
// so a run reproduces bit for bit. Later rounds read no ctx. Everything here is written so a WGSL
// port can mirror it (u32 hash with wrapping multiplies, ldexp scaling, one column at a time); the
// port would work in f32 and should use τ = 2^-12.
import type { Codec, CodecContext } from '../codec';

/** Relative norm below which an orthogonalised column is replaced by a fresh direction (float64). */
export const POWERSGD_TAU = 2 ** -30;
/** Inputs whose largest magnitude is below this (f32 subnormals, or zero) are sent as zeros. */
export const POWERSGD_TINY = 2 ** -126;

export interface PowerSgdCodec extends Codec {
  readonly rows: number;
  readonly cols: number;
  readonly rank: number;
  /** True once Q has been drawn (by start or an encode with a ctx); false after reset(). */
  readonly started: boolean;
  /** Draws the initial Q from ctx now, so later encodes need no ctx (e.g. inside ErrorFeedback). */
  start(ctx: CodecContext): void;
  /** Forgets the warm start; the next encode (or start) draws a fresh Q from its ctx. */
  reset(): void;
}

/** Bytes of one PowerSGD payload: P [rows, r] and Q' [cols, r] as f32. */
export function powerSgdBytes(rows: number, cols: number, rank: number): number {
  return 4 * rank * (rows + cols);
}

function mix32(x: number): number {
  // lowbias32 (Wellons): a full-avalanche u32 → u32 bijection; WGSL: the same with u32 `*` (wraps).
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

function word(v: number, what: string): [number, number] {
  if (!Number.isSafeInteger(v)) throw new RangeError(`powersgd: ctx.${what} must be a safe integer, got ${v}`);
  return [v >>> 0, Math.floor(v / 4294967296) >>> 0];
}

/**
 * Counter-based uniform in (-1, 1) for element `index` of the stream keyed by (seed, stream, round):
 * (u + 0.5)·2^-31 − 1 with u a 32-bit hash, so never exactly 0 or ±1.
 */
export function powerSgdUniform(ctx: CodecContext, index: number): number {
  const [s0, s1] = word(ctx.seed, 'seed');
  const [t0, t1] = word(ctx.stream, 'stream');
  const [r0, r1] = word(ctx.round, 'round');
  let h = mix32(s0 ^ 0x50535344); // 'PSSD'
  h = mix32(h ^ s1);
  h = mix32(h ^ t0);
  h = mix32(h ^ t1);
  h = mix32(h ^ r0);
  h = mix32(h ^ r1);
  h = mix32(h ^ (index >>> 0));
  return (h + 0.5) * 2 ** -31 - 1;
}

/**
 * Orthonormalises the r columns of V (row-major [len, r], column k at V[j·r + k]) in place by
 * classical Gram–Schmidt twice per column. A column whose norm after that is ≤ thresh (or not
 * finite) is replaced by the coordinate vector least covered by the earlier columns, orthogonalised
 * twice and normalised (see the file comment). Needs r ≤ len. Returns the replaced column indices.
 */
export function orthonormalizeColumns(V: Float64Array, len: number, r: number, thresh: number): number[] {
  if (r > len) throw new RangeError(`orthonormalize: ${r} columns cannot be orthonormal in dimension ${len}`);
  if (V.length !== len * r)
    throw new RangeError(`orthonormalize: expected ${len * r} entries for [${len}, ${r}], got ${V.length}`);
  const replaced: number[] = [];
  const d = new Float64Array(r);
  const project = (k: number): number => {
    for (let pass = 0; pass < 2; pass++) {
      d.fill(0, 0, k);
      for (let j = 0; j < len; j++) {
        const v = V[j * r + k];
        for (let i = 0; i < k; i++) d[i] += V[j * r + i] * v;
      }
      for (let j = 0; j < len; j++) {
        let s = V[j * r + k];
        for (let i = 0; i < k; i++) s -= d[i] * V[j * r + i];
        V[j * r + k] = s;
      }
    }
    let nn = 0;
    for (let j = 0; j < len; j++) nn += V[j * r + k] * V[j * r + k];
    return Math.sqrt(nn);
  };
  for (let k = 0; k < r; k++) {
    let nrm = project(k);
    if (!(nrm > thresh) || !Number.isFinite(nrm)) {
      replaced.push(k);
      let best = 0;
      let bestCover = Infinity;
      for (let j = 0; j < len; j++) {
        let c = 0;
        for (let i = 0; i < k; i++) c += V[j * r + i] * V[j * r + i];
        if (c < bestCover) {
          bestCover = c;
          best = j;
        }
      }
      for (let j = 0; j < len; j++) V[j * r + k] = j === best ? 1 : 0;
      nrm = project(k);
    }
    const inv = 1 / nrm;
    for (let j = 0; j < len; j++) V[j * r + k] *= inv;
  }
  return replaced;
}

function checkDims(rows: number, cols: number, rank: number): void {
  for (const [what, v] of [
    ['rows', rows],
    ['cols', cols],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1)
      throw new RangeError(`powersgd: ${what} must be a positive integer, got ${v}`);
  }
  const m = Math.min(rows, cols);
  if (!Number.isInteger(rank) || rank < 1 || rank > m) {
    throw new RangeError(`powersgd: rank must be an integer in [1, ${m}] (min of ${rows} × ${cols}), got ${rank}`);
  }
}

/** exponent e with 2^e ≤ a < 2^(e+1), for a finite a > 0 (the f32 bit pattern's exponent for normals). */
function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

/** A stateful PowerSGD codec for [rows, cols] matrices (row-major, n = rows·cols) at rank `rank`. */
export function powerSgdCodec(rows: number, cols: number, rank: number): PowerSgdCodec {
  checkDims(rows, cols, rank);
  const r = rank;
  const n = rows * cols;
  const bytes = powerSgdBytes(rows, cols, r);
  const shape = `${rows} × ${cols}`;
  /** Warm start: Âᵀ·P̃ of the last round (in that round's scaled units), or null before the start. */
  let Q: Float64Array | null = null;
  /** ‖Â‖_F of the round that produced Q: the reference for Q's degenerate-column test. */
  let qRef = 0;

  const checkN = (m: number, op: string): void => {
    if (m !== n)
      throw new RangeError(`powersgd ${op}: this codec is for a ${shape} matrix (${n} values), got n = ${m}`);
  };

  const draw = (ctx: CodecContext): Float64Array => {
    const q = new Float64Array(cols * r);
    for (let i = 0; i < q.length; i++) q[i] = powerSgdUniform(ctx, i);
    return q;
  };

  const codec: PowerSgdCodec = {
    name: `powersgd-r${r}-${rows}x${cols}`,
    fixedSize: true,
    rows,
    cols,
    rank: r,
    get started() {
      return Q !== null;
    },

    encodedBytes(m: number): number {
      checkN(m, 'encodedBytes');
      return bytes;
    },

    start(ctx: CodecContext): void {
      const q = draw(ctx);
      Q = q;
      qRef = 0; // 0: use the drawn columns' own largest norm
    },

    reset(): void {
      Q = null;
      qRef = 0;
    },

    encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
      checkN(x.length, 'encode');
      let maxabs = 0;
      for (let i = 0; i < n; i++) {
        const v = x[i];
        if (!Number.isFinite(v)) {
          throw new RangeError(`powersgd encode: element ${i} of ${n} is ${v}; only finite values can be encoded`);
        }
        const a = Math.abs(v);
        if (a > maxabs) maxabs = a;
      }
      const out = new Uint8Array(bytes);
      if (maxabs < POWERSGD_TINY) return out;
      let q0: Float64Array;
      let ref = qRef;
      if (Q === null) {
        if (ctx === undefined) {
          throw new RangeError(
            `powersgd encode: the first encode after construction or reset() draws Q ` +
              `and needs a CodecContext {seed, round, stream} (or call start(ctx) first)`,
          );
        }
        q0 = draw(ctx);
        ref = 0;
      } else {
        q0 = Q.slice();
      }
      if (ref === 0) {
        for (let k = 0; k < r; k++) {
          let s = 0;
          for (let j = 0; j < cols; j++) s += q0[j * r + k] ** 2;
          ref = Math.max(ref, Math.sqrt(s));
        }
      }

      // Â = M·2^-e (exact in f64), ‖Â‖_F.
      const e = floorLog2(maxabs);
      const down = 2 ** -e;
      const A = new Float64Array(n);
      let ff = 0;
      for (let i = 0; i < n; i++) {
        const v = x[i] * down;
        A[i] = v;
        ff += v * v;
      }
      const normF = Math.sqrt(ff);

      orthonormalizeColumns(q0, cols, r, POWERSGD_TAU * ref);

      // P = Â·Q̂, orthonormalised, rounded to f32.
      const P = new Float64Array(rows * r);
      for (let i = 0; i < rows; i++) {
        for (let k = 0; k < r; k++) {
          let s = 0;
          for (let j = 0; j < cols; j++) s += A[i * cols + j] * q0[j * r + k];
          P[i * r + k] = s;
        }
      }
      orthonormalizeColumns(P, rows, r, POWERSGD_TAU * normF);
      for (let i = 0; i < P.length; i++) P[i] = Math.fround(P[i]);

      // Q' = Âᵀ·P̃ (the next warm start), sent as f32(2^e·Q').
      const Qn = new Float64Array(cols * r);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const a = A[i * cols + j];
          if (a === 0) continue;
          for (let k = 0; k < r; k++) Qn[j * r + k] += a * P[i * r + k];
        }
      }

      const dv = new DataView(out.buffer);
      const up = 2 ** e;
      for (let i = 0; i < P.length; i++) dv.setFloat32(4 * i, P[i], true);
      for (let i = 0; i < Qn.length; i++) {
        const v = Math.fround(Qn[i] * up);
        if (!Number.isFinite(v)) {
          throw new RangeError(
            `powersgd encode: Q'[${Math.floor(i / r)}, ${i % r}] = ${Qn[i] * up} overflows f32 (max |x| = ${maxabs})`,
          );
        }
        dv.setFloat32(4 * (rows * r + i), v, true);
      }
      Q = Qn;
      qRef = normF;
      return out;
    },

    decode(payload: Uint8Array, m: number): Float32Array {
      checkN(m, 'decode');
      if (payload.length !== bytes) {
        throw new RangeError(
          `powersgd decode: expected ${bytes} bytes (4·${r}·(${rows} + ` +
            `${cols})) for a ${shape} matrix at rank ${r}, got ${payload.length}`,
        );
      }
      const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      const P = new Float64Array(rows * r);
      const Qp = new Float64Array(cols * r);
      for (let i = 0; i < P.length + Qp.length; i++) {
        const v = dv.getFloat32(4 * i, true);
        if (!Number.isFinite(v)) {
          const where =
            i < P.length
              ? `P[${Math.floor(i / r)}, ${i % r}]`
              : `Q'[${Math.floor((i - P.length) / r)}, ${(i - P.length) % r}]`;
          throw new RangeError(`powersgd decode: ${where} is ${v}; payload values must be finite`);
        }
        if (i < P.length) P[i] = v;
        else Qp[i - P.length] = v;
      }
      const y = new Float32Array(n);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          let s = 0;
          for (let k = 0; k < r; k++) s += P[i * r + k] * Qp[j * r + k];
          const v = Math.fround(s);
          if (!Number.isFinite(v)) throw new RangeError(`powersgd decode: value [${i}, ${j}] = ${s} overflows f32`);
          y[i * cols + j] = v;
        }
      }
      return y;
    },
  };
  return codec;
}
