/**
 * Every op family's entry in the structured-pruning registry (see ../rules.ts). Importing this
 * module registers them; a new family is one more file here and one more import line.
 */
import './conv';
import './dense';
import './passthrough';
import './elementwise';
import './concat';
import './split-slice';
import './flatten-reshape';
import './weights';
