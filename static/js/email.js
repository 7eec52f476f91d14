// Conversation page: choosing a canned reply puts its text in the reply box (agents can still edit it).
(function () {
  var picker = document.getElementById("canned");
  if (!picker) { return; }
  picker.addEventListener("change", function () {
    var box = document.getElementById(picker.getAttribute("data-target"));
    if (!box || !picker.value) { return; }
    box.value = box.value ? box.value.replace(/\s*$/, "") + "\n\n" + picker.value : picker.value;
    box.focus();
    picker.value = "";
  });
})();
