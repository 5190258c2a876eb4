/*
 * The Sluice dashboard page (served as is by GET /dashboard/assets/app.js; no build step).
 *
 * The data comes from GET /dashboard/events, a text/event-stream read with fetch() so that the
 * admin key travels in the Authorization header (an EventSource cannot send headers, and a key in
 * a URL would land in logs). The key is asked once and kept in this tab's sessionStorage.
 *
 * Every snapshot redraws the tables; charts (uPlot, window.uPlot from /dashboard/assets/uplot.js)
 * are kept and given new data, and rebuilt only when their series change. Elements carrying a
 * figure have a data-testid and the raw number in data-value (what the browser test compares with
 * the admin API).
 */
const KEY = 'sluice.adminKey';
const $ = (id) => document.getElementById(id);
const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

// ---- DOM helpers (textContent only: nothing from the server is parsed as HTML) ---------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'testid') e.dataset.testid = v;
    else if (k === 'value') e.dataset.value = String(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** A figure: its text formatted, its raw value in data-value. */
function fig(testid, value, text = fmt(value)) {
  return el('span', { testid, value: value ?? 'null', class: 'num' }, text);
}

function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (typeof x !== 'number') return String(x);
  if (Number.isInteger(x)) return x.toLocaleString('en');
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return x.toFixed(a >= 100 ? 1 : digits);
}

const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–');

function table(head, rows, cls = '') {
  return el('table', { class: cls }, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))), el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

/** A keyed child of `parent` (made once by `make`), so charts inside it survive redraws. */
function keyed(parent, key, make) {
  for (const c of parent.children) if (c.dataset.key === key) return c;
  const c = make();
  c.dataset.key = key;
  parent.append(c);
  return c;
}

/** Removes keyed children not in `keep`, destroying their charts. */
function prune(parent, keep) {
  for (const c of [...parent.children]) {
    if (c.dataset.key !== undefined && !keep.has(c.dataset.key)) {
      for (const h of c.querySelectorAll('[data-chart]')) dropChart(h.dataset.chart);
      c.remove();
    }
  }
}

// ---- charts -----------------------------------------------------------------------------------

const charts = new Map();

function dropChart(id) {
  charts.get(id)?.plot.destroy();
  charts.delete(id);
}

function chartHost(parent, id) {
  return keyed(parent, `chart:${id}`, () => el('div', { class: 'chart', 'data-chart': id }));
}

/** Three charts to a row on a wide screen, one on a narrow one. */
function widthOf(host) {
  const row = host.parentElement?.clientWidth || 900;
  return Math.max(300, Math.min(560, Math.floor((row - 32) / 3)));
}

/** A time series chart: x in seconds, one line per series ({label, values, dash?}). */
/** `range`: the y axis's [min, max] or uPlot's range function; by default from 0 (or below) to the data's maximum. */
function lineChart(parent, id, title, t, series, { yLabel = '', range } = {}) {
  const host = chartHost(parent, id);
  const sig = series.map((s) => s.label).join('|');
  const data = [t, ...series.map((s) => s.values)];
  const have = charts.get(id);
  if (have && have.sig === sig) {
    have.plot.setData(data);
    return;
  }
  dropChart(id);
  const plot = new window.uPlot({
    title, width: widthOf(host), height: 180,
    scales: { x: { time: true }, y: { range: range ?? ((u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, 1e-3) * 1.1]) } },
    axes: [{}, { label: yLabel, size: 56 }],
    series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, dash: s.dash, spanGaps: false }))],
  }, data, host);
  charts.set(id, { plot, sig });
}

/**
 * Points with interval bars (means with confidence intervals, effects with their intervals):
 * x is the item's index, drawn with a uPlot draw hook.
 */
