// The console's only script: live counters (poll a JSON endpoint, fill [data-counter] cells)
// and a confirmation before a retry. No build step, no library.
"use strict";

function pick(obj, path) {
  // "outcomes.refund.issued": the keys may themselves hold dots, so try the longest key first.
  if (obj === null || obj === undefined) return undefined;
  if (path in obj) return obj[path];
  const parts = path.split(".");
  for (let i = parts.length - 1; i > 0; i--) {
    const head = parts.slice(0, i).join(".");
    if (head in obj) return pick(obj[head], parts.slice(i).join("."));
  }
  return undefined;
}

function show(value, asFen) {
  if (value === null || value === undefined) return "–";
  if (asFen) return (value / 100).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2}) + " CNY";
  return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
}

async function poll(url) {
  const stamps = document.querySelectorAll("[data-counter-stamp]");
  try {
    const response = await fetch(url, {headers: {"accept": "application/json"}, credentials: "same-origin"});
    if (response.status === 401) { window.location = "/login"; return; }
    if (!response.ok) throw new Error("HTTP " + response.status);
    const data = await response.json();
    document.querySelectorAll("[data-counter]").forEach(function (cell) {
      const next = show(pick(data, cell.dataset.counter), cell.hasAttribute("data-fen"));
      // Highlight what moved since the last poll (not the first fill).
      cell.classList.toggle("changed", cell.textContent !== next && cell.textContent !== "–");
      cell.textContent = next;
    });
    stamps.forEach(function (s) { s.textContent = "updated " + new Date(data.at).toLocaleTimeString(); s.classList.remove("stale"); });
  } catch (err) {
    stamps.forEach(function (s) { s.textContent = "cannot reach the console: " + err.message; s.classList.add("stale"); });
  }
}

document.addEventListener("DOMContentLoaded", function () {
  const source = document.querySelector("[data-poll]");
  if (source) {
    const url = source.dataset.poll;
    poll(url);
    window.setInterval(function () { poll(url); }, 3000);
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  const month = document.querySelector("input[type=month][data-autosubmit]");
  if (month) month.addEventListener("change", function () { month.form.submit(); });
});
