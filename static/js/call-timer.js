// Call timer: counts from page load; Stop freezes the end time sent with the call.
(function () {
  var form = document.getElementById("call-form");
  if (!form) return;
  var started = form.querySelector("input[name=started_at]");
  var ended = form.querySelector("input[name=ended_at]");
  var out = document.getElementById("call-timer");
  var toggle = document.getElementById("timer-toggle");
  var start = new Date();
  started.value = start.toISOString();
  var stoppedAt = null;
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var now = stoppedAt || new Date();
    var s = Math.max(0, Math.round((now - start) / 1000));
    out.textContent = pad(Math.floor(s / 60)) + ":" + pad(s % 60);
  }
  var timer = setInterval(tick, 1000);
  toggle.addEventListener("click", function () {
    if (stoppedAt) {
      stoppedAt = null; ended.value = "";
      toggle.textContent = "Stop timer"; toggle.dataset.state = "running";
      timer = setInterval(tick, 1000);
    } else {
      stoppedAt = new Date(); ended.value = stoppedAt.toISOString();
      clearInterval(timer); tick();
      toggle.textContent = "Resume timer"; toggle.dataset.state = "stopped";
    }
  });
  var raise = form.querySelector("input[name=raise_case]");
  var outcome = form.querySelector("select[name=outcome]");
  if (raise && outcome) raise.addEventListener("change", function () {
    if (raise.checked) outcome.value = "case_raised";
  });
})();
