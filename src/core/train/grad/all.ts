/** Registers every gradient rule (one module per op family). */
import './activation';
import './conv';
import './elementwise';
import './gemm';
import './norm';
import './pool';
import './quantize';
import './reduce';
import './shape';
