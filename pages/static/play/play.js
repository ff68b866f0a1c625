// The play page: every key press or button queues one latent action; the queue is played in
// order, one request at a time, and each new frame is shown as soon as it arrives.
"use strict";

const frame = document.getElementById("frame");
const counter = document.getElementById("counter");
const actionsText = document.getElementById("actions");
const statusLine = document.getElementById("status");
const buttons = document.getElementById("buttons");
const queue = [];
let busy = false;
let numActions = 0;

async function call(method, path, body) {
  const reply = await fetch(path, {method, headers: {"Content-Type": "application/json"},
                                   body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await reply.json();
  if (!reply.ok) throw new Error(data.error || reply.statusText);
  return data;
}

function show(state) {
  // the frame number in the URL makes every new frame a new image (no cache to get in the way)
  frame.src = "/api/frame?n=" + state.frame;
  frame.dataset.frame = state.frame;
  counter.textContent = "frame " + state.frame;
  actionsText.textContent = state.actions.length ? "actions " + state.actions.join("") : "";
  statusLine.textContent = "";
}

function makeButtons(count) {
  numActions = count;
  document.getElementById("last-key").textContent = String(count - 1);
  buttons.replaceChildren();
  for (let action = 0; action < count; action++) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(action);
    button.title = "latent action " + action + " (key " + action + ")";
    button.dataset.action = action;
    button.addEventListener("click", () => play(action));
    buttons.appendChild(button);
  }
}

async function run(task) {
  queue.push(task);
  if (busy) return;
  busy = true;
  document.body.classList.add("busy");
  while (queue.length) {
    try {
      show(await queue.shift()());
    } catch (error) {
      statusLine.textContent = String(error.message || error);
    }
  }
  busy = false;
  document.body.classList.remove("busy");
}

function play(action) { run(() => call("POST", "/api/step", {action})); }
function reset() { queue.length = 0; run(() => call("POST", "/api/reset")); }

function upload(file) {
  // scaled down in the browser (keeping its aspect) so any photo fits the server's size limit
  const reader = new FileReader();
  reader.onload = () => {
    const image = new Image();
    image.onload = () => {
      const scale = Math.min(1, 640 / image.width, 360 / image.height);
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(image.width * scale));
      canvas.height = Math.max(1, Math.round(image.height * scale));
      canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
      queue.length = 0;
      run(() => call("POST", "/api/upload", {image: canvas.toDataURL("image/png")}));
    };
    image.onerror = () => { statusLine.textContent = "cannot read that image"; };
    image.src = reader.result;
  };
  reader.readAsDataURL(file);
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^[0-9]$/.test(event.key) && Number(event.key) < numActions) {
    play(Number(event.key));
    event.preventDefault();
  } else if (event.key === "r" || event.key === "R") {
    reset();
    event.preventDefault();
  }
});
document.getElementById("reset").addEventListener("click", reset);
document.getElementById("upload").addEventListener("change", (event) => {
  if (event.target.files.length) upload(event.target.files[0]);
  event.target.value = "";
});

call("GET", "/api/state").then((state) => { makeButtons(state.num_actions); show(state); })
  .catch((error) => { statusLine.textContent = String(error.message || error); });
