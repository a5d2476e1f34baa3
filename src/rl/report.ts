/**
 * @module rl/report
 * `report.html` for a run folder: inline-SVG line plots of the metrics.jsonl curves, the config
 * table and a sample of completions. Self-contained (no scripts, external CSS or fonts), so it
 * opens from disk without a server. `svgLinePlot` is reusable (the ablation plots reward per arm).
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.ts';
import { join } from 'node:path';
import { METRIC, readMetrics } from './metrics.ts';

export interface Series {
  name: string;
  /** [x, y] pairs; non-finite y values break the line. */
  points: [number, number][];
}

export interface PlotOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
}

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

/** Escapes text for HTML / SVG content and attribute values. */
export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** About 5 "nice" tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  // a flat series (or one that differs only by rounding, e.g. a smoothed constant): one tick. A
  // span below ~1e-9 of the values' size would need tick indices past 2^53, where i++ stops counting.
  if (!(hi > lo) || hi - lo <= 1e-9 * Math.max(Math.abs(lo), Math.abs(hi))) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let i = first; i * step <= hi + step * 1e-9 && out.length <= 4 * count; i++)
    out.push(Number((i * step).toPrecision(12)) + 0); // + 0: no -0
  return out;
}

function fmtTick(v: number, digits = 1): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(digits);
  return String(Number(v.toPrecision(digits + 3)));
}

/** Tick labels with just enough digits that no two are the same (1.1e-4, 1.1e-4 → 1.05e-4, 1.10e-4). */
export function tickLabels(ticks: readonly number[]): string[] {
  for (let d = 1; d < 8; d++) {
    const labels = ticks.map((t) => fmtTick(t, d));
    if (new Set(labels).size === labels.length) return labels;
  }
  return ticks.map((t) => String(t));
}

/** TensorBoard's smoothing: a debiased exponential moving average with weight `w` (0 = none). */
export function smooth(points: readonly [number, number][], w: number): [number, number][] {
  let last = 0;
  let n = 0;
  return points.map(([x, y]) => {
    if (!Number.isFinite(y)) return [x, y];
    last = last * w + (1 - w) * y;
    n++;
    return [x, last / (1 - w ** n)];
  });
}

/** An SVG line plot (axes, ticks, one polyline per series, legend when several). */
export function svgLinePlot(series: readonly Series[], opts: PlotOptions = {}): string {
  const W = opts.width ?? 420,
    H = opts.height ?? 260;
  const pts = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  // y range and ticks first: the left margin fits the longest tick label beside the axis name
  let [y0, y1] = pts.length ? [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))] : [0, 1];
  // a constant series (up to rounding, e.g. a smoothed constant) gets a span around its value,
  // never a range of 1e-17 that would magnify the rounding into spikes
  if (y1 - y0 <= 1e-9 * Math.max(Math.abs(y0), Math.abs(y1))) {
    const c = (y0 + y1) / 2;
    const d = Math.abs(c) * 0.1 || 1;
    [y0, y1] = [c - d, c + d];
  }
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const yt = niceTicks(y0, y1);
  const yl = tickLabels(yt);
  const labelW = Math.max(...yl.map((l) => l.length), 1) * 6.5;
  // several series: the legend goes in rows under the plot, never over the data, as many per row
  // (up to 3) as the longest name fits across the figure (11 px sans-serif ≈ 6.2 px a character)
  const itemW = 28 + Math.max(0, ...series.map((s) => s.name.length)) * 6.2;
  const perRow = Math.max(1, Math.min(3, Math.floor((W - 16) / itemW)));
  const legendRows = series.length > 1 ? Math.ceil(series.length / perRow) : 0;
  const H2 = H + legendRows * 14;
  const m = {
    l: Math.max(50, Math.ceil(labelW) + 28),
    r: 12,
    t: opts.title ? 26 : 10,
    b: (opts.xLabel ? 40 : 26) + legendRows * 14,
  };
  const pw = W - m.l - m.r,
    ph = H - m.t - m.b;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H2}" viewBox="0 0 ${W} ${H2}" font-family="sans-serif" font-size="11">`,
  ];
  if (opts.title)
    out.push(
      `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(opts.title)}</text>`,
    );
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  if (pts.length === 0) {
    out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph / 2}" text-anchor="middle" fill="#888">no data</text></svg>`);
    return out.join('');
  }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const r = (v: number) => v.toFixed(1);
  yt.forEach((t, i) => {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${r(sy(t))}" y2="${r(sy(t))}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 4}" y="${r(sy(t) + 4)}" text-anchor="end">${yl[i]}</text>`);
  });
  const xt = niceTicks(x0, x1);
  const xl = tickLabels(xt);
  xt.forEach((t, i) => out.push(`<text x="${r(sx(t))}" y="${m.t + ph + 14}" text-anchor="middle">${xl[i]}</text>`));
  if (opts.xLabel)
    out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 32}" text-anchor="middle">${escapeHtml(opts.xLabel)}</text>`);
  if (opts.yLabel)
    out.push(
      `<text transform="translate(12 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(opts.yLabel)}</text>`,
    );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    // split at non-finite values so gaps are shown, not bridged
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1)
        out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${run.join(' ')}"/>`);
      else if (run.length === 1) {
        const [cx, cy] = run[0]!.split(',');
        out.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${color}"/>`);
      }
      run = [];
    };
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && Number.isFinite(y)) run.push(`${r(sx(x))},${r(sy(y))}`);
      else flush();
    }
    flush();
    if (series.length > 1) {
      const ly = H2 - legendRows * 14 + Math.floor(i / perRow) * 14 + 4;
      const lx = 8 + (i % perRow) * Math.floor((W - 16) / perRow);
      out.push(
        `<line x1="${lx}" x2="${lx + 16}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/><text x="${lx + 20}" y="${ly}">${escapeHtml(s.name)}</text>`,
      );
    }
  });
  out.push('</svg>');
  return out.join('');
}

