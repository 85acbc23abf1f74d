// The shared matmul suite (matmul-suite.ts) on the tuned variant: shaders/matmul_tuned.wgsl
// entry matmul_tuned, vec4 loads. Shapes it cannot load as vec4 are skipped with its reason.
import { matmulSuite } from './matmul-suite.test-helper';

matmulSuite('tuned', 3000);
