// GPT token + position embedding (llm.c's encoder) and its gradients; see shaders/encoder.wgsl.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

export interface EncoderDims {
  /** B */
  batch: number;
  /** T: positions used (wpe may hold more rows, the model's maximum context). */
  seq: number;
  /** C */
  channels: number;
  /** V */
  vocab: number;
}

export interface AccumulateOptions extends LaunchOptions {
  /** Add into the existing gradient instead of overwriting it (e.g. wte tied to the output layer). */
  accumulate?: boolean;
}

/** out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:], in float64. */
export function encoderForwardCpu(
  d: EncoderDims,
  tokens: Int32Array,
  wte: ArrayLike<number>,
  wpe: ArrayLike<number>,
): Float64Array {
  const { batch: B, seq: T, channels: C } = d;
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const q = b * T + t;
      const tok = tokens[q];
      for (let c = 0; c < C; c++) out[q * C + c] = wte[tok * C + c] + wpe[t * C + c];
    }
  }
  return out;
}

/** dwte [V,C] and dwpe [T,C] from dout [B,T,C], in float64. */
export function encoderBackwardCpu(
  d: EncoderDims,
  tokens: Int32Array,
  dout: ArrayLike<number>,
): { dwte: Float64Array; dwpe: Float64Array } {
  const { batch: B, seq: T, channels: C, vocab: V } = d;
  const dwte = new Float64Array(V * C);
  const dwpe = new Float64Array(T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const q = b * T + t;
      const tok = tokens[q];
      for (let c = 0; c < C; c++) {
        dwte[tok * C + c] += dout[q * C + c];
        dwpe[t * C + c] += dout[q * C + c];
      }
    }
  }
  return { dwte, dwpe };
}

function dimsUniform(d: EncoderDims): ArrayBuffer {
  requireDims('encoder', { ...d });
  return packUniform([d.batch, d.seq, d.channels, d.vocab]);
}

export function encoderForwardLaunch(
  device: GPUDevice,
  d: EncoderDims,
  b: { tokens: Binding; wte: Binding; wpe: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch {
  const uniform = dimsUniform(d);
  const n = d.batch * d.seq * d.channels;
  requireBytes('encoder tokens', b.tokens, 4 * d.batch * d.seq);
  requireBytes('encoder wte', b.wte, 4 * d.vocab * d.channels);
  requireBytes('encoder wpe', b.wpe, 4 * d.seq * d.channels);
  requireBytes('encoder out', b.out, 4 * n);
  return createLaunch(device, {
    shader: 'encoder',
    entry: 'encoder_forward',
    uniform,
    bindings: { 1: b.tokens, 2: b.wte, 3: b.wpe, 4: b.out },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}

/** dwte [V,C] (+)= the gradient of every position gathered into its token's row. */
export function encoderBackwardWteLaunch(
  device: GPUDevice,
  d: EncoderDims,
  b: { tokens: Binding; dout: Binding; dwte: Binding },
  opts: AccumulateOptions = {},
): Launch {
  const uniform = dimsUniform(d);
  requireBytes('encoder tokens', b.tokens, 4 * d.batch * d.seq);
  requireBytes('encoder dout', b.dout, 4 * d.batch * d.seq * d.channels);
  requireBytes('encoder dwte', b.dwte, 4 * d.vocab * d.channels);
  const { accumulate, ...launchOpts } = opts;
  return createLaunch(device, {
    shader: 'encoder',
    entry: 'encoder_backward_wte',
    constants: { ACCUMULATE: accumulate ? 1 : 0 },
    uniform,
    bindings: { 1: b.tokens, 5: b.dout, 6: b.dwte },
    workgroups: d.vocab * Math.ceil(d.channels / 256),
    ...launchOpts,
  });
}

/** dwpe [T,C] (+)= dout summed over the batch. */
export function encoderBackwardWpeLaunch(
  device: GPUDevice,
  d: EncoderDims,
  b: { dout: Binding; dwpe: Binding },
  opts: AccumulateOptions = {},
): Launch {
  const uniform = dimsUniform(d);
  requireBytes('encoder dout', b.dout, 4 * d.batch * d.seq * d.channels);
  requireBytes('encoder dwpe', b.dwpe, 4 * d.seq * d.channels);
  const { accumulate, ...launchOpts } = opts;
  return createLaunch(device, {
    shader: 'encoder',
    entry: 'encoder_backward_wpe',
    constants: { ACCUMULATE: accumulate ? 1 : 0 },
    uniform,
    bindings: { 5: b.dout, 7: b.dwpe },
    workgroups: Math.ceil((d.seq * d.channels) / 256),
    ...launchOpts,
  });
}
