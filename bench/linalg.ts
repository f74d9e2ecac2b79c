import { CholeskyDecomposition, Matrix, SingularValueDecomposition } from 'ml-matrix';
import { report } from './util';

/** ml-matrix at the sizes substitution and reconstruction meet (k²·C features, layer widths). */
export function benchLinalg(): void {
  const rows: Array<[string, string]> = [];
  for (const n of [64, 128, 256, 577]) {
    const a = Matrix.rand(n, n);
    let t = Date.now();
    new SingularValueDecomposition(a);
    const svdMs = Date.now() - t;
    const g = a.mmul(a.transpose()).add(Matrix.eye(n));
    const c = Matrix.rand(n, 64);
    t = Date.now();
    new CholeskyDecomposition(g).solve(c);
    rows.push([`${n}×${n}`, `SVD ${svdMs} ms, Cholesky + solve (64 right-hand sides) ${Date.now() - t} ms`]);
  }
  report('ml-matrix linear algebra', rows);
}
