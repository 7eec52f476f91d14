// Call timer: counts from page load; Stop freezes the end time sent with the call.
// After a validation error the page comes back with the times that were posted, and the
// timer carries on from them, so a mistake never resets the handle time.
(function () {
  var form = document.getElementById("call-form");
  if (!form) return;
  var started = form.querySelector("input[name=started_at]");
  var ended = form.querySelector("input[name=ended_at]");
  var out = document.getElementById("call-timer");
  var toggle = document.getElementById("timer-toggle");
  function parse(value) {
    var when = value ? new Date(value) : null;
    return when && !isNaN(when.getTime()) ? when : null;
  }
  var resumed = form.getAttribute("data-resumed") === "true";
  var start = (resumed && parse(started.value)) || new Date();
  started.value = start.toISOString();
  var stoppedAt = resumed ? parse(ended.value) : null;
  if (!stoppedAt) ended.value = "";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var now = stoppedAt || new Date();
    var s = Math.max(0, Math.round((now - start) / 1000));
    var h = Math.floor(s / 3600);
    out.textContent = (h ? h + ":" : "") + pad(Math.floor(s % 3600 / 60)) + ":" + pad(s % 60);
  }
  var timer = null;
  function showState() {
    toggle.textContent = stoppedAt ? "Resume timer" : "Stop timer";
    toggle.dataset.state = stoppedAt ? "stopped" : "running";
  }
  function run() { timer = setInterval(tick, 1000); }
  tick(); showState();
  if (!stoppedAt) run();
  toggle.addEventListener("click", function () {
    if (stoppedAt) {
      stoppedAt = null; ended.value = "";
      run();
    } else {
      stoppedAt = new Date(); ended.value = stoppedAt.toISOString();
      clearInterval(timer); tick();
    }
    showState();
  });
  var raise = form.querySelector("input[name=raise_case]");
  var outcome = form.querySelector("select[name=outcome]");
  if (raise && outcome) raise.addEventListener("change", function () {
    if (raise.checked) outcome.value = "case_raised";
  });
})();
