// `npm run bench -- <name> [options]`: runs one benchmark by name. To add one (train-step,
// compression, …), write bench/<name>.ts exporting its options and a run function, and list it here.
import { describeOptions, parseOptions, splitArgs, UsageError, type OptionSpec, type OptionValue } from './args';
import { matmulOptions, runMatmulBench } from './matmul';
import { runTrainStepBench, trainStepOptions } from './train-step';
import { compressionOptions, runCompressionBench } from './compression';

interface BenchDef {
  summary: string;
  options: OptionSpec[];
  /** Resolves to the exit code. `command` is the shell line that reproduces this run (for the docs). */
  run(opts: Record<string, OptionValue>, command: string): Promise<number>;
}

const benches: Record<string, BenchDef> = {
  matmul: {
    summary: 'our WGSL matmul vs TF.js tf.matMul (webgpu) in headless Chromium, square sizes',
    options: matmulOptions,
    run: runMatmulBench,
  },
  'train-step': {
    summary:
      'one training step (forward, backward, AdamW, loss readback) ' +
      'of each model: ours vs TF.js (webgpu) in headless Chromium',
    options: trainStepOptions,
    run: runTrainStepBench,
  },
  compression: {
    summary:
      'N = 4 simulated donors train the same job under every codec and H (equal ' +
      'tokens, 2 seeds): bytes per step, loss gap, time to target on home links',
    options: compressionOptions,
    run: runCompressionBench,
  },
};

function usage(): string {
  const names = Object.keys(benches);
  const w = Math.max(...names.map((n) => n.length));
  const lines = ['usage: npm run bench -- <name> [options]', '', 'benchmarks:'];
  for (const n of names) lines.push(`  ${n.padEnd(w)}  ${benches[n].summary}`);
  for (const n of names) lines.push('', `${n} options:`, describeOptions(benches[n].options));
  lines.push(
    '',
    'environment: STARLING_GPU=vulkan uses the real GPU instead ' +
      'of SwiftShader; STARLING_CHROMIUM=/path picks the browser.',
  );
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { name, help, rest } = splitArgs(argv);
  if (name === undefined) {
    if (help) {
      console.log(usage());
      return 0;
    }
    console.error(
      `${rest.length ? `expected a benchmark name before ${rest[0]}` : 'no benchmark named'}\n\n${usage()}`,
    );
    return 2;
  }
  const def = Object.hasOwn(benches, name) ? benches[name] : undefined;
  if (!def) {
    console.error(`unknown benchmark "${name}" (available: ${Object.keys(benches).join(', ')})\n\n${usage()}`);
    return 2;
  }
  if (help) {
    console.log(`usage: npm run bench -- ${name} [options]\n\n${def.summary}\n\n${describeOptions(def.options)}`);
    return 0;
  }
  let opts: Record<string, OptionValue>;
  try {
    opts = parseOptions(rest, def.options);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${name}: ${e.message}\n\n${describeOptions(def.options)}`);
      return 2;
    }
    throw e;
  }
  const envPrefix = process.env.STARLING_GPU ? `STARLING_GPU=${process.env.STARLING_GPU} ` : '';
  // Quoted where the shell needs it, so the line in the docs reproduces the run as written.
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const command = `${envPrefix}npm run bench -- ${[name, ...rest].map(quote).join(' ')}`;
  return def.run(opts, command);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
