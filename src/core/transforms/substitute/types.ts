/** What one substituted layer looked like before and after. */
export interface LayerSubstitution {
  name: string;
  kind: 'depthwise' | 'lowrank';
  /** e.g. "multiplier 1" or "rank 24 (whitened)". */
  detail: string;
  paramsBefore: number;
  paramsAfter: number;
  macsBefore: number | null;
  macsAfter: number | null;
  /** Relative output error ‖Y − Ŷ‖/‖Y‖ on calibration data: initialisation, then after the refit. */
  errorInit: number | null;
  errorRefit: number | null;
}

export interface SubstituteSkip {
  name: string;
  op: string;
  reason: string;
}
