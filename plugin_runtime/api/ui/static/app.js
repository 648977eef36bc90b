// The dashboard's only script (the pages' Content-Security-Policy allows no other): live rows
// on the runs page, and a queued run's page reloading once the run ends. The server renders
// every row, escaped; this file only swaps them in.
"use strict";

const POLL_MS = 2000;

function every(ms, task) {
  let busy = false;
  setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try { await task(); } catch (error) { /* the next tick tries again */ } finally { busy = false; }
  }, ms);
}

function liveRows() {
  const body = document.getElementById("runs-rows");
  if (!body || !body.dataset.live) return;
  every(POLL_MS, async () => {
    const answer = await fetch(body.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (answer.status === 401) { window.location.reload(); return; }
    if (!answer.ok) return;
    const rows = await answer.text();
    if (rows !== body.dataset.shown) {
      body.innerHTML = rows;
      body.dataset.shown = rows;
    }
  });
}

function liveRun() {
  const marker = document.getElementById("run-live");
  if (!marker || !marker.dataset.poll) return;
  every(POLL_MS, async () => {
    const answer = await fetch(marker.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!answer.ok) return;
    const run = await answer.json();
    if (run.status !== marker.dataset.status) window.location.reload();
  });
}

document.addEventListener("DOMContentLoaded", () => { liveRows(); liveRun(); });
