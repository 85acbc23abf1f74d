// The jobs `starling demo` posts. The default demo is the default job (the MLP); `--model gpt`
// trains this GPT, small enough for software GPUs (SwiftShader) to run a round in a couple of
// seconds, so the demo and its e2e test show the loss fall without a real GPU.
export const DEMO_GPT_JOB = {
  model: { type: 'gpt', context: 16, layers: 1, heads: 2, width: 32, tiedEmbeddings: true },
  train: { batch: 8, localSteps: 5, lr: 1e-2 },
} as const;
