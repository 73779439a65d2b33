// The gallery's script: an upload progress bar driven by the browser's
// upload events, and the status chart refreshed from /status.json.
"use strict";

function uploadWithProgress(form) {
  const progress = document.getElementById("progress");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = new XMLHttpRequest();
    progress.hidden = false;
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = (100 * e.loaded) / e.total;
    });
    request.addEventListener("load", () => {
      if (request.status === 200 && request.responseURL) {
        window.location.assign(request.responseURL);
      } else {
        document.open();
        document.write(request.responseText);
        document.close();
      }
    });
    request.addEventListener("error", () => {
      progress.hidden = true;
      const message = document.getElementById("upload-error");
      message.hidden = false;
      message.textContent = "The upload broke off: the connection closed before the gallery " +
        "answered. It may be larger than the gallery takes.";
    });
    request.open("POST", form.action);
    request.send(new FormData(form));
  });
}

function drawChart(canvas, points) {
  const context = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height;
  context.clearRect(0, 0, width, height);
  const top = Math.max(1, ...points);
  context.strokeStyle = "#4a8";
  context.lineWidth = 2;
  context.beginPath();
  points.forEach((value, i) => {
    const x = (i / Math.max(1, points.length - 1)) * (width - 10) + 5;
    const y = height - 5 - (value / top) * (height - 20);
    if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
  });
  context.stroke();
  context.fillStyle = "#222";
  context.fillText("requests/s, max " + top.toFixed(1), 8, 12);
}

function watchStatus(canvas) {
  const rates = [];
  let last = null;
  async function refresh() {
    try {
      const answer = await fetch("/status.json", { cache: "no-store" });
      const figures = await answer.json();
      for (const name of ["requests", "connections", "workers", "threads", "uptime"]) {
        document.getElementById(name).textContent = figures[name];
      }
      if (last) rates.push(Math.max(0, (figures.requests - last.requests) / 2));
      if (rates.length > 60) rates.shift();
      last = figures;
      drawChart(canvas, rates);
    } catch (error) {
      // The server went away: keep the last chart.
    }
  }
  refresh();
  setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  if (form) uploadWithProgress(form);
  const canvas = document.getElementById("chart");
  if (canvas) watchStatus(canvas);
});
