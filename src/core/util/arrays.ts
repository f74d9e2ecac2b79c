/**
 * Array helpers whose stack use does not grow with the data. `push(...xs)`, `Math.max(...xs)`
 * and `String.fromCharCode(...xs)` pass every element as an argument, so an array whose length
 * comes from a file (150,000 tensors in a safetensors header) overflows the call stack.
 */

/** Appends every element of `src` to `dst` (in place); returns `dst`. */
export function pushAll<T>(dst: T[], src: Iterable<T>): T[] {
  for (const x of src) dst.push(x);
  return dst;
}

/** The largest value (`-Infinity` for none), like `Math.max(...xs)` without the spread. */
export function maxOf(xs: Iterable<number>): number {
  let m = -Infinity;
  for (const x of xs) if (x > m || Number.isNaN(x)) m = x;
  return m;
}

/** The smallest value (`Infinity` for none), like `Math.min(...xs)` without the spread. */
export function minOf(xs: Iterable<number>): number {
  let m = Infinity;
  for (const x of xs) if (x < m || Number.isNaN(x)) m = x;
  return m;
}
