// Compact binary headers for the messages every round repeats (update, assign): a fixed field
// order per kind instead of JSON, so a highly compressed update is not dwarfed by its own header
// (an update's JSON header is ~180 bytes, its binary one ~60). Fields, little-endian:
//   str  u8 byte length, then UTF-8 (≤ 255 bytes)
//   u32  unsigned 32-bit integer
//   f64  IEEE double (exact for every JS number, so a round trip is lossless)
// A header whose values do not fit (a count over 2³² − 1, a string over 255 bytes) is sent as JSON
// instead; the receiver learns which from the message prefix's header-format field (wire.ts).
import { ProtocolError } from './errors';
import type { MessageKind } from './messages';

type FieldType = 'str' | 'u32' | 'f64';

/** Field order and types of each kind that has a binary header. */
export const BINARY_HEADERS: Partial<Record<MessageKind, readonly (readonly [string, FieldType])[]>> = {
  update: [
    ['jobId', 'str'],
    ['round', 'u32'],
    ['baseVersion', 'u32'],
    ['steps', 'u32'],
    ['loss', 'f64'],
    ['tokens', 'f64'],
    ['codec', 'str'],
    ['n', 'u32'],
    ['computeMs', 'f64'],
  ],
  assign: [
    ['jobId', 'str'],
    ['round', 'u32'],
    ['version', 'u32'],
    ['shard', 'u32'],
    ['steps', 'u32'],
    ['seed', 'u32'],
    ['deadlineMs', 'f64'],
  ],
};

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The binary header of a (validated) header object, or null when the kind has none or a value does not fit. */
export function encodeBinaryHeader(kind: MessageKind, header: Record<string, unknown>): Uint8Array | null {
  const layout = BINARY_HEADERS[kind];
  if (!layout || Object.keys(header).some((k) => header[k] !== undefined && !layout.some(([f]) => f === k)))
    return null;
  const parts: Uint8Array[] = [];
  for (const [name, type] of layout) {
    const v = header[name];
    if (type === 'str') {
      if (typeof v !== 'string') return null;
      const b = utf8.encode(v);
      if (b.byteLength > 255) return null;
      parts.push(Uint8Array.of(b.byteLength), b);
    } else if (type === 'u32') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) return null;
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v, true);
      parts.push(b);
    } else {
      if (typeof v !== 'number') return null;
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v, true);
      parts.push(b);
    }
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Parses a binary header; throws a ProtocolError naming the field where it ends early or runs over. */
export function decodeBinaryHeader(kind: MessageKind, bytes: Uint8Array): Record<string, unknown> {
  const layout = BINARY_HEADERS[kind];
  if (!layout) throw new ProtocolError(`${kind} has no binary header layout (send it with a JSON header, format 0)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header: Record<string, unknown> = {};
  let at = 0;
  const need = (n: number, field: string) => {
    if (at + n > bytes.byteLength) {
      throw new ProtocolError(
        `${kind} binary header ends at byte ${bytes.byteLength}, inside field ${field} (needs bytes ${at}..${at + n})`,
      );
    }
  };
  for (const [name, type] of layout) {
    if (type === 'str') {
      need(1, name);
      const len = view.getUint8(at);
      at += 1;
      need(len, name);
      try {
        header[name] = fromUtf8.decode(bytes.subarray(at, at + len));
      } catch {
        throw new ProtocolError(`${kind} binary header: field ${name} is not valid UTF-8`);
      }
      at += len;
    } else if (type === 'u32') {
      need(4, name);
      header[name] = view.getUint32(at, true);
      at += 4;
    } else {
      need(8, name);
      header[name] = view.getFloat64(at, true);
      at += 8;
    }
  }
  if (at !== bytes.byteLength)
    throw new ProtocolError(`${kind} binary header has ${bytes.byteLength - at} bytes after its last field`);
  return header;
}