function intervalChart(parent, id, title, items, { zeroLine = false } = {}) {
  const host = chartHost(parent, id);
  const sig = items.map((i) => i.label).join('|');
  const finite = items.flatMap((i) => [i.value, ...i.intervals.flatMap((iv) => (iv.ci ? [iv.ci[0], iv.ci[1]] : []))]).filter((v) => typeof v === 'number' && Number.isFinite(v));
  let lo = finite.length ? Math.min(...finite, zeroLine ? 0 : Infinity) : 0;
  let hi = finite.length ? Math.max(...finite, zeroLine ? 0 : -Infinity) : 1;
  const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
  lo -= pad;
  hi += pad;
  const data = [items.map((_, i) => i), items.map((i) => i.value ?? null)];
  const have = charts.get(id);
  if (have && have.sig === sig) {
    have.state.items = items;
    have.state.range = [lo, hi];
    have.plot.setData(data);
    return;
  }
  dropChart(id);
  const state = { items, range: [lo, hi] };
  const plot = new window.uPlot({
    title, width: widthOf(host), height: 200,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: [-0.5, items.length - 0.5] }, y: { range: () => state.range } },
    axes: [
      { splits: () => state.items.map((_, i) => i), values: (_, splits) => splits.map((s) => state.items[s]?.label ?? ''), grid: { show: false } },
      { size: 64 },
    ],
    series: [{}, { label: 'mean', stroke: PALETTE[0], paths: () => null, points: { show: true, size: 8, fill: PALETTE[0] } }],
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        if (zeroLine) {
          const y0 = u.valToPos(0, 'y', true);
          ctx.strokeStyle = '#9ca3af';
          ctx.setLineDash([4, 4]);
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y0);
          ctx.lineTo(u.bbox.left + u.bbox.width, y0);
          ctx.stroke();
          ctx.setLineDash([]);
        }
        state.items.forEach((item, i) => {
          item.intervals.forEach((iv, k) => {
            if (!iv.ci) return;
            const x = u.valToPos(i + (k - (item.intervals.length - 1) / 2) * 0.12, 'x', true);
            const [a, b] = [u.valToPos(iv.ci[0], 'y', true), u.valToPos(iv.ci[1], 'y', true)];
            ctx.strokeStyle = iv.color;
            ctx.lineWidth = 2 * devicePixelRatio;
            ctx.beginPath();
            ctx.moveTo(x, a);
            ctx.lineTo(x, b);
            for (const y of [a, b]) {
              ctx.moveTo(x - 6 * devicePixelRatio, y);
              ctx.lineTo(x + 6 * devicePixelRatio, y);
            }
            ctx.stroke();
          });
        });
        ctx.restore();
      }],
    },
  }, data, host);
  charts.set(id, { plot, sig, state });
}

// ---- sections ---------------------------------------------------------------------------------

function renderAlerts(a) {
  const root = $('alerts');
  const firing = a.firing.map((x) => [el('span', { class: `sev ${x.severity}` }, x.severity), x.rule, JSON.stringify(x.labels), x.summary, fmt(x.value), when(x.fired_at)]);
  const recent = a.recent.map((x) => [x.state, x.rule, JSON.stringify(x.labels), x.summary, when(x.fired_at), when(x.resolved_at)]);
  root.replaceChildren(
    el('p', {}, 'Firing: ', fig('alerts-firing-count', a.firing.length), '  recent (pending, resolved): ', fig('alerts-recent-count', a.recent.length)),
    firing.length ? table(['severity', 'rule', 'labels', 'summary', 'value', 'fired'], firing, 'firing') : el('p', { class: 'muted' }, 'Nothing firing.'),
    recent.length ? el('details', {}, el('summary', {}, 'Recent'), table(['state', 'rule', 'labels', 'summary', 'fired', 'resolved'], recent)) : '',
  );
}

