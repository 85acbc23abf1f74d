// The shared matmul suite (matmul-suite.ts) on the tuned kernel's scalar-load entry point
// (shaders/matmul_tuned.wgsl matmul_tuned_scalar), which takes any sizes.
import { matmulSuite } from './matmul-suite';

matmulSuite('tuned-scalar', 4000);
