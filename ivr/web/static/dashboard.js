// /dashboard: fetches the refreshed panel (/dashboard/panel, server-rendered) every few
// seconds and swaps it in; stops while the tab is hidden, says when it could not refresh.

const holder = document.getElementById("dashboard");
const status = document.getElementById("refresh-status");
const every = 1000 * Number(holder?.dataset.refresh || 5);
let timer = null;

async function refresh() {
  try {
    const reply = await fetch("/dashboard/panel", { cache: "no-store", credentials: "same-origin" });
    if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
    const html = await reply.text();
    // a reader keeps their place: only the panel is replaced, never the focus
    holder.innerHTML = html;
    holder.dataset.refreshed = String(Number(holder.dataset.refreshed || 0) + 1);
    status.textContent = "";
  } catch (error) {
    status.textContent = `Could not refresh (${error.message}); trying again.`;
  } finally {
    schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  if (!document.hidden) timer = setTimeout(refresh, every);
}

if (holder) {
  document.addEventListener("visibilitychange", schedule);
  schedule();
}
