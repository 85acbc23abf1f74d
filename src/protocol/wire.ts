// One message as bytes:
//   [u8 protocolVersion][u8 kind code][u16 header format][u32 headerLen][header][body]
// Header format 0: UTF-8 JSON; 1: the kind's compact binary layout (binary-header.ts: update and
// assign, whenever their values fit). All integers little-endian. The body is whatever follows the
// header (possibly nothing).
import { ProtocolError } from './errors';
import {
  FRAME_HEADER_BYTES,
  MAX_FRAME_BYTES,
  MAX_HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  WIRE_PREFIX_BYTES,
} from './limits';
import { frameCount } from './frames';
import { decodeBinaryHeader, encodeBinaryHeader } from './binary-header';

/** Values of the prefix's header-format field. */
export const HEADER_JSON = 0;
export const HEADER_BINARY = 1;
import {
  bodyOptional,
  checkMessage,
  kindHasBody,
  validateMessage,
  type Message,
  type MessageKind,
  type ValidateOptions,
} from './messages';

export { ProtocolError };

/** The decoded message: an optional body (assign's step) only when bytes follow the header. */
function withBody(kind: MessageKind, header: unknown, body: Uint8Array): Message {
  const has = kindHasBody(kind) && !(bodyOptional(kind) && body.byteLength === 0);
  // The header was validated against kind's schema just before; the cast records that for TypeScript.
  return (has ? { kind, header, body } : { kind, header }) as Message;
}

/** Kind codes: donor→coordinator kinds in 0x01.., coordinator→donor kinds in 0x11... */
export const KIND_CODES: Readonly<Record<MessageKind, number>> = {
  hello: 0x01,
  ready: 0x02,
  update: 0x03,
  status: 0x04,
  ping: 0x05,
  job: 0x11,
  weights: 0x12,
  assign: 0x13,
  // 0x16 was `delta` (protocol 1), now folded into `assign`.
  idle: 0x14,
  error: 0x15,
  pong: 0x17,
};

const KIND_BY_CODE = new Map<number, MessageKind>(
  Object.entries(KIND_CODES).map(([kind, code]) => [code, kind as MessageKind]),
);

export interface DecodeOptions extends ValidateOptions {
  /** Largest encoded message accepted (default MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
}

const encoder = new TextEncoder();
// fatal: malformed UTF-8 is an error, not silently replaced characters.
const decoder = new TextDecoder('utf-8', { fatal: true });

const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;

/** Validates and encodes a message; throws a ProtocolError for an invalid or oversized one. */
export function encodeMessage(msg: Message, options: DecodeOptions = {}): Uint8Array<ArrayBuffer> {
  checkMessage(msg, options);
  const binary = encodeBinaryHeader(msg.kind, msg.header);
  const header = binary ?? encoder.encode(JSON.stringify(msg.header));
  if (header.byteLength > MAX_HEADER_BYTES) {
    throw new ProtocolError(
      `${msg.kind} header is ${header.byteLength} bytes, over the ${MAX_HEADER_BYTES}-byte header limit`,
    );
  }
  const body = msg.body ?? new Uint8Array(0);
  const total = WIRE_PREFIX_BYTES + header.byteLength + body.byteLength;
  const max = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  if (total > max) {
    throw new ProtocolError(`${msg.kind} message is ${total} bytes, over the ${max}-byte message limit`);
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint8(0, PROTOCOL_VERSION);
  view.setUint8(1, KIND_CODES[msg.kind]);
  view.setUint16(2, binary ? HEADER_BINARY : HEADER_JSON, true);
  view.setUint32(4, header.byteLength, true);
  out.set(header, WIRE_PREFIX_BYTES);
  out.set(body, WIRE_PREFIX_BYTES + header.byteLength);
  return out;
}

/**
 * Decodes and validates one message. The returned body is a view into `bytes` (no copy), so the
 * caller must not reuse `bytes` while the message is in use.
 */
export function decodeMessage(bytes: Uint8Array, options: DecodeOptions = {}): Message {
  const max = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  if (bytes.byteLength < WIRE_PREFIX_BYTES) {
    throw new ProtocolError(
      `message of ${bytes.byteLength} bytes is shorter than the ${WIRE_PREFIX_BYTES}-byte wire prefix`,
    );
  }
  if (bytes.byteLength > max) {
    throw new ProtocolError(`message of ${bytes.byteLength} bytes is over the ${max}-byte message limit`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(`unsupported protocol version ${version} (this side speaks version ${PROTOCOL_VERSION})`);
  }
  const code = view.getUint8(1);
  const kind = KIND_BY_CODE.get(code);
  if (kind === undefined) throw new ProtocolError(`unknown message kind code ${hex(code)}`);
  const format = view.getUint16(2, true);
  if (format !== HEADER_JSON && format !== HEADER_BINARY) {
    throw new ProtocolError(`unknown header format ${format} (0: JSON, 1: binary)`);
  }
  const headerLen = view.getUint32(4, true);
  if (headerLen > MAX_HEADER_BYTES) {
    throw new ProtocolError(`${kind} header length ${headerLen} is over the ${MAX_HEADER_BYTES}-byte header limit`);
  }
  if (WIRE_PREFIX_BYTES + headerLen > bytes.byteLength) {
    throw new ProtocolError(
      `${kind} header length ${headerLen} runs past the end of the ${bytes.byteLength}-byte message`,
    );
  }
  const body = bytes.subarray(WIRE_PREFIX_BYTES + headerLen);
  if (format === HEADER_BINARY) {
    const header: unknown = decodeBinaryHeader(kind, bytes.subarray(WIRE_PREFIX_BYTES, WIRE_PREFIX_BYTES + headerLen));
    validateMessage(kind, header, body.byteLength, options);
    return withBody(kind, header, body);
  }
  let text: string;
  try {
    text = decoder.decode(bytes.subarray(WIRE_PREFIX_BYTES, WIRE_PREFIX_BYTES + headerLen));
  } catch {
    throw new ProtocolError(`${kind} header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`${kind} header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    const what = header === null ? 'null' : Array.isArray(header) ? 'an array' : typeof header;
    throw new ProtocolError(`${kind} header must be a JSON object, got ${what}`);
  }
  validateMessage(kind, header, body.byteLength, options);
  return withBody(kind, header, body);
}

/**
 * Bytes a message puts on the data channel: its encoding plus one frame header per ≤ 64 KiB frame,
 * what FramedChannel's bytesSent counts for it. The compression benchmark counts its simulated
 * traffic with this.
 */
export function wireSize(msg: Message, maxFrame = MAX_FRAME_BYTES): number {
  const bytes = encodeMessage(msg).byteLength;
  return bytes + FRAME_HEADER_BYTES * frameCount(bytes, maxFrame);
}
