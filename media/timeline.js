// The coverage timeline page (extension/timeline/panel.ts): draws the model it is sent as SVG, one row per version,
// one cell per interval. Only draws: the model comes from the extension; a click, Restore… and Back Up Now go back
// as messages. Text from the model goes into the page as text (textContent, attributes), never as markup.
(function () {
  'use strict';
  /**
   * For the e2e test's figures (the open time's parts): the page's start as a time of the clock (ms since 1970, as
   * the extension's Date.now(); `performance.timeOrigin` can be off from it by a fraction of a second), and when this
   * script began to run, from the page's start.
   */
  const scriptAt = performance.now();
  const clockOrigin = Date.now() - scriptAt;
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

  /**
   * What the page shows, kept across updates: the model (the extension's compact form, expanded into `lanes`), the
   * visible time range, the selection, the focused cell, and the segments of the cells asked for (`details`).
   */
  const state = { tl: undefined, lanes: [], names: {}, words: {}, view: undefined, selected: new Set(), focusKey: undefined, details: new Map() };
  /**
   * key → { cell, rect, run, lane, index }, for every cell: `rect` its own element, `run` the run it is drawn in
   * (neither: out of view).
   */
  let index = new Map();
  /** The runs drawn (data-run is the index) and each lane's row element. */
  let runs = [];
  let rows = [];
  let svg;
  /** The chart's drawing width, measured once per render: reading it per cell made the browser lay out each time. */
  let drawW = 200;

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
  /** One formatter for every count: `toLocaleString` builds a new one at each call, twice per cell. */
  const NUMBER = new Intl.NumberFormat('en-US');
  function plural(n, word, words) {
    return NUMBER.format(n) + ' ' + (n === 1 ? word : words || word + 's');
  }
  /** An interval as the trees show it (extension/tree/format.ts intervalLabel): midnight and zero seconds left out. */
  function intervalLabel(interval) {
    return interval
      .split('/')
      .map((t) => t.replace(/T00:00:00(\.000)?(Z|\+00:00)$/, '').replace(/:00\.000(Z|\+00:00)$/, 'Z'))
      .join('/');
  }
  /** The cell's accessible name (and the hover's title): where, which version, its state, copies, segments, size. */
  function cellLabel(cell) {
    const s = cell.state;
    const copyWords = s === 'backedUp' || s === 'lost' || s === 'backupOnly' || s === 'overshadowed' ? ', ' + plural(cell.copies, 'copy', 'copies') : '';
    return (
      state.tl.dataSource +
      ' ' +
      intervalLabel(cell.interval) +
      ', version ' +
      cell.version +
      ': ' +
      state.words[s] +
      copyWords +
      ', ' +
      plural(cell.n, 'segment') +
      ', ' +
      fmtBytes(cell.size)
    );
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
  /** The time at a mouse position. */
  function timeAt(clientX) {
    const v = state.view;
    return v.start + ((clientX - chart.getBoundingClientRect().left - LABEL_W) / drawW) * (v.end - v.start);
  }
  function xOf(t) {
    const v = state.view;
    return LABEL_W + ((t - v.start) / (v.end - v.start)) * drawW;
  }

  /**
   * The compact form (extension/timeline/model.ts toWire) as cells: a lane's numbers, CELL_FIELDS at a time, become
   * objects with their interval, state and key; the cell's words are made when it is drawn.
   */
  function expand(tl) {
    const F = 7;
    return tl.lanes.map((lane) => {
      const cells = [];
      for (let i = 0; i < lane.cells.length; i += F) {
        const a = lane.cells;
        const start = tl.start + a[i + 1] * tl.unit;
        const end = start + a[i + 2] * tl.unit;
        // -1: the interval as Druid writes it (model.ts isoInterval), not sent.
        const interval = a[i] < 0 ? new Date(start).toISOString() + '/' + new Date(end).toISOString() : tl.intervals[a[i]];
        cells.push({
          key: JSON.stringify([lane.version, interval]),
          interval: interval,
          version: lane.version,
          start: start,
          end: end,
          state: tl.states[a[i + 3]],
          copies: a[i + 4],
          size: a[i + 5],
          n: a[i + 6],
        });
      }
      return { version: lane.version, cells: cells };
    });
  }

  /** Draws everything again; a cell that had the focus keeps it (or, out of view now, the nearest cell in view). */
  function render() {
    const tl = state.tl;
    const hadFocus = chart.contains(document.activeElement);
    chart.textContent = '';
    index = new Map();
    runs = [];
    rows = [];
    renderLegend();
    if (!tl || state.lanes.length === 0) {
      summary.textContent = tl ? 'No segment of ' + tl.dataSource + ' on the nodes or in the backups.' : 'Loading…';
      updateButtons();
      return;
    }
    drawW = width();
    const cells = state.lanes.reduce((a, l) => a + l.cells.length, 0);
    summary.textContent =
      plural(tl.segments, 'segment') +
      ' in ' +
      plural(cells, 'cell') +
      ', ' +
      plural(state.lanes.length, 'version') +
      ', ' +
      fmtTime(tl.start) +
      ' to ' +
      fmtTime(tl.end) +
      '. ' +
      snapshotWords(tl) +
      "Arrow keys move between cells, Home and End go to a version's first and last, Enter selects (Shift+Enter or Shift+arrows add to the selection, Escape clears it), Shift+Tab reaches Restore… and Back Up Now, + and − zoom around the focused cell, 0 shows everything, Ctrl+← and Ctrl+→ pan.";
    const h = AXIS_H + state.lanes.length * (LANE_H + LANE_GAP);
    svg = el('svg', {
      width: '100%',
      height: h,
      role: 'grid',
      'aria-label': 'Coverage of ' + tl.dataSource + ': one row per version, one cell per interval',
      'aria-rowcount': state.lanes.length,
      'aria-multiselectable': 'true',
    });
    const axis = el('g', { class: 'axis', 'aria-hidden': 'true' }, svg);
    // As many time labels as fit without overlapping.
    const ticks = Math.max(1, Math.floor(drawW / 200));
    for (let i = 0; i <= ticks; i++) {
      const t = state.view.start + ((state.view.end - state.view.start) * i) / ticks;
      const x = xOf(t);
      el('line', { x1: x, x2: x, y1: AXIS_H - 4, y2: h, class: 'tick' }, axis);
      const label = el('text', { x: x, y: AXIS_H - 8, class: 'tick-label', 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' }, axis);
      label.textContent = new Date(t).toISOString().slice(0, 16).replace('T', ' ');
    }
    state.lanes.forEach((lane, li) => {
      const y = AXIS_H + li * (LANE_H + LANE_GAP);
      const row = el('g', { role: 'row', 'aria-rowindex': li + 1, 'aria-label': 'Version ' + lane.version }, svg);
      const name = el('text', { x: 4, y: y + LANE_H / 2 + 4, class: 'lane-label', role: 'rowheader' }, row);
      name.textContent = lane.version;
      rows[li] = row;
      // Cells narrower than a pixel that touch and look the same are drawn as one run (10,000 segments are a few
      // dozen elements, not thousands); a gap a pixel wide or more ends a run, so gaps in the coverage still show.
      // The focused and the selected cells are drawn on their own.
      let run;
      const flush = () => {
        if (run) drawRun(run, y);
        run = undefined;
      };
      lane.cells.forEach((cell, ci) => {
        const entry = { cell: cell, rect: undefined, run: undefined, lane: li, index: ci };
        index.set(cell.key, entry);
        if (cell.end < state.view.start || cell.start > state.view.end) return;
        const x = Math.max(LABEL_W, xOf(cell.start));
        const w = Math.min(xOf(cell.end), LABEL_W + drawW) - x;
        const look = cell.state + (isUnder(cell) ? ' under' : '');
        if (w >= 1 || cell.key === state.focusKey || state.selected.has(cell.key)) {
          flush();
          drawCell(entry);
          return;
        }
        if (!run || run.look !== look || x > run.right + 0.5) {
          flush();
          run = { look: look, x: x, right: x, entries: [], lane: li };
        }
        run.right = Math.max(run.right, x + MIN_CELL_W);
        run.entries.push(entry);
        entry.run = run;
      });
      flush();
    });
    renderSnapshots(h);
    // One cell takes the Tab stop (a roving tabindex): the focused one, else the nearest drawn cell of its version.
    state.focusKey = drawnNear(state.focusKey);
    const focused = state.focusKey && ownRect(index.get(state.focusKey));
    if (focused) focused.setAttribute('tabindex', '0');
    chart.appendChild(svg);
    if (hadFocus && focused) focused.focus();
    updateButtons();
  }

  function isUnder(cell) {
    return cell.state === 'backedUp' && cell.copies < state.tl.wantedCopies;
  }
  function drawn(entry) {
    return !!(entry.rect || entry.run);
  }

  /** A cell's own element: a grid cell named by its words, with what the e2e test checks against the API. */
  function drawCell(entry) {
    const cell = entry.cell;
    const y = AXIS_H + entry.lane * (LANE_H + LANE_GAP);
    const x = Math.max(LABEL_W, xOf(cell.start));
    const w = Math.max(MIN_CELL_W, Math.min(xOf(cell.end), LABEL_W + drawW) - x);
    const selected = state.selected.has(cell.key);
    const row = rows[entry.lane];
    entry.rect = el(
      'rect',
      {
        x: x,
        y: y,
        width: w,
        height: LANE_H,
        class: 'cell s-' + cell.state + (isUnder(cell) ? ' under' : '') + (selected ? ' selected' : ''),
        role: 'gridcell',
        tabindex: -1,
        'aria-label': cellLabel(cell),
        'aria-selected': selected ? 'true' : 'false',
        'data-key': cell.key,
        'data-state': cell.state,
        'data-copies': cell.copies,
        'data-interval': cell.interval,
        'data-version': cell.version,
      },
      row,
    );
    if (w >= 16 && cell.copies > 0) {
      const t = el('text', { x: x + w / 2, y: y + LANE_H / 2 + 4, class: 'copies', 'text-anchor': 'middle', 'aria-hidden': 'true' }, row);
      t.textContent = '×' + cell.copies;
    }
    return entry.rect;
  }

  /**
   * A run of cells narrower than a pixel, as one element named by its words (how many cells, from when to when,
   * their state). Its cells are reached one by one with the arrow keys, the mouse or the hover: each gets its own
   * element when it has the focus or the selection (ownRect).
   */
  function drawRun(run, y) {
    const entries = run.entries;
    if (entries.length === 1) return drawCell(entries[0]);
    const first = entries[0].cell;
    const last = entries[entries.length - 1].cell;
    const segments = entries.reduce((a, e) => a + e.cell.n, 0);
    const size = entries.reduce((a, e) => a + e.cell.size, 0);
    const copies = Math.min(...entries.map((e) => e.cell.copies));
    run.rect = el(
      'rect',
      {
        x: run.x,
        y: y,
        width: run.right - run.x,
        height: LANE_H,
        class: 'cell run s-' + run.look,
        role: 'gridcell',
        tabindex: -1,
        'aria-label':
          state.tl.dataSource +
          ' ' +
          plural(entries.length, 'interval') +
          ' from ' +
          fmtTime(first.start) +
          ' to ' +
          fmtTime(last.end) +
          ', version ' +
          first.version +
          ': ' +
          state.words[first.state] +
          (copies > 0 ? ', at least ' + plural(copies, 'copy', 'copies') : '') +
          ', ' +
          plural(segments, 'segment') +
          ', ' +
          fmtBytes(size) +
          '. Arrow keys go through its intervals one by one.',
        'aria-selected': 'false',
        'data-run': String(runs.length),
        'data-cells': entries.length,
        'data-state': first.state,
      },
      rows[run.lane],
    );
    runs.push(run);
    return run.rect;
  }

  /** The cell's own element, made over its run when it is drawn in one. */
  function ownRect(entry) {
    if (!entry.rect && entry.run) {
      drawCell(entry);
      // Over its run, not under: the focus outline and the selection show; marked, as the run counts it too.
      entry.rect.classList.add('in-run');
      rows[entry.lane].appendChild(entry.rect);
    }
    return entry.rect;
  }

  /** The cell of a run nearest to the time at `clientX`. */
  function cellAt(run, clientX) {
    const t = timeAt(clientX);
    let best = run.entries[0];
    for (const e of run.entries) if (Math.abs((e.cell.start + e.cell.end) / 2 - t) < Math.abs((best.cell.start + best.cell.end) / 2 - t)) best = e;
    return best;
  }
  /** The key of the cell an event is about: the cell's own element, or the cell of a run under the mouse. */
  function keyOf(ev) {
    const t = ev.target;
    if (!t.getAttribute) return undefined;
    const key = t.getAttribute('data-key');
    if (key) return key;
    const r = t.getAttribute('data-run');
    return r !== null && runs[Number(r)] ? cellAt(runs[Number(r)], ev.clientX).cell.key : undefined;
  }

  /** `key` when its cell is drawn; else the drawn cell of the same version nearest in time; else the first drawn. */
  function drawnNear(key) {
    const e = key && index.get(key);
    if (e && drawn(e)) return key;
    const lanes = e ? [state.lanes[e.lane]] : state.lanes;
    const at = e ? e.cell.start : state.view.start;
    let best;
    for (const lane of lanes)
      for (const c of lane.cells) {
        const d = index.get(c.key);
        if (d && drawn(d) && (!best || Math.abs(c.start - at) < Math.abs(best.start - at))) best = c;
      }
    if (best) return best.key;
    return e ? drawnNear(undefined) : undefined;
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
        {
          class: 'snapshot' + (m.pinned ? ' pinned' : '') + (m.complete ? '' : ' incomplete') + (m.expiring ? ' expiring' : ''),
          role: 'listitem',
          'aria-label': m.label,
          'data-snapshot': m.id,
          'data-expiry': m.expiry || '',
        },
        g,
      );
      el('line', { x1: x, x2: x, y1: AXIS_H - 6, y2: h, class: 'snapshot-line' }, mark);
      el('path', { d: 'M' + (x - 5) + ' ' + (AXIS_H - 12) + ' h10 l-5 7 z', class: 'snapshot-mark' }, mark);
      el('title', {}, mark).textContent = m.label;
    }
  }

  function renderLegend() {
    legend.textContent = '';
    const tl = state.tl;
    if (!tl) return;
    for (const s of tl.states) {
      const item = document.createElement('span');
      item.className = 'legend-item';
      item.setAttribute('role', 'listitem');
      const sw = document.createElement('span');
      sw.className = 'swatch s-' + s;
      sw.setAttribute('aria-hidden', 'true');
      item.appendChild(sw);
      item.appendChild(document.createTextNode(state.words[s] + ' (' + NUMBER.format(tl.counts[s]) + ')'));
      legend.appendChild(item);
    }
    if (tl.wantedCopies > 1) {
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

  /** The hover of a cell: its words at once, its segments when the extension sent them (asked for here once). */
  function showHover(key, clientX, clientY) {
    const entry = index.get(key);
    if (!entry) return;
    hover.textContent = '';
    hover.setAttribute('data-key', key);
    const title = document.createElement('div');
    title.className = 'hover-title';
    title.textContent = cellLabel(entry.cell);
    hover.appendChild(title);
    const details = state.details.get(key);
    if (details) for (const line of detailLines(details)) hover.appendChild(line);
    else vscode.postMessage({ type: 'details', key: key });
    hover.hidden = false;
    // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
    const maxX = window.innerWidth - hover.offsetWidth - 8;
    hover.style.left = Math.max(4, Math.min(clientX + 12, maxX)) + 'px';
    hover.style.top = clientY + 16 + 'px';
  }

  function detailLines(d) {
    const lines = d.segments.map((s) => {
      const line = document.createElement('div');
      const nodes = s.nodes.map((u) => state.names[u] || u).join(', ') || 'no node';
      line.textContent =
        s.id +
        ' · ' +
        state.words[s.state] +
        ' · ' +
        fmtBytes(s.size) +
        ' · ' +
        plural(s.copies, 'copy', 'copies') +
        (s.targets.length ? ' on ' + s.targets.join(', ') : '') +
        ' · nodes: ' +
        nodes +
        (s.backedUpAt ? ' · backed up ' + s.backedUpAt : '') +
        (s.error ? ' · error: ' + s.error : '');
      return line;
    });
    if (d.more > 0) {
      const line = document.createElement('div');
      line.textContent = '… and ' + d.more + ' more';
      lines.push(line);
    }
    return lines;
  }

  function setSelected(keys) {
    state.selected = new Set(keys);
    for (const key of state.selected) if (index.has(key)) ownRect(index.get(key));
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
    backupBtn.textContent = n > 1 ? 'Back Up ' + n + ' cells Now' : 'Back Up Now';
  }

  /** Selects the cell (and its segment in the tree), or with `add` adds it to the selection or takes it out. */
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
    state.focusKey = key;
    if (!drawn(e)) {
      // Out of view: pan to it, keeping the zoom (render gives it the focus).
      const span = state.view.end - state.view.start;
      const mid = (e.cell.start + e.cell.end) / 2;
      state.view = { start: mid - span / 2, end: mid + span / 2 };
      render();
    }
    for (const other of index.values()) if (other.rect) other.rect.setAttribute('tabindex', '-1');
    const r = ownRect(index.get(key));
    r.setAttribute('tabindex', '0');
    r.focus();
  }

  function neighbour(key, dLane, dIndex) {
    const e = index.get(key);
    const lanes = state.lanes;
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

  /** Zooms around `at`; from the keyboard, around the focused cell, so it stays in view. */
  function zoom(factor, at) {
    const v = state.view;
    const focused = at === undefined && state.focusKey && index.get(state.focusKey);
    const center = at !== undefined ? at : focused ? (focused.cell.start + focused.cell.end) / 2 : (v.start + v.end) / 2;
    const span = Math.max(60_000, (v.end - v.start) * factor);
    const ratio = Math.min(1, Math.max(0, (center - v.start) / (v.end - v.start)));
    state.view = { start: center - span * ratio, end: center - span * ratio + span };
    render();
  }
  function pan(fraction) {
    const span = state.view.end - state.view.start;
    state.view = { start: state.view.start + span * fraction, end: state.view.end + span * fraction };
    render();
  }
  function fit() {
    const tl = state.tl;
    if (!tl || state.lanes.length === 0) return render();
    const pad = (tl.end - tl.start) * 0.01 || 3_600_000;
    state.view = { start: tl.start - pad, end: tl.end + pad };
    render();
  }

  chart.addEventListener('mousemove', (ev) => {
    const key = keyOf(ev);
    if (key && (hover.hidden || hover.getAttribute('data-key') !== key)) showHover(key, ev.clientX, ev.clientY);
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
    const dt = (-dx / drawW) * span;
    state.view = { start: drag.view.start + dt, end: drag.view.end + dt };
    render();
  });
  window.addEventListener('mouseup', (ev) => {
    const wasDrag = drag && drag.moved;
    drag = undefined;
    if (wasDrag) return;
    const key = keyOf(ev);
    if (key) {
      state.focusKey = key;
      activate(key, ev.ctrlKey || ev.metaKey || ev.shiftKey);
    }
  });
  chart.addEventListener(
    'wheel',
    (ev) => {
      ev.preventDefault();
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, timeAt(ev.clientX));
    },
    { passive: false },
  );
  const MOVES = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  document.addEventListener('keydown', (ev) => {
    if (!state.tl || state.lanes.length === 0) return;
    const onButton = ev.target.tagName === 'BUTTON';
    const key = ev.target.getAttribute && ev.target.getAttribute('data-key');
    const done = () => ev.preventDefault();
    if (ev.ctrlKey && (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight')) return (done(), pan(ev.key === 'ArrowLeft' ? -0.25 : 0.25));
    if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
    if (ev.key === '+' || ev.key === '=') return (done(), zoom(0.8));
    if (ev.key === '-') return (done(), zoom(1.25));
    if (ev.key === '0') return (done(), fit());
    if (!key) {
      // Outside the grid (the page, not a button): the arrows go into it, at the cell that has its Tab stop.
      if (!onButton && MOVES[ev.key] && state.focusKey) (done(), focusCell(state.focusKey));
      return;
    }
    if (MOVES[ev.key]) {
      done();
      const next = neighbour(key, MOVES[ev.key][0], MOVES[ev.key][1]);
      if (!next) return;
      focusCell(next);
      if (ev.shiftKey) setSelected([...state.selected, key, next]);
    } else if (ev.key === 'Home' || ev.key === 'End') {
      done();
      const cells = state.lanes[index.get(key).lane].cells;
      focusCell(cells[ev.key === 'Home' ? 0 : cells.length - 1].key);
    } else if (ev.key === 'Enter' || ev.key === ' ') {
      done();
      activate(key, ev.shiftKey);
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
    if (!m) return;
    if (m.type === 'details') {
      state.details.set(m.key, m);
      if (!hover.hidden && hover.getAttribute('data-key') === m.key) for (const line of detailLines(m)) hover.appendChild(line);
      return;
    }
    if (m.type !== 'timeline') return;
    const received = performance.now();
    const first = !state.tl;
    state.tl = m.timeline;
    state.lanes = expand(state.tl);
    state.names = m.names || {};
    state.words = m.words || {};
    state.details = new Map();
    const keys = new Set();
    for (const l of state.lanes) for (const c of l.cells) keys.add(c.key);
    state.selected = new Set([...state.selected].filter((k) => keys.has(k)));
    if (first || !state.view) fit();
    else render();
    if (!first) return;
    // For the e2e test's figures, of the first model (the open time), as times of the clock: the page's start, when
    // its script ran, asked for the model, got it, had it drawn on the screen (the next frame painted: a timer after
    // the frame's callback runs once it is).
    const h = m.timing;
    requestAnimationFrame(() =>
      setTimeout(() => {
        const at = (t) => Math.round(clockOrigin + t);
        document.body.setAttribute('data-timing', [at(0), at(scriptAt), at(readyAt), at(received), at(performance.now())].join(' '));
        if (h) document.body.setAttribute('data-host-timing', [h.opened, h.created, h.built, h.build, h.sent].map(Number).join(' '));
      }),
    );
  });
  const readyAt = performance.now();
  vscode.postMessage({ type: 'ready' });
})();
