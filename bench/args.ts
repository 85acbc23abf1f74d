// Command-line parsing for `npm run bench -- <name> [--option value]…` (pure; tested). node:util's
// parseArgs splits the options; here each value is checked against its kind.
import { parseArgs } from 'node:util';
import { UsageError } from '../src/util/usage-error';

export { UsageError };

export interface OptionSpec {
  name: string;
  /** 'flag' takes no value; the others take one (`--name v` or `--name=v`). */
  kind: 'flag' | 'int' | 'number' | 'ints' | 'string';
  help: string;
  /** Shown in the usage text. */
  default?: string;
  /** Smallest allowed value of an 'int' option (default 1). */
  min?: number;
}

export type OptionValue = boolean | number | number[] | string;

export interface ParsedArgs {
  name: string | undefined;
  help: boolean;
  /** The rest of argv after the bench name, parsed against that bench's options later. */
  rest: string[];
}

/** Splits argv into the bench name and its options; `--help`/`-h` anywhere asks for usage. */
export function splitArgs(argv: readonly string[]): ParsedArgs {
  const help = argv.some((a) => a === '--help' || a === '-h');
  const args = argv.filter((a) => a !== '--help' && a !== '-h');
  const first = args[0];
  if (first === undefined || first.startsWith('-')) return { name: undefined, help, rest: args };
  return { name: first, help, rest: args.slice(1) };
}

function parseValue(spec: OptionSpec, raw: string): OptionValue {
  const bad = (what: string) => new UsageError(`--${spec.name} expects ${what}, got "${raw}"`);
  switch (spec.kind) {
    case 'int': {
      const n = Number(raw);
      const min = spec.min ?? 1;
      if (raw.trim() === '' || !Number.isInteger(n) || n < min)
        throw bad(min === 1 ? 'a positive integer' : `an integer >= ${min}`);
      return n;
    }
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw bad('a positive number');
      return n;
    }
    case 'ints': {
      const parts = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      const ns = parts.map(Number);
      if (ns.length === 0 || ns.some((n) => !Number.isInteger(n) || n < 1))
        throw bad('a comma-separated list of positive integers');
      return ns;
    }
    case 'string':
      return raw;
    case 'flag':
      throw new Error('unreachable');
  }
}

/** Parses `--name value`, `--name=value` and `--flag` against `specs`; unknown options are an error. */
export function parseOptions(rest: readonly string[], specs: readonly OptionSpec[]): Record<string, OptionValue> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...rest],
      options: Object.fromEntries(
        specs.map((s) => [s.name, { type: s.kind === 'flag' ? 'boolean' : 'string' } as const]),
      ),
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (!code?.startsWith('ERR_PARSE_ARGS_')) throw e;
    if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError((e as Error).message);
    // parseArgs' own text suggests positionals, which benches do not take: name the known options instead.
    const known = specs.map((s) => `--${s.name}`).join(', ');
    const name = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '?';
    throw new UsageError(`unknown option ${name}${known ? ` (known: ${known})` : ''}`);
  }
  const out: Record<string, OptionValue> = {};
  for (const spec of specs) {
    const v = values[spec.name];
    if (v === undefined) continue;
    out[spec.name] = typeof v === 'boolean' ? v : parseValue(spec, v);
  }
  return out;
}

/** The option lines of a usage text. */
export function describeOptions(specs: readonly OptionSpec[]): string {
  const left = specs.map((s) => {
    const value = s.kind === 'ints' ? 'n,n,…' : s.kind === 'string' ? 'text' : 'n';
    return `  --${s.name}${s.kind === 'flag' ? '' : ` <${value}>`}`;
  });
  const w = Math.max(0, ...left.map((l) => l.length));
  return specs
    .map((s, i) => `${left[i].padEnd(w)}  ${s.help}${s.default !== undefined ? ` (default: ${s.default})` : ''}`)
    .join('\n');
}
