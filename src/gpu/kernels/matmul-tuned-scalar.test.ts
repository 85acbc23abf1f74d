// The shared matmul suite (matmul-suite.ts) on the tuned kernel's scalar-load entry point
// (shaders/matmul_tuned.wgsl matmul_tuned_scalar), which takes any sizes.
import { matmulSuite } from './matmul-suite.test-helper';

matmulSuite('tuned-scalar', 4000);
