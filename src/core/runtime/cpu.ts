import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';

/**
 * The CPU features that decide how int8 should be quantized for ONNX Runtime's CPU kernels.
 *
 * On x86 without VNNI, ORT's u8×s8 GEMM kernels (AVX2 `vpmaddubsw`) add pairs of u8·s8
 * products into a signed 16-bit lane before widening; with full-range activations (0…255) and
 * weights (−127…127) a pair can reach 2·255·127 = 64770 > 32767 and saturates. 7-bit weights
 * (reduce-range, −63…63) keep every pair within 2·255·63 = 32130. VNNI (`vpdpbusd`, flags
 * `avx512_vnni` or `avx_vnni`) adds into 32 bits and does not saturate; ARM's int8 dot products
 * neither. Sources: ONNX Runtime's quantization documentation (its advice on reduce_range and
 * U8S8 on x86-64 CPUs with AVX2/AVX-512 but without VNNI) and Intel's instruction set reference
 * (VPMADDUBSW saturates to 16 bits; VPDPBUSD accumulates in 32 bits).
 */
export interface CpuFeatures {
  /** Node's `process.arch`: 'x64', 'ia32', 'arm64', … */
  arch: string;
  /** Lower-case feature flags, or null when the OS did not tell. */
  flags: Set<string> | null;
  /** Where the flags came from, for the report ("/proc/cpuinfo", "sysctl", …). */
  source: string;
}

let cached: CpuFeatures | undefined;

/** Reads the CPU's feature flags from the OS (Linux: /proc/cpuinfo; macOS: sysctl). Cached. */
export function detectCpu(): CpuFeatures {
  if (cached) return cached;
  const arch = process.arch;
  let flags: Set<string> | null = null;
  let source = 'not available on this OS';
  try {
    if (os.platform() === 'linux') {
      const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
      const line = text.split('\n').find((l) => /^(flags|Features)\s*:/.test(l));
      if (line) {
        flags = new Set(line.split(':')[1].trim().toLowerCase().split(/\s+/));
        source = '/proc/cpuinfo';
      }
    } else if (os.platform() === 'darwin') {
      const out = ['machdep.cpu.features', 'machdep.cpu.leaf7_features']
        .map((k) => {
          try {
            return execFileSync('sysctl', ['-n', k], { encoding: 'utf8', timeout: 2000 });
          } catch {
            return '';
          }
        })
        .join(' ');
      if (out.trim()) {
        // sysctl spells them AVX512VNNI / AVXVNNI; use the Linux names.
        flags = new Set(out.toLowerCase().split(/\s+/).filter(Boolean).map((f) => f.replace(/^avx512vnni$/, 'avx512_vnni').replace(/^avxvnni$/, 'avx_vnni').replace(/^avx2\.0$/, 'avx2')));
        source = 'sysctl';
      }
    }
  } catch {
    /* flags stay unknown */
  }
  cached = { arch, flags, source };
  return cached;
}

export interface Int8Policy {
  /** 7-bit weights by default. */
  reduceRange: boolean;
  /** One sentence for the report: which default applied and why. */
  reason: string;
}

/** The int8 default for a CPU (inject `cpu` in tests; never depends on the machine there). */
export function int8Policy(cpu: CpuFeatures = detectCpu()): Int8Policy {
  const x86 = cpu.arch === 'x64' || cpu.arch === 'ia32';
  if (!x86) return { reduceRange: false, reason: `full-range int8 weights: ${cpu.arch} CPUs add int8 products without 16-bit saturation` };
  if (!cpu.flags) {
    return { reduceRange: true, reason: `7-bit (reduce-range) int8 weights: the CPU's features are unknown (${cpu.source}), and x86 CPUs without VNNI saturate full-range u8×s8 products in ONNX Runtime` };
  }
  const vnni = ['avx512_vnni', 'avx_vnni'].filter((f) => cpu.flags!.has(f));
  if (vnni.length) return { reduceRange: false, reason: `full-range int8 weights: this CPU has VNNI (${vnni.join(', ')}, from ${cpu.source}), whose int8 dot products do not saturate` };
  const simd = ['avx512bw', 'avx2'].find((f) => cpu.flags!.has(f)) ?? 'SSE';
  return {
    reduceRange: true,
    reason: `7-bit (reduce-range) int8 weights: this x86 CPU has ${simd} but no VNNI (no avx512_vnni or avx_vnni in ${cpu.source}), so ONNX Runtime's u8×s8 kernels add products in 16 bits and saturate with full-range weights (--full-range overrides)`,
  };
}

/** A short description of the CPU's int8 capability, for notes ("AVX2 without VNNI"). */
export function int8Capability(cpu: CpuFeatures = detectCpu()): string {
  if (cpu.arch !== 'x64' && cpu.arch !== 'ia32') return `${cpu.arch} CPU`;
  if (!cpu.flags) return 'x86 CPU with unknown features';
  const vnni = cpu.flags.has('avx512_vnni') || cpu.flags.has('avx_vnni');
  const simd = cpu.flags.has('avx512bw') ? 'AVX-512' : cpu.flags.has('avx2') ? 'AVX2' : 'SSE';
  return `${simd} ${vnni ? 'with' : 'without'} VNNI`;
}
