/** A mistake in command-line arguments: the CLI and the bench runner print its message and the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}
