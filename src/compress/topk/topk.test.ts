import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import type { CodecContext } from '../codec';
import { bitLength } from '../bits';
import { topkCodec, topkIndices, topkThreshold, TOPK_BITMAP, TOPK_DELTA, TOPK_RICE } from './topk';
import { blockQuantCodec } from '../quant/quant';
import { f16Codec } from '../plain/plain';
import { keepCount } from '../sparse';
import { ErrorFeedback } from '../error-feedback';

const SIZES = [1, 7, 257, 1031, 65537];
const FRACTIONS = [0.001, 0.01, 0.1, 0.5, 1];

/** Fresh random values over 6 decades, never zeros. */
function update(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let i = 0; i < n; i++) x[i] *= 10 ** (-6 * rng.next());
  return x;
}

/** Reference: sort indices by |x| descending, ties by index ascending, take k, sort by index. */
function referenceTopk(x: Float32Array, k: number): number[] {
  const order = Array.from(x, (_, i) => i).sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}

function header(bytes: Uint8Array): { k: number; mode: number; w: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const f = dv.getUint32(4, true);
  return { k: dv.getUint32(0, true), mode: f & 0xff, w: (f >>> 8) & 0xff };
}

/** Bytes of the index layout the header names (Rice: its length word and stream). */
function indexLength(bytes: Uint8Array, n: number): number {
  const { k, mode, w } = header(bytes);
  if (mode === TOPK_RICE) return 4 + 4 * new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  return mode === TOPK_DELTA ? 4 * Math.ceil((k * w) / 32) : 4 * Math.ceil(n / 32);
}

/** The payload length the header implies for f32 values. */
function impliedLength(bytes: Uint8Array, n: number): number {
  return 8 + indexLength(bytes, n) + 4 * header(bytes).k;
}

/** Rice-coded gaps at their best parameter, computed independently: 4 + 4·ceil(bits/32) bytes. */
function riceBytes(idx: number[]): { bytes: number; r: number } {
  let best = { bytes: Infinity, r: 0 };
  for (let r = 0; r < 32; r++) {
    let bits = 0;
    idx.forEach((v, j) => (bits += Math.floor((j === 0 ? v : v - idx[j - 1] - 1) / 2 ** r) + 1 + r));
    const bytes = 4 + 4 * Math.ceil(bits / 32);
    if (bytes < best.bytes) best = { bytes, r };
  }
  return best;
}

test('top-k keeps exactly k = max(1, ceil(f·n)) largest magnitudes (ties to lower index), exact values, zeros elsewhere', () => {
  const modes = new Set<number>();
  for (const n of SIZES) {
    for (const fraction of FRACTIONS) {
      const codec = topkCodec({ fraction });
      const x = update(n, new Rng(n + 1e6 * fraction));
      const k = Math.max(1, Math.ceil(fraction * n));
      assert.equal(codec.keep(n), k);
      const bytes = codec.encode(x);
      const h = header(bytes);
      modes.add(h.mode);
      assert.equal(h.k, k);
      assert.equal(bytes.length, impliedLength(bytes, n), `n=${n} f=${fraction}: length the header implies`);
      assert.ok(
        bytes.length <= codec.encodedBytes(n),
        `n=${n} f=${fraction}: ${bytes.length} > max ${codec.encodedBytes(n)}`,
      );
      const want = new Set(referenceTopk(x, k));
      const y = codec.decode(bytes, n);
      for (let i = 0; i < n; i++) {
        if (want.has(i)) assert.equal(y[i], x[i], `n=${n} f=${fraction}: kept element ${i} is exact`);
        else assert.equal(y[i], 0, `n=${n} f=${fraction}: dropped element ${i} is 0`);
      }
      // The smallest index layout was chosen (delta over bitmap on a tie, Rice only when strictly smaller).
      const idx = [...want].sort((a, b) => a - b);
      const maxGap = Math.max(...idx.map((v, j) => (j === 0 ? v : v - idx[j - 1] - 1)));
      const delta = 4 * Math.ceil((k * bitLength(maxGap)) / 32);
      const bitmap = 4 * Math.ceil(n / 32);
      const rice = riceBytes(idx);
      const plain = delta < bitmap ? TOPK_DELTA : TOPK_BITMAP;
      const wantMode = rice.bytes < Math.min(delta, bitmap) ? TOPK_RICE : plain;
      assert.equal(h.mode, wantMode, `n=${n} f=${fraction}: delta ${delta}, bitmap ${bitmap}, Rice ${rice.bytes}`);
      assert.equal(indexLength(bytes, n), Math.min(delta, bitmap, rice.bytes));
      if (h.mode === TOPK_DELTA) assert.equal(h.w, bitLength(maxGap));
      if (h.mode === TOPK_RICE)
        assert.ok(
          riceBytes(idx).bytes ===
            4 +
              4 *
                Math.ceil(
                  idx.reduce((a, v, j) => a + Math.floor((j === 0 ? v : v - idx[j - 1] - 1) / 2 ** h.w) + 1 + h.w, 0) /
                    32,
                ),
        );
    }
  }
  assert.deepEqual([...modes].sort(), [TOPK_DELTA, TOPK_BITMAP, TOPK_RICE], 'all three index layouts were exercised');
});

