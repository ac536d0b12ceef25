// agentjournal dashboard: the live parts only (every page reads without this script).
//  - [data-expires]: a claim's time left, counting down every second.
//  - [data-feed-src]: a list fed by server-sent events; new rows are put on top.
"use strict";

const SOON_S = 120;

function formatLeft(seconds) {
  if (seconds <= 0) return "expired";
  const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  const parts = [];
  for (const [unit, size] of units) {
    if (seconds >= size || parts.length) {
      const value = Math.floor(seconds / size);
      parts.push((parts.length ? String(value).padStart(2, "0") : String(value)) + unit);
      seconds %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ") + " left";
}

function tick() {
  const now = Date.now();
  for (const node of document.querySelectorAll("[data-expires]")) {
    const left = Math.floor((Date.parse(node.dataset.expires) - now) / 1000);
    node.textContent = formatLeft(left);
    node.classList.toggle("soon", left > 0 && left < SOON_S);
    node.classList.toggle("over", left <= 0);
  }
}

function follow(list) {
  const state = document.querySelector(`[data-live-for="${list.id}"]`);
  const keep = Number(list.dataset.feedMax) || 200;
  const source = new EventSource(list.dataset.feedSrc);
  source.addEventListener("open", () => {
    if (state) { state.textContent = "live"; state.classList.remove("down"); }
  });
  source.addEventListener("error", () => {
    if (state) { state.textContent = "reconnecting…"; state.classList.add("down"); }
  });
  source.addEventListener("events", (message) => {
    for (const event of JSON.parse(message.data)) {
      if (list.querySelector(`[data-seq="${event.seq}"]`)) continue;
      list.insertAdjacentHTML("afterbegin", event.html);
      list.firstElementChild.classList.add("fresh");
    }
    while (list.children.length > keep) list.lastElementChild.remove();
    for (const empty of document.querySelectorAll(".empty")) {
      if (empty.previousElementSibling === list) empty.remove();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  for (const list of document.querySelectorAll("[data-feed-src]")) follow(list);
});