function renderModel(card, m) {
  const id = m.model;
  const head = keyed(card, 'head', () => el('div'));
  const route = m.route?.route;
  head.replaceChildren(
    el('h3', {}, m.model, ' ', el('span', { class: 'muted' }, `default ${m.default_version ?? '–'}`)),
    el('p', {}, 'Route: ', route ? `${route.assignment} (owner ${m.route.owner}, generation ${m.route.generation})` : 'none: the default version answers'),
    table(['variant', 'version', 'share', ...(m.shares.some((s) => 'rewards' in s) ? ['rewards', 'reward sum'] : [])], m.shares.map((s) => [
      s.variant, s.version, fig(`share-${id}-${s.variant}`, s.share, pct(s.share)),
      ...('rewards' in s ? [fig(`route-rewards-${id}-${s.variant}`, s.rewards), fig(`route-reward-sum-${id}-${s.variant}`, s.reward_sum)] : []),
    ])),
    table(['version', 'req/s', 'error rate', 'p50 ms', 'p95 ms', 'p99 ms', 'requests (window)'], m.versions.map((v) => [
      v.version,
      fig(`rate-${id}-${v.version}`, v.now?.rate),
      fig(`error-rate-${id}-${v.version}`, v.now?.error_rate, pct(v.now?.error_rate)),
      fig(`p50-${id}-${v.version}`, v.now?.p50), fig(`p95-${id}-${v.version}`, v.now?.p95), fig(`p99-${id}-${v.version}`, v.now?.p99),
      fig(`requests-${id}-${v.version}`, v.window?.requests),
    ])),
  );
  const row = keyed(card, 'charts', () => el('div', { class: 'charts' }));
  const withSeries = m.versions.filter((v) => v.series && v.series.t.length > 0);
  if (withSeries.length > 0) {
    // Versions' series share their time points (one point per snapshot for every version).
    // Every version gets a point per snapshot, so series end together; a version served for
    // less time has a shorter one, padded at the start.
    const t = withSeries.reduce((a, v) => (v.series.t.length > a.length ? v.series.t : a), []);
    const aligned = (v, k) => [...Array(t.length - v.series.t.length).fill(null), ...v.series[k]];
    lineChart(row, `${id}:rate`, 'requests / s', t, withSeries.map((v) => ({ label: `v${v.version}`, values: aligned(v, 'rate') })));
    lineChart(row, `${id}:errors`, 'error rate', t, withSeries.map((v) => ({ label: `v${v.version}`, values: aligned(v, 'error_rate') })), { range: (u, min, max) => [0, Math.max(max ?? 0, 0.01) * 1.1] });
    lineChart(row, `${id}:latency`, 'latency (ms)', t, withSeries.flatMap((v) => [
      { label: `v${v.version} p50`, values: aligned(v, 'p50'), dash: [2, 3] },
      { label: `v${v.version} p95`, values: aligned(v, 'p95'), dash: [6, 3] },
      { label: `v${v.version} p99`, values: aligned(v, 'p99') },
    ]), { yLabel: 'ms' });
  }
  const extra = keyed(card, 'extra', () => el('div', { class: 'extra' }));
  extra.replaceChildren(...m.versions.filter((v) => v.bandit).map((v) => el('div', {},
    el('h4', {}, `v${v.version} bandit arms (${v.bandit.kind})`),
    table(['arm', 'share of feedback', 'feedback', 'reward sum', 'mean reward'], v.bandit.arms.map((a) => [
      String(a.arm), bar(a.share, fig(`arm-share-${id}-${v.version}-${a.arm}`, a.share, pct(a.share))), fig(`arm-feedback-${id}-${v.version}-${a.arm}`, a.feedback),
      fig(`arm-reward-${id}-${v.version}-${a.arm}`, a.reward_sum), fmt(a.reward_mean),
    ])),
  )), driftBlock(m));
}

/** A figure with a bar behind it, its width the share (set through the CSSOM: CSP allows that). */
function bar(share, content) {
  const b = el('span', { class: 'bar' });
  b.style.width = `${Math.round(Math.max(0, Math.min(1, share ?? 0)) * 100)}%`;
  return el('span', { class: 'barcell' }, b, content);
}

function driftBlock(m) {
  const d = m.drift;
  if (!d || d.versions.length === 0) return el('p', { class: 'muted' }, 'Drift: no samples yet.');
  return el('div', {}, ...[...d.versions].sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true })).map((v) => {
    const top = [...v.features].sort((a, b) => (b.psi ?? -1) - (a.psi ?? -1)).slice(0, 8);
    return el('div', {},
      el('h4', {}, `v${v.version} drift: `, el('span', { testid: `drift-${m.model}-${v.version}`, value: v.drifted, class: v.drifted ? 'bad' : 'ok' }, v.drifted ? 'drifted' : v.state === 'monitoring' ? 'no drift' : 'collecting reference'),
        el('span', { class: 'muted' }, ` (${v.window_rows} rows in window, reference ${v.reference_rows})`)),
      v.reasons.length ? el('p', { class: 'bad' }, v.reasons.join('; ')) : '',
      top.length ? table(['feature', 'PSI', 'level', 'KS D', 'KS p', 'missing', 'out of range'], top.map((f) => [
        String(f.index), bar(Math.min(1, (f.psi ?? 0) / 0.5), fig(`psi-${m.model}-${v.version}-${f.index}`, f.psi)), f.psi_level ?? '–', fmt(f.ks_d), fmt(f.ks_p), fmt(f.missing), fmt(f.out_of_range),
      ]), 'compact') : '',
    );
  }));
}

function renderModels(models) {
  const root = $('models');
  if (models.length === 0) root.replaceChildren(el('p', { class: 'muted' }, 'No model is served.'));
  else root.querySelector(':scope > p.muted')?.remove();
  for (const m of models) renderModel(keyed(root, m.model, () => el('article', { class: 'card' })), m);
  prune(root, new Set(models.map((m) => m.model)));
}

