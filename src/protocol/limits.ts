// Every size limit of the wire protocol in one place; docs/PROTOCOL.md lists the same numbers.

/** Wire format version carried in byte 0 of every message (and `hello.protocol`). */
export const PROTOCOL_VERSION = 4;

/** Fixed part of an encoded message: version, kind code, reserved u16, header length u32. */
export const WIRE_PREFIX_BYTES = 8;

/** Largest JSON header, in UTF-8 bytes. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Largest encoded message (prefix + header + body) a receiver accepts by default. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Largest parameter count a `weights`/`update` message may declare: n*4 f32 bytes fit in one message. */
export const MAX_PARAMS = 16_000_000;

/** Frame header: magic, message id, index, count, total bytes (five u32). */
export const FRAME_HEADER_BYTES = 20;

/** Largest frame (header + payload). Well under Chrome's 256 KiB data-channel message limit. */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Payload bytes carried by every frame but the last, at the default frame size. */
export const MAX_FRAME_PAYLOAD = MAX_FRAME_BYTES - FRAME_HEADER_BYTES;

/** Partially received messages a reassembler holds at once by default. */
export const MAX_MESSAGES_IN_FLIGHT = 4;

/** Sender pauses when the data channel's bufferedAmount would pass this. */
export const DEFAULT_HIGH_WATER_BYTES = 1024 * 1024;

/** ... and resumes once bufferedAmount has fallen to this. */
export const DEFAULT_LOW_WATER_BYTES = 256 * 1024;

/** Chromium closes a data channel whose send buffer passes ~16 MiB; the high-water mark stays below. */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
