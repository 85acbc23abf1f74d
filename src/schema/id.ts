// Ids of jobs, donors and uploads: safe in URLs and file names. One definition for the job store, the
// HTTP API and the protocol.
import { Type, type TString } from '@sinclair/typebox';

export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** The id schema; a wrong length and a wrong character are reported apart. */
export function idSchema(description?: string): TString {
  return Type.String({
    minLength: 1,
    maxLength: 64,
    pattern: ID_RE.source,
    patternText: 'a string of letters, digits, "_" or "-"',
    ...(description === undefined ? {} : { description }),
  });
}
