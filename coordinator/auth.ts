// The researcher API's bearer token. One secret per data directory: STARLING_TOKEN wins when set;
// otherwise `<dataDir>/token` is read, or created (owner-only) on first start so the server can
// print it once. Donor routes need no token; everything that starts, stops or reads jobs does.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NextFunction, Request, Response } from 'express';

/** A shorter token is guessable; generated ones are 64 hex characters. */
export const MIN_TOKEN_LENGTH = 16;
export const MAX_TOKEN_LENGTH = 1024;

function checkToken(token: string, from: string): string {
  if (token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH || /\s/.test(token)) {
    throw new Error(
      `${from} must be ${MIN_TOKEN_LENGTH}..${MAX_TOKEN_LENGTH} ` +
        `characters without whitespace, got ${token.length} characters`,
    );
  }
  return token;
}

export function loadOrCreateToken(dataDir: string, envToken?: string): { token: string; created: boolean } {
  if (envToken !== undefined && envToken !== '')
    return { token: checkToken(envToken, 'STARLING_TOKEN'), created: false };
  const path = join(dataDir, 'token');
  try {
    return { token: checkToken(readFileSync(path, 'utf8').trim(), `token file ${path}`), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(32).toString('hex');
  try {
    // 'wx' fails if another process created it meanwhile; then theirs is the token.
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateToken(dataDir);
    throw e;
  }
  return { token, created: true };
}

/** Compares in constant time (hashing first makes the lengths equal, so length does not leak). */
export function tokenMatches(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** Express middleware: 401 unless `Authorization: Bearer <token>` carries the right token. */
export function requireToken(token: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.get('authorization');
    const m = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    if (!m) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer realm="starling"')
        .json({ error: 'missing token: send the researcher token as "Authorization: Bearer <token>"' });
      return;
    }
    if (!tokenMatches(m[1], token)) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer realm="starling", error="invalid_token"')
        .json({ error: 'wrong token' });
      return;
    }
    next();
  };
}
