/**
 * The page: starts the training worker, draws the live reward plot (GPG steps) and the SFT loss,
 * and keeps what it received in `window.gpgRl` (the browser test reads it).
 */
/// <reference lib="dom" />
import type { BrowserDemoOptions, DemoEvent, WarmStartFiles } from './demo-loop.ts';

type WorkerEvent =
  | DemoEvent
  | { t: 'ready' }
  | { t: 'adapter'; adapter: { vendor: string; architecture: string; description: string; features: string[] } }
  | { t: 'error'; message: string };

const state = {
  status: 'idle' as 'idle' | 'starting' | 'warm start' | 'training' | 'done' | 'error',
  adapter: null as unknown,
  sft: [] as Array<{ step: number; loss: number }>,
  steps: [] as Array<Extract<DemoEvent, { t: 'step' }>>,
  heldout: [] as Array<Extract<DemoEvent, { t: 'heldout' }>>,
  /** Times the reward plot was redrawn with new points. */
  rewardDraws: 0,
  error: null as string | null,
  done: null as Extract<DemoEvent, { t: 'done' }> | null,
};
(window as unknown as { gpgRl: typeof state }).gpgRl = state;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const logEl = $('log');
const statusEl = $('status');
function log(line: string) {
  logEl.textContent += line + '\n';
  logEl.scrollTop = logEl.scrollHeight;
}
function setStatus(s: typeof state.status, text: string) {
  state.status = s;
  statusEl.textContent = text;
}

function plot(
  canvas: HTMLCanvasElement,
  xs: number[],
  ys: number[],
  o: { yMin?: number; yMax?: number; color: string; band?: number[]; label: string },
) {
  const ctx = canvas.getContext('2d')!;
  const W = canvas.width;
  const H = canvas.height;
  const L = 44,
    R = 10,
    T = 10,
    B = 24;
  ctx.clearRect(0, 0, W, H);
  ctx.font = '11px sans-serif';
  ctx.fillStyle = '#666';
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  if (xs.length === 0) return;
  const finite = ys.filter(Number.isFinite);
  const y0 = o.yMin ?? Math.min(...finite);
  const y1 = o.yMax ?? Math.max(...finite);
  const span = y1 - y0 || 1;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => T + (1 - (y - y0) / span) * (H - T - B);
  for (let k = 0; k <= 4; k++) {
    const y = y0 + (span * k) / 4;
    ctx.fillText(y.toFixed(2), 4, py(y) + 4);
  }
  ctx.fillText(String(x0), L, H - 8);
  ctx.fillText(String(x1), W - R - 24, H - 8);
  ctx.fillText(o.label, L + 6, T + 14);
  if (o.band) {
    ctx.fillStyle = o.color + '33';
    ctx.beginPath();
    xs.forEach((x, i) => ctx.lineTo(px(x), py(Math.min(y1, ys[i]! + o.band![i]!))));
    for (let i = xs.length - 1; i >= 0; i--) ctx.lineTo(px(xs[i]!), py(Math.max(y0, ys[i]! - o.band![i]!)));
    ctx.fill();
  }
  ctx.strokeStyle = o.color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  xs.forEach((x, i) => (i ? ctx.lineTo(px(x), py(ys[i]!)) : ctx.moveTo(px(x), py(ys[i]!))));
  ctx.stroke();
  ctx.fillStyle = o.color;
  xs.forEach((x, i) => ctx.fillRect(px(x) - 2, py(ys[i]!) - 2, 4, 4));
}

function drawReward() {
  const s = state.steps;
  plot(
    $('reward') as HTMLCanvasElement,
    s.map((r) => r.step),
    s.map((r) => (Number.isFinite(r.reward) ? r.reward : 0)),
    {
      yMin: 0,
      yMax: 1,
      color: '#1f77b4',
      band: s.map((r) => (Number.isFinite(r.rewardStd) ? r.rewardStd : 0)),
      label: 'reward',
    },
  );
  state.rewardDraws++;
}
function drawSft() {
  const s = state.sft;
  plot(
    $('sft') as HTMLCanvasElement,
    s.map((r) => r.step),
    s.map((r) => r.loss),
    { color: '#d62728', label: 'SFT loss', yMin: 0 },
  );
}

