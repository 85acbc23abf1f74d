// Chunked framing for data channels. A message's bytes travel as frames of at most 64 KiB:
//   [u32 magic 0x53544631 'STF1'][u32 messageId][u32 index][u32 count][u32 totalBytes][payload]
// (little-endian). Every frame but the last carries the same payload size; the last carries the rest.
// Message ids let a receiver keep several messages apart; the reassembler also tolerates frames
// arriving out of order, though a reliable ordered channel never reorders them.
import { ProtocolError } from './errors';
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_MESSAGES_IN_FLIGHT } from './limits';

export { ProtocolError };

export const FRAME_MAGIC = 0x53544631; // 'STF1'
const U32_MAX = 0xffffffff;

/** Throws a RangeError unless `maxFrame` is a usable frame size (header + at least one byte, ≤ 64 KiB). */
export function checkFrameSize(maxFrame: number): void {
  if (!Number.isInteger(maxFrame) || maxFrame <= FRAME_HEADER_BYTES || maxFrame > MAX_FRAME_BYTES) {
    throw new RangeError(
      `maxFrame must be an integer in [${FRAME_HEADER_BYTES + 1}, ${MAX_FRAME_BYTES}], got ${maxFrame}`,
    );
  }
}

/** Number of frames `bytes` of this length split into. */
export function frameCount(totalBytes: number, maxFrame = MAX_FRAME_BYTES): number {
  return Math.max(1, Math.ceil(totalBytes / (maxFrame - FRAME_HEADER_BYTES)));
}

/** Yields the frames one at a time, so a sender never holds a second copy of a large message. */
export function* iterateFrames(
  messageId: number,
  bytes: Uint8Array,
  maxFrame = MAX_FRAME_BYTES,
): Generator<Uint8Array<ArrayBuffer>> {
  checkFrameSize(maxFrame);
  if (!Number.isInteger(messageId) || messageId < 0 || messageId > U32_MAX) {
    throw new RangeError(`messageId must be a u32, got ${messageId}`);
  }
  if (bytes.byteLength > U32_MAX)
    throw new RangeError(`message of ${bytes.byteLength} bytes does not fit a u32 length`);
  const payload = maxFrame - FRAME_HEADER_BYTES;
  const count = frameCount(bytes.byteLength, maxFrame);
  for (let index = 0; index < count; index++) {
    const chunk = bytes.subarray(index * payload, Math.min(bytes.byteLength, (index + 1) * payload));
    const frame = new Uint8Array(FRAME_HEADER_BYTES + chunk.byteLength);
    const view = new DataView(frame.buffer);
    view.setUint32(0, FRAME_MAGIC, true);
    view.setUint32(4, messageId, true);
    view.setUint32(8, index, true);
    view.setUint32(12, count, true);
    view.setUint32(16, bytes.byteLength, true);
    frame.set(chunk, FRAME_HEADER_BYTES);
    yield frame;
  }
}

/** Splits a message into frames of at most `maxFrame` bytes (header included). */
export function splitIntoFrames(
  messageId: number,
  bytes: Uint8Array,
  maxFrame = MAX_FRAME_BYTES,
): Uint8Array<ArrayBuffer>[] {
  return [...iterateFrames(messageId, bytes, maxFrame)];
}

export interface ReassemblerOptions {
  /** Largest message (totalBytes) accepted; default 64 MiB. */
  maxMessageBytes?: number;
  /** Partially received messages held at once; default 4. */
  maxInFlight?: number;
  /** Largest frame accepted, header included; default 64 KiB. */
  maxFrameBytes?: number;
}

interface PartialMessage {
  count: number;
  totalBytes: number;
  /** Payload size of every non-last frame, learned from the first non-last frame seen. */
  chunkSize: number | null;
  /** Payload length of the last frame, if it arrived before chunkSize was known. */
  lastLength: number | null;
  chunks: Map<number, Uint8Array>;
}

// How many recently dropped message ids to remember, so the rest of a rejected message's frames
// are discarded quietly instead of starting a new partial message (or an error) each.
const DROPPED_MEMORY = 32;

/**
 * Collects frames into whole messages. `push` returns the message once its last frame arrives.
 * Invalid frames throw a ProtocolError and drop the message they belong to; the reassembler stays
 * usable. It keeps the payload views it is given (no copy until the message completes), so callers
 * must not reuse a frame's buffer after pushing it.
 */
export class Reassembler {
  readonly maxMessageBytes: number;
  readonly maxInFlight: number;
  readonly maxFrameBytes: number;
  /** Frames discarded without an error because their message had already been rejected. */
  discardedFrames = 0;
  private readonly partial = new Map<number, PartialMessage>();
  private readonly dropped: number[] = [];

