// Node-only: reads the .wgsl files (shaders/ and src/compress/<family>/, SHADER_GLOBS) from disk into
// the shader registry.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerShaders } from './shaders';

export const SHADER_DIR = fileURLToPath(new URL('../../shaders/', import.meta.url));
/** The codec families' folders, each holding its own .wgsl beside its CPU codec. */
export const CODEC_DIR = fileURLToPath(new URL('../compress/', import.meta.url));

/** Every shader file: shaders/*.wgsl and src/compress/<family>/*.wgsl (absolute paths, sorted). */
export function shaderFiles(dir = SHADER_DIR, codecDir = CODEC_DIR): string[] {
  const wgsl = (d: string) =>
    readdirSync(d)
      .filter((f) => f.endsWith('.wgsl'))
      .map((f) => join(d, f));
  const files = wgsl(dir);
  if (existsSync(codecDir)) {
    for (const f of readdirSync(codecDir)) {
      if (statSync(join(codecDir, f)).isDirectory()) files.push(...wgsl(join(codecDir, f)));
    }
  }
  return files.sort();
}

export function loadNodeShaders(dir = SHADER_DIR, codecDir = CODEC_DIR): void {
  const files: Record<string, string> = {};
  for (const f of shaderFiles(dir, codecDir)) files[f] = readFileSync(f, 'utf8');
  registerShaders(files);
}