function renderDeployments(list) {
  const root = $('deployments');
  if (list.length === 0) return root.replaceChildren(el('p', { class: 'muted' }, 'No deployments.'));
  root.replaceChildren(...list.map((d) => {
    const steps = d.spec?.steps;
    const verdict = d.last_verdict;
    return el('article', { class: 'card' },
      el('h3', {}, `#${d.id} ${d.kind} of ${d.model}: v${d.stable} → v${d.candidate} `, el('span', { testid: `deployment-${d.id}-status`, value: d.status, class: `state ${d.status}` }, d.status)),
      el('p', {},
        'step ', fig(`deployment-${d.id}-step`, d.step), steps ? ` of ${steps.length} (${steps.map((s) => `${s}%`).join(' → ')})` : '',
        ', candidate share ', fig(`deployment-${d.id}-share`, d.share, pct(d.share)),
        ', step since ', when(d.step_started_at)),
      verdict ? el('div', {}, el('p', {}, 'last verdict: ', el('span', { testid: `deployment-${d.id}-verdict`, value: verdict.verdict, class: verdict.verdict === 'unhealthy' ? 'bad' : verdict.verdict === 'healthy' ? 'ok' : 'muted' }, verdict.verdict), verdict.reason ? ` (${verdict.reason})` : '',
          verdict.waiting ? el('span', { testid: `deployment-${d.id}-waiting`, value: verdict.waiting }, `; waiting: ${verdict.waiting}`) : ''),
        table(['check', 'state', 'detail'], (verdict.checks ?? []).map((c) => [c.name, el('span', { testid: `deployment-${d.id}-check-${c.name}`, value: c.state }, c.state), c.detail]), 'compact')) : el('p', { class: 'muted' }, 'not judged yet'),
      d.outcome ? el('p', {}, 'outcome: ', d.outcome.reason ?? JSON.stringify(d.outcome)) : '',
      el('details', {}, el('summary', {}, `history (${d.events?.length ?? 0} events)`),
        table(['at', 'action', 'from', 'to', 'step', 'share', 'actor', 'reason'], (d.events ?? []).map((e) => [when(e.at), e.action, e.from_status ?? '–', e.to_status ?? '–', fmt(e.step), pct(e.share), e.actor, e.reason ?? '']), 'compact')),
    );
  }));
}

function renderExperiment(card, e) {
  const r = e.results;
  const head = keyed(card, 'head', () => el('div'));
  const decision = r?.decision ?? e.decision;
  head.replaceChildren(
    el('h3', {}, `${e.name} on ${e.model} `, el('span', { testid: `experiment-${e.name}-status`, value: e.status, class: `state ${e.status}` }, e.status)),
    el('p', {}, 'decision: ', el('span', { testid: `experiment-${e.name}-decision`, value: decision?.action ?? '' }, decision ? `${decision.action}${decision.variant ? ` (${decision.variant})` : ''}: ${decision.reason}` : '–'),
      r ? ` · ${r.elapsed_s} s · α = ${r.alpha}` : ''),
    r ? table(['variant', 'version', 'weight', 'units', 'with feedback'], r.variants.map((v) => [
      v.control ? `${v.name} (control)` : v.name, v.version, pct(v.weight), fig(`units-${e.name}-${v.name}`, v.units), fmt(v.with_feedback),
    ])) : '',
    r?.srm ? el('p', { class: r.srm.mismatch ? 'bad' : 'muted' }, `sample ratio check: p = ${fmt(r.srm.p)}${r.srm.mismatch ? ' (mismatch)' : ''}`) : '',
  );
  const metrics = keyed(card, 'metrics', () => el('div'));
  if (!r) return metrics.replaceChildren(el('p', { class: 'muted' }, 'no results'));
  const keep = new Set();
  for (const m of r.metrics) {
    const key = `metric:${m.name}`;
    keep.add(key);
    const box = keyed(metrics, key, () => el('div', { class: 'metric' }));
    const info = keyed(box, 'info', () => el('div'));
    info.replaceChildren(
      el('h4', {}, `${m.name} (${m.role}, ${m.kind}, ${m.test})`),
      table(['variant', 'n', 'mean', `${Math.round((1 - r.alpha) * 100)}% CI`], m.variants.map((v) => [
        v.name, fmt(v.n), fig(`mean-${e.name}-${m.name}-${v.name}`, v.mean), v.ci ? `[${fmt(v.ci[0])}, ${fmt(v.ci[1])}]` : '–',
      ]), 'compact'),
      table(['treatment', 'diff', 'CI', 'always-valid CI', 'p', 'seq p', 'lift'], m.treatments.map((t) => [
        t.variant, fig(`diff-${e.name}-${m.name}-${t.variant}`, t.diff), iv(t.ci), iv(t.seq_ci),
        fig(`p-${e.name}-${m.name}-${t.variant}`, t.p), fig(`seqp-${e.name}-${m.name}-${t.variant}`, t.seq_p), pct(t.lift),
      ]), 'compact'),
    );
    const row = keyed(box, 'charts', () => el('div', { class: 'charts' }));
    intervalChart(row, `${e.name}:${m.name}:means`, `${m.name}: mean per variant, with CI`, m.variants.map((v) => ({
      label: v.name, value: v.mean, intervals: [{ ci: v.ci ?? null, color: PALETTE[0] }],
    })));
    intervalChart(row, `${e.name}:${m.name}:effects`, `${m.name}: effect vs control (CI, always-valid CI)`, m.treatments.map((t) => ({
      label: t.variant, value: t.diff, intervals: [{ ci: t.ci, color: PALETTE[0] }, { ci: t.seq_ci, color: PALETTE[1] }],
    })), { zeroLine: true });
    const looks = e.looks;
    if (looks && looks.t.length > 0) {
      const series = m.treatments.flatMap((t) => {
        const k = `${m.name}/${t.variant}`;
        return looks.seq_p[k] ? [{ label: `${t.variant} seq p`, values: looks.seq_p[k] }, { label: `${t.variant} p`, values: looks.p[k], dash: [4, 4] }] : [];
      });
      if (series.length) lineChart(row, `${e.name}:${m.name}:pvalues`, `${m.name}: p-values over looks (α = ${r.alpha})`, looks.t, series, { range: [0, 1] });
    }
  }
  prune(metrics, keep);
}

