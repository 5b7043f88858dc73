// A run going on: the page's job table and output follow the run's events
// (/runs/ID/events, server-sent). Text is set with textContent, never as HTML.
(function () {
  "use strict";
  var section = document.getElementById("live");
  if (!section || !window.EventSource) { return; }
  var jobs = document.getElementById("live-jobs");
  var log = document.getElementById("live-log");
  var MAX_LINES = 5000;

  function row(name) {
    var rows = jobs.querySelectorAll("tr[data-job]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-job") === name) { return rows[i]; }
    }
    var tr = document.createElement("tr");
    tr.setAttribute("data-job", name);
    var cells = ["", "job-status", "job-duration"];
    for (var k = 0; k < cells.length; k++) {
      var td = document.createElement("td");
      if (cells[k]) { td.className = cells[k]; }
      tr.appendChild(td);
    }
    tr.firstChild.textContent = name;
    jobs.appendChild(tr);
    return tr;
  }

  function setStatus(name, status, duration) {
    var tr = row(name);
    var cell = tr.querySelector(".job-status");
    var span = document.createElement("span");
    span.className = "status status-" + status;
    span.textContent = status;
    cell.textContent = "";
    cell.appendChild(span);
    if (duration !== undefined && duration !== null) {
      tr.querySelector(".job-duration").textContent = duration.toFixed(1) + "s";
    }
  }

  function append(name, line) {
    var div = document.createElement("span");
    div.className = "line";
    div.textContent = "[" + name + "] " + line.replace(/\u001b\[[0-9;:?]*[A-Za-z]/g, "") + "\n";
    log.appendChild(div);
    while (log.childNodes.length > MAX_LINES) { log.removeChild(log.firstChild); }
    log.scrollTop = log.scrollHeight;
  }

  var source = new EventSource(section.getAttribute("data-events"));
  source.addEventListener("job_queued", function (e) {
    setStatus(JSON.parse(e.data).name, "queued");
  });
  source.addEventListener("job_started", function (e) {
    setStatus(JSON.parse(e.data).name, "running");
  });
  source.addEventListener("job_finished", function (e) {
    var r = JSON.parse(e.data).result;
    setStatus(r.name, r.cached ? "cached" : r.status, r.duration);
  });
  source.addEventListener("job_output", function (e) {
    var d = JSON.parse(e.data);
    append(d.name, d.line);
  });
  source.addEventListener("run_finished", function () {
    source.close();
    // The run is recorded now: its page shows it whole.
    window.setTimeout(function () { window.location.reload(); }, 500);
  });
})();
