// WGSL sources by name, the file's base name ("matmul" for shaders/matmul.wgsl, "topk" for
// src/compress/topk/topk.wgsl). Shaders live in shaders/ (model and optimizer kernels) or beside their
// codec in src/compress/<family>/ (SHADER_GLOBS). The browser build inlines them through Vite's
// import.meta.glob; Node registers them from disk (node-shaders.ts) so node:fs never enters the
// browser bundle. Two files with one base name are an error.
const sources = new Map<string, string>();

const paths = new Map<string, string>();

/** Where shaders are, relative to the repository root (the globs of this file and node-shaders.ts). */
export const SHADER_GLOBS = ['shaders/*.wgsl', 'src/compress/*/*.wgsl'] as const;

/**
 * Adds shaders keyed by file path or bare name; the name is the file's base name without ".wgsl".
 * Registering a path again replaces it; a second path with the same name throws.
 */
export function registerShaders(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    const name = path.replace(/^.*\//, '').replace(/\.wgsl$/, '');
    const known = paths.get(name);
    if (known !== undefined && known !== path && known !== name && path !== name) {
      throw new Error(`shader name "${name}" is taken twice: ${known} and ${path}`);
    }
    paths.set(name, path);
    sources.set(name, text);
  }
}

// Only Vite defines import.meta.env; under Node/tsx the glob call would not exist, so it is skipped.
if (import.meta.env) {
  registerShaders(
    import.meta.glob<string>(['../../shaders/*.wgsl', '../compress/*/*.wgsl'], {
      query: '?raw',
      import: 'default',
      eager: true,
    }),
  );
}

export function shaderNames(): string[] {
  return [...sources.keys()].sort();
}

export function shaderSource(name: string): string {
  const text = sources.get(name);
  if (text !== undefined) return text;
  if (sources.size === 0) {
    throw new Error(
      `unknown shader "${name}": no shaders are loaded. In Node, call acquireNodeDevice() or loadNodeShaders() ` +
        '(src/gpu/node-shaders.ts) first; in the browser, build with Vite so the .wgsl files are inlined.',
    );
  }
  throw new Error(`unknown shader "${name}"; known shaders: ${shaderNames().join(', ')}`);
}
