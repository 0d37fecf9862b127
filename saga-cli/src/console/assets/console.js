// The console's pages: confirm an action before it is sent, and read the page's live part
// again when the server says something changed (server-sent events; no polling).
(() => {
  "use strict";
  const bind = (root) => {
    for (const form of root.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", (e) => {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    }
  };
  bind(document);
  const live = document.querySelector("main[data-live]");
  const source = new EventSource("/events");
  // A page left (or kept in the back-forward cache) gives its connection back: a browser
  // keeps six per server, and a seventh page would wait for one.
  window.addEventListener("pagehide", () => source.close());
  window.addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });
  let pending = null;
  const refresh = () => {
    pending = null;
    fetch(location.href, { headers: { "X-Saga-Part": "main" } })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => {
        if (html === null || !live) return;
        live.innerHTML = html;
        bind(live);
        document.dispatchEvent(new CustomEvent("saga-refreshed"));
      })
      .catch(() => {});
  };
  source.addEventListener("change", (e) => {
    const change = JSON.parse(e.data);
    document.dispatchEvent(new CustomEvent("saga-change", { detail: change }));
    if (!live) return;
    const watching = live.dataset.process;
    if (watching && change.processes && !change.processes.includes(watching)) return;
    if (pending === null) pending = setTimeout(refresh, watching ? 0 : 800);
  });
  document.documentElement.dataset.live = "connecting";
  source.addEventListener("open", () => { document.documentElement.dataset.live = "open"; });
})();