test('top-k maximum size is attained by the worst case: evenly spread indices with the largest gap n − k', () => {
  // n = 1031, k = 11: max gap n − k = 1020 (10 bits) → delta 4·ceil(110/32) = 16 bytes < bitmap 132.
  const n = 1031;
  const codec = topkCodec({ fraction: 0.01 });
  assert.equal(codec.keep(n), 11);
  assert.equal(codec.encodedBytes(n), 8 + 16 + 44);
  const x = update(n, new Rng(3));
  for (let i = 0; i < 10; i++) x[i] = 10 + i; // kept: 0..9 and n−1, so the last gap is n − 1 − 10 = 1020
  x[n - 1] = -20;
  const bytes = codec.encode(x);
  assert.deepEqual(header(bytes), { k: 11, mode: TOPK_DELTA, w: 10 });
  assert.equal(bytes.length, codec.encodedBytes(n));
  assert.equal(codec.decode(bytes, n)[n - 1], -20);
});

test('top-k breaks ties by lower index and handles many equal magnitudes and signed zeros', () => {
  const x = new Float32Array([0.5, -1, 1, 0.25, -1, 1, -0, 0, 0.5]);
  assert.deepEqual(Array.from(topkIndices(x, 2)), [1, 2]);
  assert.deepEqual(Array.from(topkIndices(x, 4)), [1, 2, 4, 5]);
  assert.deepEqual(Array.from(topkIndices(x, 5)), [0, 1, 2, 4, 5]);
  assert.deepEqual(Array.from(topkIndices(x, 8)), [0, 1, 2, 3, 4, 5, 6, 8]);
  assert.deepEqual(Array.from(topkIndices(x, 9)), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  // 1000 values with 5 distinct magnitudes: ties at the threshold are filled from the left.
  const rng = new Rng(4);
  const y = new Float32Array(1000);
  for (let i = 0; i < 1000; i++) y[i] = (1 + Math.floor(5 * rng.next())) * (rng.next() < 0.5 ? -1 : 1);
  for (const k of [1, 150, 199, 200, 201, 500, 999])
    assert.deepEqual(Array.from(topkIndices(y, k)), referenceTopk(y, k), `k=${k}`);
  // Magnitudes that share their top 21 bits and differ only in the last mantissa bits.
  const close = new Float32Array(64);
  for (let i = 0; i < 64; i++) close[i] = (i % 2 ? -1 : 1) * (1 + ((i * 37) % 64) * 2 ** -23);
  for (const k of [1, 13, 32, 63])
    assert.deepEqual(Array.from(topkIndices(close, k)), referenceTopk(close, k), `close k=${k}`);
  const t = topkThreshold(close, 13);
  assert.equal(t.above, 12);
});

test('top-k → 4-bit values: kept values within half a step, dropped ones zero, size within the maximum', () => {
  const q4 = blockQuantCodec({ bits: 4, block: 64, rounding: 'nearest' });
  const codec = topkCodec({ fraction: 0.05, values: q4 });
  for (const n of [7, 1031, 65537]) {
    const x = update(n, new Rng(5 + n));
    const bytes = codec.encode(x);
    const h = header(bytes);
    const ib = indexLength(bytes, n);
    assert.equal(bytes.length, 8 + ib + q4.encodedBytes(h.k));
    assert.ok(bytes.length <= codec.encodedBytes(n));
    const idx = referenceTopk(x, h.k);
    const kept = Float32Array.from(idx, (i) => x[i]);
    const y = codec.decode(bytes, n);
    const dv = new DataView(bytes.buffer, 8 + ib);
    const keptSet = new Set(idx);
    idx.forEach((i, j) => {
      const step = dv.getFloat32(4 * Math.floor(j / 64), true);
      assert.ok(Math.abs(y[i] - kept[j]) <= step * (0.5 + 1e-5), `n=${n} kept ${i}`);
    });
    for (let i = 0; i < n; i++) if (!keptSet.has(i)) assert.equal(y[i], 0);
  }
});

test('top-k is deterministic; with a stochastic inner codec the round changes the payload', () => {
  const x = update(1031, new Rng(6));
  const plain = topkCodec({ fraction: 0.1 });
  assert.deepEqual(plain.encode(x), plain.encode(Float32Array.from(x)));
  const sto = topkCodec({ fraction: 0.1, values: blockQuantCodec({ bits: 4, block: 32, rounding: 'stochastic' }) });
  const ctx: CodecContext = { seed: 1, round: 2, stream: 3 };
  assert.deepEqual(sto.encode(x, ctx), sto.encode(x, { ...ctx }));
  assert.notDeepEqual(sto.encode(x, ctx), sto.encode(x, { ...ctx, round: 3 }));
  assert.throws(() => sto.encode(x), /q4-block32-stochastic encode: a codec context .* is required/);
  assert.throws(() => plain.encode(x, { seed: 0, round: 0, stream: -1 }), /ctx\.stream must be an integer/);
});

test('top-k encode rejects NaN and Inf naming the first bad element; options are checked', () => {
  const x = update(100, new Rng(7));
  x[40] = -Infinity;
  x[41] = NaN;
  assert.throws(
    () => topkCodec({ fraction: 0.1 }).encode(x),
    /topk\(0\.1\)>f32 encode: element 40 of 100 is -Infinity/,
  );
  assert.throws(() => topkCodec({ fraction: 0 }), /fraction must be a number in \(0, 1\], got 0/);
  assert.throws(() => topkCodec({ fraction: 1.5 }), /got 1\.5/);
  assert.throws(() => topkCodec({ fraction: NaN }), /got NaN/);
  assert.throws(() => topkIndices(x, 101), /k must be an integer in \[0, 100\], got 101/);
  assert.equal(keepCount(0.5, 0), 0);
  const codec = topkCodec({ fraction: 0.5 });
  const empty = codec.encode(new Float32Array(0));
  assert.equal(empty.length, 8);
  assert.equal(codec.encodedBytes(0), 8);
  assert.deepEqual(codec.decode(empty, 0), new Float32Array(0));
});

test('top-k decode rejects wrong lengths and inconsistent headers, naming expected and actual', () => {
  const n = 1031;
  const codec = topkCodec({ fraction: 0.01 });
  const x = update(n, new Rng(8));
  const bytes = codec.encode(x);
  const h = header(bytes);
  assert.equal(h.mode, TOPK_DELTA);
  const len = bytes.length;
  assert.throws(
    () => codec.decode(bytes.subarray(0, len - 1), n),
    (e: unknown) => {
      return (
        e instanceof RangeError &&
        new RegExp(
          `expected ${len} bytes for ${n} values \\(header: k = 11, delta indices of ${h.w} bits\\), got ${len - 1}`,
        ).test(e.message)
      );
    },
  );
  assert.throws(
    () => codec.decode(bytes.subarray(0, 5), n),
    /expected at least 8 bytes \(the header\) for 1031 values, got 5/,
  );
  assert.throws(() => codec.decode(bytes, 2000), /header says k = 11, expected k = 20 for 2000 values/);
  const patch = (f: (dv: DataView) => void) => {
    const b = bytes.slice();
    f(new DataView(b.buffer));
    return b;
  };
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(4, 3, true)),
        n,
      ),
    /bad format word 0x3 \(mode 0 with w <= 32, mode 1 with w = 0, or mode 2 with w <= 31\)/,
  );
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(4, TOPK_RICE | (32 << 8), true)),
        n,
      ),
    /bad format word 0x2002 /,
  );
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(4, 33 << 8, true)),
        n,
      ),
    /bad format word 0x2100 /,
  );
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(4, TOPK_BITMAP | (3 << 8), true)),
        n,
      ),
    /bad format word/,
  );
  // A bitmap header on a delta payload: the implied length differs.
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(4, TOPK_BITMAP, true)),
        n,
      ),
    /expected 184 bytes for 1031 values \(header: k = 11, bitmap indices\), got 68/,
  );
  // Gaps that run past the end: set every delta bit.
  const ib = 4 * Math.ceil((11 * h.w) / 32);
  const past = bytes.slice();
  past.fill(0xff, 8, 8 + ib);
  assert.throws(() => codec.decode(past, n), /index \d+ is \d+, past the last element 1030/);
  // Bitmap payloads: a wrong popcount and bits past n.
  const half = topkCodec({ fraction: 0.5 });
  const bm = half.encode(update(40, new Rng(9)));
  assert.equal(header(bm).mode, TOPK_BITMAP);
  const extra = bm.slice();
  extra[8 + 4] |= 0x80; // bit 39 (element 39), set or not, then bit 40 past n
  extra[8 + 5] |= 0x01;
  assert.throws(() => half.decode(extra, 40), /bitmap bits past element 39 must be 0/);
  const fewer = bm.slice();
  const dv = new DataView(fewer.buffer);
  const w0 = dv.getUint32(8, true);
  dv.setUint32(8, (w0 & (w0 - 1)) >>> 0, true); // clear the lowest set bit
  assert.throws(() => half.decode(fewer, 40), /the bitmap marks 19 elements, expected k = 20/);
  // Stray bits after the last delta.
  const used = 11 * h.w;
  if (used % 32 !== 0) {
    const stray = bytes.slice();
    stray[8 + ib - 1] |= 0x80;
    assert.throws(() => codec.decode(stray, n), /bits after the last delta must be 0/);
  }
  // A wrong inner payload is rejected by the inner codec: an f16 value that is Inf.
  const h16 = topkCodec({ fraction: 0.01, values: f16Codec });
  const b16 = h16.encode(x);
  new DataView(b16.buffer).setUint16(b16.length - 4, 0x7c00, true);
  assert.throws(() => h16.decode(b16, n), /f16 decode: value 10 has bits 0x7c00/);
});

