/**
 * The Compress panel's live training chart: the loss of each training step (as sampled by the
 * worker, ≤ 10 updates a second) and the validation metric after each epoch, on one x axis of
 * training steps, with epoch, ETA and samples/s above it. A step that trains several times
 * (prune → retrain → repeat) continues the same axis.
 */
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import { Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';
import { cssVar, el } from './dom';
import type { TrainProgressDto } from '../src/protocol/jobs';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Tooltip);

const clock = (s: number) => {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
};

export class TrainChart {
  readonly box = el('div', { id: 'train' });
  private readonly status = el('div', { id: 'train-status', class: 'row' });
  private readonly ring = el('vscode-progress-ring');
  private readonly text = el('span');
  private chart: Chart<'line', Array<{ x: number; y: number }>> | undefined;
  /** Global step at the start of the current training run, and the last global step seen. */
  private base = 0;
  private lastX = 0;
  private runs = 0;

  constructor() {
    this.status.append(this.ring, this.text);
    this.box.hidden = true;
  }

  /** Clears the chart for a new run. */
  reset(): void {
    this.chart?.destroy();
    this.chart = undefined;
    this.base = 0;
    this.lastX = 0;
    this.runs = 0;
    this.box.hidden = true;
    this.box.replaceChildren();
    // The spinner comes back for the new run (`done` removed it).
    this.text.textContent = '';
    this.status.replaceChildren(this.ring, this.text);
  }

  /** Stops the spinner (the run ended); the chart stays. */
  done(note?: string): void {
    this.ring.remove();
    if (note) this.text.textContent = `${this.text.textContent ?? ''} — ${note}`;
  }

  private ensure(): Chart<'line', Array<{ x: number; y: number }>> {
    if (this.chart) return this.chart;
    this.box.hidden = false;
    const holder = el('div', { class: 'train-chart' });
    const canvas = el('canvas', { id: 'train-chart', 'aria-label': 'training loss per step and validation metric per epoch' });
    holder.append(canvas);
    this.box.replaceChildren(el('h3', {}, 'Training'), this.status, holder);
    const fg = cssVar('--vscode-foreground', '#ccc');
    this.chart = new Chart(canvas, {
      type: 'line',
      data: {
        // The validation metric's dataset (and its axis) is added with the first metric.
        datasets: [{ label: 'loss (per step)', data: [], yAxisID: 'y', borderColor: cssVar('--vscode-charts-blue', '#3794ff'), pointRadius: 0, borderWidth: 1.5 }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        plugins: { legend: { labels: { color: fg } } },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'training step', color: fg }, ticks: { color: fg } },
          y: { title: { display: true, text: 'loss', color: fg }, ticks: { color: fg } },
          y1: { display: 'auto', position: 'right', title: { display: true, text: 'validation metric', color: fg }, ticks: { color: fg }, grid: { drawOnChartArea: false } },
        },
      },
    });
    return this.chart;
  }

  /** Adds a batch of progress events; `stage` names the recipe step that trains. */
  add(batch: TrainProgressDto[], stage?: string): void {
    const chart = this.ensure();
    for (const p of batch) {
      let x = this.base + (p.epoch - 1) * p.steps + p.step;
      // Back in time: a new training run of the same job (prune → retrain: the next prune step).
      if (x < this.lastX) {
        this.base = this.lastX;
        x = this.base + (p.epoch - 1) * p.steps + p.step;
        this.runs++;
      }
      this.lastX = x;
      if (p.phase === 'step') chart.data.datasets[0].data.push({ x, y: p.loss });
      else if (p.metric !== undefined) {
        if (chart.data.datasets.length < 2) chart.data.datasets.push({ label: 'validation metric (per epoch)', data: [], yAxisID: 'y1', borderColor: cssVar('--vscode-charts-green', '#89d185'), pointRadius: 3 });
        chart.data.datasets[1].data.push({ x, y: p.metric });
      }
      const run = this.runs ? ` (training run ${this.runs + 1})` : '';
      const metric = p.metric !== undefined ? ` · validation ${p.metric.toFixed(4)}` : '';
      this.text.textContent = `${stage ? `${stage} · ` : ''}epoch ${p.epoch}/${p.epochs}${run} · step ${p.step}/${p.steps} · loss ${p.loss.toFixed(4)}${metric} · ${Math.round(p.samplesPerSecond).toLocaleString('en-US')} samples/s · ETA ${clock(p.etaSeconds)}`;
    }
    this.box.dataset.points = String(chart.data.datasets[0].data.length);
    this.box.dataset.epochs = String(chart.data.datasets[1]?.data.length ?? 0);
    chart.update('none');
  }
}
