// FramedChannel over a PeerJS DataConnection, in the browser and in Node alike. The connection must
// use serialization 'raw': PeerJS then hands frames through untouched, and `conn.dataChannel` is the
// underlying RTCDataChannel (binaryType 'arraybuffer'), which we send on directly so our own flow
// control applies instead of PeerJS's buffered send (which polls every 50 ms with an 8 MiB buffer).
import type { DataConnection } from 'peerjs';
import { FramedChannel, type DataChannelLike, type FramedChannelOptions } from './channel';

/**
 * Runs a FramedChannel over `conn`'s data channel. Call it once the connection is open (in its
 * 'open' handler); on a still-connecting channel, sends wait for it to open. Closing the channel
 * closes the connection and the other way round.
 */
export function framedChannelFromConnection(conn: DataConnection, options: FramedChannelOptions = {}): FramedChannel {
  if (conn.serialization !== 'raw') {
    throw new Error(`framedChannelFromConnection needs serialization 'raw', got '${conn.serialization}'`);
  }
  // PeerJS types this as a DOM RTCDataChannel; in Node it is @roamhq/wrtc's, which is all we rely on.
  const dc: DataChannelLike | null | undefined = conn.dataChannel;
  if (!dc) throw new Error(`data connection to ${conn.peer} has no data channel yet; wait for its 'open' event`);
  const channel = new FramedChannel(dc, { ...options, close: () => conn.close() });
  // PeerJS detaches its own handlers when it closes, and wrtc does not always fire `close` on the
  // channel after the peer connection is closed, so follow the connection's close as well.
  conn.on('close', () => channel.close());
  return channel;
}

/** Waits for `conn` to open (rejecting if it fails or closes first), then framedChannelFromConnection. */
export async function openFramedChannel(
  conn: DataConnection,
  options: FramedChannelOptions = {},
): Promise<FramedChannel> {
  if (!conn.open) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        conn.off('open', onOpen);
        conn.off('error', onError);
        conn.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onOpen = () => done();
      const onError = (err: Error) => done(new Error(`data connection to ${conn.peer} failed: ${err.message}`));
      const onClose = () => done(new Error(`data connection to ${conn.peer} closed before it opened`));
      conn.on('open', onOpen);
      conn.on('error', onError);
      conn.on('close', onClose);
    });
  }
  return framedChannelFromConnection(conn, options);
}
