// The labelling page: a key press scores (1-5) or skips the clip shown and moves on at once to
// the next clip, already loaded; the requests go to the server one at a time, in order, behind
// the scenes. After each reply the page shows the first clip the server still waits for, less
// the ones acted on whose requests are still queued (after an undo, that is the undone clip).
"use strict";

const FPS = 10;
const STILLS = 8;
const player = document.getElementById("player");
const playerContext = player.getContext("2d");
const progress = document.getElementById("progress");
const rateText = document.getElementById("rate");
const clipInfo = document.getElementById("clip-info");
const lastText = document.getElementById("last");
const statusLine = document.getElementById("status");
const speedText = document.getElementById("speed");
const stills = document.getElementById("stills");
const images = new Map();  // clip id -> Image of its frame strip, fetched ahead
const queue = [];  // requests not yet sent
const acted = new Set();  // clip ids scored or skipped whose request has no reply yet
let waiting = [];  // the clips the server waits for, as of its last reply
let shown = null;  // {clip_id, video_id, n_frames, shownAt}
let busy = false;
let speed = Number(new URLSearchParams(location.search).get("speed")) || 4;
const started = performance.now();
let actedThisSession = 0;

async function call(method, path, body) {
  const reply = await fetch(path, {method, headers: {"Content-Type": "application/json"},
                                   body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await reply.json();
  if (!reply.ok) throw new Error(data.error || reply.statusText);
  return data;
}

function image(clipId) {
  if (!images.has(clipId)) {
    const strip = new Image();
    strip.addEventListener("error", () => { if (shown && shown.clip_id === clipId) unreadable(clipId); });
    strip.src = "/api/clip?id=" + encodeURIComponent(clipId);
    images.set(clipId, strip);
  }
  return images.get(clipId);
}

function update(state) {
  waiting = state.clips.filter((clip) => !acted.has(clip.clip_id));
  const keep = new Set(waiting.map((clip) => clip.clip_id));
  for (const clipId of images.keys()) if (!keep.has(clipId)) images.delete(clipId);
  waiting.forEach((clip) => image(clip.clip_id));
  progress.textContent = `${state.labelled} / ${state.total} labelled` + (state.skipped ? ` · ${state.skipped} skipped` : "");
  lastText.textContent = state.last ? `last: ${state.last.action} ${state.last.clip_id}` : "";
  if (!busy || !shown) show(waiting[0] || null);
}

function unreadable(clipId) { statusLine.textContent = `clip ${clipId} cannot be read (Space skips it)`; }

function show(clip) {
  if (clip && shown && clip.clip_id === shown.clip_id) return;
  shown = clip && {...clip, shownAt: performance.now()};
  statusLine.textContent = "";
  player.dataset.clip = clip ? clip.clip_id : "";
  clipInfo.textContent = clip ? `${clip.clip_id} · ${clip.video_id}` : "";
  stills.replaceChildren();
  if (!clip) {
    playerContext.clearRect(0, 0, 160, 90);
    if (!busy) progress.textContent += " · nothing left to label";
    return;
  }
  const strip = image(clip.clip_id);
  if (strip.complete && !strip.naturalWidth) unreadable(clip.clip_id);
  const drawStills = () => {
    if (!shown || shown.clip_id !== clip.clip_id) return;
    for (let k = 0; k < STILLS; k++) {
      const still = document.createElement("canvas");
      still.width = 160;
      still.height = 90;
      const frameIndex = Math.floor((k + 0.5) * clip.n_frames / STILLS);
      still.getContext("2d").drawImage(strip, 0, frameIndex * 90, 160, 90, 0, 0, 160, 90);
      stills.appendChild(still);
    }
  };
  if (strip.complete && strip.naturalWidth) drawStills(); else strip.addEventListener("load", drawStills, {once: true});
}

function draw(now) {
  if (shown) {
    const strip = image(shown.clip_id);
    if (strip.complete && strip.naturalWidth) {
      const frameIndex = Math.floor((now - shown.shownAt) * FPS * speed / 1000) % shown.n_frames;
      playerContext.drawImage(strip, 0, frameIndex * 90, 160, 90, 0, 0, 160, 90);
      player.dataset.frame = frameIndex;
    }
  }
  requestAnimationFrame(draw);
}

async function run(task) {
  queue.push(task);
  if (busy) return;
  busy = true;
  let failed = false;
  while (queue.length) {
    try {
      const state = await queue.shift()();
      if (!queue.length) busy = false;
      update(state);
    } catch (error) {
      failed = true;
      statusLine.textContent = String(error.message || error);
    }
  }
  busy = false;
  if (failed) call("GET", "/api/state").then(update).catch(() => {});  // back in step with the server
}

function act(path, extra) {
  if (!shown) return;
  const clipId = shown.clip_id;
  acted.add(clipId);
  actedThisSession++;
  const hours = (performance.now() - started) / 3.6e6;
  rateText.textContent = `· ${Math.round(actedThisSession / hours)} clips/h`;
  waiting = waiting.filter((clip) => clip.clip_id !== clipId);
  show(waiting[0] || null);
  run(() => call("POST", path, {clip_id: clipId, ...extra}).finally(() => acted.delete(clipId)));
}

function undo() { run(() => call("POST", "/api/undo")); }

function setSpeed(factor) {
  speed = Math.min(16, Math.max(0.25, speed * factor));
  speedText.textContent = speed;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (/^[1-5]$/.test(event.key)) act("/api/label", {score: Number(event.key)});
  else if (event.key === " ") act("/api/skip", {});
  else if (event.key === "Backspace" || event.key === "u" || event.key === "U") undo();
  else if (event.key === "+" || event.key === "=") setSpeed(2);
  else if (event.key === "-") setSpeed(0.5);
  else return;
  event.preventDefault();
});

setSpeed(1);
requestAnimationFrame(draw);
call("GET", "/api/state").then(update).catch((error) => { statusLine.textContent = String(error.message || error); });
