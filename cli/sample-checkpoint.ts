// Text sampling from a checkpoint on the CPU: reads the safetensors file, takes the model (MLP or
// GPT) from its metadata and the tokenizer from its vocabulary, and generates greedily or with
// temperature.
import { readModelCheckpoint } from '../coordinator/checkpoint';
import { CharTokenizer } from '../src/data/tokenizer';
import { modelGenerate, type ModelConfig } from '../src/model/model';
import type { SampleOptions } from '../src/model/sample';

export interface SampleRequest extends SampleOptions {
  checkpoint: string;
  prompt: string;
  tokens: number;
  seed: number;
}

export async function sampleFromCheckpoint(
  r: SampleRequest,
): Promise<{ text: string; version: string; model: ModelConfig }> {
  const { cfg, params, metadata } = await readModelCheckpoint(r.checkpoint);
  if (!metadata.vocab) throw new Error(`${r.checkpoint} has no tokenizer vocabulary in its metadata`);
  const tok = CharTokenizer.fromJSON(JSON.parse(metadata.vocab));
  if (tok.vocab.length !== cfg.vocab)
    throw new Error(`${r.checkpoint}: vocabulary has ${tok.vocab.length} tokens, the model ${cfg.vocab}`);
  // A prompt shorter than the model needs is padded on the left with newlines (or token 0), as if
  // it began a line; a GPT with an empty prompt starts from one newline, as nanoGPT's sampler does.
  const nl = tok.vocab.indexOf('\n');
  const out = await modelGenerate(cfg, params, tok.encode(r.prompt), r.tokens, r, nl >= 0 ? nl : 0);
  return { text: r.prompt + tok.decode(out), version: metadata.version ?? '?', model: cfg };
}
