import * as fs from 'fs';

/**
 * A stage log of resident memory for diagnosing peak RSS, on stderr, when the environment sets
 * `MC_DEBUG_RSS=1` (otherwise every call returns at once). Each line gives the RSS now, the
 * peak RSS since the previous line, and node's external and ArrayBuffer memory, in MiB. On
 * Linux the peak is the kernel's high-water mark (`VmHWM` in /proc/self/status), reset after
 * each line by writing 5 to /proc/self/clear_refs (proc(5)); elsewhere it is the RSS now.
 */
export function rssStage(stage: string): void {
  if (process.env.MC_DEBUG_RSS !== '1') return;
  const mib = (b: number) => (b / 2 ** 20).toFixed(0).padStart(5);
  const m = process.memoryUsage();
  let peak = m.rss;
  let mapped = '';
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
    if (kb('VmHWM') >= 0) peak = kb('VmHWM');
    mapped = `, of which files ${mib(kb('RssFile'))}`;
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux: the peak is the RSS now.
  }
  overall = Math.max(overall, peak);
  process.stderr.write(`[rss] ${mib(m.rss)} MiB now, ${mib(peak)} MiB peak since the last line (max ${mib(overall)}), external ${mib(m.external)}, arrayBuffers ${mib(m.arrayBuffers)}, V8 heap ${mib(m.heapTotal)}${mapped}: ${stage}\n`);
}

let overall = 0;