  constructor(options: ReassemblerOptions = {}) {
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.maxInFlight = options.maxInFlight ?? MAX_MESSAGES_IN_FLIGHT;
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    checkFrameSize(this.maxFrameBytes);
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) {
      throw new RangeError(`maxInFlight must be a positive integer, got ${this.maxInFlight}`);
    }
    if (!Number.isInteger(this.maxMessageBytes) || this.maxMessageBytes < 0 || this.maxMessageBytes > U32_MAX) {
      throw new RangeError(`maxMessageBytes must be an integer in [0, ${U32_MAX}], got ${this.maxMessageBytes}`);
    }
  }

  /** Messages currently partly received. */
  get inFlight(): number {
    return this.partial.size;
  }

  push(frame: Uint8Array): Uint8Array | null {
    if (frame.byteLength < FRAME_HEADER_BYTES) {
      throw new ProtocolError(
        `frame of ${frame.byteLength} bytes is shorter than the ${FRAME_HEADER_BYTES}-byte frame header`,
      );
    }
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const magic = view.getUint32(0, true);
    if (magic !== FRAME_MAGIC) {
      throw new ProtocolError(
        `bad frame magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x${FRAME_MAGIC.toString(16)} 'STF1')`,
      );
    }
    const id = view.getUint32(4, true);
    if (this.dropped.includes(id)) {
      this.discardedFrames++;
      return null;
    }
    try {
      return this.accept(id, view, frame);
    } catch (e) {
      this.drop(id);
      throw e;
    }
  }

  private accept(id: number, view: DataView, frame: Uint8Array): Uint8Array | null {
    const index = view.getUint32(8, true);
    const count = view.getUint32(12, true);
    const totalBytes = view.getUint32(16, true);
    const length = frame.byteLength - FRAME_HEADER_BYTES;
    const where = `message ${id}`;
    if (frame.byteLength > this.maxFrameBytes) {
      throw new ProtocolError(
        `frame of ${frame.byteLength} bytes is over the ${this.maxFrameBytes}-byte frame limit (${where})`,
      );
    }
    if (count === 0) throw new ProtocolError(`frame count is 0 (${where})`);
    if (index >= count)
      throw new ProtocolError(`frame index ${index} is out of range for a ${count}-frame message (${where})`);
    if (totalBytes > this.maxMessageBytes) {
      throw new ProtocolError(
        `${where} declares ${totalBytes} bytes, over the ${this.maxMessageBytes}-byte message limit`,
      );
    }
    // Every frame carries at least one byte (except a lone frame of an empty message) and at most
    // one full payload; a count outside that range cannot describe totalBytes.
    const minCount = frameCount(totalBytes, this.maxFrameBytes);
    const maxCount = Math.max(1, totalBytes);
    if (count < minCount || count > maxCount) {
      throw new ProtocolError(
        `frame count ${count} cannot carry ${totalBytes} bytes in ` +
          `frames of at most ${this.maxFrameBytes} bytes (${where})`,
      );
    }

    let p = this.partial.get(id);
    if (p) {
      if (p.count !== count || p.totalBytes !== totalBytes) {
        throw new ProtocolError(
          `frame says ${count} frames / ${totalBytes} bytes but ` +
            `earlier frames of ${where} said ${p.count} / ${p.totalBytes}`,
        );
      }
      if (p.chunks.has(index)) throw new ProtocolError(`duplicate frame index ${index} (${where})`);
    } else if (count > 1) {
      if (this.partial.size >= this.maxInFlight) {
        throw new ProtocolError(
          `too many messages in flight: ${where} would be number ${this.partial.size + 1}, limit ${this.maxInFlight}`,
        );
      }
      p = { count, totalBytes, chunkSize: null, lastLength: null, chunks: new Map() };
    }

    if (count === 1) {
      if (length !== totalBytes) {
        throw new ProtocolError(
          `single frame carries ${length} payload bytes, expected totalBytes ${totalBytes} (${where})`,
        );
      }
      return frame.slice(FRAME_HEADER_BYTES);
    }
    const partial = p!;
    const isLast = index === count - 1;
    if (!isLast) {
      if (partial.chunkSize === null) {
        // The first non-last frame fixes the payload size; it must make `count` frames hold totalBytes.
        if (length < 1 || (count - 1) * length >= totalBytes || count * length < totalBytes) {
          throw new ProtocolError(
            `frame ${index} carries ${length} payload bytes, which cannot ` +
              `split ${totalBytes} bytes into ${count} frames (${where})`,
          );
        }
        partial.chunkSize = length;
        if (partial.lastLength !== null) this.checkLast(partial, partial.lastLength, where);
      } else if (length !== partial.chunkSize) {
        throw new ProtocolError(
          `frame ${index} carries ${length} payload bytes; every frame ` +
            `but the last must carry ${partial.chunkSize} (${where})`,
        );
      }
    } else if (partial.chunkSize !== null) {
      this.checkLast(partial, length, where);
    } else {
      if (length < 1 || length > totalBytes - (count - 1)) {
        throw new ProtocolError(
          `last frame carries ${length} payload bytes, impossible ` +
            `for ${totalBytes} bytes in ${count} frames (${where})`,
        );
      }
      partial.lastLength = length;
    }

    partial.chunks.set(index, frame.subarray(FRAME_HEADER_BYTES));
    if (!this.partial.has(id)) this.partial.set(id, partial);
    if (partial.chunks.size < count) return null;

    this.partial.delete(id);
    const out = new Uint8Array(totalBytes);
    const size = partial.chunkSize!;
    for (const [i, chunk] of partial.chunks) out.set(chunk, i * size);
    return out;
  }

  private checkLast(p: PartialMessage, length: number, where: string): void {
    const expected = p.totalBytes - (p.count - 1) * p.chunkSize!;
    if (length !== expected) {
      throw new ProtocolError(
        `last frame carries ${length} payload bytes; ${p.totalBytes} bytes ` +
          `in ${p.count} frames of ${p.chunkSize} leave ${expected} (${where})`,
      );
    }
  }

  private drop(id: number): void {
    this.partial.delete(id);
    this.dropped.push(id);
    if (this.dropped.length > DROPPED_MEMORY) this.dropped.shift();
  }
}