/** Curves shown in the report, in order (absent ones are skipped). */
export const REPORT_METRICS: readonly string[] = [
  METRIC.reward,
  METRIC.rewardStd,
  METRIC.loss,
  METRIC.gradNorm,
  METRIC.learningRate,
  METRIC.meanLength,
  METRIC.entropy,
  METRIC.inverseAlpha,
  METRIC.fracRewardZeroStd,
  METRIC.kl,
  METRIC.clipRatioRegionMean,
  METRIC.clippedRatio,
  METRIC.resampleRounds,
  METRIC.tokensPerSGeneration,
  METRIC.tokensPerSTraining,
  METRIC.timeS,
];

export interface ReportOptions {
  /** Resolved config to tabulate; default: `<runDir>/trainer_config.json` when present. */
  config?: Record<string, unknown>;
  title?: string;
  /** Completions shown in the table (the last N lines of completions.jsonl; default 500). */
  maxCompletions?: number;
  /** TensorBoard-style smoothing weight of the curves (default 0.6; 0 = raw only). */
  smoothing?: number;
}

function readJsonl(path: string, lastN: number): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  const rows: Record<string, unknown>[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line));
    } catch {
      /* a torn last line from a crash */
    }
  }
  return rows.slice(-lastN);
}

function flatten(o: unknown, prefix = '', out: [string, string][] = []): [string, string][] {
  if (o !== null && typeof o === 'object' && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.push([prefix, JSON.stringify(o) ?? 'undefined']);
  return out;
}

/** Builds the report HTML for a run folder (no writing). */
export function renderReport(runDir: string, opts: ReportOptions = {}): string {
  const rows = readMetrics(join(runDir, 'metrics.jsonl'));
  const cfgPath = join(runDir, 'trainer_config.json');
  const config =
    opts.config ??
    (existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>) : undefined);
  const comps = readJsonl(join(runDir, 'completions.jsonl'), opts.maxCompletions ?? 500);
  const evals = readJsonl(join(runDir, 'eval.jsonl'), Infinity);
  const w = opts.smoothing ?? 0.6;
  const title = opts.title ?? `gpg-rl run: ${runDir}`;
  const keys = new Set(rows.flatMap((r) => Object.keys(r)));
  const rewardKeys = [...keys].filter((k) => /^rewards\/.+\/mean$/.test(k));
  const plots: string[] = [];
  const curve = (k: string): [number, number][] =>
    rows.map((r, i) => [Number(r.step ?? i + 1), r[k] === null || r[k] === undefined ? NaN : Number(r[k])]);
  // raw and smoothed (when there are enough points for smoothing to mean something)
  const withSmooth = (name: string, pts: [number, number][]): Series[] =>
    w > 0 && pts.length >= 10
      ? [
          { name: `${name} (raw)`, points: pts },
          { name: `${name} (smoothed ${w})`, points: smooth(pts, w) },
        ]
      : [{ name, points: pts }];
  for (const k of REPORT_METRICS)
    if (keys.has(k)) plots.push(svgLinePlot(withSmooth(k, curve(k)), { title: k, xLabel: 'step', yLabel: k }));
  if (evals.length) {
    const benches = [...new Set(evals.flatMap((e) => Object.keys((e.benchmarks as object) ?? {})))];
    const pass1 = (e: Record<string, unknown>, b: string | null) =>
      Number(
        ((b === null ? e.average : (e.benchmarks as Record<string, unknown>)[b]) as { pass1?: number } | undefined)
          ?.pass1 ?? NaN,
      );
    plots.unshift(
      svgLinePlot(
        [
          ...benches.map((b) => ({
            name: b,
            points: evals.map((e) => [Number(e.step), pass1(e, b)] as [number, number]),
          })),
          { name: 'average', points: evals.map((e) => [Number(e.step), pass1(e, null)] as [number, number]) },
        ],
        { title: 'eval pass@1 (eval_steps)', xLabel: 'step', yLabel: 'pass@1' },
      ),
    );
  }
  if (rewardKeys.length)
    plots.splice(
      1,
      0,
      svgLinePlot(
        rewardKeys.map((k) => ({ name: k.slice(8, -5), points: curve(k) })),
        { title: 'rewards per function (mean)', xLabel: 'step', yLabel: 'reward' },
      ),
    );
  const last = rows[rows.length - 1];
  const summary = last
    ? `${rows.length} steps logged; last step ${last.step}: reward ${last.reward}, loss ${last.loss}`
    : 'no metrics logged yet';
  const cfgTable = config
    ? `<table>${flatten(config)
        .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td><code>${escapeHtml(v)}</code></td></tr>`)
        .join('')}</table>`
    : '<p>(no trainer_config.json in the run folder)</p>';
  // every logged completion across steps, newest first: one row each, filtered by the search box
  // (every word must occur in the row's text; `#q=words` in the address sets it, so a link can)
  const fnNames = [...new Set(comps.flatMap((c) => Object.keys((c.rewards as object) ?? {})))];
  const num = (v: unknown) => (typeof v === 'number' ? String(Number(v.toPrecision(4))) : '–');
  const compHtml = comps.length
    ? `<p>${comps.length} completions (the last ${opts.maxCompletions ?? 500} of completions.jsonl), newest first.</p><p><input id="q" type="search" size="50" placeholder="search step, prompt, completion, gold answer…"> <span id="qn"></span></p><table class="comps" id="comps"><tr><th>step</th><th>prompt</th><th>completion</th><th>gold answer</th>${fnNames.map((n) => `<th>${escapeHtml(n)}</th>`).join('')}<th>reward</th><th>advantage</th><th>ended</th></tr>${[
        ...comps,
      ]
        .reverse()
        .map(
          (c) =>
            `<tr><td>${escapeHtml(String(c.step ?? '?'))}</td><td><pre>${escapeHtml(String(c.prompt ?? ''))}</pre></td><td><pre class="c">${escapeHtml(String(c.completion ?? ''))}</pre></td><td>${escapeHtml(String(c.answer ?? '–'))}</td>${fnNames.map((n) => `<td>${num((c.rewards as Record<string, unknown> | undefined)?.[n])}</td>`).join('')}<td>${num(c.reward)}</td><td>${num(c.advantage)}</td><td>${c.finished === false ? 'cut' : 'eos'}</td></tr>`,
        )
        .join('')}</table>`
    : '<p>(no completions.jsonl)</p>';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid svg{border:1px solid #ddd;background:#fff}
table{border-collapse:collapse;font-size:13px}td{border:1px solid #ddd;padding:2px 8px;vertical-align:top}
pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;margin:4px 0}pre.c{background:#eef6ee}
table.comps pre{max-width:36em;max-height:12em;overflow:auto}th{background:#f0f0f0;border:1px solid #ddd;padding:2px 8px}
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(summary)}</p>
<h2>Curves</h2><div class="grid">${plots.join('\n') || '<p>(no metrics.jsonl)</p>'}</div>
<h2>Config</h2>${cfgTable}
<h2>Completions</h2>${compHtml}
<script>${SEARCH_SCRIPT}</script>
</body></html>
`;
}

/** The completions search: hides rows lacking any word of the query (case-insensitive); no network, no library. */
const SEARCH_SCRIPT = `(function(){var q=document.getElementById('q'),t=document.getElementById('comps'),n=document.getElementById('qn');if(!q||!t)return;
var rows=[].slice.call(t.rows,1);function run(){var w=q.value.toLowerCase().split(/\\s+/).filter(Boolean),k=0;
rows.forEach(function(r){var s=r.textContent.toLowerCase(),ok=w.every(function(x){return s.indexOf(x)>=0});r.style.display=ok?'':'none';if(ok)k++});
n.textContent=w.length?k+' of '+rows.length+' shown':'';}
var h=/[#&]q=([^&]*)/.exec(location.hash);if(h)q.value=decodeURIComponent(h[1].replace(/\\+/g,' '));q.addEventListener('input',run);run();})();`;

/** Writes `<runDir>/report.html` atomically (temp file + rename); returns its path. */
export function writeReport(runDir: string, opts: ReportOptions = {}): string {
  const html = renderReport(runDir, opts);
  const path = join(runDir, 'report.html');
  writeFileAtomic(path, html);
  return path;
}
