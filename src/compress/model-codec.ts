// A model-level update codec: one payload for the whole flat parameter vector, each tensor of the
// parameter layout (ParamSpec: name, offset, size, shape) sent through its own codec. A policy picks
// the codec: 2-D tensors may go through a matrix codec (PowerSGD), everything else (1-D biases,
// layernorm weights, and 2-D tensors the matrix codec declines) through the caller's `vector` codec.
//
// Payload, all integers u32 little-endian:
//   [0]  version (MODEL_CODEC_VERSION = 1)
//   [4]  tensor count T (must equal the layout's)
//   then for each tensor i in layout order:
//        byte length b_i, the tensor's payload (b_i bytes), zero padding to a multiple of 4 bytes
// so every length word and every tensor payload starts 4-byte aligned. Size:
//   bytes = 8 + Σ_i (4 + 4·⌈b_i/4⌉)
// exact when every tensor's codec is fixed-size (b_i = codec_i.encodedBytes(size_i)), otherwise the
// maximum (b_i = that codec's maximum). Decode checks the version, the tensor count, each b_i against
// its codec (equal when fixed-size, at most the maximum otherwise), the padding, and that the tensors
// use up the payload exactly.
//
// Random choices: tensor i of a model with T tensors sees ctx {seed, round, stream: ctx.stream·T + i},
// so tensors draw independent numbers and the caller's streams (uplink, downlink) stay apart.
import type { Codec, CodecContext } from './codec';
import { powerSgdCodec } from './powersgd/powersgd';

export const MODEL_CODEC_VERSION = 1;

/** One tensor of the flat parameter vector; src/model's ParamSpec has this shape. */
export interface TensorSpec {
  name: string;
  shape: readonly number[];
  /** Offset in elements inside the flat parameter vector. */
  offset: number;
  size: number;
}

/** A codec that keeps state between rounds (PowerSGD's warm start). */
export interface StatefulCodec extends Codec {
  /** False until the codec's first random draw (then encode needs no ctx). */
  readonly started: boolean;
  start(ctx: CodecContext): void;
  reset(): void;
}

export function isStateful(c: Codec): c is StatefulCodec {
  const s = c as Partial<StatefulCodec>;
  return typeof s.started === 'boolean' && typeof s.start === 'function' && typeof s.reset === 'function';
}

export interface ModelCodecPolicy {
  /**
   * The codec for a 2-D tensor [rows, cols], or undefined to send it through `vector`. Called once
   * per 2-D tensor when the model codec is built: stateful codecs must be fresh instances per call.
   * Absent: every tensor goes through `vector`.
   */
  matrix?: (rows: number, cols: number, name: string) => Codec | undefined;
  /** The codec for every other tensor; shared by all of them, so it should be stateless. */
  vector: Codec;
}

/**
 * PowerSGD at rank r for each 2-D tensor where it saves something, r·(rows + cols) < rows·cols
 * (which implies r < min(rows, cols)); every other tensor through `vector`.
 */
export function powerSgdPolicy(rank: number, vector: Codec): ModelCodecPolicy {
  if (!Number.isInteger(rank) || rank < 1)
    throw new RangeError(`powersgd policy: rank must be a positive integer, got ${rank}`);
  return {
    matrix: (rows, cols) => (rank * (rows + cols) < rows * cols ? powerSgdCodec(rows, cols, rank) : undefined),
    vector,
  };
}

export interface ModelCodec extends StatefulCodec {
  readonly layout: readonly TensorSpec[];
  /** The codec of each tensor, in layout order. */
  readonly codecs: readonly Codec[];
  /** Total parameter count (the n that encode, decode and encodedBytes accept). */
  readonly n: number;
}

const pad4 = (b: number) => 4 * Math.ceil(b / 4);

