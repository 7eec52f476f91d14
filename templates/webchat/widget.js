/* Council webchat widget: add <script src="{{ widget_url }}" async></script>
   to any page. It adds a "Chat with us" button that opens the chat in a frame served from the CRM,
   so the conversation (and its token) stays on the CRM's origin. A chat under way reopens after the
   council's page reloads; Escape (in the page or the frame) hides the panel, and the chat carries on. */
(function () {
  "use strict";
  if (window.__councilWebchat) return;
  window.__councilWebchat = true;
  var CHAT_URL = {{ chat_url | tojson }};
  var CHAT_ORIGIN = new URL(CHAT_URL).origin;
  var STATE_KEY = "council-webchat-state";  // this tab only: "active" while a chat is under way
  var CHAT_KEY = "council-webchat-chat";    // this tab only: the chat's handle, for a frame refused storage
  function remembered() { try { return sessionStorage.getItem(STATE_KEY); } catch (e) { return null; } }
  function remember(state) {
    try { if (state) sessionStorage.setItem(STATE_KEY, state); else sessionStorage.removeItem(STATE_KEY); } catch (e) {}
  }
  function keep(key, value) {
    try { if (value) sessionStorage.setItem(key, value); else sessionStorage.removeItem(key); } catch (e) {}
  }
  function kept(key) { try { return sessionStorage.getItem(key); } catch (e) { return null; } }
  function build() {
    var button = document.createElement("button");
    button.type = "button";
    button.id = "council-webchat-button";
    button.textContent = "Chat with us";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", "council-webchat-panel");
    button.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483000;padding:12px 18px;" +
      "font:700 16px/1.2 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#fff;background:#00535c;" +
      "border:0;box-shadow:0 2px 0 #002a2e;cursor:pointer";
    var panel = document.createElement("div");
    panel.id = "council-webchat-panel";
    panel.hidden = true;
    panel.setAttribute("role", "region");
    panel.setAttribute("aria-label", "Chat with the council");
    panel.style.cssText = "position:fixed;right:16px;bottom:70px;z-index:2147483000;width:min(400px,calc(100vw - 32px));" +
      "height:min(640px,calc(100vh - 90px));background:#fff;border:2px solid #0b0c0c;box-shadow:0 4px 16px rgba(0,0,0,.3)";
    var frame = null, active = remembered() === "active";
    function label() {
      if (!panel.hidden) return "Hide chat";
      return active ? "Show your chat" : "Chat with us";
    }
    function show(opening, focusFrame) {
      if (opening && !frame) {
        frame = document.createElement("iframe");
        frame.src = CHAT_URL;
        frame.title = "Chat with the council";
        frame.style.cssText = "width:100%;height:100%;border:0";
        panel.appendChild(frame);
      }
      panel.hidden = !opening;
      button.setAttribute("aria-expanded", String(opening));
      button.textContent = label();
      if (opening && focusFrame) frame.focus();
    }
    button.addEventListener("click", function () {
      var opening = panel.hidden;
      show(opening, opening);
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && !panel.hidden) { show(false); button.focus(); }
    });
    window.addEventListener("message", function (ev) {
      if (ev.origin !== CHAT_ORIGIN || !ev.data || ev.data.source !== "crm-webchat") return;
      if (ev.data.state === "hide") { show(false); button.focus(); return; }
      if (ev.data.save) { keep(CHAT_KEY, JSON.stringify(ev.data.save)); return; }
      if (ev.data.state === "ready") {
        var saved = kept(CHAT_KEY);
        if (saved && frame) frame.contentWindow.postMessage({ source: "crm-webchat-host", chat: JSON.parse(saved) }, CHAT_ORIGIN);
        return;
      }
      if (ev.data.state === "idle") keep(CHAT_KEY, null);
      active = ev.data.state === "active";
      remember(active ? "active" : null);
      button.textContent = label();
    });
    document.body.appendChild(panel);
    document.body.appendChild(button);
    // A chat was under way when the page was left: show it again (the frame resumes it).
    if (active) show(true, false);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();
