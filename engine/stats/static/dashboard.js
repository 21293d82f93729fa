// Journey stats dashboard: renders the page from the JSON API and refreshes it every few
// seconds. The journey graph is drawn by the server (GET /journeys/<id>/graph.svg).
(function () {
  "use strict";
  var body = document.body;
  var conf = {
    page: body.getAttribute("data-page"),
    ms: Number(body.getAttribute("data-refresh-ms")) || 3000,
    journey: body.getAttribute("data-journey"),
    version: body.getAttribute("data-version"),
    bucket: body.getAttribute("data-bucket") || "hour",
    defined: body.getAttribute("data-defined") === "1"
  };
  var initial = JSON.parse(document.getElementById("initial").textContent);

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); }
  function pct(r) {
    if (r === null || r === undefined) { return "–"; }
    return (r > 0 && r < 0.1 ? (r * 100).toFixed(1) : Math.round(r * 100)) + "%";
  }
  function set(id, html) { var el = document.getElementById(id); if (el) { el.innerHTML = html; } }
  function getJSON(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error(url + ": HTTP " + r.status); }
      return r.json();
    });
  }
  function q(extra) {
    var parts = [];
    if (conf.version) { parts.push("version=" + encodeURIComponent(conf.version)); }
    if (extra) { parts.push(extra); }
    return parts.length ? "?" + parts.join("&") : "";
  }

  // ------------------------------------------------------------------ health
  function pill(label, value, warn) {
    var cls = value === null || value === undefined ? "na" : warn ? "warn" : "ok";
    var shown = typeof value === "number" ? num(value) : value === null || value === undefined ? "–" : esc(value);
    return '<span class="pill ' + cls + '" data-metric="' + esc(label) + '">' + esc(label) + " <b>" + shown + "</b></span>";
  }
  function renderHealth(h) {
    var e = h.engine || {}, s = h.stats || {};
    var eps = e.events_per_second;
    set("health", [
      pill("stats", h.status || "starting", h.status !== "ok"),
      pill("engine lag", e.lag, e.lag > 1000),
      pill("events/s", eps === null || eps === undefined ? null : eps.toFixed(1), false),
      pill("pending timers", e.pending_timers, false),
      pill("dead letters", e.dead_letters, e.dead_letters > 0),
      pill("stats lag", s.lag, s.lag > 0)
    ].join(""));
  }

  // ------------------------------------------------------------------ charts
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function nice(top) {  // a round axis top whose half is round too
    for (var step = 1; ; step *= 10) {
      var ms = [2, 4, 6, 8, 10];
      for (var i = 0; i < ms.length; i++) { if (top <= ms[i] * step) { return ms[i] * step; } }
    }
  }
  function day(iso) { return MONTHS[Number(iso.slice(5, 7)) - 1] + " " + Number(iso.slice(8, 10)); }
  function tick(p, i, n, bucket) {  // the x label of point i, or null
    if (bucket === "hour") {
      var h = Number(p.start.slice(11, 13));
      return h % 6 ? null : h === 0 ? day(p.start) : p.start.slice(11, 16);
    }
    return i % Math.max(Math.round(n / 6), 1) ? null : day(p.start);
  }
  function bars(points, key, color, bucket, axes) {
    var w = axes ? 560 : 300, h = axes ? 120 : 44;
    var left = axes ? 36 : 0, bottom = axes ? 18 : 0, pad = axes ? 8 : 2;
    var vals = points.map(function (p) { return p[key] || 0; });
    var top = nice(Math.max.apply(null, vals.concat([1])));
    var n = Math.max(vals.length, 1), pw = w - left - (axes ? 16 : 0), ph = h - bottom - pad, bw = pw / n;
    var out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + w + " " + h + '" class="bars" data-series="' + key + '">'];
    if (axes) {
      [0, 0.5, 1].forEach(function (f) {
        var y = pad + ph * (1 - f);
        out.push('<line x1="' + left + '" x2="' + (w - 4) + '" y1="' + y + '" y2="' + y + '" stroke="#e3e8ef"/>');
        out.push('<text x="' + (left - 5) + '" y="' + (y + 4) + '" font-size="10" fill="#5f6b7a" text-anchor="end">' + num(Math.round(top * f)) + "</text>");
      });
    }
    points.forEach(function (p, i) {
      var v = vals[i], bh = ph * v / top, x = left + i * bw;
      out.push('<rect x="' + (x + bw * 0.12).toFixed(1) + '" y="' + (pad + ph - bh).toFixed(1) + '" width="' + (bw * 0.76).toFixed(1) +
        '" height="' + bh.toFixed(1) + '" rx="1.5" fill="' + color + '"><title>' + esc(p.start) + ": " + num(v) + "</title></rect>");
      var label = axes ? tick(p, i, n, bucket) : null;
      if (label) {
        out.push('<text x="' + (x + bw / 2).toFixed(1) + '" y="' + (h - 4) + '" font-size="10" fill="#5f6b7a" text-anchor="middle">' + label + "</text>");
      }
    });
    return out.join("") + "</svg>";
  }
  function sum(points, key) { return points.reduce(function (a, p) { return a + (p[key] || 0); }, 0); }
  function renderSeries(s) {
    var pts = s.points || [];
    var span = pts.length + " " + s.bucket + "s";
    set("chart-title", "Activity per " + esc(s.bucket));
    set("tabs", ["hour", "day"].map(function (b) {
      return '<a href="#" data-bucket="' + b + '" class="' + (b === s.bucket ? "on" : "") + '">' + b + "</a>";
    }).join(""));
    set("charts",
      '<div class="series"><b>Messages sent</b> &middot; ' + num(sum(pts, "sent")) + " in the last " + span + "</div>" +
      bars(pts, "sent", "#1e88e5", s.bucket, true) +
      '<div class="series"><b>Conversions</b> &middot; ' + num(sum(pts, "converted")) + " in the last " + span + "</div>" +
      bars(pts, "converted", "#43a047", s.bucket, true));
  }

  // ------------------------------------------------------------------ journey page
  function kpi(label, value, rate, of) {
    var extra = of ? '<div class="rate' + (rate === null ? " none" : "") + '">' + pct(rate) + " " + esc(of) + "</div>" : "";
    return '<div class="card kpi" data-kpi="' + label.toLowerCase() + '"><div class="label">' + label +
      '</div><div class="value">' + num(value) + "</div>" + extra + "</div>";
  }
  function renderFunnel(steps) {
    var top = Math.max.apply(null, steps.map(function (f) { return f.count; }).concat([1]));
    var entered = steps.length ? steps[0].count : 0;
    set("funnel", steps.map(function (f) {
      var why = f.rate_of ? '<div class="why">' + pct(f.rate) + " " + esc(f.rate_of) + "</div>" : "";
      if (f.step === "sent" && entered) {
        why = '<div class="why">' + (f.count / entered).toFixed(1) + " messages per user</div>";
      }
      return '<div class="step' + (f.step === "converted" ? " goal" : "") + '" data-step="' + esc(f.step) + '"><div class="name">' +
        esc(f.label) + '</div><div class="bar"><div class="fill" style="width:' + (100 * f.count / top).toFixed(1) +
        '%"></div></div><div class="num">' + num(f.count) + "</div>" + why + "</div>";
    }).join(""));
  }
  function renderSplits(splits) {
    function p1(x) { return (x * 100).toFixed(1) + "%"; }
    function sp(x) { return (x >= 0 ? "+" : "") + p1(x); }
    set("splits", Object.keys(splits).map(function (name) {
      var rep = splits[name], rows = "";
      Object.keys(rep.variants).forEach(function (v) {
        var r = rep.variants[v];
        var ci = r.ci_low === null ? "–" : p1(r.ci_low) + " to " + p1(r.ci_high);
        rows += '<tr data-variant="' + esc(v) + '"><td>' + esc(v) + "</td><td>" + num(r.users) + "</td><td>" + num(r.converted) +
          "</td><td>" + pct(r.conversion_rate) + '</td><td class="ci">' + ci + "</td></tr>";
      });
      Object.keys(rep.differences).forEach(function (label) {
        var d = rep.differences[label];
        if (d.difference === null) { return; }
        var sig = d.ci_low > 0 || d.ci_high < 0;
        var verdict = sig ? " significant" : " not significant yet";
        rows += '<tr><td class="note" colspan="5" data-difference="' + esc(label) + '">' + esc(label) + ': <span class="' + (sig ? "sig" : "nosig") + '">' +
          sp(d.difference) + "</span> (95% CI " + sp(d.ci_low) + " to " + sp(d.ci_high) + ")" + verdict +
          (d.warning ? '<div class="small-sample" data-warning="' + esc(label) + '">' + esc(d.warning) + "</div>" : "") + "</td></tr>";
      });
      var won = rep.winner, verdict = "";
      if (won) {  // a split that picks its winner: the decision, or what is missing
        verdict = '<div class="winner ' + esc(won.status.replace(/ /g, "-")) + '" data-winner="' + esc(name) + '">' +
          "<b>" + (won.status === "chosen" ? "Winner: " + esc(won.variant) : "No clear winner yet") + "</b> (" + esc(won.metric) + ") &middot; " +
          esc(won.note) + "</div>";
      }
      return '<div class="card split" data-split="' + esc(name) + '"><h2>A/B split &middot; ' + esc(name) +
        "</h2>" + verdict + "<table><thead><tr><th>Variant</th><th>Users</th><th>Converted</th><th>Rate</th><th>95% CI</th></tr></thead><tbody>" + rows + "</tbody></table></div>";
    }).join(""));
  }
  // A lift report (engine/stats/lift.py): both groups' rates, the lift with its 95% interval.
  function liftCard(title, rep, baseline, attr) {
    function p1(x) { return (x * 100).toFixed(1) + "%"; }
    function sp(x) { return (x >= 0 ? "+" : "") + p1(x); }
    function row(name, g) {
      var ci = g.ci_low === null ? "–" : p1(g.ci_low) + " to " + p1(g.ci_high);
      return '<tr data-arm="' + esc(name) + '"><td>' + esc(name) + "</td><td>" + num(g.users) + "</td><td>" + num(g.converted) +
        "</td><td>" + pct(g.conversion_rate) + '</td><td class="ci">' + ci + "</td></tr>";
    }
    var rows = row("treated", rep.treated) + row(baseline, rep[baseline]);
    if (rep.lift !== null) {
      var verdict = rep.significant ? " significant" : " not significant yet";
      var rel = rep.relative_lift === null ? "" : ", relative " + sp(rep.relative_lift);
      rows += '<tr><td class="note" colspan="5" data-lift="' + esc(attr) + '">Lift: <span class="' + (rep.significant ? "sig" : "nosig") + '">' +
        sp(rep.lift) + "</span> (95% CI " + sp(rep.ci_low) + " to " + sp(rep.ci_high) + ")" + rel + verdict +
        (rep.warning ? '<div class="small-sample">' + esc(rep.warning) + "</div>" : "") + "</td></tr>";
    }
    return '<div class="card split lift" data-' + attr + '="1"><h2>' + title +
      "</h2><table><thead><tr><th>Group</th><th>Runs</th><th>Converted</th><th>Rate</th><th>95% CI</th></tr></thead><tbody>" + rows + "</tbody></table></div>";
  }
  function renderLift(r) {
    var cards = [];
    if (r.holdout) { cards.push(liftCard("Holdout" + (r.holdout.share ? " &middot; " + esc(r.holdout.share) : ""), r.holdout, "holdout", "holdout")); }
    if (r.global_control) { cards.push(liftCard("Global control group", r.global_control, "control", "global-control")); }
    set("lift", cards.join(""));
  }
  function messaging(r) {  // the rule of the text table (engine/stats/table.py)
    return r.type === "send" || Object.keys(r.sent).length > 0 || Object.keys(r.suppressed).length > 0 ||
      r.deferred > 0 || r.failed > 0 || r.fallback > 0 || r.opted_out > 0;
  }
  function nodeRow(id, r) {
    var msg = messaging(r);
    function c(key, v) { return '<td data-cell="' + esc(id + "." + key) + '">' + (msg ? v : "") + "</td>"; }
    function pair(d) { return num(d.rcs || 0) + " / " + num(d.sms || 0); }
    function total(d) { return Object.keys(d).reduce(function (a, k) { return a + d[k]; }, 0); }
    function words(k) { return k.replace(/_/g, " "); }
    var notes = [];
    Object.keys(r.suppressed).forEach(function (k) { notes.push("held back (" + words(k) + ") " + num(r.suppressed[k])); });
    Object.keys(r.failed_reasons).forEach(function (k) { notes.push("failed (" + words(k) + ") " + num(r.failed_reasons[k])); });
    if (r.profile_updated) { notes.push("profile updated " + num(r.profile_updated)); }
    Object.keys(r.profile_refused_reasons || {}).forEach(function (k) { notes.push("profile update refused (" + words(k) + ") " + num(r.profile_refused_reasons[k])); });
    Object.keys(r.exited).forEach(function (k) { notes.push("exit (" + words(k) + ") " + num(r.exited[k])); });
    return '<tr data-row="' + esc(id) + '"><td>' + esc(r.label) + ' <span class="kind">' + esc(r.type || "not in file") + "</span></td>" +
      '<td data-cell="' + esc(id + ".entered") + '">' + num(r.entered) + "</td>" +
      c("sent", pair(r.sent)) + c("delivered", pair(r.delivered_by_channel)) +
      c("reached", num(r.reached)) + c("reach_rate", pct(r.reach_rate)) +
      c("read", num(r.read)) + c("read_rate", pct(r.read_rate)) +
      c("clicked", num(r.clicked)) + c("click_through_rate", pct(r.click_through_rate)) +
      c("replied", num(r.replied)) + c("failed", num(r.failed)) +
      c("fallback", num(r.fallback)) + c("fallback_rate", pct(r.fallback_rate)) +
      c("opted_out", num(r.opted_out)) + c("deferred", num(r.deferred)) + c("suppressed", num(total(r.suppressed))) +
      '<td class="note">' + esc(notes.join(", ")) + "</td></tr>";
  }
  function renderJourney(r) {
    var s = r.summary;
    set("sub", esc(r.journey_id) + " &middot; version " + r.versions.map(function (v) {
      return '<a class="ver' + (v === r.version ? " on" : "") + '" href="/journeys/' + encodeURIComponent(r.journey_id) + "?version=" + v + '">v' + v + "</a>";
    }).join(" ") + (r.defined ? "" : " &middot; not in the journeys folder"));
    set("crumb", '/ <b>' + esc(r.name) + "</b>");
    set("kpis", [
      kpi("Entered", s.entered, null, ""), kpi("Sent", s.sent, null, ""),
      kpi("Reached", s.reached, s.reach_rate_of_sends, "of sends, by RCS or SMS"), kpi("Read", s.read, s.read_rate, "of RCS delivered"),
      kpi("Clicked", s.clicked, s.click_through_rate, "of RCS delivered"), kpi("Converted", s.converted, s.conversion_rate, "conversion")
    ].join(""));
    renderFunnel(r.funnel);
    renderLift(r);
    renderSplits(r.splits);
    set("rows", Object.keys(r.nodes).map(function (id) { return nodeRow(id, r.nodes[id]); }).join(""));
  }

  // ------------------------------------------------------------------ index page
  function renderIndex(data, sparks) {
    var list = data.journeys || [];
    var problems = (data.problems || []).length;
    set("sub", list.length + (list.length === 1 ? " journey" : " journeys") + (problems ? ' &middot; <span class="problems">' + problems + " problems in the journey files</span>" : ""));
    var gc = data.global_control;
    set("global-control", gc ? liftCard("Global control group &middot; " + num(gc.journey_versions) + " journey version" +
      (gc.journey_versions === 1 ? "" : "s") + " with a goal", gc, "control", "global-control") : "");
    set("cards", list.length ? list.map(function (j) {
      var cells = [["entered", num(j.entered)], ["sent", num(j.sent)], ["reached", pct(j.reach_rate_of_sends)], ["converted", pct(j.conversion_rate)]]
        .map(function (c) { return '<div><div class="value">' + c[1] + '</div><div class="label">' + c[0] + "</div></div>"; }).join("");
      var spark = sparks[j.journey_id] ? '<div class="spark-label">messages sent per hour, last 48 hours</div>' +
        bars(sparks[j.journey_id], "sent", "#90caf9", "hour", false) : "";
      return '<a class="card jcard" data-journey="' + esc(j.journey_id) + '" href="/journeys/' + encodeURIComponent(j.journey_id) + '"><h3>' +
        esc(j.name) + '</h3><div class="id">' + esc(j.journey_id) + " &middot; v" + j.version + '</div><div class="row">' + cells + "</div>" + spark + "</a>";
    }).join("") : '<div class="empty">No journeys yet: outcomes will appear here as they arrive.</div>');
  }

  // ------------------------------------------------------------------ user search
  // What `journeys explain` prints, from GET /api/users/<id> (read once: a user's whole
  // partition of every topic is read for it, so it is not refreshed with the counts).
  function where(r) {
    return r.journey_id ? esc(r.journey_id) + (r.journey_version ? "@" + r.journey_version : "") : "&ndash;";
  }
  function stepHtml(s) {
    var node = s.node_id && s.kind !== "entry" ? ' <span class="node">' + esc(s.node_id) + "</span>" : "";
    var cls = /NOT /.test(s.text) ? " not" : "";
    return '<li class="step' + cls + '" data-step="' + esc(s.kind + "." + (s.reason || "")) + '"><span class="where">' +
      where(s) + node + '</span> <span class="what">' + esc(s.text) + "</span></li>";
  }
  var QUIET = { "node.entered": 1 };  // said by the step that follows (a send, a wait...)
  function renderUser(r) {
    if (!r) { return; }
    set("title", "User " + esc(r.user_id));
    set("sub", esc(r.source) + (r.traced ? " &middot; with the engine's trace records" : " &middot; outcomes only"));
    set("notes", (r.notes || []).map(function (n) { return '<div class="note card" data-note>' + esc(n) + "</div>"; }).join(""));
    function inputHtml(i) {
      var late = i.handled_at ? ' <span class="kind">stamped ' + esc(i.ts) + ", handled at the user's clock</span>" : "";
      return '<div class="input" data-input="' + esc(i.kind) + '">' + esc(i.text) + late + "</div>";
    }
    set("timeline", (r.timeline || []).length ? '<ol class="moments">' + r.timeline.map(function (m) {
      // Each input before the steps it caused (before_step), as the text report does.
      var html = m.inputs.length && m.inputs.every(function (i) { return i.before_step > 0; })
        ? '<div class="input timer" data-input="timer">timer</div>' : m.inputs.length ? "" : '<div class="input timer" data-input="timer">timer</div>';
      var list = [];
      function flush() { if (list.length) { html += '<ul class="steps">' + list.join("") + "</ul>"; list = []; } }
      for (var n = 0; n <= m.steps.length; n++) {
        var here = m.inputs.filter(function (i) { return (i.before_step || 0) === n; });
        if (here.length) { flush(); html += here.map(inputHtml).join(""); }
        var s = m.steps[n];
        if (s && !(s.source === "trace" && QUIET[s.kind + "." + s.reason])) { list.push(stepHtml(s)); }
      }
      flush();
      return '<li class="moment" data-moment="' + esc(m.ts) + '"><div class="ts">' + esc(m.ts) + "</div>" + html + "</li>";
    }).join("") + "</ol>" : '<div class="empty">Nothing about this user.</div>');
    var ne = r.not_entered || [];
    set("not-entered", ne.length ? "<ul>" + ne.map(function (x) {
      var when = x.last ? ' <span class="kind">' + esc(x.last) + (x.count > 1 ? " &middot; " + x.count + "x" : "") + "</span>" : "";
      return '<li data-not-entered="' + esc(x.journey_id + ":" + x.reason) + '"><b>' + where(x) + "</b> " + esc(x.text) + when + "</li>";
    }).join("") + "</ul>" : '<div class="empty">none</div>');
    var nr = r.not_received || [];
    set("not-received", nr.length ? "<ul>" + nr.map(function (x) {
      return '<li data-not-received="' + esc(x.journey_id + ":" + x.node_id + ":" + x.reason) + '"><b>' + where(x) + " " +
        esc(x.node_id) + '</b> <span class="kind">' + esc(x.ts) + "</span> " + esc(x.text) +
        (x.then ? '<div class="then">then ' + esc(x.then) + "</div>" : "") + "</li>";
    }).join("") + "</ul>" : '<div class="empty">none</div>');
    var now = r.now || {};
    var lines = [];
    if (!now.state) { lines.push("No state: the engine has no record of this user."); }
    if (now.opted_out) { lines.push("Opted out (STOP): journey messages are not sent."); }
    (now.runs || []).forEach(function (run) {
      lines.push('<span data-run="' + esc(run.journey_id) + '"><b>' + where(run) + "</b> at " + esc(run.node_id) +
        (run.node_type ? " (" + esc(run.node_type) + ")" : "") + (run.since ? " since " + esc(run.since) : "") +
        (run.until ? ", until " + esc(run.until) : "") + "</span>");
    });
    if (now.state && !(now.runs || []).length) { lines.push("In no journey."); }
    if (now.state) {
      var t = now.next_timer;
      lines.push('<span data-next-timer>' + (t ? "Next timer " + esc(t.at) + ": " + where(t) + " " + esc(t.node_id) + ", " + esc(t.what) : "No timer pending.") + "</span>");
    }
    set("now", lines.map(function (l) { return "<div>" + l + "</div>"; }).join(""));
  }

  // ------------------------------------------------------------------ refresh
  var sparks = {};
  function refresh() {
    var jobs = [getJSON("/api/health").then(renderHealth)];
    if (conf.page === "user") {
      // health only: the user's timeline was read when the page was
    } else if (conf.page === "journey") {
      var base = "/api/journeys/" + encodeURIComponent(conf.journey);
      jobs.push(getJSON(base + q()).then(renderJourney));
      jobs.push(getJSON(base + "/timeseries" + q("bucket=" + conf.bucket)).then(renderSeries));
      if (conf.defined) {
        jobs.push(fetch("/journeys/" + encodeURIComponent(conf.journey) + "/graph.svg" + q(), { cache: "no-store" })
          .then(function (r) { if (!r.ok) { throw new Error("graph: HTTP " + r.status); } return r.text(); })
          .then(function (svg) { set("graph", svg); }));
      }
    } else {
      jobs.push(getJSON("/api/journeys").then(function (data) {
        return Promise.all((data.journeys || []).map(function (j) {
          return getJSON("/api/journeys/" + encodeURIComponent(j.journey_id) + "/timeseries?version=" + j.version)
            .then(function (s) { sparks[j.journey_id] = s.points; });
        })).then(function () { renderIndex(data, sparks); });
      }));
    }
    Promise.all(jobs).then(function () {
      set("updated", new Date().toLocaleTimeString());
      document.querySelector("footer").classList.remove("stale");
    }, function () { document.querySelector("footer").classList.add("stale"); });
  }

  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a[data-bucket]");
    if (!a) { return; }
    ev.preventDefault();
    conf.bucket = a.getAttribute("data-bucket");
    refresh();
  });

  renderHealth(initial.health || {});
  var search = document.getElementById("user-search");
  if (search && conf.page === "user") { search.value = body.getAttribute("data-user") || ""; }
  if (conf.page === "user") {
    renderUser(initial.user);
  } else if (conf.page === "journey") {
    renderJourney(initial);
    renderSeries(initial.series);
  } else {
    renderIndex(initial, {});
  }
  refresh();
  window.setInterval(refresh, conf.ms);
})();
