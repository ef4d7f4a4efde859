/* Hospital dashboard: client-side form checks and live regions refreshed by short polling. */
(function () {
  "use strict";

  // ---- form: the same rules as the server, for quicker feedback (the server re-checks) ----
  var form = document.getElementById("request-form");
  if (form) {
    var neededBy = form.elements.namedItem("needed_by");
    var messages = {
      blood_group: "Choose the blood group.",
      component: "Choose the component.",
      units: "Enter a whole number of units from 1 to 20.",
      patient_reference: "Use an opaque reference (letters, digits, . _ : / # -), never a patient's name.",
    };
    function priority() {
      var checked = form.querySelector('input[name="priority"]:checked');
      return checked ? checked.value : "";
    }
    function showError(name, text) {
      var el = form.querySelector('[data-error-for="' + name + '"]');
      var input = form.elements.namedItem(name);
      if (el) el.textContent = text || "";
      if (input && input.setAttribute) {
        if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      }
    }
    function mtp() {
      var checked = form.querySelector('input[name="protocol"]:checked');
      return checked ? checked.value === "MTP" : false;
    }
    // MTP: the bank sends packs, so component, units and partial supply do not apply (disabled: not posted).
    function syncProtocol() {
      form.querySelectorAll("[data-standard-only]").forEach(function (el) {
        el.hidden = mtp();
        el.querySelectorAll("input, select").forEach(function (input) { input.disabled = mtp(); });
      });
    }
    function syncNeededBy() {
      neededBy.required = priority() === "SCHEDULED";
      syncProtocol();
    }
    function check() {
      var ok = true;
      var names = mtp() ? ["blood_group", "patient_reference"] : ["blood_group", "component", "units", "patient_reference"];
      names.forEach(function (name) {
        var input = form.elements.namedItem(name);
        var bad = !input.checkValidity();
        showError(name, bad ? messages[name] : "");
        if (bad) ok = false;
      });
      var text = "";
      if (priority() === "SCHEDULED" && !neededBy.value) text = "Required for a scheduled request.";
      else if (neededBy.value && new Date(neededBy.value + "Z") <= new Date()) text = "Must be in the future.";
      showError("needed_by", text);
      var clinician = form.elements.namedItem("authorised_by");
      var needsClinician = mtp() || form.elements.namedItem("blood_group").value === "UNKNOWN";
      var clinicianText = needsClinician && !clinician.value.trim()
        ? "Required for an unknown group or an MTP: the clinician who authorised it." : "";
      showError("authorised_by", clinicianText);
      return ok && !text && !clinicianText;
    }
    form.addEventListener("change", syncNeededBy);
    form.addEventListener("submit", function (event) {
      syncNeededBy();
      if (!check()) {
        event.preventDefault();
        var first = form.querySelector('[aria-invalid="true"]');
        if (first) first.focus();
      }
    });
    syncNeededBy();
  }

  // ---- live regions: poll the state endpoint, swap what changed, announce status changes ----
  var layout = document.querySelector("[data-state-url]");
  if (!layout) return;
  var url = layout.getAttribute("data-state-url");
  var announcer = document.getElementById("announcer");
  var dot = document.querySelector(".live-dot");
  var statuses = {};
  document.querySelectorAll("[data-request-id]").forEach(function (el) {
    statuses[el.getAttribute("data-request-id")] = el.getAttribute("data-status");
  });
  var busy = false;

  function typingInside(region) {
    var active = document.activeElement;
    return active && region.contains(active) && (active.tagName === "INPUT" || active.tagName === "TEXTAREA") && active.value;
  }

  function apply(state) {
    Object.keys(state.regions).forEach(function (name) {
      var region = document.querySelector('[data-live-region="' + name + '"]');
      if (!region || region.getAttribute("data-html") === state.regions[name]) return;
      if (typingInside(region)) return; // never wipe what someone is typing; next poll catches up
      region.innerHTML = state.regions[name];
      region.setAttribute("data-html", state.regions[name]);
    });
    var changes = [];
    Object.keys(state.statuses).forEach(function (id) {
      if (statuses[id] && statuses[id] !== state.statuses[id]) {
        changes.push("A request is now " + state.statuses[id].replace("_", " ").toLowerCase() + ".");
      }
    });
    statuses = state.statuses;
    if (changes.length && announcer) announcer.textContent = changes.join(" ");
  }

  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401 || response.status === 403 || response.redirected) {
          window.location.reload();
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (state) {
        if (state) apply(state);
        if (dot) dot.classList.toggle("stale", !state);
      })
      .catch(function () { if (dot) dot.classList.add("stale"); })
      .then(function () { busy = false; });
  }
  setInterval(poll, 1000);
  document.addEventListener("visibilitychange", poll);
})();