function checkLayout(layout: readonly TensorSpec[]): number {
  let offset = 0;
  const seen = new Set<string>();
  layout.forEach((t, i) => {
    const what = `tensor ${i} (${t.name})`;
    if (seen.has(t.name)) throw new RangeError(`model codec: ${what}: duplicate name`);
    seen.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RangeError(`model codec: ${what}: shape [${t.shape.join(', ')}] must be non-negative integers`);
    }
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.size !== size)
      throw new RangeError(
        `model codec: ${what}: size ${t.size} is not the product of shape [${t.shape.join(', ')}] = ${size}`,
      );
    if (t.offset !== offset) {
      throw new RangeError(
        `model codec: ${what}: offset ${t.offset}, expected ${offset} (tensors must be contiguous, in order, from 0)`,
      );
    }
    offset += size;
  });
  return offset;
}

/** Runs f, prefixing a thrown error's message with the tensor it concerns (same error object). */
function about<T>(t: TensorSpec, i: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof Error) e.message = `model codec: tensor ${i} (${t.name}): ${e.message}`;
    throw e;
  }
}

export function modelCodec(
  layout: readonly TensorSpec[],
  policy: ModelCodecPolicy,
  opts: { name?: string } = {},
): ModelCodec {
  const n = checkLayout(layout);
  if (isStateful(policy.vector)) {
    throw new RangeError(
      `model codec: the vector codec ${policy.vector.name} is stateful but would be shared by every tensor`,
    );
  }
  const T = layout.length;
  const codecs: Codec[] = layout.map((t) => {
    const m = t.shape.length === 2 && policy.matrix ? policy.matrix(t.shape[0], t.shape[1], t.name) : undefined;
    return m ?? policy.vector;
  });
  const stateful = codecs.filter(isStateful);
  if (new Set(stateful).size !== stateful.length) {
    throw new RangeError(
      'model codec: policy.matrix returned the same stateful codec for two tensors; return a fresh one per call',
    );
  }
  /** The per-tensor byte lengths (exact or maximum). */
  const lengths = layout.map((t, i) => about(t, i, () => codecs[i].encodedBytes(t.size)));
  const fixedSize = codecs.every((c) => c.fixedSize);
  const total = 8 + lengths.reduce((a, b) => a + 4 + pad4(b), 0);

  const tensorCtx = (ctx: CodecContext | undefined, i: number): CodecContext | undefined => {
    if (ctx === undefined) return undefined;
    const stream = ctx.stream * T + i;
    if (!Number.isSafeInteger(stream))
      throw new RangeError(`model codec: ctx.stream ${ctx.stream} · ${T} tensors + ${i} is not a safe integer`);
    return { seed: ctx.seed, round: ctx.round, stream };
  };

  const checkN = (m: number, op: string) => {
    if (m !== n)
      throw new RangeError(`model codec ${op}: the layout has ${n} parameters in ${T} tensors, got n = ${m}`);
  };

  const codec: ModelCodec = {
    name: opts.name ?? 'model',
    fixedSize,
    layout,
    codecs,
    n,
    get started() {
      return stateful.every((c) => c.started);
    },

    encodedBytes(m: number): number {
      checkN(m, 'encodedBytes');
      return total;
    },

    start(ctx: CodecContext): void {
      layout.forEach((t, i) => {
        const c = codecs[i];
        if (isStateful(c)) about(t, i, () => c.start(tensorCtx(ctx, i)!));
      });
    },

    reset(): void {
      for (const c of stateful) c.reset();
    },

    encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
      checkN(x.length, 'encode');
      // Everything that could fail is checked before any stateful codec advances its state.
      layout.forEach((t, i) => {
        for (let j = t.offset; j < t.offset + t.size; j++) {
          if (!Number.isFinite(x[j])) {
            throw new RangeError(
              `model codec encode: tensor ${i} (${t.name}) element ${j - t.offset} ` +
                `(flat ${j}) is ${x[j]}; only finite values can be encoded`,
            );
          }
        }
        if (ctx === undefined && isStateful(codecs[i]) && !codecs[i].started) {
          throw new RangeError(
            `model codec encode: tensor ${i} (${t.name}) uses ${codecs[i].name}, ` +
              `which needs a ctx until started (pass ctx or call start(ctx))`,
          );
        }
      });
      if (ctx !== undefined) tensorCtx(ctx, T - 1);
      const parts = new Array<Uint8Array>(T);
      // Stateless tensors first: if one of them throws, no warm start has moved.
      for (const pass of [false, true]) {
        layout.forEach((t, i) => {
          if (isStateful(codecs[i]) !== pass) return;
          parts[i] = about(t, i, () => codecs[i].encode(x.subarray(t.offset, t.offset + t.size), tensorCtx(ctx, i)));
        });
      }
      let size = 8;
      parts.forEach((p, i) => {
        if (codecs[i].fixedSize ? p.length !== lengths[i] : p.length > lengths[i]) {
          throw new RangeError(
            `model codec encode: tensor ${i} (${layout[i].name}): ${codecs[i].name} produced ` +
              `${p.length} bytes, expected ${codecs[i].fixedSize ? '' : 'at most '}${lengths[i]}`,
          );
        }
        size += 4 + pad4(p.length);
      });
      const out = new Uint8Array(size);
      const dv = new DataView(out.buffer);
      dv.setUint32(0, MODEL_CODEC_VERSION, true);
      dv.setUint32(4, T, true);
      let at = 8;
      for (const p of parts) {
        dv.setUint32(at, p.length, true);
        out.set(p, at + 4);
        at += 4 + pad4(p.length);
      }
      return out;
    },

    decode(bytes: Uint8Array, m: number, ctx?: CodecContext): Float32Array {
      checkN(m, 'decode');
      if (fixedSize ? bytes.length !== total : bytes.length > total || bytes.length < 8 + 4 * T) {
        throw new RangeError(
          `model codec decode: expected ${fixedSize ? '' : 'at most '}${total} ` +
            `bytes for ${T} tensors (${n} parameters), got ${bytes.length}`,
        );
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const version = dv.getUint32(0, true);
      if (version !== MODEL_CODEC_VERSION)
        throw new RangeError(`model codec decode: version ${version}, expected ${MODEL_CODEC_VERSION}`);
      const count = dv.getUint32(4, true);
      if (count !== T) throw new RangeError(`model codec decode: payload has ${count} tensors, the layout has ${T}`);
      const out = new Float32Array(n);
      let at = 8;
      layout.forEach((t, i) => {
        const where = `model codec decode: tensor ${i} (${t.name})`;
        if (at + 4 > bytes.length)
          throw new RangeError(`${where}: payload ends at byte ${bytes.length} before its length word`);
        const b = dv.getUint32(at, true);
        if (codecs[i].fixedSize ? b !== lengths[i] : b > lengths[i]) {
          throw new RangeError(
            `${where}: length ${b} bytes, expected ${codecs[i].fixedSize ? '' : 'at most '}${lengths[i]} ` +
              `for ${codecs[i].name} of ${t.size} values`,
          );
        }
        const start = at + 4;
        const end = start + pad4(b);
        if (end > bytes.length)
          throw new RangeError(`${where}: needs bytes ${start}..${end}, the payload has ${bytes.length}`);
        for (let p = start + b; p < end; p++) {
          if (bytes[p] !== 0) throw new RangeError(`${where}: padding byte ${p} is ${bytes[p]}, expected 0`);
        }
        const y = about(t, i, () => codecs[i].decode(bytes.subarray(start, start + b), t.size, tensorCtx(ctx, i)));
        out.set(y, t.offset);
        at = end;
      });
      if (at !== bytes.length)
        throw new RangeError(
          `model codec decode: ${bytes.length - at} bytes left over after ${T} tensors (${at} used of ${bytes.length})`,
        );
      return out;
    },
  };
  return codec;
}
