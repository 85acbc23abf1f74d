// Test helper (not shipped): a contiguous parameter layout from (name, shape) pairs, as src/model's specs build it.
import type { TensorSpec } from './model-codec';

export function layoutOf(shapes: [string, number[]][]): TensorSpec[] {
  let offset = 0;
  return shapes.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = { name, shape, offset, size };
    offset += size;
    return t;
  });
}
