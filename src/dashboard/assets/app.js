// The leasehold dashboard page. Plain browser JavaScript, served as a file (the Content-Security-
// Policy allows no inline script). Every value that comes from an item is put in the page as text
// (textContent, setAttribute), never as HTML, so a key or error holding markup shows as written.
'use strict';
(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const state = { config: null, token: '', view: null, timer: 0, route: '' };

  /** Builds an element; `attrs` keys starting with `on` are listeners, `text` is textContent. */
  function build(node, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'text') node.textContent = String(v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false) node.append(kid instanceof Node ? kid : String(kid));
    return node;
  }
  const el = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
  const sv = (tag, attrs, ...kids) => build(document.createElementNS(SVG, tag), attrs, kids);
  const num = (n) => Number(n || 0).toLocaleString('en-US');
  const enc = encodeURIComponent;

  // ---- time -------------------------------------------------------------------------------
  function ago(iso) {
    if (!iso) return '';
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    const a = Math.abs(s);
    const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
    return s >= 0 ? `${text} ago` : `in ${text}`;
  }
  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    const today = d.toDateString() === new Date().toDateString();
    return today ? d.toLocaleTimeString() : d.toLocaleString();
  }
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

  // ---- talking to the server --------------------------------------------------------------
  async function api(path, body) {
    const init = { headers: { accept: 'application/json' }, cache: 'no-store' };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['content-type'] = 'application/json';
      if (state.token) init.headers['x-leasehold-token'] = state.token;
      init.body = JSON.stringify(body);
    }
    const res = await fetch(`api/${path}`, init);
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const error = new Error((data && data.error) || `HTTP ${res.status}`);
      error.status = res.status;
      throw error;
    }
    return data;
  }

  let noticeTimer = 0;
  function notice(text, kind) {
    const box = $('notice');
    box.textContent = text;
    box.className = `notice ${kind || 'ok'}`;
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (box.hidden = true), kind === 'error' ? 12000 : 6000);
  }
  function refused(error) {
    const hint = error.status === 401 ? ' Set the token with the Token button (top right).' : '';
    notice(`Refused: ${error.message}${hint}`, 'error');
    if (error.status === 401) $('token-button').classList.add('attention');
  }

  // ---- dialogs ----------------------------------------------------------------------------
  /** Opens the confirmation dialog; resolves to true when OK was chosen. */
  function confirmDialog({ title, text, ok, extra, danger = true }) {
    const dialog = $('dialog');
    $('dialog-title').textContent = title;
    $('dialog-text').textContent = text;
    $('dialog-extra').replaceChildren(...(extra ? [extra] : []));
    $('dialog-ok').textContent = ok;
    $('dialog-ok').className = danger ? 'danger' : 'primary';
    dialog.returnValue = '';
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
  }

  async function askToken() {
    const input = el('input', { type: 'password', id: 'token-input', autocomplete: 'off', placeholder: 'token', 'aria-label': 'Token' });
    input.value = state.token;
    const ok = await confirmDialog({
      title: 'Token',
      text: 'Retry, cancel and purge need the dashboard token (printed with its URL when it started). It is kept for this tab only.',
      ok: 'Save',
      extra: input,
      danger: false,
    });
    if (!ok) return;
    state.token = input.value.trim();
    sessionStorage.setItem('leasehold-token', state.token);
    showTokenButton();
  }
  function showTokenButton() {
    const button = $('token-button');
    button.hidden = state.config.readOnly;
    button.textContent = state.token ? 'Token ✓' : 'Set token';
    button.classList.toggle('attention', !state.token);
  }

  // ---- the definition ---------------------------------------------------------------------
  function kindsOf(def) {
    const kinds = new Map(def.statuses.map((s) => [s, { from: [], active: [], done: [], failed: [] }]));
    for (const st of def.stages) {
      for (const s of st.from) kinds.get(s).from.push(st);
      kinds.get(st.active).active.push(st);
      for (const s of st.done) kinds.get(s).done.push(st);
      kinds.get(st.failed).failed.push(st);
    }
    return kinds;
  }
  const kindClass = (k) => (k.active.length ? 'active' : k.failed.length && !k.from.length && !k.done.length ? 'failed' : k.from.length ? 'waiting' : k.done.length ? 'done' : 'other');

  // ---- the state diagram ------------------------------------------------------------------
  const NW = 172;
  const NH = 72;
  const GX = 86;
  const GY = 28;

  /** Columns by longest path from the initial status; statuses only failed into sit on a lane below. */
  function layout(def, kinds) {
    const edges = [];
    for (const st of def.stages) {
      for (const f of st.from) edges.push({ a: f, b: st.active, kind: 'claim', stage: st });
      for (const d of st.done) edges.push({ a: st.active, b: d, kind: 'done', stage: st });
      edges.push({ a: st.active, b: st.failed, kind: 'fail', stage: st });
    }
    const lane = new Set(def.statuses.filter((s) => kindClass(kinds.get(s)) === 'failed'));
    const out = new Map(def.statuses.map((s) => [s, []]));
    for (const e of edges) if (!lane.has(e.b)) out.get(e.a).push(e.b);
    const mark = new Map();
    const order = [];
    const back = new Set();
    const visit = (s) => {
      mark.set(s, 1);
      for (const t of out.get(s)) {
        if (mark.get(t) === 1) back.add(`${s}\n${t}`);
        else if (!mark.get(t)) visit(t);
      }
      mark.set(s, 2);
      order.push(s);
    };
    for (const s of [def.initial, ...def.statuses]) if (!mark.get(s) && !lane.has(s)) visit(s);
    const rank = new Map(def.statuses.map((s) => [s, 0]));
    for (const s of order.reverse()) for (const t of out.get(s)) if (!back.has(`${s}\n${t}`)) rank.set(t, Math.max(rank.get(t), rank.get(s) + 1));
    const top = back.size ? 44 : 14;
    const cols = new Map();
    for (const s of def.statuses) if (!lane.has(s)) cols.set(rank.get(s), [...(cols.get(rank.get(s)) || []), s]);
    const rows = Math.max(1, ...[...cols.values()].map((c) => c.length));
    const pos = new Map();
    for (const [r, list] of cols) list.forEach((s, i) => pos.set(s, { x: 14 + r * (NW + GX), y: top + (i + (rows - list.length) / 2) * (NH + GY) }));
    const laneY = top + rows * (NH + GY) + 18;
    const fails = [...lane].map((f) => {
      const xs = edges.filter((e) => e.b === f && pos.has(e.a)).map((e) => pos.get(e.a).x);
      return { f, x: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 14 };
    });
    fails.sort((a, b) => a.x - b.x);
    let minX = 14;
    for (const it of fails) {
      it.x = Math.max(it.x, minX);
      pos.set(it.f, { x: it.x, y: laneY });
      minX = it.x + NW + GX;
    }
    const width = Math.max(...[...pos.values()].map((p) => p.x)) + NW + 14;
    const height = (fails.length ? laneY + NH : top + rows * (NH + GY) - GY) + 14;
    return { edges, pos, back, width, height };
  }

  function edgePath(p, q, isBack) {
    if (q.y > p.y + NH) {
      const x1 = p.x + NW / 2;
      const x2 = q.x + NW / 2;
      const y1 = p.y + NH;
      const m = (y1 + q.y) / 2;
      return [`M${x1},${y1} C${x1},${m} ${x2},${m} ${x2},${q.y}`, (x1 + x2) / 2, m];
    }
    if (isBack || q.x <= p.x) {
      const x1 = p.x + NW / 2;
      const x2 = q.x + NW / 2;
      const y = Math.min(p.y, q.y);
      return [`M${x1},${p.y} C${x1},${y - 40} ${x2},${y - 40} ${x2},${q.y}`, (x1 + x2) / 2, y - 30];
    }
    const x1 = p.x + NW;
    const y1 = p.y + NH / 2;
    const y2 = q.y + NH / 2;
    const m = (x1 + q.x) / 2;
    return [`M${x1},${y1} C${m},${y1} ${m},${y2} ${q.x},${y2}`, m, Math.min(y1, y2) - 8];
  }

  /** Draws the diagram once; `update(stats)` then changes only its numbers. */
  function diagram(def, kinds, onPick) {
    const { edges, pos, back, width, height } = layout(def, kinds);
    const svg = sv('svg', { class: 'diagram', viewBox: `0 0 ${width} ${height}`, width, role: 'img', 'aria-label': 'State diagram with live counts' });
    svg.append(
      sv('defs', {}, ...['claim', 'done', 'fail'].map((k) => sv('marker', { id: `arrow-${k}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, sv('path', { d: 'M0,0 L10,5 L0,10 z', class: `arrowhead ${k}` })))),
    );
    for (const e of edges) {
      const [d, lx, ly] = edgePath(pos.get(e.a), pos.get(e.b), back.has(`${e.a}\n${e.b}`));
      svg.append(sv('path', { d, class: `edge ${e.kind}`, 'marker-end': `url(#arrow-${e.kind})` }, sv('title', { text: `${e.stage.name}: ${e.a} → ${e.b}` })));
      if (e.kind === 'claim') svg.append(sv('text', { x: lx, y: ly, class: 'edge-label', 'text-anchor': 'middle', text: e.stage.name }));
    }
    const nodes = new Map();
    for (const s of def.statuses) {
      const p = pos.get(s);
      const kind = kindClass(kinds.get(s));
      const count = sv('text', { x: p.x + NW - 12, y: p.y + 27, class: 'count', 'text-anchor': 'end', text: '…' });
      const sub = sv('text', { x: p.x + 12, y: p.y + 56, class: 'sub' });
      const g = sv(
        'g',
        { class: `node ${kind}`, 'data-status': s, tabindex: 0, role: 'button', 'aria-label': `${s}: show its items`, onclick: () => onPick(s), onkeydown: (ev) => ev.key === 'Enter' && onPick(s) },
        sv('title', { text: `${s}: click to list its items` }),
        sv('rect', { x: p.x, y: p.y, width: NW, height: NH, rx: 9 }),
        sv('text', { x: p.x + 12, y: p.y + 24, class: 'name', text: s.length > 16 ? `${s.slice(0, 15)}…` : s }),
        count,
        sub,
      );
      if (s === def.initial) g.append(sv('text', { x: p.x + 12, y: p.y + 40, class: 'tag', text: 'initial' }));
      svg.append(g);
      nodes.set(s, { g, count, sub, kind: kinds.get(s) });
    }
    svg.update = (stats) => {
      for (const [s, n] of nodes) {
        n.count.textContent = num(stats.byStatus[s]);
        const stage = (list) => list.map((st) => stats.stages[st.name]).filter(Boolean);
        let text = '';
        let alert = false;
        let warn = false;
        if (n.kind.active.length) {
          const live = stage(n.kind.active).reduce((a, x) => a + x.active, 0);
          const expired = stage(n.kind.active).reduce((a, x) => a + x.expired, 0);
          text = `${num(live)} live${expired ? ` · ${num(expired)} expired` : ''}`;
          alert = expired > 0;
        } else if (n.kind.from.length) {
          // per-status numbers exist only per stage: exact when the status is its stage's only `from`
          const sole = n.kind.from.find((st) => st.from.length === 1);
          if (sole) {
            const x = stats.stages[sole.name];
            text = `${num(x.claimable)} ready${x.waiting ? ` · ${num(x.waiting)} waiting` : ''}`;
            warn = x.waiting > 0;
          }
        } else if (n.kind.failed.length) {
          text = 'failed';
        } else if (n.kind.done.length) {
          text = 'done';
        }
        n.sub.textContent = text;
        n.g.classList.toggle('alert', alert);
        n.g.classList.toggle('warn', warn);
      }
    };
    return svg;
  }

  // ---- the hour chart ---------------------------------------------------------------------
  function niceMax(n) {
    const p = 10 ** Math.floor(Math.log10(Math.max(1, n)));
    for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
    return 10 * p;
  }
  function hourChart(h) {
    const W = 640;
    const H = 170;
    const L = 40;
    const T = 10;
    const B = 22;
    const n = h.buckets.length;
    const bw = (W - L - 8) / n;
    const max = niceMax(Math.max(1, ...h.buckets.map((b) => Math.max(b.done || 0, b.failed || 0))));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const svg = sv('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Items done and failed per minute over the last hour' });
    for (const v of [0, max / 2, max]) {
      svg.append(sv('line', { x1: L, x2: W - 4, y1: y(v), y2: y(v), class: 'grid' }), sv('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis', text: num(v) }));
    }
    h.buckets.forEach((b, i) => {
      const x = L + i * bw;
      const label = `${clock(b.start)}: ${b.done === null ? 'the dashboard was not running' : `${num(b.done)} done, ${num(b.failed)} failed`}`;
      const g = sv('g', {}, sv('title', { text: label }));
      if (b.done === null) g.append(sv('rect', { x, y: T, width: bw, height: H - T - B, class: 'nodata' }));
      else {
        g.append(sv('rect', { x: x + 1, y: y(b.done), width: Math.max(1, bw / 2 - 1), height: y(0) - y(b.done), class: 'bar done' }));
        g.append(sv('rect', { x: x + bw / 2, y: y(b.failed), width: Math.max(1, bw / 2 - 1), height: y(0) - y(b.failed), class: 'bar failed' }));
      }
      svg.append(g);
    });
    for (const [i, text] of [[0, '60 min ago'], [Math.floor(n / 2), '30 min ago'], [n - 1, 'now']]) {
      svg.append(sv('text', { x: L + i * bw + bw / 2, y: H - 6, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle', class: 'axis', text }));
    }
    return svg;
  }

  // ---- item helpers -----------------------------------------------------------------------
  /** A key in a cell: its values (the field names are in the cell's title). */
  const keyText = (key) => Object.values(key || {}).map(String).join(' · ');
  const keyTitle = (key) => Object.entries(key || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const itemHref = (tracker, key) => `#/t/${enc(tracker)}/item/${enc(JSON.stringify(key))}`;

  function actionsFor(t, kinds, item, after) {
    if (state.config.readOnly) return [];
    const k = kinds.get(item.status) || { from: [], active: [], done: [], failed: [] };
    const out = [];
    if (k.failed.length) {
      out.push(el('button', { type: 'button', class: 'small primary', 'data-action': 'retry', onclick: () => retry(t, item, after), text: 'Retry' }));
    }
    if (k.from.length || k.active.length) {
      out.push(el('button', { type: 'button', class: 'small danger', 'data-action': 'cancel', onclick: () => cancel(t, item, after), text: 'Cancel' }));
    }
    return out;
  }

  async function retry(t, item, after) {
    // parked with no stage recorded (or one no longer declared) in a failed status several stages
    // share: the operator picks the stage it goes back to
    const owners = t.definition.stages.filter((st) => st.failed === item.status).map((st) => st.name);
    const declared = item.stage !== null && t.definition.stages.some((st) => st.name === item.stage);
    let stage;
    if (!declared && owners.length > 1) {
      const pick = el('select', { id: 'retry-stage', 'aria-label': 'Stage' }, ...owners.map((n) => el('option', { value: n, text: n })));
      const recorded = item.stage === null ? 'has no stage recorded' : `was parked under stage ${item.stage}, which this tracker no longer declares`;
      const ok = await confirmDialog({ title: 'Retry into which stage?', text: `${keyText(item.key)} ${recorded}, and ${item.status} is the failed status of stages ${owners.join(', ')}. It goes back to the first status the stage claims from.`, ok: 'Retry', extra: pick, danger: false });
      if (!ok) return;
      stage = pick.value;
    }
    try {
      const { item: back, warning } = await api(`trackers/${enc(t.name)}/retry`, { key: item.key, ...(stage ? { stage } : {}) });
      // applied, but the item no longer fits the schema: said, with what to do
      if (warning) notice(`Retried ${keyText(item.key)}, but: ${warning}`, 'error');
      else notice(`Retried ${keyText(item.key)}: back in ${back.status}, claimable now.`);
      after();
    } catch (error) {
      refused(error);
    }
  }

  async function cancel(t, item, after) {
    const reason = el('input', { type: 'text', id: 'cancel-reason', maxlength: 500, placeholder: 'reason (optional)', 'aria-label': 'Reason' });
    const ok = await confirmDialog({ title: 'Cancel this item?', text: `${keyText(item.key)} goes to its stage's failed status; a worker holding it loses its lease.`, ok: 'Cancel item', extra: reason });
    if (!ok) return;
    try {
      const { warning } = await api(`trackers/${enc(t.name)}/cancel`, { key: item.key, reason: reason.value.trim() || undefined });
      if (warning) notice(`Cancelled ${keyText(item.key)}, but: ${warning}`, 'error');
      else notice(`Cancelled ${keyText(item.key)}.`);
      after();
    } catch (error) {
      refused(error);
    }
  }

  // ---- the tracker page -------------------------------------------------------------------
  function trackerPage(t) {
    const def = t.definition;
    const kinds = kindsOf(def);
    const name = enc(t.name);
    const cards = el('div', { class: 'cards' });
    const callouts = el('div', { class: 'callouts' });
    const status = el('select', { id: 'items-status', 'aria-label': 'Status', onchange: () => tick() }, el('option', { value: '', text: 'failed (all failed statuses)' }), ...def.statuses.map((s) => el('option', { value: s, text: s })));
    const itemsSection = el('section', { class: 'panel', id: 'items' });
    const pick = (s) => {
      status.value = s;
      tick();
      itemsSection.scrollIntoView({ behavior: 'smooth', block: 'start' });
    };
    const svg = diagram(def, kinds, pick);
    const stages = el('tbody');
    const chartBox = el('div', { class: 'chart-box' });
    const chartNote = el('p', { class: 'muted small' });
    const rows = el('tbody');
    const itemsNote = el('p', { class: 'muted small' });
    let lastItems = '';
    itemsSection.append(
      el('div', { class: 'panel-head' }, el('h2', { text: 'Items' }), el('label', { class: 'inline' }, 'status ', status)),
      el('table', { class: 'items' }, el('thead', {}, el('tr', {}, ...['Key', 'Status', 'Stage', 'Attempts', 'Last error', 'When', ''].map((h) => el('th', { text: h })))), rows),
      itemsNote,
    );
    const panels = [
      el('div', { class: 'title-row' }, el('h1', { text: t.name }), el('span', { class: 'muted', text: `lease ${num(def.ttlMs)} ms · ${def.maxAttempts} attempts per stage` })),
      cards,
      callouts,
      el('section', { class: 'panel' }, el('h2', { text: 'State machine' }), el('div', { class: 'diagram-box' }, svg), el('p', { class: 'muted small', text: 'Statuses with their item counts; arrows are stages (claim → hold → done, or failed). Click a status to list its items.' })),
      el('div', { class: 'two' },
        el('section', { class: 'panel' }, el('h2', { text: 'Stages' }), el('table', { class: 'stages' }, el('thead', {}, el('tr', {}, ...['Stage', 'Ready', 'Waiting', 'Held', 'Expired', 'Done', 'Failed'].map((h) => el('th', { text: h })))), stages)),
        el('section', { class: 'panel' }, el('h2', { text: 'Last hour' }), chartBox, chartNote),
      ),
      itemsSection,
    ];
    let purgeSelect = null;
    if (!state.config.readOnly && def.terminalStatuses.length) {
      purgeSelect = el('select', { id: 'purge-status', 'aria-label': 'Status to purge' }, ...def.terminalStatuses.map((s) => el('option', { value: s, text: s })));
      const before = el('input', { type: 'datetime-local', id: 'purge-before', 'aria-label': 'Finished before' });
      const button = el('button', { type: 'button', class: 'danger', id: 'purge-button', text: 'Purge…' });
      button.addEventListener('click', async () => {
        const s = purgeSelect.value;
        const at = before.value ? new Date(before.value) : null;
        // what the dialog names is all the purge may delete: items that finished while it was
        // open wait for the next look (the request carries the count as its limit)
        const count = Number(purgeSelect.selectedOptions[0]?.dataset.count);
        if (!Number.isSafeInteger(count)) return notice(`The number of items in ${s} is not known yet; wait for the counts to load.`, 'error');
        if (count === 0) return notice(`Nothing to purge: ${s} holds no items.`);
        const ok = await confirmDialog({
          title: `Purge ${s}?`,
          text: `Delete ${at ? `the items in ${s} that finished before ${at.toLocaleString()} (of ${num(count)} in ${s})` : `all ${num(count)} items in ${s}`} for good. This cannot be undone.`,
          ok: 'Delete',
        });
        if (!ok) return;
        try {
          const { deleted } = await api(`trackers/${name}/purge`, { status: s, limit: Math.min(count, 10_000_000), ...(at ? { finishedBefore: at.toISOString() } : {}) });
          notice(`Deleted ${num(deleted)} items from ${s}.`);
          tick();
        } catch (error) {
          refused(error);
        }
      });
      panels.push(el('section', { class: 'panel' }, el('h2', { text: 'Purge finished items' }), el('div', { class: 'row' }, el('label', { class: 'inline' }, 'status ', purgeSelect), el('label', { class: 'inline' }, 'finished before (optional) ', before), button), el('p', { class: 'muted small', text: 'Deletes items in a status no stage claims from, in bounded batches, after you confirm.' })));
    }
    $('main').replaceChildren(...panels);

    const card = (label, value, cls, title) => el('div', { class: `card ${cls || ''}`, title }, el('div', { class: 'value', text: num(value) }), el('div', { class: 'label', text: label }));

    return {
      async refresh() {
        const q = new URLSearchParams({ limit: '50' });
        if (status.value) q.set('status', status.value);
        // each half draws on its own: items that cannot be listed leave the counts and the diagram
        const [stats, listed] = await Promise.allSettled([api(`trackers/${name}/stats`), api(`trackers/${name}/items?${q}`)]);
        if (listed.status === 'rejected') {
          lastItems = undefined;
          rows.replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'error', text: `The items could not be listed: ${listed.reason.message}` })));
          itemsNote.textContent = '';
        }
        if (stats.status === 'rejected') throw stats.reason;
        const s = stats.value;
        const st = s.stats;
        const held = Object.values(st.stages).reduce((a, x) => a + x.active, 0);
        const undeclared = Object.values(st.undeclared).reduce((a, x) => a + x, 0);
        cards.replaceChildren(
          card('items', st.total),
          card('ready to claim', st.claimable),
          card('waiting (backoff or scheduled)', st.waiting, st.waiting ? 'warn' : ''),
          card('held by workers', held),
          card('expired leases', st.expiredLeases, st.expiredLeases ? 'alert' : '', 'Held items whose lease ran out: a worker died or stalled. The reaper hands them on.'),
          ...(undeclared ? [card('in undeclared statuses', undeclared, 'alert')] : []),
        );
        const notes = [];
        if (st.expiredLeases) notes.push(el('div', { class: 'callout alert', text: `${num(st.expiredLeases)} lease(s) expired: their workers died or stalled. Any worker's reaper (reapStale) hands them back for another attempt.` }));
        if (st.waiting) notes.push(el('div', { class: 'callout warn', text: `${num(st.waiting)} item(s) waiting on backoff or a schedule: not claimable before their notBefore.` }));
        if (undeclared) notes.push(el('div', { class: 'callout alert', text: `Items in statuses this definition does not declare: ${Object.entries(st.undeclared).map(([k, v]) => `${k} (${num(v)})`).join(', ')}.` }));
        callouts.replaceChildren(...notes);
        svg.update(st);
        stages.replaceChildren(...def.stages.map((x) => {
          const c = st.stages[x.name] || {};
          return el('tr', {}, el('th', { text: x.name }), ...[c.claimable, c.waiting, c.active, c.expired, c.done, c.failed].map((v, i) => el('td', { class: `num ${i === 3 && v ? 'alert' : ''}`, text: num(v) })));
        }));
        const h = s.history;
        const total = (f) => h.buckets.reduce((a, b) => a + (b[f] || 0), 0);
        chartBox.replaceChildren(el('div', { class: 'legend' }, el('span', { class: 'swatch done' }), `done (${h.doneStatuses.join(', ') || 'none'}) ${num(total('done'))}`, el('span', { class: 'swatch failed' }), `failed (${h.failedStatuses.join(', ')}) ${num(total('failed'))}`), hourChart(h));
        chartNote.textContent = `Per minute, since the dashboard started at ${clock(h.startedAt)}: the growth of the finished statuses' counts, sampled by the dashboard server ${state.config.sampleIntervalMs ? `every ${Math.round(state.config.sampleIntervalMs / 1000)} s and ` : ''}whenever a page polls, while it runs.`;
        if (purgeSelect) for (const o of purgeSelect.options) {
          o.dataset.count = String(st.byStatus[o.value] || 0);
          o.textContent = `${o.value} (${num(st.byStatus[o.value])})`;
        }
        if (listed.status === 'rejected') throw listed.reason;
        const list = listed.value;
        const invalid = list.invalid || [];
        const sig = JSON.stringify([list.items, invalid]);
        if (sig !== lastItems) {
          lastItems = sig;
          rows.replaceChildren(...list.items.map((item) => el('tr', { 'data-key': JSON.stringify(item.key) },
            el('td', { class: 'key', title: keyTitle(item.key) }, el('a', { href: itemHref(t.name, item.key), text: keyText(item.key) })),
            el('td', {}, el('span', { class: `pill ${kindClass(kinds.get(item.status) || { from: [], active: [], done: [], failed: [] })}`, text: item.status })),
            el('td', { text: item.stage || '—' }),
            el('td', { class: 'num', text: item.attempts }),
            el('td', { class: 'error', title: item.lastError || '', text: item.lastError || '—' }),
            el('td', { title: item.finishedAt || item.updatedAt, text: when(item.finishedAt || item.updatedAt) }),
            el('td', { class: 'actions' }, ...actionsFor(t, kinds, item, tick)),
          )));
          // items whose stored key or data no longer fit the schema: shown with why, not hidden
          rows.append(...invalid.map((bad) => el('tr', { class: 'invalid', 'data-key': JSON.stringify(bad.key) },
            el('td', { class: 'key', title: keyTitle(bad.key) }, el('a', { href: itemHref(t.name, bad.key), text: keyText(bad.key) })),
            el('td', {}, el('span', { class: 'pill failed', text: 'unreadable' }), ' ', el('span', { class: 'muted', text: bad.status || '' })),
            el('td', { text: bad.stage || '—' }),
            el('td', { colspan: 3, class: 'error', title: bad.problem, text: `no longer fits the schema: ${bad.problem}` }),
            // retry and cancel act on it by key (the server says when the change applied but the item still does not fit)
            el('td', { class: 'actions' }, ...actionsFor(t, kinds, bad, tick)),
          )));
          if (!list.items.length && !invalid.length) rows.append(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: `No items in ${list.statuses.join(', ')}.` })));
        }
        itemsNote.textContent = `${num(list.items.length + invalid.length)} shown (at most ${list.limit}) from ${list.statuses.join(', ')}, in claim order${invalid.length ? `; ${num(invalid.length)} no longer fit the schema: fix them in the database, cancel them by key while they wait or are held (leasehold cancel), or purge their status once they are finished` : ''}.`;
      },
    };
  }

  // ---- the item page ----------------------------------------------------------------------
  const FIELDS = ['status', 'stage', 'attempts', 'fence', 'owner', 'leaseExpiresAt', 'notBefore', 'lastError', 'createdAt', 'updatedAt', 'claimedAt', 'finishedAt'];
  const TIMES = new Set(['leaseExpiresAt', 'notBefore', 'createdAt', 'updatedAt', 'claimedAt', 'finishedAt']);

  function itemPage(t, key) {
    const kinds = kindsOf(t.definition);
    const body = el('div', {}, el('p', { class: 'muted', text: 'Loading…' }));
    $('main').replaceChildren(
      el('p', {}, el('a', { href: `#/t/${enc(t.name)}`, text: `← ${t.name}` })),
      el('section', { class: 'panel' }, el('h1', { class: 'item-title' }, 'Item ', el('code', { id: 'item-key', text: key })), body),
    );
    return {
      async refresh() {
        let item;
        try {
          item = (await api(`trackers/${enc(t.name)}/item?key=${enc(key)}`)).item;
        } catch (error) {
          if (error.status !== 404 && error.status !== 400 && error.status !== 422) throw error;
          body.replaceChildren(el('p', { class: 'callout warn', text: error.message }));
          return;
        }
        const rows = [el('dt', { text: 'key' }), el('dd', {}, el('code', { text: JSON.stringify(item.key) }))];
        for (const f of FIELDS) {
          const v = item[f];
          const text = v === null || v === undefined ? '—' : TIMES.has(f) ? `${new Date(v).toLocaleString()} (${ago(v)})` : String(v);
          rows.push(el('dt', { text: f }), el('dd', { 'data-field': f, class: f === 'lastError' && v ? 'error' : '' }, f === 'status' ? el('span', { class: `pill ${kindClass(kinds.get(v) || { from: [], active: [], done: [], failed: [] })}`, text }) : text));
        }
        rows.push(el('dt', { text: 'data' }), el('dd', {}, el('pre', { id: 'item-data', text: JSON.stringify(item.data, null, 2) })));
        body.replaceChildren(el('dl', { class: 'fields' }, rows), el('div', { class: 'row' }, ...actionsFor(t, kinds, item, tick)));
      },
    };
  }

  // ---- routing and polling ----------------------------------------------------------------
  // a link edited by hand may hold a malformed escape (`%E0%A4%A`): it is read as written
  function decode(text) {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  }

  function route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/');
    const names = state.config.trackers.map((t) => t.name);
    let name = parts[0] === 't' && parts[1] ? decode(parts[1]) : names[0];
    if (!names.includes(name)) name = names[0];
    const t = state.config.trackers.find((x) => x.name === name);
    for (const a of $('tabs').children) a.toggleAttribute('aria-current', a.dataset.name === name);
    state.tracker = t;
    state.view = parts[2] === 'item' && parts[3] ? itemPage(t, decode(parts[3])) : trackerPage(t);
    tick();
  }

  let generation = 0;
  async function tick() {
    clearTimeout(state.timer);
    const mine = ++generation;
    if (!document.hidden && state.view) {
      try {
        await state.view.refresh();
        if (mine === generation) {
          $('live').textContent = `live · ${new Date().toLocaleTimeString()}`;
          $('live').className = 'live ok';
        }
      } catch (error) {
        $('live').textContent = `not updating: ${error.message}`;
        $('live').className = 'live error';
      }
    }
    if (mine === generation) state.timer = setTimeout(tick, state.config.pollMs);
  }

  async function start() {
    const fromUrl = /^#token=([^&]*)/.exec(location.hash);
    if (fromUrl) {
      sessionStorage.setItem('leasehold-token', decode(fromUrl[1]));
      history.replaceState(null, '', `${location.pathname}${location.search}#/`);
    }
    state.token = sessionStorage.getItem('leasehold-token') || '';
    try {
      state.config = await api('config');
    } catch (error) {
      $('main').replaceChildren(el('p', { class: 'callout alert', text: `The dashboard API does not answer: ${error.message}` }));
      return;
    }
    $('tabs').replaceChildren(...state.config.trackers.map((t) => el('a', { href: `#/t/${enc(t.name)}`, 'data-name': t.name, text: t.name })));
    if (state.config.readOnly) $('tabs').after(el('span', { class: 'badge', text: 'read-only' }));
    showTokenButton();
    $('token-button').addEventListener('click', askToken);
    $('search').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = $('search-key').value.trim();
      if (text) location.hash = `#/t/${enc(state.tracker.name)}/item/${enc(text)}`;
    });
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => !document.hidden && tick());
    route();
  }

  start();
})();
