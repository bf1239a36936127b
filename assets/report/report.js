// ssebench --html: draws the page from the data embedded beside it (the JSON report, its percentile curves and its
// warnings, all worked out in Rust by `report::html`). Charts are uPlot's; this file only arranges them. Nothing here
// fetches anything: the page must open offline, years later, as a CI artifact.
(function () {
  'use strict';
  const D = JSON.parse(document.getElementById('ssebench-data').textContent);
  const R = D.report;
  const LLM = !!R.llm;
  const TL = R.timeline || [];
  const STAGES = R.stages || [];
  const main = document.getElementById('main');
  const charts = [];

  // ---- formatting -------------------------------------------------------------------------------------------------
  const int = (n) => (n == null ? '-' : Math.round(n).toLocaleString('en-US'));
  const fixed = (x, d) => (x == null || !isFinite(x) ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
  const pct = (f) => (f == null ? '-' : (f * 100).toFixed(2) + '%');
  function us(v) {
    if (v == null) return '-';
    if (v < 1000) return Math.round(v) + ' µs';
    if (v < 1e6) return +(v / 1000).toPrecision(3) + ' ms';
    return +(v / 1e6).toPrecision(3) + ' s';
  }
  const ms = (v) => (v == null ? '-' : +v.toPrecision(4) + ' ms');
  const mb = (bytes) => fixed(bytes / 1e6, 2) + ' MB';

  // ---- DOM ----------------------------------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v != null) e.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c != null) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }
  // A figure the tests compare with the JSON: `data-figure` names its JSON path.
  const fig = (path, text) => el('span', { 'data-figure': path }, text);
  function kv(title, rows) {
    const body = rows.filter((r) => r).map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v)));
    return el('div', {}, el('h3', {}, title), el('table', { class: 'kv' }, el('tbody', {}, body)));
  }
  function table(title, head, rows, attrs) {
    return el('div', attrs || {}, title ? el('h3', {}, title) : null,
      el('table', {}, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))), el('tbody', {}, rows)));
  }
  function section(id, title, ...children) {
    const s = el('section', { id }, el('h2', {}, title), ...children);
    main.append(s);
    return s;
  }

  // ---- header -------------------------------------------------------------------------------------------------------
  function header() {
    const e = R.engine || {};
    const verdicts = (R.slos || []).map((v) => el('li', {}, el('span', { class: 'badge ' + (v.pass ? 'pass' : 'fail') }, v.pass ? 'PASS' : 'FAIL'),
      ' ', el('code', {}, v.slo), ' measured ', verdictValue(v)));
    const top = document.getElementById('top');
    top.append(el('dl', { class: 'meta' },
      el('dt', {}, 'Command'), el('dd', {}, el('code', { class: 'cmd' }, R.command_line || '(not recorded)')),
      el('dt', {}, 'Engine'), el('dd', {}, `${e.driver}, ${e.threads} thread${e.threads === 1 ? '' : 's'}; ssebench ${R.version}`),
      el('dt', {}, 'Started'), el('dd', {}, `${(R.started_at || {}).rfc3339 || '-'} on ${R.host || 'an unnamed host'}`),
      el('dt', {}, 'Duration'), el('dd', {}, fig('duration_s', fixed(R.duration_s, 2)), ' s', R.stopped_by_signal ? ' (stopped by Ctrl-C)' : ''),
      R.request ? [el('dt', {}, 'Request'), el('dd', {}, el('code', {}, [R.request.method].concat(R.request.headers || []).join('; ')))] : null,
      R.request && R.request.openai ? [el('dt', {}, 'OpenAI'), el('dd', {}, R.request.openai)] : null,
      verdicts.length ? [el('dt', {}, 'SLOs'), el('dd', {}, el('ul', { class: 'verdicts' }, verdicts))] : null,
      R.breakpoint ? [el('dt', {}, 'Breakpoint'), el('dd', { class: 'breakpoint' },
        `stage ${R.breakpoint.stage} (${int(R.breakpoint.target_streams)} streams): ${R.breakpoint.reason}`)] : null,
      STAGES.length && !R.breakpoint ? [el('dt', {}, 'Breakpoint'), el('dd', {}, 'none: every stage held')] : null,
      el('dt', {}, 'Warnings'), el('dd', {}, D.warnings.length ? el('ul', { class: 'warnings' }, D.warnings.map((w) => el('li', {}, w))) : 'none'),
    ));
  }
  function verdictValue(v) {
    if (v.unit === 'microseconds') return us(v.measured);
    if (v.unit === 'fraction') return pct(v.measured);
    return fixed(v.measured, 2);
  }

  // ---- headline cards -----------------------------------------------------------------------------------------------
  function cards() {
    const s = R.streams, ev = R.events, lat = R.latency_us;
    const card = (label, value, sub, bad) => el('div', { class: 'card' + (bad ? ' bad' : '') },
      el('div', { class: 'label' }, label), el('div', { class: 'value' }, value), sub ? el('div', { class: 'sub' }, sub) : null);
    const list = [
      card('Streams started', fig('streams.started', int(s.started)), `${int(s.completed)} completed · ${int(s.failed)} failed`),
      card('Success rate', fig('streams.success_rate', pct(s.success_rate)), `peak ${int(s.peak_concurrent)} open`, s.success_rate < 0.99),
      card('Streams/s', fixed(R.duration_s > 0 ? s.started / R.duration_s : 0, 1), `${int(s.reconnects)} reconnects`),
      card('Events/s', fig('events.per_second', fixed(ev.per_second, 1)), `${int(ev.received)} events · ${fixed(ev.bytes_per_second / 1e6, 2)} MB/s`),
    ];
    if (LLM) {
      const l = R.llm;
      list.push(card('Output tokens/s', fig('llm.output_tokens_per_s', fixed(l.output_tokens_per_s, 1)), `${int(l.output_tokens)} tokens${l.output_tokens_estimated ? ' (some estimated)' : ''}`));
      list.push(card('TTFT p50', fig('llm.ttft_us.p50', us(l.ttft_us.p50)), `p99 ${us(l.ttft_us.p99)}`));
      list.push(card('ITL p50', us(l.itl_us.p50), `p99 ${us(l.itl_us.p99)}`));
      list.push(card('TPOT p50', us(l.tpot_us.p50), `p99 ${us(l.tpot_us.p99)}`));
    } else {
      list.push(card('First event p50', fig('latency_us.first_event.p50', us(lat.first_event.p50)), `p99 ${us(lat.first_event.p99)}`));
      list.push(card('Gap p50', us(lat.gap.p50), `p99 ${us(lat.gap.p99)}`));
    }
    return el('div', { class: 'cards' }, list);
  }

  // ---- summary tables -----------------------------------------------------------------------------------------------
  const LATENCY_ROWS = [
    ['connect', 'connect'], ['headers', 'headers'], ['first_event', 'first event'], ['gap', 'event gap'],
    ['stream', 'stream'], ['max_gap', 'max gap'], ['premature_end', 'ended early'], ['reconnect_delay', 'reconnect wait'],
    ['start_lag', 'start lag'], ['tls_handshake', 'TLS handshake'], ['head_wait', 'head wait'],
    ['delivery_lag', 'delivery lag'],
  ];
  const SUMMARY_HEAD = ['', 'count', 'min', 'mean', 'p50', 'p90', 'p99', 'p99.9', 'max'];
  function summaryRow(label, s, f, path) {
    const cell = (k) => el('td', path ? { 'data-figure': `${path}.${k}` } : {}, f(s[k]));
    return el('tr', {}, el('td', {}, label), el('td', {}, int(s.count)),
      ['min', 'mean', 'p50', 'p90', 'p99'].map(cell), el('td', {}, s.p999 == null ? '-' : f(s.p999)), cell('max'));
  }
  function latencyTable(F, prefix) {
    const rows = LATENCY_ROWS.filter(([k]) => F.latency_us[k] && F.latency_us[k].count > 0)
      .map(([k, label]) => summaryRow(label, F.latency_us[k], us, prefix + 'latency_us.' + k));
    if (F.events_per_stream && F.events_per_stream.count > 0) {
      rows.push(summaryRow('events/stream', F.events_per_stream, int, prefix + 'events_per_stream'));
    }
    return table('Latency', SUMMARY_HEAD, rows);
  }
  function summary() {
    const s = R.streams, ev = R.events;
    const failures = Object.entries(s.failures || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const arr = s.arrivals;
    const comp = s.compressed || {};
    const blocks = [
      kv('Streams', [
        ['started', fig('streams.started', int(s.started))], ['completed', int(s.completed)],
        ['failed', fig('streams.failed', int(s.failed))], ['still open at the end', int(s.interrupted)],
        ['peak concurrent', int(s.peak_concurrent)], ['success rate', pct(s.success_rate)],
        ['reconnects', int(s.reconnects)], ['redirects', int(s.redirects)],
        s.stale_keepalive ? ['stale keep-alive', int(s.stale_keepalive)] : null,
        s.users_stopped_by_204 ? ['users stopped by 204', int(s.users_stopped_by_204)] : null,
        arr ? ['arrivals', `${int(arr.scheduled)} scheduled, ${int(arr.started)} started, ${int(arr.dropped)} dropped, ${int(arr.late)} late`] : null,
        (comp.gzip || comp.deflate || comp.br) ? ['compressed', `gzip ${int(comp.gzip)}, deflate ${int(comp.deflate)}, br ${int(comp.br)}`] : null,
      ]),
      table('Failures by class', ['class', 'streams'],
        failures.length ? failures.map(([k, n]) => el('tr', {}, el('td', {}, k), el('td', { 'data-figure': 'streams.failures.' + k }, int(n))))
          : [el('tr', {}, el('td', { class: 'empty', colspan: 2 }, 'none'))]),
      kv('Events', [
        ['received', fig('events.received', int(ev.received))], ['per second', fixed(ev.per_second, 1)],
        ['per stream per second', fixed(ev.per_stream_per_second, 2)], ['bytes', fig('events.bytes', int(ev.bytes))],
        ['MB/s', fixed(ev.bytes_per_second / 1e6, 3)], ['stalls', int(ev.stalls)], ['lost', int(ev.lost)],
        ['duplicated', int(ev.duplicates)],
      ]),
      R.delivery && R.delivery.verdict ? kv('Delivery', [
        ['verdict', el('span', { 'data-figure': 'delivery.verdict' }, R.delivery.verdict)],
        ['evidence', R.delivery.evidence],
        ['send times', R.delivery.send_time || 'none (--send-time)'],
        ['events per read', fixed(R.delivery.events_per_read, 2)],
        R.delivery.negative_lag_events ? ['received before sent', int(R.delivery.negative_lag_events)] : null,
        R.delivery.events_without_send_time ? ['without a send time', int(R.delivery.events_without_send_time)] : null,
        ...(R.delivery.cuts || []).map((c) => ['cut', `${int(c.count)} streams at ~${fixed(c.age_s, 1)} s (±${fixed(c.spread_s, 1)} s) ${c.idle ? 'while idle: an idle timeout' : 'while flowing: a maximum-duration timeout'} on the way`]),
        R.delivery.compressed_streams ? ['compressed streams', int(R.delivery.compressed_streams) + ' (a buffering risk)'] : null,
      ]) : null,
      R.generator ? kv('Generator', [
        ['saturated', el('span', { 'data-figure': 'generator.saturated' }, R.generator.saturated ? 'yes: latencies include its own queueing' : 'no')],
        ['busiest core', pct(R.generator.busy_max)],
        (R.generator.cores_busy || []).length ? ['each core over the run', R.generator.cores_busy.map(pct).join(', ')] : null,
        ['timers late by at most', us(R.generator.loop_lag_max_us)],
        (R.generator.saturated_intervals || []).length ? ['saturated intervals',
          R.generator.saturated_intervals.map((i) => `${fixed(i.t_s, 1)} s`).join(', ')] : null,
      ]) : null,
      R.memory ? kv('Generator memory', [
        ['resident before connecting', fixed(R.memory.rss_before_kib / 1024, 1) + ' MB'],
        ['peak', `${fixed(R.memory.rss_peak_kib / 1024, 1)} MB (${R.memory.peak_source})`],
        ['per stream', int(R.memory.per_stream_bytes) + ' B'],
      ]) : null,
    ];
    section('summary', 'Summary', el('div', { class: 'tables' }, blocks), latencyTable(R, ''), LLM ? llmTables() : null);
  }
  function llmTables() {
    const l = R.llm;
    const fr = l.finish_reasons || {};
    const tokens = kv('Tokens', [
      ['output', fig('llm.output_tokens', int(l.output_tokens)) ], ['output per second', fixed(l.output_tokens_per_s, 1)],
      ['input', int(l.input_tokens)], ['input per second', fixed(l.input_tokens_per_s, 1)],
      ['reasoning', int(l.reasoning_tokens)], ['output chunks', int(l.output_chunks)],
      ['role-only chunks', int(l.role_only_chunks)], ['streams with usage', int(l.streams_with_usage)],
      ['streams estimated', int(l.streams_estimated)], ['unparsed chunks', int(l.unparsed_chunks)],
      ['missing [DONE]', int(l.missing_done)],
      ['finish reasons', `stop ${int(fr.stop)}, length ${int(fr.length)}, other ${int(fr.other)}`],
    ].concat(l.by_end ? [
      // Apart by how streams ended: a cut stream's count says when it was cut, not how long answers are.
      ['completed streams', int(l.by_end.completed_streams)],
      ['output tokens per completed stream', fig('llm.by_end.completed_output_tokens_mean', fixed(l.by_end.completed_output_tokens_mean, 1))],
      ['cut by the run\'s end', `${int(l.by_end.cut_streams)} streams, ${int(l.by_end.cut_output_tokens)} tokens`],
      ['failed', `${int(l.by_end.failed_streams)} streams, ${int(l.by_end.failed_output_tokens)} tokens`],
    ] : []));
    const rows = [
      ['ttft_us', 'TTFT', us], ['first_reasoning_us', 'first reasoning', us], ['itl_us', 'ITL', us],
      ['tpot_us', 'TPOT', us], ['generation_us', 'generation', us],
      ['output_tokens_per_s_per_stream', 'output tokens/s per stream', int],
      ['output_tokens_per_stream', 'output tokens per completed stream', int],
      ['tokens_per_chunk', 'tokens per chunk', (x) => fixed(x, 2)],
    ].filter(([k]) => l[k] && l[k].count > 0).map(([k, label, f]) => summaryRow(label, l[k], f, 'llm.' + k));
    const parts = [el('div', { class: 'tables' }, tokens, table('Token timings', SUMMARY_HEAD, rows))];
    if (l.turns && l.turns.length) {
      parts.push(table('Per turn', ['turn', 'streams', 'failed', 'completed', 'TTFT p50', 'TTFT p99', 'ITL p50', 'ITL p99', 'input tokens', 'output tokens'],
        l.turns.map((t) => el('tr', {}, el('td', {}, t.turn), el('td', {}, int(t.streams)), el('td', {}, int(t.failed)),
          el('td', {}, t.completed == null ? '-' : int(t.completed)),
          el('td', {}, us(t.ttft_us.p50)), el('td', {}, us(t.ttft_us.p99)), el('td', {}, us(t.itl_us.p50)), el('td', {}, us(t.itl_us.p99)),
          el('td', {}, fixed(t.input_tokens_mean, 1)), el('td', {}, fixed(t.output_tokens_mean, 1))))));
    }
    if (l.steps && l.steps.length) {
      parts.push(table('Per HTTP step', ['step', 'ok', 'failed', 'p50', 'p99', 'max'],
        l.steps.map((s) => el('tr', {}, el('td', {}, s.name), el('td', {}, int(s.ok)), el('td', {}, int(s.failed)),
          el('td', {}, us(s.latency_us.p50)), el('td', {}, us(s.latency_us.p99)), el('td', {}, us(s.latency_us.max))))));
    }
    return parts;
  }

  // ---- charts -------------------------------------------------------------------------------------------------------
  const COLORS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7d8c', '#6e7781', '#fb8f44'];
  const PCT_COLORS = { p50: '#1f6feb', p90: '#9a6700', p99: '#d1242f' };

  // Stages shaded and labelled behind the series, the breakpoint marked: a uPlot plugin (its documented hook API).
  function stagesPlugin() {
    return {
      hooks: {
        drawClear: [(u) => {
          const ctx = u.ctx, { top, height } = u.bbox;
          STAGES.forEach((s, i) => {
            const x0 = u.valToPos(s.start_s, 'x', true), x1 = u.valToPos(s.end_s, 'x', true);
            ctx.fillStyle = i % 2 ? 'rgba(31,111,235,0.04)' : 'rgba(31,111,235,0.10)';
            ctx.fillRect(x0, top, x1 - x0, height);
          });
        }],
        draw: [(u) => {
          const ctx = u.ctx, { top, height } = u.bbox, px = devicePixelRatio || 1;
          ctx.save();
          ctx.font = `${11 * px}px sans-serif`;
          ctx.textBaseline = 'top';
          ctx.textAlign = 'left';
          STAGES.forEach((s) => {
            const x0 = u.valToPos(s.start_s, 'x', true);
            ctx.fillStyle = '#57606a';
            ctx.fillText(`stage ${s.stage} · ${s.target_streams}`, x0 + 4 * px, top + 3 * px);
          });
          if (R.breakpoint) {
            const s = STAGES[R.breakpoint.stage - 1];
            if (s) {
              const x = u.valToPos(s.start_s, 'x', true);
              ctx.strokeStyle = '#d1242f';
              ctx.lineWidth = 2 * px;
              ctx.setLineDash([6 * px, 4 * px]);
              ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
              ctx.fillStyle = '#d1242f';
              ctx.fillText('breakpoint', x + 4 * px, top + 16 * px);
            }
          }
          ctx.restore();
        }],
      },
    };
  }

  // Marks the chart drawn, for the tests (and for anyone checking the page in a browser's inspector).
  const drawnPlugin = { hooks: { draw: [(u) => { u.root.parentNode.dataset.drawn = String(u.data[0].length); }] } };

  function addChart(grid, id, title, note, opts, data) {
    const box = el('div', { class: 'chart', 'data-chart': id });
    grid.append(box);
    if (!data[0].length) {
      box.append(el('div', { class: 'u-title' }, title), el('p', { class: 'empty' }, 'no data'));
      box.dataset.drawn = '0';
      return;
    }
    const width = Math.max(400, box.clientWidth - 14);
    const o = Object.assign({ title, width, height: 260 }, opts);
    o.plugins = [drawnPlugin].concat(opts.plugins || []);
    charts.push({ box, plot: new uPlot(o, data, box) });
    if (note) box.append(el('p', { class: 'note' }, note));
  }
  window.addEventListener('resize', () => {
    for (const c of charts) c.plot.setSize({ width: Math.max(400, c.box.clientWidth - 14), height: 260 });
  });

  // Axis labels: three significant digits; a tick a log scale leaves out comes as null.
  const ticks = (u, v) => v.map((x) => (x == null ? '' : +x.toPrecision(3)));
  const line = (label, color, extra) => Object.assign({ label, stroke: color, width: 1.5, points: { show: false } }, extra || {});
  const fromZero = { range: (u, min, max) => [0, max > 0 ? max * 1.08 : 1] };
  const timeAxis = { label: 'seconds since start', values: (u, v) => v.map((x) => x + ' s') };
  function timeOpts(series, axes, extra) {
    return Object.assign({
      // From the run's start, so the first stage's band and label show whole.
      // From zero on both axes: a rate axis starting near its data makes 2 % look like a collapse.
      scales: { x: { time: false, range: (u, min, max) => [0, max] }, y: fromZero, ev: fromZero, mb: fromZero },
      series: [{ label: 't', value: (u, v) => (v == null ? '-' : fixed(v, 1) + ' s') }].concat(series),
      axes: [timeAxis].concat(axes),
      // Hovering one chart over time shows the same moment on all of them.
      cursor: { sync: { key: 'time' } },
      plugins: STAGES.length ? [stagesPlugin()] : [],
    }, extra || {});
  }

  function overTime() {
    const s = section('over-time', 'Over time');
    if (!TL.length) {
      s.append(el('p', { class: 'empty' }, 'This report has no timeline (written by an older ssebench, or merged from reports without one).'));
      return;
    }
    s.append(el('p', { class: 'note' }, 'One point per --report-interval, at its end. Rates are per second over the ' +
      'interval; a last interval much shorter than the others (the run ending) is left out. Hover a chart for exact values.'));
    const grid = el('div', { class: 'charts' });
    s.append(grid);
    // A last interval cut short by the run's end (a few ms) would make its rates spikes or dips, and squeeze the
    // bars to the width of its sliver: the charts leave it out (its counts are in the totals above).
    const span = (e, i) => e.t_s - (i ? TL[i - 1].t_s : 0);
    const usual = TL.map(span).sort((a, b) => a - b)[Math.floor(TL.length / 2)];
    const rows = TL.filter((e, i) => !(i === TL.length - 1 && i > 0 && span(e, i) < usual / 2));
    const t = rows.map((e) => e.t_s);
    const dt = rows.map((e, i) => e.t_s - (i ? rows[i - 1].t_s : 0));
    const perS = (f) => rows.map((e, i) => (dt[i] > 0 ? f(e) / dt[i] : null));
    const lat = (get, k) => rows.map((e) => { const q = get(e); return q && q[k] != null ? q[k] / 1000 : null; });
    const msAxis = { label: 'ms', size: 60, values: ticks };
    const msVal = (u, v) => ms(v);
    // Points too: an interval without a sample leaves a gap, and a sample between two gaps would not show as a line.
    const pts = { show: true, size: 4 };
    const count = (u, v) => (v == null ? '-' : int(v));
    const rate = (u, v) => (v == null ? '-' : fixed(v, 1) + '/s');

    // Open streams against the stage target.
    const openSeries = [line('open streams', COLORS[0], { value: count, fill: 'rgba(31,111,235,0.08)' })];
    const openData = [t, rows.map((e) => e.open_streams)];
    if (STAGES.length) {
      openSeries.push(line('target', '#57606a', { value: count, dash: [5, 4], paths: uPlot.paths.stepped({ align: -1 }) }));
      openData.push(rows.map((e) => (STAGES[e.stage] ? STAGES[e.stage].target_streams : null)));
    }
    addChart(grid, 'open_streams', 'Open streams' + (STAGES.length ? ' against the stage target' : ''),
      STAGES.length ? 'Shaded bands are the stages (label: stage · target streams).' : null,
      timeOpts(openSeries, [{ label: 'streams', size: 60 }]), openData);

    // Streams started per second, failures stacked by class (bars drawn tallest first, so each shows its own share).
    const classes = [...new Set(rows.flatMap((e) => Object.keys(e.failures || {})))].sort();
    const raw = classes.map((c) => perS((e) => (e.failures || {})[c] || 0));
    const stacked = raw.map((_, j) => t.map((_, i) => raw.slice(0, j + 1).reduce((a, r) => a + (r[i] || 0), 0)));
    const bars = uPlot.paths.bars({ size: [0.7, 40] });
    const failSeries = [], failData = [];
    for (let j = classes.length - 1; j >= 0; j--) {
      const c = COLORS[(j + 1) % COLORS.length];
      failSeries.push({ label: 'failed: ' + classes[j], stroke: c, fill: c + 'b0', paths: bars, points: { show: false },
        value: ((r) => (u, v, si, i) => (i == null ? '-' : fixed(r[i], 1) + '/s'))(raw[j]) });
      failData.push(stacked[j]);
    }
    addChart(grid, 'starts_failures', 'Streams started and failed per second',
      classes.length ? 'Failures are stacked by class; hover shows each class\'s own rate.' : 'No stream failed.',
      timeOpts(failSeries.concat([line('started', COLORS[0], { value: rate })]), [{ label: 'streams/s', size: 60 }]),
      [t].concat(failData, [perS((e) => e.started)]));

    // Events/s and MB/s, on two axes.
    addChart(grid, 'throughput', 'Events/s and MB/s', null,
      timeOpts([line('events/s', COLORS[0], { value: rate, scale: 'ev' }),
        line('MB/s', COLORS[2], { dash: [6, 4], value: (u, v) => (v == null ? '-' : fixed(v, 3) + ' MB/s'), scale: 'mb' })],
      [{ label: 'events/s', scale: 'ev', size: 70 }, { label: 'MB/s', scale: 'mb', side: 1, grid: { show: false }, size: 60 }]),
      [t, perS((e) => e.events), perS((e) => e.bytes / 1e6)]);

    // First event (LLM: TTFT) and gap (LLM: ITL) percentiles per interval.
    const firstGet = LLM ? (e) => e.llm && e.llm.ttft : (e) => e.latency_us.first_event_us;
    const gapGet = LLM ? (e) => e.llm && e.llm.itl : (e) => e.latency_us.gap_us;
    addChart(grid, LLM ? 'ttft' : 'first_event', (LLM ? 'TTFT' : 'First event') + ' p50 / p90 / p99 per interval', null,
      timeOpts(['p50', 'p90', 'p99'].map((k) => line(k, PCT_COLORS[k], { value: msVal, points: pts })), [msAxis]),
      [t].concat(['p50', 'p90', 'p99'].map((k) => lat(firstGet, k))));
    addChart(grid, LLM ? 'itl' : 'gap', (LLM ? 'ITL' : 'Event gap') + ' p50 / p99 per interval', null,
      timeOpts(['p50', 'p99'].map((k) => line(k, PCT_COLORS[k], { value: msVal, points: pts })), [msAxis]),
      [t].concat(['p50', 'p99'].map((k) => lat(gapGet, k))));

    addChart(grid, 'reconnects', 'Reconnects per second', R.streams.reconnects ? null : 'No stream reconnected in this run.',
      timeOpts([line('reconnects', COLORS[4], { value: rate })], [{ label: 'reconnects/s', size: 60 }]),
      [t, perS((e) => e.reconnects)]);
    if (LLM) {
      addChart(grid, 'output_tokens', 'Output tokens per second', null,
        timeOpts([line('output tokens/s', COLORS[2], { value: rate, fill: 'rgba(26,127,55,0.08)' })], [{ label: 'tokens/s', size: 70 }]),
        [t, perS((e) => (e.llm ? e.llm.output_tokens : 0))]);
    }
  }

  // Percentile curves from the serialized histograms: x in "nines" (0 = 0 %, 2 = 99 %, 4 = 99.99 %), y on a log scale.
  function distributions() {
    const s = section('distributions', 'Distributions');
    const grid = el('div', { class: 'charts' });
    s.append(grid);
    const nines = (x) => +(100 * (1 - Math.pow(10, -x))).toPrecision(6) + '%';
    const curve = (id, title, names, unit) => {
      const present = names.filter(([n]) => D.distributions[n]);
      const xs = present.length ? D.distributions[present[0][0]].map((p) => p[0]) : [];
      const fmt = unit === 'us' ? (u, v) => ms(v) : (u, v) => (v == null ? '-' : fixed(v, unit === 'x100' ? 2 : 0));
      const scale = unit === 'us' ? 1 / 1000 : 1;
      addChart(grid, id, title, present.length ? null : 'No samples.', {
        scales: { x: { time: false }, y: { distr: 3 } },
        series: [{ label: 'percentile', value: (u, v) => (v == null ? '-' : nines(v)) }]
          .concat(present.map(([, label], i) => line(label, COLORS[i], { value: fmt }))),
        axes: [{ label: 'percentile', splits: () => [0, 1, 2, 3, 4], values: (u, v) => v.map(nines) },
          { label: unit === 'us' ? 'ms (log)' : (unit === 'x100' ? 'tokens (log)' : 'events (log)'), size: 60,
            values: ticks }],
      }, [xs].concat(present.map(([n]) => D.distributions[n].map((p) => (p[1] > 0 ? p[1] * scale : null)))));
    };
    curve('dist_first_event', 'First event' + (LLM ? ' and TTFT' : '') + ': latency by percentile',
      [['first_event', 'first event'], ['ttft', 'TTFT']], 'us');
    curve('dist_gap', 'Event gap' + (LLM ? ' and ITL' : '') + ': latency by percentile', [['gap', 'event gap'], ['itl', 'ITL']], 'us');
    curve('dist_stream', 'Stream duration by percentile', [['stream', 'stream']], 'us');
    curve('dist_events_per_stream', 'Events per stream by percentile', [['events_per_stream', 'events per stream']], 'n');
    if (LLM) curve('dist_tokens_per_chunk', 'Tokens per chunk by percentile', [['tokens_per_chunk', 'tokens per chunk']], 'x100');
  }

  // ---- stages -------------------------------------------------------------------------------------------------------
  function stages() {
    const turns = LLM && R.llm.turns && R.llm.turns.length ? R.llm.turns : null;
    if (!STAGES.length && !turns) return;
    const s = section('stages', STAGES.length ? 'Stages' : 'Turns');
    if (STAGES.length) {
      const key = LLM ? 'TTFT' : 'first event';
      const q = (st) => (LLM && st.llm ? st.llm.ttft_us : st.latency_us.first_event);
      s.append(table(null, ['stage', 'target', 'window', 'open at start', 'open at end', 'started', 'failed', 'success',
        'events/s', key + ' p50', key + ' p99', 'SLOs'],
      STAGES.map((st) => el('tr', { class: R.breakpoint && R.breakpoint.stage === st.stage ? 'broken' : null },
        el('td', {}, st.stage), el('td', {}, int(st.target_streams)), el('td', {}, `${fixed(st.start_s, 1)}–${fixed(st.end_s, 1)} s`),
        el('td', {}, int(st.streams.open_at_start)), el('td', {}, int(st.open_at_end)),
        el('td', { 'data-figure': `stages.${st.stage}.streams.started` }, int(st.streams.started)),
        el('td', {}, int(st.streams.failed)), el('td', {}, pct(st.streams.success_rate)), el('td', {}, fixed(st.events.per_second, 1)),
        el('td', {}, us(q(st).p50)), el('td', {}, us(q(st).p99)),
        el('td', {}, (st.slos || []).length ? (st.slos.every((v) => v.pass) ? 'pass' : 'FAIL: ' + st.slos.filter((v) => !v.pass).map((v) => v.slo).join(', ')) : '-'))),
      { class: 'stage-table' }));
    }
    if (turns) {
      const grid = el('div', { class: 'charts' });
      s.append(grid);
      addChart(grid, 'ttft_by_turn', 'TTFT by conversation turn', null, {
        scales: { x: { time: false } },
        series: [{ label: 'turn' }].concat(['p50', 'p90', 'p99'].map((k) => line(k, PCT_COLORS[k], { value: (u, v) => ms(v), points: { show: true, size: 7 } }))),
        axes: [{ label: 'turn', splits: () => turns.map((x) => x.turn), values: (u, v) => v.map(String) }, { label: 'ms', size: 60 }],
      }, [turns.map((x) => x.turn)].concat(['p50', 'p90', 'p99'].map((k) => turns.map((x) => x.ttft_us[k] / 1000))));
    }
  }

  header();
  main.append(cards());
  summary();
  overTime();
  distributions();
  stages();
  document.body.dataset.charts = String(charts.length + document.querySelectorAll('.chart[data-drawn="0"]').length);
})();