test('error feedback with top-k: the residual contracts (||r||² <= (1 − k/n)·||d||²) and the sums track each other', () => {
  const n = 1000;
  const fraction = 0.1;
  const codec = topkCodec({ fraction });
  const k = codec.keep(n);
  const delta = 1 - k / n;
  const rng = new Rng(10);
  // A consistent signal plus noise: without error feedback the small coordinates are never sent.
  const mean = rng.uniformArray(n, -1, 1);
  const next = () => {
    const d = rng.uniformArray(n, -0.3, 0.3);
    for (let i = 0; i < n; i++) d[i] += mean[i];
    return d;
  };
  const ef = new ErrorFeedback(codec, n);
  const given = new Float64Array(n);
  const sentEf = new Float64Array(n);
  const sentPlain = new Float64Array(n);
  let maxNorm = 0;
  const rounds = 80;
  for (let r = 0; r < rounds; r++) {
    const x = next();
    const norm2 = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v * v, 0);
    const d2 = norm2(Float32Array.from(x, (v, i) => v + ef.residual[i]));
    const y = codec.decode(ef.encode(x), n);
    const yPlain = codec.decode(codec.encode(x), n);
    assert.ok(norm2(ef.residual) <= delta * d2 * (1 + 1e-6), `round ${r}: top-k contraction`);
    maxNorm = Math.max(maxNorm, Math.sqrt(norm2(x)));
    for (let i = 0; i < n; i++) {
      given[i] += x[i];
      sentEf[i] += y[i];
      sentPlain[i] += yPlain[i];
    }
  }
  // From ||r_t|| <= sqrt(1−δ')(||r_{t−1}|| + ||x_t||): ||r|| <= q/(1 − q)·max||x||, q = sqrt(1 − k/n).
  const q = Math.sqrt(delta);
  const bound = (q / (1 - q)) * maxNorm;
  let driftEf = 0;
  let driftPlain = 0;
  for (let i = 0; i < n; i++) {
    assert.ok(
      Math.abs(sentEf[i] + ef.residual[i] - given[i]) <= rounds * 1e-5,
      `element ${i}: sent + residual = given`,
    );
    driftEf += (given[i] - sentEf[i]) ** 2;
    driftPlain += (given[i] - sentPlain[i]) ** 2;
  }
  assert.ok(Math.sqrt(driftEf) <= bound, `drift with error feedback ${Math.sqrt(driftEf)} vs bound ${bound}`);
  assert.ok(
    Math.sqrt(driftPlain) > 5 * Math.sqrt(driftEf),
    `drift without ${Math.sqrt(driftPlain)}, with ${Math.sqrt(driftEf)}`,
  );
});

