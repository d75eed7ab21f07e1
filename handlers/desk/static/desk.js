/* Vestnik's desk: live rows of the journal page from its server-sent events
   (/desk/journal/events). The page works without this script; it only saves reloading. */
(function () {
  "use strict";
  var source = null;

  function rowOf(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function say(text) {
    var state = document.getElementById("live-state");
    if (state) { state.textContent = text; }
  }

  function start() {
    if (source) { source.close(); source = null; }
    var table = document.querySelector("table[data-live]");
    if (!table || !window.EventSource) { return; }
    var body = table.tBodies[0];
    var firstPage = table.getAttribute("data-first") === "1";
    source = new EventSource(table.getAttribute("data-live"));
    source.onopen = function () { say("обновляется на лету"); };
    source.onerror = function () { say("нет связи с сервером, переподключаемся…"); };
    source.addEventListener("row", function (event) {
      var data = JSON.parse(event.data);
      var row = rowOf(data.html);
      var old = document.getElementById("n-" + data.id);
      if (old) {
        old.replaceWith(row);
      } else {
        var top = body.querySelector("tr[data-id]");
        if (!firstPage || (top && Number(top.getAttribute("data-id")) > data.id)) { return; }
        var empty = body.querySelector("tr.empty");
        if (empty) { empty.remove(); }
        body.insertBefore(row, body.firstChild);
      }
      row.classList.add("fresh");
      if (window.htmx) { window.htmx.process(row); }
    });
    source.addEventListener("gone", function (event) {
      var old = document.getElementById("n-" + JSON.parse(event.data).id);
      if (old) { old.remove(); }
    });
    source.addEventListener("signout", function () {
      source.close();
      window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", start);
  // The filters form replaces the table through htmx: follow the new filters.
  document.addEventListener("htmx:afterSettle", start);
})();
