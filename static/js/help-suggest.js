/* Suggest help pages while a resident types (chat form, web forms, /track), before they contact us.
   "This answered my question" records a self-served journey and thanks them. Without JavaScript the
   server-rendered "See related help" list does the same job. */
(function () {
  "use strict";

  function debounce(fn, ms) {
    var timer;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function answered(box, slug, title) {
    var body = new URLSearchParams({ surface: box.dataset.surface, article: slug });
    fetch(box.dataset.answered, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": box.dataset.csrf,
                 "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).catch(function () { /* the thanks still shows: counting is not the resident's problem */ });
    var live = box.querySelector(".help-suggestions__live");
    live.innerHTML = "";
    var panel = document.createElement("div");
    panel.className = "govuk-panel govuk-panel--confirmation help-suggestions__thanks";
    var heading = document.createElement("h2");
    heading.className = "govuk-panel__title govuk-!-font-size-24";
    heading.textContent = "Glad we could help";
    panel.appendChild(heading);
    var text = document.createElement("div");
    text.className = "govuk-panel__body govuk-!-font-size-19";
    text.textContent = "You do not need to contact us about this. “" + title + "” stays available in Help.";
    panel.appendChild(text);
    live.appendChild(panel);
    live.hidden = false;
    box.dispatchEvent(new CustomEvent("help:answered", { bubbles: true, detail: { slug: slug } }));
  }

  function render(box, items) {
    var live = box.querySelector(".help-suggestions__live");
    var list = box.querySelector(".help-suggestions__list");
    if (!list) return;
    list.innerHTML = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "help-suggestions__item";
      var link = document.createElement("a");
      link.className = "govuk-link";
      link.href = item.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = item.title + " (opens in new tab)";
      li.appendChild(link);
      if (item.summary) {
        var summary = document.createElement("p");
        summary.className = "govuk-body-s govuk-!-margin-bottom-1";
        summary.textContent = item.summary;
        li.appendChild(summary);
      }
      var button = document.createElement("button");
      button.type = "button";
      button.className = "govuk-button govuk-button--secondary govuk-!-margin-bottom-2";
      button.textContent = "This answered my question";
      var hidden = document.createElement("span");
      hidden.className = "govuk-visually-hidden";
      hidden.textContent = ": " + item.title;
      button.appendChild(hidden);
      button.addEventListener("click", function () { answered(box, item.slug, item.title); });
      li.appendChild(button);
      list.appendChild(li);
    });
    live.hidden = items.length === 0;
  }

  function attach(box) {
    var fields = (box.dataset.fields || "").split(" ").map(function (id) {
      return document.getElementById(id);
    }).filter(Boolean);
    if (!fields.length) return;
    var last = "";
    var lookup = debounce(function () {
      var q = fields.map(function (f) { return f.value; }).join(" ").trim();
      if (q.length < 3 || q === last) return;
      last = q;
      var url = box.dataset.helpSuggest + "?q=" + encodeURIComponent(q.slice(0, 200)) +
        (box.dataset.service ? "&service=" + encodeURIComponent(box.dataset.service) : "");
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (data) { if (q === last) render(box, data.items || []); })
        .catch(function () {});
    }, 250);
    fields.forEach(function (f) { f.addEventListener("input", lookup); });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-help-suggest]"), attach);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