test('top-k Rice indices: chosen for sparse random sets, exact round trip, and corrupt streams are refused', () => {
  for (const [n, fraction] of [
    [21877, 0.03],
    [40009, 0.01],
    [65537, 0.02],
  ] as const) {
    const codec = topkCodec({ fraction });
    const x = update(n, new Rng(n));
    const bytes = codec.encode(x);
    const h = header(bytes);
    assert.equal(h.mode, TOPK_RICE, `n=${n} f=${fraction}: Rice should beat delta and bitmap for a random sparse set`);
    const idx = referenceTopk(x, h.k);
    assert.equal(indexLength(bytes, n), riceBytes(idx).bytes);
    assert.equal(h.w, riceBytes(idx).r);
    const y = codec.decode(bytes, n);
    const kept = new Set(idx);
    for (let i = 0; i < n; i++) assert.equal(y[i], kept.has(i) ? x[i] : 0, `element ${i}`);
  }
  const n = 21877;
  const codec = topkCodec({ fraction: 0.03 });
  const bytes = codec.encode(update(n, new Rng(3)));
  const m = new DataView(bytes.buffer).getUint32(8, true);
  const patch = (f: (dv: DataView, b: Uint8Array) => Uint8Array | void) => {
    const b = bytes.slice();
    return f(new DataView(b.buffer), b) ?? b;
  };
  // One word fewer: the stream runs out (and the values shift, so the length check may speak first).
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(8, m - 1, true)),
        n,
      ),
    /Rice stream ends|expected .* bytes/,
  );
  // A length word at least as large as the bitmap is refused before reading.
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(8, 1e6, true)),
        n,
      ),
    /Rice stream of 1000000 words is not smaller than the bitmap or delta layout/,
  );
  // Garbage after the last code in its last word.
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(8 + 4 * m, dv.getUint32(8 + 4 * m, true) | 0x80000000, true)),
        n,
      ),
    /bits after the last Rice code must be 0|index .* past the last element/,
  );
  // A first gap that points past n.
  assert.throws(
    () =>
      codec.decode(
        patch((dv) => dv.setUint32(12, 0, true)),
        n,
      ),
    /past the last element|Rice quotient/,
  );
});
