// The shared matmul suite (matmul-suite.ts) on the direct variants (shaders/matmul_direct.wgsl: 8×8
// or 8×4 outputs per invocation, no workgroup memory) at their four workgroup shapes, unsplit and
// with K split across workgroups (partials in a NaN-poisoned scratch, summed by
// matmul_splitk_reduce). Odd split counts (3, 5) leave a short last chunk.
import { matmulSuite } from './matmul-suite.test-helper';

matmulSuite('direct-64', 5000);
matmulSuite('direct-32', 6000);
matmulSuite('direct-128', 7000);
matmulSuite('direct-64x16', 8000);
matmulSuite('direct-32', 9000, { splits: 3 });
matmulSuite('direct-64x16', 10000, { splits: 5 });
