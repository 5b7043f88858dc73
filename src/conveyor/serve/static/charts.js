// The dashboard's charts (conveyor serve): every <figure data-chart> that the macros of
// templates/_charts.html render is drawn here with the vendored uPlot, from the JSON in
// its <script type="application/json">. The figure's table stays the source a screen
// reader or a page without scripts reads; the chart is the picture of it.
//
// Colour-blind safe: colours are the Okabe-Ito palette read from app.css, and no
// status is told by colour alone: each has a fill pattern and a symbol, the critical
// path an outline and a star, each series of a time chart its own dash. Light and dark
// follow prefers-color-scheme (the charts are redrawn when it changes). Keyboard: each
// bar of a Gantt chart is a link (or button) in the tab order, and the arrow keys read
// a time chart point by point. Text is only ever set with textContent.
(function () {
  "use strict";

  var STATUSES = ["success", "failed", "cached", "skipped", "cancelled", "running"];
  var SYMBOL = {
    success: "\u2713", failed: "\u2717", cached: "\u21BA", skipped: "\u2192",
    cancelled: "\u2298", running: "\u25B6"
  };
  // A pattern over the status colour, so two statuses differ without their colours.
  var PATTERN = {
    success: null, failed: "hatch", cached: "dots", skipped: "outline",
    cancelled: "cross", running: "vertical"
  };
  var DASHES = [[], [7, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2]];
  // Tick steps for a time axis in seconds: round seconds, minutes and hours.
  var SECOND_STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15,
    30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  var charts = [];
  var scheme = window.matchMedia("(prefers-color-scheme: dark)");

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function palette() {
    var status = {};
    STATUSES.forEach(function (s) { status[s] = css("--st-" + s); });
    var series = [];
    for (var i = 1; i <= 6; i++) { series.push(css("--series-" + i)); }
    return {
      fg: css("--fg"), muted: css("--fg-muted"), bg: css("--bg-raised"),
      grid: css("--grid"), border: css("--border"), status: status, series: series,
      font: "12px " + (css("--sans") || "sans-serif")
    };
  }

  function alpha(color, a) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
    if (!m) { return color; }
    return "rgba(" + parseInt(m[1], 16) + "," + parseInt(m[2], 16) + "," +
      parseInt(m[3], 16) + "," + a + ")";
  }

  // ---- numbers for people ----

  function seconds(v) {
    if (v === null || v === undefined) { return "no data"; }
    if (v < 10) { return v.toFixed(2) + " s"; }
    if (v < 60) { return v.toFixed(1) + " s"; }
    if (v < 3600) {
      return Math.floor(v / 60) + "m " + String(Math.floor(v % 60)).padStart(2, "0") + "s";
    }
    return Math.floor(v / 3600) + "h " +
      String(Math.floor((v % 3600) / 60)).padStart(2, "0") + "m";
  }

  function axisSeconds(v) {
    if (v === 0) { return "0"; }
    // Below a second the steps are milliseconds: "0.005 s" rounded to two places
    // printed 0.01s beside 0.01s on a 46 ms run's timeline.
    if (v < 1) { return +(v * 1000).toFixed(0) + "ms"; }
    if (v < 60) { return +v.toFixed(2) + "s"; }
    if (v < 3600) { return +(v / 60).toFixed(1) + "m"; }
    return +(v / 3600).toFixed(1) + "h";
  }

  function value(v, unit) {
    if (v === null || v === undefined) { return "no data"; }
    if (unit === "%") { return v.toFixed(1) + "%"; }
    if (unit === "count") { return String(Math.round(v)); }
    return seconds(v);
  }

  function axisValue(v, unit) {
    if (unit === "%") { return Math.round(v) + "%"; }
    if (unit === "count") { return String(+v.toFixed(1)); }
    return axisSeconds(v);
  }

  function day(unix, withTime) {
    var iso = new Date(unix * 1000).toISOString();
    return withTime ? iso.slice(0, 16).replace("T", " ") : iso.slice(0, 10);
  }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) { e.className = className; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  // ---- fills: the status colour, a pattern over it, an outline ----

  function pattern(ctx, kind, ink, px) {
    var size = Math.round(8 * px);
    var c = document.createElement("canvas");
    c.width = size;
    c.height = size;
    var p = c.getContext("2d");
    p.strokeStyle = ink;
    p.fillStyle = ink;
    p.lineWidth = Math.max(1, 1.6 * px);
    p.beginPath();
    if (kind === "hatch" || kind === "cross") {
      p.moveTo(0, size); p.lineTo(size, 0);
      p.moveTo(-size / 2, size / 2); p.lineTo(size / 2, -size / 2);
      p.moveTo(size / 2, size * 1.5); p.lineTo(size * 1.5, size / 2);
    }
    if (kind === "cross") {
      p.moveTo(0, 0); p.lineTo(size, size);
      p.moveTo(-size / 2, size / 2); p.lineTo(size / 2, size * 1.5);
      p.moveTo(size / 2, -size / 2); p.lineTo(size * 1.5, size / 2);
    }
    if (kind === "vertical") {
      p.moveTo(size / 2, 0); p.lineTo(size / 2, size);
    }
    p.stroke();
    if (kind === "dots") {
      p.beginPath();
      p.arc(size / 2, size / 2, 1.5 * px, 0, 2 * Math.PI);
      p.fill();
    }
    return ctx.createPattern(c, "repeat");
  }

  function paintBar(ctx, x, y, w, h, status, critical, pal, px) {
    var color = pal.status[status] || pal.status.skipped;
    var kind = PATTERN[status];
    if (kind === "outline") {
      ctx.setLineDash([3 * px, 2 * px]);
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5 * px;
      ctx.strokeRect(x + 0.75 * px, y + 0.75 * px, Math.max(0, w - 1.5 * px), h - 1.5 * px);
      ctx.setLineDash([]);
    } else {
      ctx.fillStyle = color;
      ctx.fillRect(x, y, w, h);
      if (kind) {
        ctx.fillStyle = pattern(ctx, kind, "rgba(255,255,255,0.75)", px);
        ctx.fillRect(x, y, w, h);
      }
    }
    if (critical) {
      ctx.strokeStyle = pal.fg;
      ctx.lineWidth = 2.5 * px;
      ctx.strokeRect(x - 2 * px, y - 2 * px, w + 4 * px, h + 4 * px);
    }
  }

  function swatch(status, critical, pal) {
    var px = window.devicePixelRatio || 1;
    var c = document.createElement("canvas");
    c.width = Math.round(30 * px);
    c.height = Math.round(16 * px);
    c.className = "swatch";
    c.setAttribute("aria-hidden", "true");
    var ctx = c.getContext("2d");
    paintBar(ctx, 3 * px, 3 * px, 24 * px, 10 * px, status, critical, pal, px);
    c.style.width = "30px";
    c.style.height = "16px";
    return c;
  }

  function legend(items) {
    var ul = el("ul", "chart-legend");
    items.forEach(function (item) {
      var li = el("li");
      li.appendChild(item[0]);
      li.appendChild(el("span", "", item[1]));
      ul.appendChild(li);
    });
    return ul;
  }

  function showTip(tip, lines, left, top, box) {
    tip.textContent = "";
    lines.forEach(function (line, i) {
      if (i) { tip.appendChild(document.createElement("br")); }
      tip.appendChild(document.createTextNode(line));
    });
    tip.hidden = false;
    var w = tip.offsetWidth;
    var h = tip.offsetHeight;
    var x = Math.min(Math.max(0, left), Math.max(0, box.width - w));
    var y = top - h - 8 < 0 ? top + 8 : top - h - 8;
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  // ---- the Gantt chart: one row per job, bars from start to end ----

  function gantt(fig, plot, jobs, pal) {
    if (!jobs.length) {
      plot.appendChild(el("p", "chart-empty", "No job ran."));
      return null;
    }
    var n = jobs.length;
    var rowH = 28;
    var px = window.devicePixelRatio || 1;
    var end = 0;
    jobs.forEach(function (j) { end = Math.max(end, j.end || 0, j.start || 0); });
    if (end <= 0) { end = 1; }
    var names = jobs.map(function (j) { return (j.critical ? "\u2605 " : "") + j.name; });
    var measure = document.createElement("canvas").getContext("2d");
    measure.font = pal.font;
    // The names take at most a third of a narrow chart, 260 pixels of a wide one; a
    // longer one is cut with an ellipsis (the bar's label and tooltip have it whole).
    function labels(width) {
      var room = Math.min(260, Math.max(60, width / 3)) - 14;
      return names.map(function (s) {
        if (measure.measureText(s).width <= room) { return s; }
        var cut = s;
        while (cut.length > 1 && measure.measureText(cut + "\u2026").width > room) {
          cut = cut.slice(0, -1);
        }
        return cut + "\u2026";
      });
    }
    function labelSize(width) {
      var widest = 0;
      labels(width).forEach(function (s) { widest = Math.max(widest, measure.measureText(s).width); });
      return Math.ceil(widest) + 14;
    }
    var row = function (i) { return n - 1 - i; };
    var bars = [];
    var tip = el("div", "chart-tip");
    tip.hidden = true;
    tip.setAttribute("aria-hidden", "true");

    // What a bar says: its tooltip shows the symbols, a screen reader gets the words.
    function describe(j, symbols) {
      var d = Math.max(0, (j.end || 0) - (j.start || 0));
      return [
        j.name,
        j.status + (symbols ? " " + (SYMBOL[j.status] || "") : "") +
          (j.critical ? ", on the critical path" + (symbols ? " \u2605" : "") : ""),
        "started at " + seconds(j.start || 0) + ", took " + seconds(d)
      ];
    }

    function place(u) {
      var bh = rowH * 0.6;
      jobs.forEach(function (j, i) {
        var x0 = u.valToPos(j.start || 0, "x");
        var x1 = u.valToPos(Math.max(j.end || 0, j.start || 0), "x");
        var yc = u.valToPos(row(i), "y");
        var b = bars[i];
        b.style.left = x0 + "px";
        b.style.top = (yc - bh / 2) + "px";
        b.style.width = Math.max(4, x1 - x0) + "px";
        b.style.height = bh + "px";
      });
    }

    function draw(u) {
      var ctx = u.ctx;
      var bh = rowH * 0.6 * px;
      var box = u.bbox;
      ctx.save();
      ctx.beginPath();
      // the symbols may stand in the right padding, past the last bar
      ctx.rect(box.left - 4 * px, box.top, box.width + 26 * px, box.height);
      ctx.clip();
      ctx.textBaseline = "middle";
      ctx.font = Math.round(13 * px) + "px " + (css("--sans") || "sans-serif");
      jobs.forEach(function (j, i) {
        var x0 = u.valToPos(j.start || 0, "x", true);
        var x1 = u.valToPos(Math.max(j.end || 0, j.start || 0), "x", true);
        var w = Math.max(3 * px, x1 - x0);
        var yc = u.valToPos(row(i), "y", true);
        paintBar(ctx, x0, yc - bh / 2, w, bh, j.status, j.critical, pal, px);
        // the status' symbol beside its bar: a shape, not only a colour
        var sym = SYMBOL[j.status] || "?";
        var right = x0 + w + (j.critical ? 8 : 5) * px;
        var fits = right + 14 * px <= box.left + box.width + 22 * px;
        ctx.fillStyle = pal.fg;
        ctx.fillText(sym, fits ? right : Math.max(box.left, x0 - 16 * px), yc);
      });
      ctx.restore();
      place(u);
    }

    var opts = {
      width: Math.max(280, plot.clientWidth),
      height: n * rowH + 44,
      padding: [8, 22, 0, 4],
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: {
        x: { time: false, range: [0, end * 1.04] },
        y: { range: [-0.5, n - 0.5] }
      },
      axes: [
        {
          stroke: pal.fg, font: pal.font,
          grid: { stroke: pal.grid, width: 1 },
          ticks: { stroke: pal.grid, width: 1 },
          incrs: SECOND_STEPS,
          values: function (u, splits) { return splits.map(axisSeconds); }
        },
        {
          stroke: pal.fg, font: pal.font, gap: 6,
          size: function (u) { return labelSize(u.width); },
          grid: { show: false }, ticks: { show: false },
          splits: function () { return jobs.map(function (_, i) { return i; }); },
          values: function (u, splits) {
            var shown = labels(u.width);
            return splits.map(function (v) { return shown[n - 1 - v] || ""; });
          }
        }
      ],
      series: [{}, { label: "jobs", stroke: "transparent", points: { show: false } }],
      hooks: { draw: [draw] }
    };
    var u = new uPlot(opts, [[0, end], [null, null]], plot);
    u.root.querySelectorAll("canvas").forEach(function (c) {
      c.setAttribute("aria-hidden", "true");
    });

    jobs.forEach(function (j, i) {
      var b;
      if (j.href) {
        b = el("a", "gantt-bar");
        b.href = j.href;
      } else {
        b = el("button", "gantt-bar");
        b.type = "button";
      }
      var words = describe(j, true);
      // the tooltip below shows on hover and on focus alike (a title would not on focus,
      // and would show twice on hover)
      b.setAttribute("aria-label", describe(j, false).join(", "));
      b.dataset.job = j.name;
      var show = function () {
        var box = { width: u.over.clientWidth };
        showTip(tip, words, b.offsetLeft, b.offsetTop, box);
      };
      var hide = function () { tip.hidden = true; };
      b.addEventListener("focus", show);
      b.addEventListener("mouseenter", show);
      b.addEventListener("blur", hide);
      b.addEventListener("mouseleave", hide);
      b.addEventListener("keydown", function (e) {
        var to = null;
        if (e.key === "ArrowDown" || e.key === "ArrowRight") { to = i + 1; }
        if (e.key === "ArrowUp" || e.key === "ArrowLeft") { to = i - 1; }
        if (e.key === "Home") { to = 0; }
        if (e.key === "End") { to = n - 1; }
        if (e.key === "Escape") { hide(); return; }
        if (to !== null && to >= 0 && to < n) {
          e.preventDefault();
          bars[to].focus();
        }
      });
      bars.push(b);
      u.over.appendChild(b);
    });
    u.over.appendChild(tip);
    place(u);

    var seen = {};
    var items = [];
    jobs.forEach(function (j) {
      if (!seen[j.status]) {
        seen[j.status] = true;
        items.push([swatch(j.status, false, pal), (SYMBOL[j.status] || "") + " " + j.status]);
      }
    });
    if (jobs.some(function (j) { return j.critical; })) {
      items.push([swatch("success", true, pal), "\u2605 critical path (outlined)"]);
    }
    plot.appendChild(legend(items));
    return { plot: u, height: opts.height };
  }

  // ---- a time series: one line per series, a scale per unit ----

  function timeseries(fig, plot, data, pal) {
    var xs = data.x || [];
    var series = data.series || [];
    if (!xs.length || !series.length) {
      plot.appendChild(el("p", "chart-empty", "No data in this window."));
      return null;
    }
    var withTime = xs.length > 1 && xs[xs.length - 1] - xs[0] < 3 * 86400;
    var units = [];
    series.forEach(function (s) { if (units.indexOf(s.unit) < 0) { units.push(s.unit); } });
    var scales = { x: { time: true } };
    units.forEach(function (unit) {
      scales[unit] = {
        range: function (u, min, max) {
          if (unit === "%") { return [0, 100]; }
          return [0, max !== null && max > 0 ? max * 1.1 : 1];
        }
      };
    });
    var axes = [{
      stroke: pal.fg, font: pal.font,
      grid: { stroke: pal.grid, width: 1 }, ticks: { stroke: pal.grid, width: 1 }
    }];
    units.slice(0, 2).forEach(function (unit, k) {
      axes.push({
        scale: unit, side: k ? 1 : 3, stroke: pal.fg, font: pal.font, size: 54,
        grid: { show: k === 0, stroke: pal.grid, width: 1 },
        ticks: { stroke: pal.grid, width: 1 },
        incrs: unit === "s" ? SECOND_STEPS : undefined,
        values: function (u, splits) {
          return splits.map(function (v) { return axisValue(v, unit); });
        }
      });
    });
    var few = xs.length <= 40;
    var opts = {
      width: Math.max(280, plot.clientWidth),
      height: 220,
      legend: { show: false },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      cursor: { drag: { x: false, y: false }, points: { size: 8 } },
      select: { show: false },
      scales: scales,
      axes: axes,
      series: [{}].concat(series.map(function (s, i) {
        var color = pal.series[i % pal.series.length];
        return {
          label: s.label, scale: s.unit, stroke: color, width: 2,
          dash: DASHES[i % DASHES.length], spanGaps: false,
          points: { show: few, size: 6, fill: color, stroke: color }
        };
      })),
      hooks: { setCursor: [cursorMoved] }
    };
    var columns = [xs].concat(series.map(function (s) {
      return (s.values || []).map(function (v) { return v === undefined ? null : v; });
    }));
    var tip = el("div", "chart-tip");
    tip.hidden = true;
    tip.setAttribute("aria-hidden", "true");
    var said = el("p", "visually-hidden");
    said.setAttribute("aria-live", "polite");
    var byKeys = false;

    function words(idx) {
      var lines = [day(xs[idx], withTime) + (withTime ? " UTC" : "")];
      series.forEach(function (s, i) {
        lines.push(s.label + ": " + value(columns[i + 1][idx], s.unit));
      });
      return lines;
    }

    function cursorMoved(u) {
      var idx = u.cursor.idx;
      if (idx === null || idx === undefined || u.cursor.left < 0) {
        tip.hidden = true;
        return;
      }
      var lines = words(idx);
      showTip(tip, lines, u.cursor.left + 12, Math.max(0, u.cursor.top), {
        width: u.over.clientWidth
      });
      if (byKeys) { said.textContent = lines.join("; "); }
    }

    var u = new uPlot(opts, columns, plot);
    u.root.querySelectorAll("canvas").forEach(function (c) {
      c.setAttribute("aria-hidden", "true");
    });
    u.over.appendChild(tip);

    // The arrow keys read the chart point by point (the figure's table has it all).
    var wrap = u.root.querySelector(".u-wrap") || u.root;
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "img");
    wrap.setAttribute("aria-label", (fig.querySelector("figcaption") || {}).textContent +
      ": a chart; the left and right arrow keys read it point by point");
    var at = -1;
    wrap.addEventListener("keydown", function (e) {
      var to = at;
      if (e.key === "ArrowRight") { to = at < 0 ? 0 : Math.min(xs.length - 1, at + 1); }
      else if (e.key === "ArrowLeft") { to = at < 0 ? xs.length - 1 : Math.max(0, at - 1); }
      else if (e.key === "Home") { to = 0; }
      else if (e.key === "End") { to = xs.length - 1; }
      else if (e.key === "Escape") { u.setCursor({ left: -10, top: -10 }); at = -1; return; }
      else { return; }
      e.preventDefault();
      at = to;
      byKeys = true;
      var y = null;
      for (var k = 1; k < columns.length && y === null; k++) {
        if (columns[k][at] !== null) { y = u.valToPos(columns[k][at], series[k - 1].unit); }
      }
      u.setCursor({ left: u.valToPos(xs[at], "x"), top: y === null ? 10 : y });
      byKeys = false;
    });
    wrap.addEventListener("blur", function () {
      at = -1;
      u.setCursor({ left: -10, top: -10 });
    });
    plot.appendChild(said);

    plot.appendChild(legend(series.map(function (s, i) {
      var pxr = window.devicePixelRatio || 1;
      var c = document.createElement("canvas");
      c.width = Math.round(30 * pxr);
      c.height = Math.round(12 * pxr);
      c.style.width = "30px";
      c.style.height = "12px";
      c.setAttribute("aria-hidden", "true");
      var ctx = c.getContext("2d");
      ctx.strokeStyle = pal.series[i % pal.series.length];
      ctx.lineWidth = 2.5 * pxr;
      ctx.setLineDash(DASHES[i % DASHES.length].map(function (d) { return d * pxr; }));
      ctx.beginPath();
      ctx.moveTo(0, 6 * pxr);
      ctx.lineTo(30 * pxr, 6 * pxr);
      ctx.stroke();
      var last = null;
      columns[i + 1].forEach(function (v) { if (v !== null) { last = v; } });
      return [c, s.label + (last === null ? "" : " (latest " + value(last, s.unit) + ")")];
    })));
    return { plot: u, height: opts.height };
  }

  // ---- a sparkline: a small line, no axes, the last point marked ----

  function sparkline(fig, plot, values, pal) {
    var known = values.filter(function (v) { return v !== null && v !== undefined; });
    if (!known.length) { return null; }
    var xs = values.map(function (_, i) { return i; });
    var lastIdx = -1;
    values.forEach(function (v, i) { if (v !== null && v !== undefined) { lastIdx = i; } });
    var color = pal.series[0];
    var px = window.devicePixelRatio || 1;
    var u = new uPlot({
      width: plot.clientWidth || 220,
      height: 36,
      padding: [5, 5, 5, 5],
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: {
        x: { time: false, range: [0, Math.max(1, values.length - 1)] },
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } }
      },
      axes: [{ show: false }, { show: false }],
      series: [{}, {
        stroke: color, width: 1.5, fill: alpha(color, 0.18), spanGaps: false,
        points: { show: known.length === 1, size: 5, fill: color }
      }],
      hooks: {
        draw: [function (u) {
          if (lastIdx < 0) { return; }
          var ctx = u.ctx;
          ctx.fillStyle = pal.fg;
          ctx.beginPath();
          ctx.arc(u.valToPos(lastIdx, "x", true), u.valToPos(values[lastIdx], "y", true),
            2.5 * px, 0, 2 * Math.PI);
          ctx.fill();
        }]
      }
    }, [xs, values.map(function (v) { return v === undefined ? null : v; })], plot);
    return { plot: u, height: 36 };
  }

  var DRAW = { gantt: gantt, timeseries: timeseries, sparkline: sparkline };

  function fillTimes() {
    // The tables' times are unix seconds in the markup (the macros use Jinja's own
    // filters only); they are written as UTC dates here.
    document.querySelectorAll("time.unix[data-unix]").forEach(function (t) {
      var unix = Number(t.getAttribute("data-unix"));
      if (!isNaN(unix)) {
        t.setAttribute("datetime", new Date(unix * 1000).toISOString());
        t.textContent = day(unix, unix % 86400 !== 0);
      }
    });
  }

  function build(fig) {
    var kind = fig.getAttribute("data-chart");
    var plot = fig.querySelector(".chart-plot");
    var json = fig.querySelector("script.chart-data, script[type='application/json']");
    if (!DRAW[kind] || !plot || !json) { return; }
    plot.textContent = "";
    try {
      var chart = DRAW[kind](fig, plot, JSON.parse(json.textContent), palette());
      if (chart) {
        chart.fig = fig;
        chart.area = plot;
        chart.width = plot.clientWidth;
        charts.push(chart);
        fig.setAttribute("data-drawn", "true");
        fig.setAttribute("data-scheme", scheme.matches ? "dark" : "light");
      }
    } catch (err) {
      // The figure's table still holds the data; say what went wrong for whoever looks.
      console.error("conveyor: the chart '" + kind + "' could not be drawn:", err);
    }
  }

  function buildAll() {
    charts.forEach(function (c) { c.plot.destroy(); });
    charts = [];
    document.querySelectorAll("figure[data-chart]").forEach(build);
  }

  // A table wider than the screen scrolls in a box of its own (app.css); a keyboard must
  // reach the box to scroll it, so a table that overflows takes focus.
  function scrollables() {
    document.querySelectorAll("main > table, section > table").forEach(function (t) {
      var over = t.scrollWidth > t.clientWidth + 1;
      if (over && !t.hasAttribute("tabindex")) {
        t.setAttribute("tabindex", "0");
        t.setAttribute("data-scrolls", "");
      } else if (!over && t.hasAttribute("data-scrolls")) {
        t.removeAttribute("tabindex");
        t.removeAttribute("data-scrolls");
      }
    });
  }

  function start() {
    fillTimes();
    scrollables();
    if (window.ResizeObserver) {
      new ResizeObserver(function () { window.requestAnimationFrame(scrollables); })
        .observe(document.documentElement);
    }
    if (typeof window.uPlot !== "function") { return; }
    buildAll();
    if (scheme.addEventListener) { scheme.addEventListener("change", buildAll); }
    if (window.ResizeObserver) {
      var pending = false;
      new ResizeObserver(function () {
        if (pending) { return; }
        pending = true;
        window.requestAnimationFrame(function () {
          pending = false;
          charts.forEach(function (c) {
            var w = c.area.clientWidth;
            if (w && w !== c.width && !c.fig.classList.contains("sparkline")) {
              c.width = w;
              c.plot.setSize({ width: Math.max(280, w), height: c.height });
            }
          });
        });
      }).observe(document.body);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
