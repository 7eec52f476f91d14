/* Agent chat console: waiting chats and my chats, live over the /agent namespace.
   Messages are keyed by id (shown once) and kept in seq order; text only via textContent. */
(function () {
  "use strict";
  var socket = io("/agent");
  var panels = {};   // conversation id -> {el, shown: {id: li}, seq}
  var categories = JSON.parse(document.getElementById("chat-categories").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var uuid = function () {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : "a" + Date.now() + Math.random();
  };

  function setConnection(text) { $("connection").textContent = text; }

  // ---- telling the agent about new work: title count, unread markers, sound, desktop notifications ----
  var baseTitle = document.title;
  var SOUND_KEY = "crm-console-sound";
  function stored(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }
  function store(key, value) { try { localStorage.setItem(key, value); } catch (e) { /* private mode */ } }
  var audio = null;
  function soundOn() { return $("sound-toggle").checked; }
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.4);
    } catch (e) { /* no audio here */ }
  }
  $("sound-toggle").checked = stored(SOUND_KEY) === "on";  // off unless the agent turned it on
  $("sound-toggle").addEventListener("change", function () {
    store(SOUND_KEY, this.checked ? "on" : "off");
    if (this.checked) beep();  // a gesture: lets the browser play later sounds, and the agent hears it
  });

  var canNotify = "Notification" in window;
  function showNotifyState() {
    var button = $("notify-enable"), state = $("notify-state");
    if (!canNotify) { button.hidden = true; state.textContent = ""; return; }
    button.hidden = Notification.permission !== "default";
    state.textContent = Notification.permission === "granted" ? "Desktop notifications on"
      : Notification.permission === "denied" ? "Desktop notifications blocked in this browser" : "";
  }
  // Asked once, and only when the agent presses the button (browsers ignore requests without a gesture).
  $("notify-enable").addEventListener("click", function () {
    var asked = Notification.requestPermission(showNotifyState);
    if (asked && asked.then) asked.then(showNotifyState);
  });
  showNotifyState();

  var unread = {};  // conversation id -> messages or news not yet seen
  function unreadTotal() {
    return Object.keys(unread).reduce(function (sum, id) { return sum + unread[id]; }, 0);
  }
  function showUnread(p) {
    var n = unread[p.id] || 0, tag = p.el.querySelector(".chat-unread");
    tag.hidden = n === 0;
    tag.textContent = n === 1 ? "1 new" : n + " new";
    p.el.classList.toggle("has-unread", n > 0);
    var total = unreadTotal();
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
  }
  function seen(p) {
    if (!unread[p.id]) return;
    unread[p.id] = 0;
    showUnread(p);
  }
  function looking(p) {
    return !document.hidden && document.hasFocus() && p.el.contains(document.activeElement);
  }
  function alertAgent(p, text, always) {
    if (!always && looking(p)) return;
    unread[p.id] = (unread[p.id] || 0) + 1;
    showUnread(p);
    $("work-news").textContent = text;
    if (soundOn()) beep();
    if (canNotify && Notification.permission === "granted" && (document.hidden || !document.hasFocus())) {
      try {
        var note = new Notification(text, { tag: "chat-" + p.id, body: baseTitle });
        note.onclick = function () { window.focus(); p.el.querySelector(".chat-input").focus(); note.close(); };
      } catch (e) { /* some browsers only notify from a service worker */ }
    }
  }
  function alertOther(text) {
    $("work-news").textContent = text;
    if (soundOn()) beep();
    if (canNotify && Notification.permission === "granted" && (document.hidden || !document.hasFocus())) {
      try { new Notification(text, { body: baseTitle }); } catch (e) { /* as above */ }
    }
  }
  socket.on("connect", function () {
    setConnection("Connected");
    socket.emit("presence", { status: $("presence").value });
    socket.emit("mine", {}, function (ack) { (ack.items || []).forEach(openPanel); });
  });
  socket.on("disconnect", function () { setConnection("Disconnected – reconnecting…"); });
  socket.on("connect_error", function () { setConnection("Cannot connect – retrying…"); });
  socket.on("presence", function (p) { $("presence").value = p.status === "offline" ? "available" : p.status; });
  $("presence").addEventListener("change", function () { socket.emit("presence", { status: this.value }); });

  socket.on("queue", function (q) {
    var list = $("waiting");
    list.replaceChildren();
    q.items.forEach(function (c) {
      var li = document.createElement("li");
      var name = document.createElement("strong");
      name.textContent = c.name || c.customer_name;
      var meta = document.createElement("div");
      meta.className = "muted";
      meta.textContent = (c.topic || "general") + " · waiting since " + new Date(c.queued_at).toLocaleTimeString();
      var take = document.createElement("button");
      take.type = "button";
      take.className = "button secondary";
      take.textContent = "Take chat";
      take.setAttribute("aria-label", "Take chat with " + name.textContent);
      take.addEventListener("click", function () {
        socket.emit("accept", { conversation_id: c.conversation_id }, function (ack) {
          if (ack.error) { alert(ack.error.message); return; }
          openPanel(Object.assign(ack.conversation, { messages: ack.messages }));
        });
      });
      li.append(name, meta, take);
      list.appendChild(li);
    });
    $("waiting-count").textContent = q.items.length;
    $("waiting-empty").hidden = q.items.length > 0;
  });

  socket.on("assigned", function (c) {
    var known = !!panels[c.conversation_id];
    var p = openPanel(c);
    if (known) return;
    var who = c.name || c.customer_name || "a resident";
    alertAgent(p, c.reason === "transferred" ? "Chat with " + who + " transferred to you"
      : c.reason === "moved" ? "Chat with " + who + " moved to you by a supervisor" : "New chat from " + who, true);
  });
  socket.on("message", function (m) {
    var p = panels[m.conversation_id];
    if (!p) return;
    var fresh = !p.shown[m.id];
    addMessage(p, m);
    if (fresh && m.author === "resident") alertAgent(p, "New message from " + p.name);
  });
  socket.on("work_assigned", function (w) {
    alertOther((w.channel === "email" ? "An email" : "A conversation") + " was moved to you: " + (w.subject || "#" + w.conversation_id));
  });
  socket.on("banners", function (b) {
    var box = $("staff-banners");
    if (!box) return;
    box.replaceChildren.apply(box, (b.items || []).map(function (banner) {
      var p = document.createElement("p");
      p.className = "banner";
      p.setAttribute("role", "note");
      p.textContent = banner.message;
      return p;
    }));
  });
  socket.on("typing", function (t) {
    var p = panels[t.conversation_id];
    if (p) p.el.querySelector(".chat-typing").textContent = t.typing ? "Resident is typing…" : "";
  });
  socket.on("ended", function (e) {
    var p = panels[e.conversation_id];
    if (p) { p.el.classList.add("ended"); p.el.querySelector(".chat-flag").textContent = "The resident has left: close with an outcome."; }
  });
  socket.on("unassigned", function (e) { closePanel(e.conversation_id); });
  // After a Redis outage the server re-sends this console's chats: keep those, drop any that left meanwhile.
  socket.on("resync", function () {
    socket.emit("mine", {}, function (ack) {
      if (!ack.items) return;
      var held = {};
      ack.items.forEach(function (c) { held[c.conversation_id] = true; openPanel(c); });
      Object.keys(panels).forEach(function (id) { if (!held[id]) closePanel(id); });
    });
  });

  function addMessage(p, m) {
    if (p.shown[m.id]) return;
    var li = document.createElement("li");
    li.className = "from-" + m.author + (m.internal ? " internal" : "");
    li.setAttribute("data-seq", m.seq);
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = m.internal ? "Note:" : (m.author === "resident" ? p.name + ":" : m.author === "agent" ? (m.author_name || "Agent") + ":" : "");
    var body = document.createElement("span");
    body.textContent = m.body;
    var when = m.at ? new Date(m.at) : new Date();
    var stamp = document.createElement("time");
    stamp.dateTime = when.toISOString();
    stamp.textContent = when.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    li.append(who, body, stamp);
    var log = p.el.querySelector(".chat-log");
    var after = Array.prototype.find.call(log.children, function (x) { return +x.getAttribute("data-seq") > m.seq; });
    log.insertBefore(li, after || null);
    log.scrollTop = log.scrollHeight;
    p.shown[m.id] = li;
    if (m.seq > p.seq + 1) {  // a gap: fetch what we missed
      socket.emit("history", { conversation_id: p.id, after_seq: p.seq }, function (ack) {
        (ack.messages || []).forEach(function (x) { addMessage(p, x); });
      });
    }
    p.seq = Math.max(p.seq, m.seq);
  }

  function openPanel(c) {
    var p = panels[c.conversation_id];
    if (!p) {
      var el = document.getElementById("chat-panel").content.firstElementChild.cloneNode(true);
      p = panels[c.conversation_id] = { id: c.conversation_id, el: el, shown: {}, seq: 0, name: c.name };
      el.setAttribute("aria-label", "Chat with " + c.name);
      el.dataset.conversationId = c.conversation_id;  // guidance.js records a help link sent in this chat
      wire(p, c);
      el.addEventListener("focusin", function () { seen(p); });
      el.addEventListener("click", function () { seen(p); });
      $("mine").appendChild(el);
      $("mine-empty").hidden = true;
    }
    p.el.querySelector(".chat-title").textContent = c.name;
    p.el.querySelector(".chat-meta").textContent = [c.topic || "general", c.email, c.phone,
      c.case_reference ? "case " + c.case_reference : null].filter(Boolean).join(" · ");
    if (c.status === "ended") p.el.classList.add("ended");
    (c.messages || []).forEach(function (m) { addMessage(p, m); });
    loadCustomer(p, c.customer_id, c.customer_name);
    return p;
  }

  function closePanel(id) {
    var p = panels[id];
    if (!p) return;
    p.el.remove();
    delete panels[id];
    delete unread[id];
    document.title = (unreadTotal() ? "(" + unreadTotal() + ") " : "") + baseTitle;
    $("mine-empty").hidden = Object.keys(panels).length > 0;
  }

  function loadCustomer(p, customerId, name) {
    var link = p.el.querySelector(".chat-customer-link");
    link.textContent = name + " (#" + customerId + ")";
    link.href = "/customers/" + customerId;
    var unverified = p.el.querySelector(".chat-unverified");
    unverified.hidden = true;
    // Said before the history: a record matched only by claimed details may be someone else's.
    fetch("/api/v1/customers/" + customerId, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (customer) {
        if (!customer || !customer.identities) return;
        unverified.hidden = customer.identities.some(function (i) { return i.verified; });
        unverified.parentElement.dataset.identity = unverified.hidden ? "verified" : "claimed";
      });
    fetch("/api/v1/customers/" + customerId + "/timeline?limit=10", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (data) {
        var list = p.el.querySelector(".chat-timeline");
        list.replaceChildren();
        data.items.forEach(function (e) {
          var li = document.createElement("li");
          li.className = "entry";
          li.textContent = new Date(e.occurred_at).toLocaleDateString() + " · " + (e.channel || "") + " · " + e.summary;
          list.appendChild(li);
        });
      });
  }

  function wire(p, c) {
    var el = p.el, input = el.querySelector(".chat-input"), typingTimer = null, typingNow = false;
    function typing(on) {
      if (on === typingNow) return;
      typingNow = on;
      socket.emit("typing", { conversation_id: p.id, typing: on });
    }
    function store(event) {
      var body = input.value.trim();
      if (!body) return;
      var payload = { conversation_id: p.id, client_id: uuid(), body: body };
      var attempt = function () {
        socket.timeout(8000).emit(event, payload, function (err, ack) {
          if (err) { setTimeout(attempt, 1000); return; }  // same client_id: stored once
          if (ack.error) { el.querySelector(".chat-flag").textContent = ack.error.message; return; }
          addMessage(p, { id: ack.id, seq: ack.seq, author: "agent", body: body, internal: event === "note", author_name: "You" });
        });
      };
      attempt();
      input.value = "";
      typing(false);
    }
    el.querySelector(".chat-send").addEventListener("submit", function (ev) { ev.preventDefault(); store("message"); });
    el.querySelector(".chat-note").addEventListener("click", function () { store("note"); });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); store("message"); }
    });
    input.addEventListener("input", function () {
      typing(true);
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typing(false); }, 3000);
    });
    el.querySelector(".chat-canned").addEventListener("change", function () {
      if (this.value) { input.value = input.value ? input.value + " " + this.value : this.value; this.value = ""; input.focus(); }
    });
    el.querySelector(".chat-transfer").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = this, payload = { conversation_id: p.id, note: f.note.value };
      if (f.agent_id.value) payload.agent_id = +f.agent_id.value; else payload.queue = f.queue.value;
      socket.emit("transfer", payload, function (ack) {
        if (ack.error) { el.querySelector(".chat-flag").textContent = ack.error.message; return; }
        closePanel(p.id);
      });
    });
    var caseForm = el.querySelector(".chat-case");
    function fillCategories() {
      caseForm.category.replaceChildren.apply(caseForm.category, (categories[caseForm.service.value] || []).map(function (pair) {
        var o = document.createElement("option"); o.value = pair[0]; o.textContent = pair[1]; return o;
      }));
    }
    caseForm.service.addEventListener("change", fillCategories);
    fillCategories();
    caseForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      socket.emit("raise_case", { conversation_id: p.id, service: caseForm.service.value,
        category: caseForm.category.value, title: caseForm.title.value }, function (ack) {
        el.querySelector(".chat-flag").textContent = ack.error ? ack.error.message : "Case " + ack.reference + " raised.";
        if (!ack.error) loadCustomer(p, c.customer_id, c.customer_name);
      });
    });
    el.querySelector(".chat-close").addEventListener("submit", function (ev) {
      ev.preventDefault();
      socket.emit("close", { conversation_id: p.id, outcome: this.outcome.value }, function (ack) {
        if (ack.error) { el.querySelector(".chat-flag").textContent = ack.error.message; return; }
        closePanel(p.id);
      });
    });
    var results = el.querySelector(".chat-link-results");
    el.querySelector(".chat-link").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = this.q.value.trim();
      if (!q) return;
      fetch("/api/v1/customers?limit=10&q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (data) {
          results.replaceChildren();
          if (!data.items.length) {
            results.appendChild(Object.assign(document.createElement("li"), { textContent: "No customer found." }));
            return;
          }
          data.items.forEach(function (found) {
            var li = document.createElement("li"), label = document.createElement("span");
            label.textContent = [found.name, found.phone, found.email].filter(Boolean).join(" · ");
            var link = document.createElement("button");
            link.type = "button";
            link.className = "button secondary";
            link.textContent = "Link";
            link.setAttribute("aria-label", "Link this chat to " + found.name);
            link.addEventListener("click", function () {
              socket.emit("link_customer", { conversation_id: p.id, customer_id: found.id }, function (ack) {
                if (ack.error) { el.querySelector(".chat-flag").textContent = ack.error.message; return; }
                c.customer_id = ack.customer_id;
                c.customer_name = found.name;
                results.replaceChildren();
                el.querySelector(".chat-flag").textContent = "Linked to " + found.name + ".";
                loadCustomer(p, ack.customer_id, found.name);
              });
            });
            li.append(label, link);
            results.appendChild(li);
          });
        });
    });
  }
})();
