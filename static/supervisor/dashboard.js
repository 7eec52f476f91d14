// Live supervisor dashboard: the server pushes `stats` on /supervisor; waits tick here between pushes.
(function () {
  "use strict";
  var LABELS = {phone: "Phone", email: "Email", webchat: "Webchat", cases: "Cases", web_form: "Web form"};
  var status = document.getElementById("live-status");

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) { return h + " h " + m + " min"; }
    if (m) { return m + " min " + s + " s"; }
    return s + " s";
  }

  function cell(tag, text, key) {
    var el = document.createElement(tag);
    el.textContent = text;
    if (key) { el.dataset.key = key; }
    return el;
  }

  function secondsCell(key, seconds) {
    var el = cell("td", duration(seconds), key);
    el.dataset.seconds = String(seconds);
    return el;
  }

  function fillRows(tbody, rows, build) {
    var fresh = document.createDocumentFragment();
    rows.forEach(function (row) { fresh.appendChild(build(row)); });
    tbody.replaceChildren(fresh);
  }

  function renderChannels(channels) {
    fillRows(document.querySelector("#channel-table tbody"), channels, function (c) {
      var tr = document.createElement("tr");
      tr.dataset.channel = c.channel;
      tr.append(cell("th", LABELS[c.channel] || c.channel), cell("td", c.waiting, "waiting"),
        secondsCell("oldest_wait_seconds", c.oldest_wait_seconds), cell("td", c.in_progress, "in_progress"),
        cell("td", c.over_target, "over_target"), cell("td", c.sla_at_risk, "sla_at_risk"),
        cell("td", c.sla_breached, "sla_breached"));
      tr.firstChild.scope = "row";
      return tr;
    });
  }

  function renderQueues(items) {
    fillRows(document.querySelector("#queue-table tbody"), items, function (q) {
      var tr = document.createElement("tr");
      tr.dataset.queue = q.code;
      tr.append(cell("th", q.name), cell("td", LABELS[q.channel] || q.channel), cell("td", q.waiting, "waiting"),
        secondsCell("oldest_wait_seconds", q.oldest_wait_seconds), cell("td", q.in_progress, "in_progress"),
        cell("td", q.agents_available, "agents_available"), cell("td", q.over_target, "over_target"),
        cell("td", q.sla_at_risk, "sla_at_risk"), cell("td", q.sla_breached, "sla_breached"));
      tr.firstChild.scope = "row";
      return tr;
    });
  }

  function setCell(tr, key, text) {
    var el = tr.querySelector('[data-key="' + key + '"]');
    if (el) { el.textContent = text; }
    return el;
  }

  function renderAgents(agents) {
    var tbody = document.querySelector("#agent-table tbody");
    agents.forEach(function (a) {
      var tr = tbody.querySelector('tr[data-agent="' + a.id + '"]');
      if (!tr) {  // someone new on shift: a row without the capacity form until the page reloads
        tr = document.createElement("tr");
        tr.dataset.agent = String(a.id);
        tr.append(cell("th", a.name), cell("td", "", "presence"), cell("td", "", "seconds_in_state"),
          cell("td", "", "chats"), cell("td", "", "emails_in_hand"), cell("td", "", "contacts_today"),
          cell("td", "", "handle_seconds_today"), cell("td", "", "chat_skills"), cell("td", ""));
        tbody.appendChild(tr);
      }
      var presence = tr.querySelector('[data-key="presence"]');
      var tag = document.createElement("span");
      tag.className = "presence presence-" + a.presence;
      tag.textContent = a.presence;
      presence.replaceChildren(tag);
      setCell(tr, "seconds_in_state", duration(a.seconds_in_state)).dataset.seconds = String(a.seconds_in_state);
      setCell(tr, "chats", a.chats_in_hand + " / " + a.chat_capacity);
      setCell(tr, "emails_in_hand", a.emails_in_hand);
      setCell(tr, "contacts_today", a.contacts_today);
      setCell(tr, "handle_seconds_today", duration(a.handle_seconds_today));
      setCell(tr, "chat_skills", (a.chat_skills || []).join(", ") || "any topic");
    });
  }

  function render(stats) {
    renderChannels(stats.channels || []);
    renderQueues(stats.items || []);
    renderAgents(stats.agents || []);
    status.textContent = "Live, updated " + new Date().toLocaleTimeString("en-GB");
  }

  // Between pushes, waits and time-in-state grow by one second a second.
  setInterval(function () {
    document.querySelectorAll("[data-seconds]").forEach(function (el) {
      var next = Number(el.dataset.seconds) + 1;
      if (el.dataset.key === "oldest_wait_seconds" && next === 1) { return; }  // nothing waiting
      el.dataset.seconds = String(next);
      el.textContent = duration(next);
    });
  }, 1000);
  document.querySelectorAll("[data-seconds], [data-duration]").forEach(function (el) {
    el.textContent = duration(Number(el.dataset.seconds || el.dataset.duration));
  });

  if (typeof io !== "function") { status.textContent = "Live updates unavailable"; return; }
  var socket = io("/supervisor", {transports: ["websocket", "polling"]});
  socket.on("connect", function () { status.textContent = "Live"; });
  socket.on("disconnect", function () { status.textContent = "Reconnecting…"; });
  socket.on("connect_error", function (err) { status.textContent = "Not connected: " + err.message; });
  socket.on("stats", render);
}());
