/* Guidance at the agent's elbow: when a reason for contact is picked (or words are typed in the
   panel's search), show staff guidance and public help for it. On a call, ticking "Used" records the
   article on the contact; in a chat or an email, "Insert link" puts the public link into the reply
   being written and records the article on that conversation. */
(function () {
  "use strict";
  var panel = document.querySelector("[data-guidance]");
  if (!panel) return;
  var mode = panel.dataset.mode || "call";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var lastReply = null;
  document.addEventListener("focusin", function (e) {
    if (e.target.tagName === "TEXTAREA" && !panel.contains(e.target)) lastReply = e.target;
  });

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function recordUse(articleId, conversationId) {
    fetch(panel.dataset.guidance.replace(/guidance$/, "uses"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify({ article_id: articleId, conversation_id: conversationId, channel: mode })
    }).catch(function () {});
  }

  function usedOnCall(item, checked) {
    var form = document.getElementById(panel.dataset.form || "call-form");
    if (!form) return;
    var existing = form.querySelector('input[name="article_ids"][value="' + item.id + '"]');
    if (checked && !existing) {
      var input = el("input");
      input.type = "hidden"; input.name = "article_ids"; input.value = item.id;
      form.appendChild(input);
    } else if (!checked && existing) {
      existing.remove();
    }
  }

  function insertLink(item) {
    var target = lastReply || document.querySelector("textarea");
    if (!target) return;
    var text = item.title + ": " + item.public_url;
    var start = target.selectionStart || target.value.length;
    target.value = target.value.slice(0, start) + (start && target.value[start - 1] !== "\n" ? "\n" : "") + text +
      target.value.slice(target.selectionEnd || start);
    target.dispatchEvent(new Event("input", { bubbles: true }));
    target.focus();
    var holder = target.closest("[data-conversation-id]");
    var conversation = holder ? holder.dataset.conversationId : panel.dataset.conversation;
    recordUse(item.id, conversation ? Number(conversation) : null);
  }

  function render(data) {
    var list = panel.querySelector(".guidance__list");
    var notices = panel.querySelector(".guidance__notices");
    list.innerHTML = ""; notices.innerHTML = "";
    (data.notices || []).forEach(function (n) {
      notices.appendChild(el("p", "staff-notice", n.service + ": " + n.message));
    });
    (data.items || []).forEach(function (item) {
      var li = el("li", "guidance__item guidance__item--" + item.audience);
      var link = el("a", null, item.title);
      link.href = item.url; link.target = "_blank"; link.rel = "noopener";
      li.appendChild(link);
      li.appendChild(el("span", "tag", item.audience === "staff" ? "Staff guidance" : "Public help"));
      if (item.summary) li.appendChild(el("p", "muted", item.summary));
      if (mode === "call") {
        var label = el("label", "checkbox");
        var box = el("input");
        box.type = "checkbox";
        box.addEventListener("change", function () { usedOnCall(item, box.checked); });
        label.appendChild(box);
        label.appendChild(document.createTextNode(" Used with this caller"));
        li.appendChild(label);
      } else if (item.public_url) {
        var button = el("button", "button small", "Insert link");
        button.type = "button";
        button.appendChild(el("span", "visually-hidden", " to " + item.title));
        button.addEventListener("click", function () { insertLink(item); });
        li.appendChild(button);
      }
      list.appendChild(li);
    });
    panel.querySelector(".guidance__empty").hidden = (data.items || []).length > 0;
  }

  var source = panel.dataset.for ? document.getElementById(panel.dataset.for) : null;
  var search = panel.querySelector(".guidance__q");
  var timer;
  function refresh() {
    var params = new URLSearchParams();
    if (source && source.value) params.set("category", source.value);
    if (panel.dataset.service) params.set("service", panel.dataset.service);
    if (search && search.value.trim()) params.set("q", search.value.trim());
    if (![...params.keys()].length) { render({ items: [] }); return; }
    fetch(panel.dataset.guidance + "?" + params.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(render)
      .catch(function () {});
  }
  if (source) source.addEventListener("change", refresh);
  if (search) search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  panel.addEventListener("guidance:refresh", function (e) {
    if (e.detail && e.detail.service !== undefined) panel.dataset.service = e.detail.service || "";
    refresh();
  });
  refresh();
})();
