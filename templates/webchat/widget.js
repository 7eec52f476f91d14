/* Council webchat widget: add <script src="{{ url_for('webchat.widget', _external=True) }}" async></script>
   to any page. It adds a "Chat with us" button that opens the chat in a frame served from the CRM,
   so the conversation (and its token) stays on the CRM's origin. */
(function () {
  "use strict";
  if (window.__councilWebchat) return;
  window.__councilWebchat = true;
  var CHAT_URL = {{ chat_url | tojson }};
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
    panel.style.cssText = "position:fixed;right:16px;bottom:70px;z-index:2147483000;width:min(400px,calc(100vw - 32px));" +
      "height:min(640px,calc(100vh - 90px));background:#fff;border:2px solid #0b0c0c;box-shadow:0 4px 16px rgba(0,0,0,.3)";
    var frame = null;
    button.addEventListener("click", function () {
      var opening = panel.hidden;
      if (opening && !frame) {
        frame = document.createElement("iframe");
        frame.src = CHAT_URL;
        frame.title = "Chat with the council";
        frame.style.cssText = "width:100%;height:100%;border:0";
        panel.appendChild(frame);
      }
      panel.hidden = !opening;
      button.setAttribute("aria-expanded", String(opening));
      button.textContent = opening ? "Close chat" : "Chat with us";
      if (opening) frame.focus();
    });
    document.body.appendChild(panel);
    document.body.appendChild(button);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();
