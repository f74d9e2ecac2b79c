import { CholeskyDecomposition, Matrix, SingularValueDecomposition } from 'ml-matrix';

/**
 * The linear algebra substitution and pruning need, from ml-matrix (a maintained pure-JS
 * library): thin SVD, damped least squares through Cholesky, and triangular solves.
 */

export { Matrix };

/** Row-major Float32Array → Matrix. */
export function fromRows(a: ArrayLike<number>, rows: number, cols: number): Matrix {
  const m = new Matrix(rows, cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m.set(r, c, a[r * cols + c]);
  return m;
}

export function toFloat32(m: Matrix): Float32Array {
  const out = new Float32Array(m.rows * m.columns);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < m.columns; c++) out[r * m.columns + c] = m.get(r, c);
  return out;
}

export interface Svd {
  u: Matrix;
  s: number[];
  v: Matrix;
}

export function svd(a: Matrix): Svd {
  // ml-matrix's SVD wants rows ≥ columns for its thin form; transpose wide matrices.
  if (a.rows < a.columns) {
    const t = svd(a.transpose());
    return { u: t.v, s: t.s, v: t.u };
  }
  const d = new SingularValueDecomposition(a, { autoTranspose: false });
  return { u: d.leftSingularVectors, s: d.diagonal, v: d.rightSingularVectors };
}

/** Cholesky of G + λI, with λ a small multiple of the mean diagonal, grown until it succeeds. */
function dampedCholesky(g: Matrix, relDamping: number, what: string): CholeskyDecomposition {
  const n = g.rows;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += g.get(i, i);
  let lambda = Math.max((relDamping * trace) / n, 1e-12);
  for (let attempt = 0; attempt < 6; attempt++) {
    const damped = g.clone();
    for (let i = 0; i < n; i++) damped.set(i, i, damped.get(i, i) + lambda);
    const ch = new CholeskyDecomposition(damped);
    if (ch.isPositiveDefinite()) return ch;
    lambda *= 100;
  }
  throw new Error(`${what} is singular even with damping`);
}

/** Solves (G + λI) X = C for symmetric positive semi-definite G (normal equations). */
export function solveSpd(g: Matrix, c: Matrix, relDamping = 1e-6): Matrix {
  return dampedCholesky(g, relDamping, 'the normal equations').solve(c);
}

/** Lower Cholesky factor of G + λI. */
export function cholesky(g: Matrix, relDamping = 1e-6): Matrix {
  return dampedCholesky(g, relDamping, 'the covariance').lowerTriangularMatrix;
}

/** Solves Lᵀ X = B for lower-triangular L (back substitution). */
export function solveUpperFromLowerT(l: Matrix, b: Matrix): Matrix {
  const n = l.rows;
  const x = new Matrix(n, b.columns);
  for (let col = 0; col < b.columns; col++) {
    for (let i = n - 1; i >= 0; i--) {
      let s = b.get(i, col);
      for (let k = i + 1; k < n; k++) s -= l.get(k, i) * x.get(k, col);
      x.set(i, col, s / l.get(i, i));
    }
  }
  return x;
}

/**
 * Streaming Gram statistics for least squares y ≈ W·[x; 1]: G = Σ x̃x̃ᵀ, C = Σ x̃yᵀ,
 * and Σ‖y‖², accumulated row by row without keeping the data.
 */
export class GramAccumulator {
  readonly g: Float64Array;
  readonly c: Float64Array;
  syy = 0;
  rows = 0;

  constructor(
    readonly n: number,
    readonly out: number,
    readonly withBias = true,
  ) {
    const d = n + (withBias ? 1 : 0);
    this.g = new Float64Array(d * d);
    this.c = new Float64Array(d * out);
  }

  get dim(): number {
    return this.n + (this.withBias ? 1 : 0);
  }

  /**
   * Adds one row: x (length n) and y (length out), read with strides from larger arrays;
   * `yIndex` picks which of y's entries are the `out` targets (default 0..out-1).
   */
  add(x: ArrayLike<number>, xOff: number, xStride: number, y: ArrayLike<number> | undefined, yOff: number, yStride: number, yIndex?: ArrayLike<number>): void {
    const d = this.dim;
    const xt = scratch(d);
    for (let i = 0; i < this.n; i++) xt[i] = x[xOff + i * xStride];
    if (this.withBias) xt[this.n] = 1;
    const g = this.g;
    for (let i = 0; i < d; i++) {
      const xi = xt[i];
      if (xi === 0) continue;
      const row = i * d;
      for (let j = i; j < d; j++) g[row + j] += xi * xt[j];
    }
    if (y) {
      const c = this.c;
      for (let o = 0; o < this.out; o++) {
        const yo = y[yOff + (yIndex ? yIndex[o] : o) * yStride];
        this.syy += yo * yo;
        if (yo === 0) continue;
        for (let i = 0; i < d; i++) c[i * this.out + o] += xt[i] * yo;
      }
    }
    this.rows++;
  }

  gram(): Matrix {
    const d = this.dim;
    const m = new Matrix(d, d);
    for (let i = 0; i < d; i++) for (let j = i; j < d; j++) {
      m.set(i, j, this.g[i * d + j]);
      m.set(j, i, this.g[i * d + j]);
    }
    return m;
  }

  cross(): Matrix {
    return fromRows(this.c, this.dim, this.out);
  }

  /** Relative error ‖Y − W X̃‖ / ‖Y‖ of a weight W (out × dim) from the statistics alone. */
  relativeError(w: Matrix): number {
    const g = this.gram();
    const c = this.cross();
    // E = Σ‖y‖² − 2 tr(W C) + tr(W G Wᵀ)
    const wc = w.mmul(c);
    const wgw = w.mmul(g).mmul(w.transpose());
    let tr1 = 0;
    let tr2 = 0;
    for (let i = 0; i < w.rows; i++) {
      tr1 += wc.get(i, i);
      tr2 += wgw.get(i, i);
    }
    const e = Math.max(0, this.syy - 2 * tr1 + tr2);
    return this.syy > 0 ? Math.sqrt(e / this.syy) : 0;
  }
}

let scratchBuf = new Float64Array(64);
function scratch(n: number): Float64Array {
  if (scratchBuf.length < n) scratchBuf = new Float64Array(n);
  return scratchBuf;
}
