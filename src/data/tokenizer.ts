// Character-level tokenizer: one token per Unicode code point of the corpus. The vocabulary is
// sorted by code point, so the same text always gives the same ids on the coordinator and on
// every donor, and it travels to donors as plain JSON.

/** Largest vocabulary a tokenizer accepts from JSON (far above what an MLP job allows). */
export const MAX_VOCAB = 65536;

export interface CharTokenizerJSON {
  type: 'char';
  vocab: string[];
}

function describeChar(cp: number): string {
  const hex = cp.toString(16).toUpperCase().padStart(4, '0');
  const printable = cp >= 0x20 && cp !== 0x7f && !(cp >= 0x80 && cp < 0xa0);
  return printable ? `${JSON.stringify(String.fromCodePoint(cp))} (U+${hex})` : `U+${hex}`;
}

export class CharTokenizer {
  /** Token id → character. Do not modify: the ids are fixed when the tokenizer is built. */
  readonly vocab: string[];
  private readonly ids: Map<number, number>;

  private constructor(codePoints: number[]) {
    this.vocab = codePoints.map((cp) => String.fromCodePoint(cp));
    this.ids = new Map(codePoints.map((cp, i) => [cp, i]));
  }

  get size(): number {
    return this.vocab.length;
  }

  /** Builds the vocabulary from the distinct code points of `text`. */
  static fromText(text: string): CharTokenizer {
    if (typeof text !== 'string') throw new TypeError(`tokenizer text must be a string, got ${typeof text}`);
    if (text.length === 0) throw new RangeError('cannot build a tokenizer from empty text');
    const seen = new Set<number>();
    for (let i = 0; i < text.length; i++) {
      const cp = text.codePointAt(i)!;
      if (cp > 0xffff) i++; // the low surrogate is part of this code point
      seen.add(cp);
    }
    return new CharTokenizer([...seen].sort((a, b) => a - b));
  }

  /** Rebuilds a tokenizer from `toJSON()` output (or a bare vocabulary array), validating it. */
  static fromJSON(json: unknown): CharTokenizer {
    const vocab = Array.isArray(json)
      ? json
      : json !== null && typeof json === 'object' && (json as { type?: unknown }).type === 'char'
        ? (json as { vocab?: unknown }).vocab
        : undefined;
    if (!Array.isArray(vocab)) {
      throw new TypeError('tokenizer JSON must be { type: "char", vocab: string[] } or a string array');
    }
    if (vocab.length < 1 || vocab.length > MAX_VOCAB) {
      throw new RangeError(`tokenizer vocab must have 1..${MAX_VOCAB} entries, got ${vocab.length}`);
    }
    const cps: number[] = [];
    for (let i = 0; i < vocab.length; i++) {
      const s: unknown = vocab[i];
      const cp = typeof s === 'string' ? s.codePointAt(0) : undefined;
      if (cp === undefined || String.fromCodePoint(cp) !== s) {
        throw new TypeError(`tokenizer vocab[${i}] must be exactly one character, got ${JSON.stringify(s)}`);
      }
      if (i > 0 && cp <= cps[i - 1]) {
        throw new RangeError(`tokenizer vocab must be strictly sorted by code point; vocab[${i}] is out of order`);
      }
      cps.push(cp);
    }
    return new CharTokenizer(cps);
  }

  toJSON(): CharTokenizerJSON {
    return { type: 'char', vocab: [...this.vocab] };
  }

  /** Encodes `text`; a character outside the vocabulary is an error naming it and its position. */
  encode(text: string): Int32Array {
    const out = new Int32Array(text.length);
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const cp = text.codePointAt(i)!;
      const id = this.ids.get(cp);
      if (id === undefined) {
        throw new RangeError(
          `unknown character ${describeChar(cp)} at index ${i}: ` +
            `not in the tokenizer's ${this.size}-character vocabulary`,
        );
      }
      out[n++] = id;
      if (cp > 0xffff) i++;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.size) {
        throw new RangeError(`token id ${id} at position ${i} is outside the vocabulary [0, ${this.size - 1}]`);
      }
      s += this.vocab[id];
    }
    return s;
  }
}
