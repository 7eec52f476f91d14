// Live supervisor dashboard: the server pushes `stats` on /supervisor; waits tick here between pushes.
(function () {
  "use strict";
  var LABELS = {phone: "Phone", email: "Email", webchat: "Webchat", cases: "Cases", web_form: "Web form"};
  var status = document.getElementById("live-status");

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(Number(seconds) || 0));
    var d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600),
        m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (d) { return d + (d === 1 ? " day " : " days ") + h + " h"; }
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

  // A ticking cell shows the pushed seconds plus the time since the push arrived (never the
  // browser's clock against the server's, which may disagree); a cell with nothing waiting stays put.
  function setSeconds(el, seconds, ticking) {
    el.dataset.seconds = String(Math.max(0, Math.floor(Number(seconds) || 0)));
    el.dataset.since = String(Date.now());
    el.dataset.ticking = ticking ? "true" : "false";
    el.textContent = duration(el.dataset.seconds);
    return el;
  }

  function secondsCell(key, seconds, ticking) {
    return setSeconds(cell("td", "", key), seconds, ticking);
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
        secondsCell("oldest_wait_seconds", c.oldest_wait_seconds, c.waiting > 0), cell("td", c.in_progress, "in_progress"),
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
        secondsCell("oldest_wait_seconds", q.oldest_wait_seconds, q.waiting > 0), cell("td", q.in_progress, "in_progress"),
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
      setSeconds(tr.querySelector('[data-key="seconds_in_state"]'), a.seconds_in_state, true);
      setCell(tr, "chats", a.chats_in_hand + " / " + a.chat_capacity);
      setCell(tr, "emails_in_hand", a.emails_in_hand);
      setCell(tr, "contacts_today", a.contacts_today);
      setCell(tr, "handle_seconds_today", duration(a.handle_seconds_today));
      setCell(tr, "chat_skills", (a.chat_skills || []).join(", ") || "any topic");
    });
  }

  function renderMovable(items) {
    var form = document.getElementById("move-form"), select = document.getElementById("move-conversation");
    if (!form || !select) { return; }
    var chosen = select.value, fresh = document.createDocumentFragment();
    items.forEach(function (c) {
      var option = document.createElement("option");
      option.value = String(c.id);
      option.textContent = c.label;
      option.selected = option.value === chosen;
      fresh.appendChild(option);
    });
    select.replaceChildren(fresh);
    form.hidden = items.length === 0;
    document.getElementById("move-empty").hidden = items.length > 0;
    document.getElementById("move-hint").textContent = items.length ? "The list updates live." : "";
  }

  function render(stats) {
    renderChannels(stats.channels || []);
    renderQueues(stats.items || []);
    renderAgents(stats.agents || []);
    if (stats.movable) { renderMovable(stats.movable); }
    status.textContent = "Live, updated " + new Date().toLocaleTimeString("en-GB");
  }

  // Between pushes, waits and time-in-state grow with the time since the push.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-seconds]").forEach(function (el) {
      var base = Number(el.dataset.seconds) || 0;
      var since = Number(el.dataset.since) || now;
      var shown = el.dataset.ticking === "true" ? base + Math.max(0, (now - since) / 1000) : base;
      el.textContent = duration(shown);
    });
  }
  document.querySelectorAll("[data-seconds]").forEach(function (el) {
    setSeconds(el, el.dataset.seconds, el.dataset.ticking === "true");
  });
  document.querySelectorAll("[data-duration]").forEach(function (el) {
    el.textContent = duration(el.dataset.duration);
  });
  setInterval(tick, 1000);

  if (typeof io !== "function") { status.textContent = "Live updates unavailable"; return; }
  var socket = io("/supervisor", {transports: ["websocket", "polling"]});
  socket.on("connect", function () { status.textContent = "Live"; });
  socket.on("disconnect", function () { status.textContent = "Reconnecting…"; });
  socket.on("connect_error", function (err) { status.textContent = "Not connected: " + err.message; });
  socket.on("stats", render);
}());