const iv = (ci) => (ci ? `[${fmt(ci[0])}, ${fmt(ci[1])}]` : '–');

function renderExperiments(list) {
  const root = $('experiments');
  if (list.length === 0) root.replaceChildren(el('p', { class: 'muted' }, 'No experiments.'));
  else root.querySelector(':scope > p.muted')?.remove();
  for (const e of list) renderExperiment(keyed(root, e.name, () => el('article', { class: 'card' })), e);
  prune(root, new Set(list.map((e) => e.name)));
}

function render(s) {
  $('updated').textContent = `updated ${new Date(s.at).toLocaleTimeString()}`;
  $('updated').dataset.value = String(s.at);
  const problems = $('problems');
  problems.hidden = s.problems.length === 0;
  problems.textContent = s.problems.map((p) => `${p.section}: ${p.code} ${p.message}`).join(' · ');
  renderAlerts(s.alerts);
  renderModels(s.models);
  renderDeployments(s.deployments);
  renderExperiments(s.experiments);
}

// ---- the stream -------------------------------------------------------------------------------

function setStatus(text, cls) {
  $('status').textContent = text;
  $('status').className = `status ${cls}`;
  $('status').dataset.value = cls;
}

/** Parses text/event-stream from a fetch body; calls onEvent(type, data) per event. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let type = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue; // a comment: the heartbeat
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = v;
        else if (field === 'data') data.push(v);
      }
      if (data.length) onEvent(type, data.join('\n'));
    }
  }
}

async function connect(key) {
  setStatus('connecting', 'connecting');
  let res;
  try {
    res = await fetch('/dashboard/events', { headers: { authorization: `Bearer ${key}` }, cache: 'no-store' });
  } catch {
    return retry(key, 'server unreachable');
  }
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => ({}));
    sessionStorage.removeItem(KEY);
    return askKey(body.error ?? `refused (${res.status})`);
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    return retry(key, body.code ?? `HTTP ${res.status}`, res.status === 503 ? 5000 : 2000);
  }
  setStatus('live', 'live');
  $('main').hidden = false;
  $('forget').hidden = false;
  try {
    await readEvents(res.body, (type, data) => {
      if (type === 'problem') setStatus(`problem: ${JSON.parse(data).code}`, 'problem');
      else {
        setStatus('live', 'live');
        render(JSON.parse(data));
      }
    });
  } catch {
    // the connection broke: reconnect below
  }
  retry(key, 'disconnected');
}

function retry(key, why, ms = 2000) {
  setStatus(`${why}; retrying`, 'retrying');
  setTimeout(() => connect(key), ms);
}

function askKey(error = '') {
  $('main').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = error;
  setStatus('key needed', 'login');
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const key = $('key').value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $('key').value = '';
  $('login').hidden = true;
  connect(key);
});

$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  location.reload();
});

const stored = sessionStorage.getItem(KEY);
if (stored) connect(stored);
else askKey();
