/* Resident webchat client: every send carries a client id and is retried until acknowledged;
   the conversation token and unacknowledged sends survive a reload; on reconnect the chat
   resumes after the last seq seen, and each message is shown once, in seq order.
   Text is only ever set with textContent: nothing a person types is rendered as HTML. */
(function () {
  "use strict";
  var KEY = "crm-webchat", VISITOR_KEY = "crm-webchat-visitor";
  var $ = function (id) { return document.getElementById(id); };

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  // Storage may be refused (a framed page with third-party storage blocked): then keep it in memory.
  var memory = {};
  var storage = {
    get: function (k) { try { return localStorage.getItem(k); } catch (e) { return memory[k] || null; } },
    set: function (k, v) { try { localStorage.setItem(k, v); } catch (e) { memory[k] = v; } },
    remove: function (k) { try { localStorage.removeItem(k); } catch (e) { delete memory[k]; } }
  };
  function load() { try { return JSON.parse(storage.get(KEY)) || null; } catch (e) { return null; } }
  function save() {
    storage.set(KEY, JSON.stringify(chat));
    // A framed page may be refused storage of its own (third-party storage blocked): the widget's
    // page keeps the chat for it, in that tab only, and hands it back after a reload.
    if (window.parent !== window && chat) {
      window.parent.postMessage({ source: "crm-webchat", save: { token: chat.token, conversation_id: chat.conversation_id,
                                                                  email: chat.email || "" } }, "*");
    }
  }

  var visitorId = storage.get(VISITOR_KEY) || uuid();
  storage.set(VISITOR_KEY, visitorId);

  // chat: {token, conversation_id, watermark (all seqs <= it are known), pending: [{client_id, body}]}
  var chat = load();
  if (chat) chat.watermark = 0;  // a fresh page shows nothing yet: fetch the whole conversation
  var shown = {};          // message id -> <li>
  var bySeq = [];          // seqs shown, ascending
  var ended = false, resuming = false;
  var socket = io("/webchat", { auth: { visitor_id: visitorId } });

  var baseTitle = document.title;
  // GOV.UK error summary: one linked line per field error (or one plain line), focused, title prefixed.
  function showErrors(fieldErrors, text) {
    var list = $("chat-error-list");
    list.replaceChildren();
    fieldErrors.forEach(function (e) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = "#" + e.field;
      a.textContent = e.message;
      a.addEventListener("click", function (ev) { ev.preventDefault(); $(e.field).focus(); });
      li.appendChild(a);
      list.appendChild(li);
    });
    $("chat-error-text").textContent = text || "";
    $("chat-error-text").hidden = !text;
    $("chat-error").hidden = false;
    document.title = "Error: " + baseTitle;
    $("chat-error").focus();
  }
  function showError(text) { showErrors([], text); }
  function clearError() {
    $("chat-error").hidden = true;
    document.title = baseTitle;
  }
  // Inline error under a pre-chat field (GOV.UK pattern): message, red group, described-by.
  var FIELD_GROUPS = { name: "name", email: "email", phone: "phone", "first-message": "first" };
  function fieldError(field, message) {
    var key = FIELD_GROUPS[field], error = $(key + "-error"), group = $(key + "-group"), input = $(field);
    if (message) error.querySelector(".text").textContent = message;
    error.hidden = !message;
    group.classList.toggle("govuk-form-group--error", !!message);
    input.classList.toggle(input.tagName === "TEXTAREA" ? "govuk-textarea--error" : "govuk-input--error", !!message);
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== error.id;
    });
    if (message) described.push(error.id);
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    else input.removeAttribute("aria-describedby");
  }

  function timeOf(at) {
    var when = at ? new Date(at) : new Date();
    if (isNaN(when.getTime())) when = new Date();
    var t = document.createElement("time");
    t.dateTime = when.toISOString();
    t.textContent = when.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    return t;
  }

  function whoLabel(m) {
    if (m.author === "resident") return "You";
    if (m.author === "agent") return m.author_name || "Adviser";
    return "Council";
  }

  function render(m) {
    var li = shown[m.id] || (m.client_id && document.querySelector('[data-client-id="' + CSS.escape(m.client_id) + '"]'));
    if (!li) {
      li = document.createElement("li");
      var head = document.createElement("span");
      head.className = "head";
      var who = document.createElement("span");
      who.className = "who";
      head.appendChild(who);
      var body = document.createElement("span");
      body.className = "body";
      li.appendChild(head); li.appendChild(body);
    }
    li.className = "from-" + m.author + (m.seq ? "" : " sending");
    li.querySelector(".who").textContent = whoLabel(m) + (m.seq ? "" : " (sending…)");
    var stamp = li.querySelector("time");
    if (!stamp || m.at) {
      var fresh = timeOf(m.at);
      if (stamp) stamp.replaceWith(fresh); else li.querySelector(".head").appendChild(fresh);
    }
    li.querySelector(".body").textContent = m.body;
    if (m.client_id) li.setAttribute("data-client-id", m.client_id);
    if (m.id) { shown[m.id] = li; li.setAttribute("data-id", m.id); }
    if (m.seq) li.setAttribute("data-seq", m.seq);
    var log = $("chat-log");
    if (!li.parentNode || m.seq) {
      // Keep seq order: place before the first shown message with a larger seq.
      var next = null;
      if (m.seq) {
        var items = log.querySelectorAll("li[data-seq]");
        for (var i = 0; i < items.length; i++) {
          if (items[i] !== li && +items[i].getAttribute("data-seq") > m.seq) { next = items[i]; break; }
        }
      }
      if (next) log.insertBefore(li, next);
      else if (!li.parentNode) log.appendChild(li);
      else if (m.seq && li.nextSibling && li.nextSibling.hasAttribute("data-seq")) log.appendChild(li);
    }
    $("chat-scroll").scrollTop = $("chat-scroll").scrollHeight;
  }

  function receive(m) {
    if (shown[m.id]) return;
    render(m);
    if (chat && m.seq === chat.watermark + 1) { chat.watermark = m.seq; save(); }
    else if (chat && m.seq > chat.watermark + 1) { resume(); }  // a gap: fetch what we missed
  }

  var statusAsOf = "";
  function setStatus(s) {
    if (s.as_of) {
      if (s.as_of < statusAsOf) return;  // computed before a newer one we already showed
      statusAsOf = s.as_of;
    }
    var text = "";
    if (s.state === "queued") {
      var mins = Math.max(1, Math.round((s.estimated_wait_seconds || 0) / 60));
      text = "You are number " + (s.position || 1) + " in the queue. Estimated wait: about " + mins +
             (mins === 1 ? " minute." : " minutes.");
      $("offline-offer").hidden = !s.offline_offer;
    } else if (s.state === "assigned") {
      text = "You are chatting with " + (s.agent_name || "an adviser") + ".";
      $("offline-offer").hidden = true;
    } else if (s.state === "offline") {
      text = "Your message has been passed on. Your reference is " + s.reference + ".";
      finish();
    } else if (s.state === "ended") {
      text = "This chat has ended.";
      finish();
    }
    if ($("chat-status").textContent !== text) $("chat-status").textContent = text;
  }

  function finish() {
    ended = true;
    tellHost("ended");
    if (chat && chat.email && !$("transcript-email").value) $("transcript-email").value = chat.email;
    $("send-form").hidden = true;
    $("offline-offer").hidden = true;
    $("after-chat").hidden = false;
    $("chat-typing").textContent = "";
  }

  function openChat() {
    $("prechat").hidden = true;
    $("chat").hidden = false;
    document.body.classList.add("chat-open");
    if (!ended) tellHost("active");
  }

  // In the widget's frame: tell the host page whether a chat is under way (so it can reopen the
  // panel after the page reloads) and pass Escape up (a key pressed in a frame never reaches it).
  var framed = window.parent !== window;
  function tellHost(state) {
    if (framed) window.parent.postMessage({ source: "crm-webchat", state: state }, "*");
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && framed) tellHost("hide");
  });

  function resume() {
    if (!chat || resuming || !socket.connected) return;
    resuming = true;
    socket.timeout(10000).emit("resume", { token: chat.token, after_seq: chat.watermark }, function (err, ack) {
      resuming = false;
      if (err) return;  // the next connect resumes again
      if (ack.error) {
        if (ack.error.code === "not_found") { storage.remove(KEY); chat = null; location.reload(); }
        return;
      }
      ack.messages.forEach(function (m) { render(m); });
      var last = ack.messages.length ? ack.messages[ack.messages.length - 1].seq : chat.watermark;
      chat.watermark = Math.max(chat.watermark, last, (ack.state && ack.state.last_seq) || 0);
      save();
      setStatus(ack.state);
      flushPending();
    });
  }

  function flushPending() {
    if (!chat) return;
    chat.pending.forEach(function (p) { if (!p.inFlight) send(p); });
  }

  function send(p) {
    p.inFlight = true;
    socket.timeout(8000).emit("message", { client_id: p.client_id, body: p.body }, function (err, ack) {
      p.inFlight = false;
      if (err) { setTimeout(function () { if (socket.connected) send(p); }, 1000); return; }  // retried: stored once
      if (ack.error) {
        if (ack.error.code === "rate_limited") { setTimeout(function () { send(p); }, 2000); return; }
        chat.pending = chat.pending.filter(function (q) { return q.client_id !== p.client_id; });
        save();
        showError(ack.error.message);
        return;
      }
      chat.pending = chat.pending.filter(function (q) { return q.client_id !== p.client_id; });
      render({ id: ack.id, seq: ack.seq, author: "resident", body: p.body, client_id: p.client_id });
      if (ack.seq === chat.watermark + 1) chat.watermark = ack.seq;
      save();
    });
  }

  socket.on("connect", function () { if (chat) resume(); });
  socket.on("message", receive);
  socket.on("status", setStatus);
  socket.on("typing", function (t) {
    $("chat-typing").textContent = t.typing ? "The adviser is typing…" : "";
  });

  var EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  $("prechat-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearError();
    var name = $("name").value.trim(), first = $("first-message").value.trim(), email = $("email").value.trim();
    var isOpen = this.getAttribute("data-open") === "true";
    var errors = [];
    if (!name) errors.push({ field: "name", message: "Enter your name" });
    if (email && !EMAIL_RE.test(email)) {
      errors.push({ field: "email", message: "Enter an email address in the correct format, like name@example.com" });
    }
    if (!isOpen && !first) errors.push({ field: "first-message", message: "Enter your message" });
    Object.keys(FIELD_GROUPS).forEach(function (field) {
      var found = errors.filter(function (e) { return e.field === field; })[0];
      fieldError(field, found ? found.message : "");
    });
    if (errors.length) { showErrors(errors); return; }
    var payload = { name: name, email: email, phone: $("phone").value.trim(),
                    topic: $("topic").value, message: first, visitor_id: visitorId };
    socket.timeout(10000).emit("start", payload, function (err, ack) {
      if (err) { showError("We could not reach the chat service. Please try again."); return; }
      if (ack.error) {
        // The server's field errors go next to their fields, like the browser's own checks.
        var fields = ack.error.fields || {}, linked = [];
        [["name", "name"], ["email", "email"], ["phone", "phone"], ["message", "first-message"]].forEach(function (pair) {
          var said = fields[pair[0]];
          if (said && said.length) {
            var message = pair[0] === "email" ? "Enter an email address in the correct format, like name@example.com"
              : pair[0] === "phone" ? "Enter a phone number, like 01632 960 001 or 07700 900 982"
              : ack.error.message;
            fieldError(pair[1], message);
            linked.push({ field: pair[1], message: message });
          }
        });
        if (linked.length) showErrors(linked); else showError(ack.error.message);
        return;
      }
      chat = { token: ack.token, conversation_id: ack.conversation_id, watermark: 0, pending: [], email: email };
      save();
      openChat();
      $("chat-title").focus();
      resume();
    });
  });

  $("send-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = $("message").value.trim();
    if (!body || !chat || ended) return;
    var p = { client_id: uuid(), body: body };
    chat.pending.push(p);
    save();
    render({ author: "resident", body: body, client_id: p.client_id });
    $("message").value = "";
    typing(false);
    if (socket.connected) send(p);
  });

  $("message").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("send-form").requestSubmit(); }
  });

  var typingTimer = null, typingNow = false;
  function typing(on) {
    if (on === typingNow || !chat) return;
    typingNow = on;
    socket.emit("typing", { typing: on });
  }
  $("message").addEventListener("input", function () {
    typing(true);
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typing(false); }, 3000);
  });

  $("end-chat").addEventListener("click", function () {
    socket.timeout(10000).emit("end", {}, function (err, ack) {
      if (!err && ack && !ack.error) setStatus({ state: "ended" });
    });
  });

  $("leave-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = $("leave-body").value.trim();
    if (!body) { $("leave-body").focus(); return; }
    socket.timeout(10000).emit("leave_message", { body: body, email: $("leave-email").value.trim() }, function (err, ack) {
      if (err) { showError("We could not send your message. Please try again."); return; }
      if (ack.error) { showError(ack.error.message); return; }
      setStatus({ state: "offline", reference: ack.reference });
    });
  });

  $("rate-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var picked = document.querySelector('input[name="rating"]:checked');
    if (!picked) return;
    socket.emit("rate", { rating: +picked.value }, function (ack) {
      if (ack && !ack.error) $("rate-form").replaceChildren(Object.assign(document.createElement("p"),
        { className: "govuk-body", textContent: "Thank you for your feedback." }));
    });
  });

  $("transcript-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    socket.emit("transcript", { email: $("transcript-email").value.trim() }, function (ack) {
      if (ack && ack.error) { showError(ack.error.message); return; }
      $("transcript-form").replaceChildren(Object.assign(document.createElement("p"),
        { className: "govuk-body", textContent: "We have emailed you the transcript." }));
    });
  });

  $("new-chat").addEventListener("click", function () { tellHost("idle"); storage.remove(KEY); location.reload(); });

  if (chat) { openChat(); }
  else if (framed) {
    window.addEventListener("message", function (ev) {
      if (ev.source !== window.parent || !ev.data || ev.data.source !== "crm-webchat-host" || !ev.data.chat || chat) return;
      chat = { token: ev.data.chat.token, conversation_id: ev.data.chat.conversation_id, email: ev.data.chat.email,
               watermark: 0, pending: [] };
      storage.set(KEY, JSON.stringify(chat));
      openChat();
      resume();
    });
    tellHost("ready");
  }
})();
