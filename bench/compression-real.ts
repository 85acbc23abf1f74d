// The compression benchmark's check against the real path: one arm trained by a real coordinator and
// N headless Chromium donors over WebRTC (cli/local-job.ts), with the same job, shards and seed
// as its simulated run, then compared round by round: bytes per donor as the data channels counted
// them, and validation loss.
import { build } from 'vite';
import type { RoundResult } from '../coordinator/job-engine';
import type { JobSpec } from '../coordinator/job-spec';
import { runLocalJob } from '../cli/local-job';
import { repoRoot } from './browser-harness';
import type { SimArm, SimResult } from './compression-sim';

export interface RealComparison {
  arm: string;
  seed: number;
  donors: number;
  rounds: number;
  /** Rounds 1.. (round 0 also carries the first f32 snapshot, which the simulation counts apart). */
  realUpBytesPerRound: number;
  realDownBytesPerRound: number;
  simUpBytesPerRound: number;
  simDownBytesPerRound: number;
  /** Validation loss after each round, real and simulated (the simulation validates every evalEvery steps). */
  curve: { step: number; real: number; sim: number }[];
  maxAbsLossDiff: number;
  wallSeconds: number;
}

export async function runRealArm(
  spec: JobSpec,
  arm: SimArm,
  seed: number,
  donors: number,
  steps: number,
  sim: SimResult,
  log: (l: string) => void,
): Promise<RealComparison> {
  log('compression: building the donor app (vite) for the real run…');
  await build({ root: repoRoot, logLevel: 'warn' });
  const rounds: RoundResult[] = [];
  const body = {
    name: `real ${arm.name}`,
    model: spec.model,
    data: spec.data,
    train: {
      ...spec.train,
      rounds: steps / arm.localSteps,
      localSteps: arm.localSteps,
      codec: arm.codec,
      downCodec: arm.downCodec,
      outerLr: arm.outerLr,
      outerMomentum: arm.outerMomentum,
      errorDecay: arm.errorDecay ?? 1,
      minDonors: donors,
      shards: donors,
      seed,
      roundDeadlineMs: 600_000,
    },
  };
  const r = await runLocalJob({
    body,
    donors,
    onRound: (x) => {
      rounds.push(x);
      if (x.round % 10 === 0)
        log(`compression: real ${arm.name} round ${x.round + 1}/${body.train.rounds}: val ${x.valLoss.toFixed(4)}`);
    },
  });
  const later = r.rounds.filter((x) => x.round > 0);
  const per = (f: (x: RoundResult) => number) => later.reduce((a, x) => a + f(x) / x.assigned, 0) / later.length;
  const curve = sim.curve.flatMap((p) => {
    const x = r.rounds.find((q) => (q.round + 1) * arm.localSteps === p.step);
    return x ? [{ step: p.step, real: x.valLoss, sim: p.valLoss }] : [];
  });
  return {
    arm: arm.name,
    seed,
    donors,
    rounds: r.rounds.length,
    realUpBytesPerRound: per((x) => x.bytesUp),
    realDownBytesPerRound: per((x) => x.bytesDown),
    simUpBytesPerRound: sim.upBytesPerRound,
    simDownBytesPerRound: sim.downBytesPerRound,
    curve,
    maxAbsLossDiff: Math.max(...curve.map((c) => Math.abs(c.real - c.sim))),
    wallSeconds: r.wallSeconds,
  };
}
