// Conversation page: canned replies go into the reply box (already personalised by the server), and
// while the agent writes, a marker tells colleagues someone is replying; their markers show as a warning.
(function () {
  var picker = document.getElementById("canned");
  if (picker) {
    picker.addEventListener("change", function () {
      var box = document.getElementById(picker.getAttribute("data-target"));
      if (!box || !picker.value) { return; }
      box.value = box.value ? box.value.replace(/\s*$/, "") + "\n\n" + picker.value : picker.value;
      box.focus();
      picker.value = "";
      box.dispatchEvent(new Event("input"));
    });
  }

  var section = document.getElementById("reply-box");
  var form = document.getElementById("reply-form");
  var warning = document.getElementById("others-replying");
  if (!section || !form || !warning) { return; }
  var url = section.getAttribute("data-replying-url");
  var renewEvery = (parseInt(section.getAttribute("data-renew-seconds"), 10) || 20) * 1000;
  var token = form.querySelector("input[name=csrf_token]").value;
  var lastMark = 0;

  function show(others) {
    if (!others || !others.length) { warning.hidden = true; warning.textContent = ""; return; }
    var who = others.join(", ");
    warning.innerHTML = "";
    var strong = document.createElement("strong");
    strong.textContent = who + (others.length === 1 ? " is" : " are") + " already replying to this conversation.";
    warning.appendChild(strong);
    warning.appendChild(document.createTextNode(" Check with them before you send."));
    warning.hidden = false;
  }
  function ask(method, body) {
    var options = {method: method, credentials: "same-origin", headers: {"X-CSRFToken": token, "Accept": "application/json"}};
    if (body) { options.body = body; }
    return fetch(url, options).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data.others); } }).catch(function () {});
  }
  function marking() {
    var now = Date.now();
    if (now - lastMark < renewEvery) { return; }
    lastMark = now;
    var data = new FormData(); data.append("csrf_token", token);
    ask("POST", data);
  }
  var body = form.querySelector("textarea[name=body]");
  body.addEventListener("input", function () { if (body.value.trim()) { marking(); } });
  // Keep the marker alive while there is a draft; otherwise just look for colleagues.
  setInterval(function () {
    if (body.value.trim()) { lastMark = 0; marking(); } else { ask("GET"); }
  }, renewEvery);
  window.addEventListener("pagehide", function () {
    if (!lastMark || !navigator.sendBeacon) { return; }
    var data = new FormData(); data.append("csrf_token", token); data.append("done", "1");
    navigator.sendBeacon(url, data);
  });
})();
