// The coordinator's WebRTC peer id, one per data directory: generated on first start, saved beside the
// token, reused on every restart. Donors that lose the coordinator re-read /api/donor/config and find
// the same id again, so a restarted coordinator gets its donors back without reloading their pages.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PEER_ID_FILE = 'peer-id';
const PEER_ID = /^starling-coordinator-[0-9a-f]{12}$/;

export function loadOrCreatePeerId(dataDir: string): { peerId: string; created: boolean } {
  const path = join(dataDir, PEER_ID_FILE);
  try {
    const peerId = readFileSync(path, 'utf8').trim();
    if (!PEER_ID.test(peerId)) {
      throw new Error(
        `peer id file ${path} holds ${JSON.stringify(peerId.slice(0, 80))}, not "starling-coordinator-" ` +
          'and 12 hex digits; delete it to get a new id',
      );
    }
    return { peerId, created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(dataDir, { recursive: true });
  const peerId = `starling-coordinator-${randomBytes(6).toString('hex')}`;
  try {
    // 'wx' fails if another process created it meanwhile; then theirs is the id.
    writeFileSync(path, `${peerId}\n`, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreatePeerId(dataDir);
    throw e;
  }
  return { peerId, created: true };
}
