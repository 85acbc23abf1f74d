// How `starling serve` mentions the API token: logs get copied into issues and chats, so never whole.

/** Characters of the token a log line may show: enough to tell two tokens apart, far too few to guess. */
export const TOKEN_HINT_CHARS = 4;

/** e.g. `API token: abcd… (in .starling/token)`; `kept` is where the token can be read in full. */
export function tokenHint(token: string, kept: string, created = false): string {
  return `API token${created ? ' (new)' : ''}: ${token.slice(0, TOKEN_HINT_CHARS)}… (in ${kept})`;
}
