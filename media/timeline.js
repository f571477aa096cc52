// The coverage timeline page (extension/timeline/panel.ts): draws the model it is sent as SVG, one row per version,
// one cell per interval. Only draws: the model comes from the extension; a click, Restore… and Back Up Now go back
// as messages. Text from the model goes into the page as text (textContent, attributes), never as markup.
(function () {
  'use strict';
  const vscode = acquireVsCodeApi();
  const SVG = 'http://www.w3.org/2000/svg';
  const LABEL_W = 210;
  const AXIS_H = 22;
  const LANE_H = 26;
  const LANE_GAP = 6;
  const MIN_CELL_W = 1.5;

  const chart = document.getElementById('chart');
  const hover = document.getElementById('hover');
  const legend = document.getElementById('legend');
  const summary = document.getElementById('summary');
  const restoreBtn = document.getElementById('restore');
  const backupBtn = document.getElementById('backup');

  /** What the page shows, kept across updates: the model, the visible time range, the selection, the focused cell. */
  const state = { tl: undefined, names: {}, words: {}, states: [], view: undefined, selected: new Set(), focusKey: undefined };
  /** key → { cell, rect, lane, index } */
  let index = new Map();
  let svg;

  function fmtTime(t) {
    const iso = new Date(t).toISOString();
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso.replace(':00.000Z', 'Z');
  }
  function fmtBytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + ' ' + u[i];
  }
  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function width() {
    return Math.max(200, chart.clientWidth - LABEL_W - 8);
  }
  function xOf(t) {
    const v = state.view;
    return LABEL_W + ((t - v.start) / (v.end - v.start)) * width();
  }

  function render() {
    const tl = state.tl;
    chart.textContent = '';
    index = new Map();
    renderLegend();
    if (!tl || tl.lanes.length === 0) {
      summary.textContent = tl ? 'No segment of ' + tl.dataSource + ' on the nodes or in the backups.' : 'Loading…';
      updateButtons();
      return;
    }
    const cells = tl.lanes.reduce((a, l) => a + l.cells.length, 0);
    summary.textContent =
      tl.segments.toLocaleString('en-US') +
      ' segments in ' +
      cells.toLocaleString('en-US') +
      ' cells, ' +
      tl.lanes.length +
      ' version' +
      (tl.lanes.length === 1 ? '' : 's') +
      ', ' +
      fmtTime(tl.start) +
      ' to ' +
      fmtTime(tl.end) +
      '. ' +
      snapshotWords(tl) +
      'Arrow keys move, Enter selects, Shift+Enter adds to the selection, + and − zoom, Ctrl+arrows pan.';
    const h = AXIS_H + tl.lanes.length * (LANE_H + LANE_GAP);
    svg = el('svg', { width: '100%', height: h, role: 'grid', 'aria-label': 'Coverage of ' + tl.dataSource, 'aria-rowcount': tl.lanes.length });
    chart.appendChild(svg);
    const axis = el('g', { class: 'axis', 'aria-hidden': 'true' }, svg);
    // As many time labels as fit without overlapping.
    const ticks = Math.max(1, Math.floor(width() / 200));
    for (let i = 0; i <= ticks; i++) {
      const t = state.view.start + ((state.view.end - state.view.start) * i) / ticks;
      const x = xOf(t);
      el('line', { x1: x, x2: x, y1: AXIS_H - 4, y2: h, class: 'tick' }, axis);
      const label = el('text', { x: x, y: AXIS_H - 8, class: 'tick-label', 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' }, axis);
      label.textContent = new Date(t).toISOString().slice(0, 16).replace('T', ' ');
    }
    const focusKey = state.focusKey && findKey(state.focusKey) ? state.focusKey : tl.lanes[0].cells[0] && tl.lanes[0].cells[0].key;
    tl.lanes.forEach((lane, li) => {
      const y = AXIS_H + li * (LANE_H + LANE_GAP);
      const row = el('g', { role: 'row', 'aria-rowindex': li + 1, 'aria-label': 'Version ' + lane.version }, svg);
      const name = el('text', { x: 4, y: y + LANE_H / 2 + 4, class: 'lane-label', role: 'rowheader' }, row);
      name.textContent = lane.version;
      lane.cells.forEach((cell, ci) => {
        if (cell.end < state.view.start || cell.start > state.view.end) {
          index.set(cell.key, { cell: cell, rect: undefined, lane: li, index: ci });
          return;
        }
        const x = Math.max(LABEL_W, xOf(cell.start));
        const w = Math.max(MIN_CELL_W, Math.min(xOf(cell.end), LABEL_W + width()) - x);
        const under = cell.state === 'backedUp' && cell.copies < tl.wantedCopies;
        const rect = el(
          'rect',
          {
            x: x,
            y: y,
            width: w,
            height: LANE_H,
            class: 'cell s-' + cell.state + (under ? ' under' : '') + (state.selected.has(cell.key) ? ' selected' : ''),
            role: 'gridcell',
            tabindex: cell.key === focusKey ? 0 : -1,
            'aria-label': cell.label,
            'aria-selected': state.selected.has(cell.key) ? 'true' : 'false',
            'data-key': cell.key,
            'data-state': cell.state,
            'data-copies': cell.copies,
            'data-interval': cell.interval,
            'data-version': cell.version,
          },
          row,
        );
        index.set(cell.key, { cell: cell, rect: rect, lane: li, index: ci });
        if (w >= 16 && cell.copies > 0) {
          const t = el('text', { x: x + w / 2, y: y + LANE_H / 2 + 4, class: 'copies', 'text-anchor': 'middle', 'aria-hidden': 'true' }, row);
          t.textContent = '×' + cell.copies;
        }
      });
    });
    renderSnapshots(h);
    updateButtons();
  }

  /** "3 snapshots (2 after the data's end). ": the markers the time range may not show. */
  function snapshotWords(tl) {
    const all = tl.snapshots || [];
    if (all.length === 0) return '';
    const later = all.filter((m) => m.time > tl.end).length;
    const earlier = all.filter((m) => m.time < tl.start).length;
    const outside = [];
    if (later) outside.push(later + " after the data's end");
    if (earlier) outside.push(earlier + " before the data's start");
    return all.length + ' snapshot' + (all.length === 1 ? '' : 's') + (outside.length ? ' (' + outside.join(', ') + ')' : '') + '. ';
  }

  /** A dashed line at each snapshot's time in view, over every lane, with a mark on the axis that names it. */
  function renderSnapshots(h) {
    const marks = (state.tl.snapshots || []).filter((m) => m.time >= state.view.start && m.time <= state.view.end);
    if (marks.length === 0) return;
    const g = el('g', { class: 'snapshots', role: 'list', 'aria-label': 'Snapshots' }, svg);
    for (const m of marks) {
      const x = xOf(m.time);
      const mark = el(
        'g',
        { class: 'snapshot' + (m.pinned ? ' pinned' : '') + (m.complete ? '' : ' incomplete'), role: 'listitem', 'aria-label': m.label, 'data-snapshot': m.id },
        g,
      );
      el('line', { x1: x, x2: x, y1: AXIS_H - 6, y2: h, class: 'snapshot-line' }, mark);
      el('path', { d: 'M' + (x - 5) + ' ' + (AXIS_H - 12) + ' h10 l-5 7 z', class: 'snapshot-mark' }, mark);
      el('title', {}, mark).textContent = m.label;
    }
  }

  function findKey(key) {
    for (const l of state.tl.lanes) for (const c of l.cells) if (c.key === key) return c;
    return undefined;
  }

  function renderLegend() {
    legend.textContent = '';
    const tl = state.tl;
    for (const s of state.states) {
      const item = document.createElement('span');
      item.className = 'legend-item';
      item.setAttribute('role', 'listitem');
      const sw = document.createElement('span');
      sw.className = 'swatch s-' + s;
      sw.setAttribute('aria-hidden', 'true');
      item.appendChild(sw);
      item.appendChild(document.createTextNode(state.words[s] + (tl ? ' (' + tl.counts[s].toLocaleString('en-US') + ')' : '')));
      legend.appendChild(item);
    }
    if (tl && tl.wantedCopies > 1) {
      const item = document.createElement('span');
      item.className = 'legend-item';
      item.setAttribute('role', 'listitem');
      const sw = document.createElement('span');
      sw.className = 'swatch s-backedUp under';
      item.appendChild(sw);
      item.appendChild(document.createTextNode('backed up with fewer than ' + tl.wantedCopies + ' copies (×N: copies)'));
      legend.appendChild(item);
    }
  }

  function showHover(key, clientX, clientY) {
    const entry = index.get(key);
    if (!entry) return;
    const c = entry.cell;
    hover.textContent = '';
    const title = document.createElement('div');
    title.className = 'hover-title';
    title.textContent = c.label;
    hover.appendChild(title);
    for (const s of c.segments.slice(0, 8)) {
      const d = document.createElement('div');
      const nodes = s.nodes.map((u) => state.names[u] || u).join(', ') || 'no node';
      d.textContent =
        s.id +
        ' · ' +
        state.words[s.state] +
        ' · ' +
        fmtBytes(s.size) +
        ' · ' +
        s.copies +
        ' cop' +
        (s.copies === 1 ? 'y' : 'ies') +
        (s.targets.length ? ' on ' + s.targets.join(', ') : '') +
        ' · nodes: ' +
        nodes +
        (s.backedUpAt ? ' · backed up ' + s.backedUpAt : '') +
        (s.error ? ' · error: ' + s.error : '');
      hover.appendChild(d);
    }
    if (c.segments.length > 8) {
      const d = document.createElement('div');
      d.textContent = '… and ' + (c.segments.length - 8) + ' more';
      hover.appendChild(d);
    }
    hover.hidden = false;
    // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
    const maxX = window.innerWidth - hover.offsetWidth - 8;
    hover.style.left = Math.max(4, Math.min(clientX + 12, maxX)) + 'px';
    hover.style.top = clientY + 16 + 'px';
  }

  function setSelected(keys) {
    state.selected = new Set(keys);
    for (const [key, e] of index) {
      if (!e.rect) continue;
      const on = state.selected.has(key);
      e.rect.classList.toggle('selected', on);
      e.rect.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    updateButtons();
  }

  function updateButtons() {
    const n = state.selected.size;
    restoreBtn.disabled = backupBtn.disabled = n === 0;
    restoreBtn.textContent = n > 1 ? 'Restore ' + n + ' cells…' : 'Restore…';
  }

  function activate(key, add) {
    if (add) {
      const next = new Set(state.selected);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      setSelected(next);
    } else {
      setSelected([key]);
      vscode.postMessage({ type: 'select', key: key });
    }
  }

  function focusCell(key) {
    const e = index.get(key);
    if (!e) return;
    if (!e.rect) {
      // Out of view: pan to it, keeping the zoom.
      const span = state.view.end - state.view.start;
      const mid = (e.cell.start + e.cell.end) / 2;
      state.view = { start: mid - span / 2, end: mid + span / 2 };
      state.focusKey = key;
      render();
    }
    for (const other of index.values()) if (other.rect) other.rect.setAttribute('tabindex', '-1');
    const r = index.get(key).rect;
    r.setAttribute('tabindex', '0');
    state.focusKey = key;
    r.focus();
  }

  function neighbour(key, dLane, dIndex) {
    const e = index.get(key);
    const lanes = state.tl.lanes;
    if (dIndex) {
      const c = lanes[e.lane].cells[e.index + dIndex];
      return c && c.key;
    }
    const lane = lanes[e.lane + dLane];
    if (!lane || lane.cells.length === 0) return undefined;
    // The cell of the other version nearest in time.
    let best = lane.cells[0];
    for (const c of lane.cells) if (Math.abs(c.start - e.cell.start) < Math.abs(best.start - e.cell.start)) best = c;
    return best.key;
  }

  function zoom(factor, at) {
    const v = state.view;
    const center = at === undefined ? (v.start + v.end) / 2 : at;
    const span = Math.max(60_000, (v.end - v.start) * factor);
    const ratio = (center - v.start) / (v.end - v.start);
    state.view = { start: center - span * ratio, end: center - span * ratio + span };
    render();
    if (state.focusKey && index.get(state.focusKey) && index.get(state.focusKey).rect) index.get(state.focusKey).rect.setAttribute('tabindex', '0');
  }
  function pan(fraction) {
    const span = state.view.end - state.view.start;
    state.view = { start: state.view.start + span * fraction, end: state.view.end + span * fraction };
    render();
  }
  function fit() {
    const tl = state.tl;
    if (!tl || tl.lanes.length === 0) return;
    const pad = (tl.end - tl.start) * 0.01 || 3_600_000;
    state.view = { start: tl.start - pad, end: tl.end + pad };
    render();
  }

  chart.addEventListener('mouseover', (ev) => {
    const key = ev.target.getAttribute && ev.target.getAttribute('data-key');
    if (key) showHover(key, ev.clientX, ev.clientY);
  });
  chart.addEventListener('mouseout', () => (hover.hidden = true));
  chart.addEventListener('focusin', (ev) => {
    const key = ev.target.getAttribute && ev.target.getAttribute('data-key');
    if (!key) return;
    state.focusKey = key;
    const r = ev.target.getBoundingClientRect();
    showHover(key, r.left, r.bottom);
  });
  chart.addEventListener('focusout', () => (hover.hidden = true));
  let drag;
  chart.addEventListener('mousedown', (ev) => {
    drag = { x: ev.clientX, view: state.view, moved: false };
  });
  window.addEventListener('mousemove', (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x;
    if (Math.abs(dx) < 4 && !drag.moved) return;
    drag.moved = true;
    const span = drag.view.end - drag.view.start;
    const dt = (-dx / width()) * span;
    state.view = { start: drag.view.start + dt, end: drag.view.end + dt };
    render();
  });
  window.addEventListener('mouseup', (ev) => {
    const wasDrag = drag && drag.moved;
    drag = undefined;
    if (wasDrag) return;
    const key = ev.target.getAttribute && ev.target.getAttribute('data-key');
    if (key) activate(key, ev.ctrlKey || ev.metaKey || ev.shiftKey);
  });
  chart.addEventListener(
    'wheel',
    (ev) => {
      ev.preventDefault();
      const rect = chart.getBoundingClientRect();
      const t = state.view.start + ((ev.clientX - rect.left - LABEL_W) / width()) * (state.view.end - state.view.start);
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, t);
    },
    { passive: false },
  );
  document.addEventListener('keydown', (ev) => {
    if (!state.tl) return;
    const key = ev.target.getAttribute && ev.target.getAttribute('data-key');
    if (ev.key === '+' || ev.key === '=') return zoom(0.8);
    if (ev.key === '-') return zoom(1.25);
    if (ev.key === '0') return fit();
    if (ev.ctrlKey && ev.key === 'ArrowLeft') return pan(-0.25);
    if (ev.ctrlKey && ev.key === 'ArrowRight') return pan(0.25);
    if (!key) return;
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    if (moves[ev.key]) {
      ev.preventDefault();
      const next = neighbour(key, moves[ev.key][0], moves[ev.key][1]);
      if (next) focusCell(next);
    } else if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      activate(key, ev.shiftKey || ev.ctrlKey);
    } else if (ev.key === 'Escape') {
      setSelected([]);
    }
  });
  document.getElementById('zoom-in').addEventListener('click', () => zoom(0.8));
  document.getElementById('zoom-out').addEventListener('click', () => zoom(1.25));
  document.getElementById('zoom-fit').addEventListener('click', () => fit());
  restoreBtn.addEventListener('click', () => vscode.postMessage({ type: 'restore', keys: [...state.selected] }));
  backupBtn.addEventListener('click', () => vscode.postMessage({ type: 'backup', keys: [...state.selected] }));
  window.addEventListener('resize', () => state.tl && render());

  window.addEventListener('message', (ev) => {
    const m = ev.data;
    if (!m || m.type !== 'timeline') return;
    const received = performance.now();
    const first = !state.tl;
    state.tl = m.timeline;
    state.names = m.names || {};
    state.words = m.words || {};
    state.states = m.states || [];
    const keys = new Set(state.tl.lanes.flatMap((l) => l.cells.map((c) => c.key)));
    state.selected = new Set([...state.selected].filter((k) => keys.has(k)));
    const hadFocus = document.activeElement && document.activeElement.getAttribute && document.activeElement.getAttribute('data-key');
    if (first || !state.view) fit();
    if (!state.view || !first) render();
    if (hadFocus && index.get(hadFocus) && index.get(hadFocus).rect) index.get(hadFocus).rect.focus();
    // For the e2e test's figures: how long the page took to draw what it was sent.
    document.body.setAttribute('data-render-ms', String(Math.round(performance.now() - received)));
  });
  vscode.postMessage({ type: 'ready' });
})();