/** The folder picked in the form (a warm start: config.json, model.safetensors, tokenizer files), read into memory. */
async function pickedFolder(): Promise<WarmStartFiles | undefined> {
  const files = [...(($('folder') as HTMLInputElement).files ?? [])];
  if (files.length === 0) return undefined;
  const byName = new Map(files.map((f) => [f.name, f]));
  const need = (n: string) => {
    const f = byName.get(n);
    if (!f) throw new Error(`the chosen folder has no ${n}`);
    return f;
  };
  const json = async (n: string) => JSON.parse(await need(n).text());
  const gen = byName.get('generation_config.json');
  return {
    source: (files[0] as File & { webkitRelativePath?: string }).webkitRelativePath?.split('/')[0] || 'folder',
    config: await json('config.json'),
    generation: gen ? JSON.parse(await gen.text()) : undefined,
    tokenizer: await json('tokenizer.json'),
    tokenizerConfig: await json('tokenizer_config.json'),
    safetensors: new Uint8Array(await need('model.safetensors').arrayBuffer()),
  };
}

async function options(): Promise<Partial<BrowserDemoOptions> & { warmstartUrl?: string }> {
  const form = new FormData($('opts') as HTMLFormElement);
  const out: Record<string, unknown> = {};
  for (const [k, v] of form) if (typeof v === 'string') out[k] = Number(v);
  // ?sftSteps=20&rlSteps=3… overrides (the browser test uses them); ?warmstart=URL of a warm-start folder
  for (const [k, v] of new URLSearchParams(location.search)) {
    if (k === 'warmstart') out.warmstartUrl = v;
    else if (k !== 'autostart') out[k] = Number(v);
  }
  const picked = await pickedFolder();
  if (picked) out.warmStart = picked;
  return out as Partial<BrowserDemoOptions> & { warmstartUrl?: string };
}

function start() {
  ($('start') as HTMLButtonElement).disabled = true;
  setStatus('starting', 'starting the WebGPU worker…');
  const w = new Worker(new URL('./train-worker.js', import.meta.url), { type: 'module', name: 'gpg-rl-train' });
  w.addEventListener('error', (e) => {
    state.error = e.message || 'the training worker failed to load';
    setStatus('error', `error: ${state.error}`);
    log(`error: ${state.error}`);
  });
  w.addEventListener('message', (ev: MessageEvent<WorkerEvent>) => {
    const e = ev.data;
    switch (e.t) {
      case 'ready':
        options().then(
          (o) => w.postMessage({ t: 'start', options: o }),
          (err: Error) => {
            state.error = err.message;
            setStatus('error', `error: ${err.message}`);
          },
        );
        return;
      case 'adapter': {
        state.adapter = e.adapter;
        const a = e.adapter;
        log(
          `WebGPU adapter: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ')}; features ${a.features.join(', ') || 'none'}`,
        );
        setStatus('warm start', 'warm start (SFT)…');
        return;
      }
      case 'log':
        log(e.line);
        return;
      case 'sft':
        state.sft.push({ step: e.step, loss: e.loss });
        if (e.step % 5 === 0 || e.step === 1) drawSft();
        if (e.step % 25 === 0) log(`SFT step ${e.step}: loss ${e.loss.toFixed(4)}`);
        return;
      case 'heldout':
        state.heldout.push(e);
        log(
          `held-out accuracy (${e.phase}${e.phase === 'warm start' ? `, step ${e.step}` : ''}): ${(e.accuracy * 100).toFixed(1)}% of ${e.total} (greedy)`,
        );
        return;
      case 'step':
        state.steps.push(e);
        drawReward();
        setStatus('training', `GPG step ${e.step}: reward ${e.reward.toFixed(3)}`);
        log(
          `GPG step ${e.step}: reward ${e.reward.toFixed(3)} ± ${e.rewardStd.toFixed(3)}, loss ${e.loss.toFixed(4)}, grad norm ${e.gradNorm.toFixed(3)}${e.skipped ? ' (skipped: no group with distinct rewards)' : ''}, ${e.seconds.toFixed(1)} s` +
            `\n    ${JSON.stringify(e.sample.prompt)} → ${JSON.stringify(e.sample.completion)} (reward ${e.sample.reward})`,
        );
        return;
      case 'done':
        state.done = e;
        setStatus(
          'done',
          `done in ${e.seconds.toFixed(0)} s: held-out accuracy ${(e.before * 100).toFixed(1)}% → ${(e.after * 100).toFixed(1)}%`,
        );
        log(statusEl.textContent!);
        return;
      case 'error':
        state.error = e.message;
        setStatus('error', `error: ${e.message}`);
        log(`error: ${e.message}`);
        return;
    }
  });
}

drawReward();
state.rewardDraws = 0;
drawSft();
($('opts') as HTMLFormElement).addEventListener('submit', (e) => {
  e.preventDefault();
  start();
});
if (new URLSearchParams(location.search).has('autostart')) start();
