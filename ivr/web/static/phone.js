// The softphone page (/phone): one call at a time over the admin listener's WebSocket,
// in the Twilio Media Streams protocol (the audio itself is phone-worklet.js's), plus the
// admin socket's own messages: `ivr.text` (typed "speech") out, `ivr.transcript` in.
// `window.ivrPhone` is a hook for the tests and the bench: the events seen, with their
// times, and `inject(base64 mu-law, voiceEnd)` to speak recorded audio instead of the mic.

const $ = (id) => document.getElementById(id);
const ui = {
  dial: $("dial"),
  flow: $("flow"),
  call: $("call"),
  hangup: $("hangup"),
  status: $("status"),
  keypad: $("keypad"),
  say: $("say"),
  text: $("text"),
  send: $("send"),
  mute: $("mute"),
  path: $("path"),
  transcript: $("transcript"),
  outcome: $("outcome"),
};
const KEYS = /^[0-9*#]$/;
const hook = (window.ivrPhone = { events: [], call: null, inject: null });

function event(type, fields = {}) {
  hook.events.push({ type, at: performance.now(), ...fields });
}

function line(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  ui.transcript.append(item);
  item.scrollIntoView?.({ block: "nearest" });
  return item;
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text);
}

function unbase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/**
 * The line without audio, where a browser gives none (a page that is not a secure context:
 * plain http beyond localhost): the worklet's messages, kept by a 20 ms timer. Silence
 * goes out, so the server's clock runs; what comes in is "played" for as long as it lasts,
 * so its marks come back in time. The keypad and the text box work as with audio.
 */
class SilentLine {
  constructor() {
    this.queue = []; // 20 ms frames (as a count of samples) and marks
    this.port = { postMessage: (m) => this.command(m), onmessage: null };
    this.timer = setInterval(() => this.tick(), 20);
  }

  tell(message) {
    this.port.onmessage?.({ data: message });
  }

  command(m) {
    if (m.type === "play") this.queue.push(m.ulaw.byteLength);
    else if (m.type === "mark") this.queue.push(m.name);
    else if (m.type === "clear") {
      for (const held of this.queue) if (typeof held === "string") this.tell({ type: "mark", name: held });
      this.queue = [];
    }
  }

  tick() {
    this.tell({ type: "frame", ulaw: new Uint8Array(160).fill(0xff) });
    let left = 160;
    while (this.queue.length && (typeof this.queue[0] === "string" || left > 0)) {
      const head = this.queue.shift();
      if (typeof head === "string") this.tell({ type: "mark", name: head });
      else left -= head;
    }
  }

  close() {
    clearInterval(this.timer);
  }
}

class Call {
  constructor(flow) {
    this.flow = flow;
    this.streamSid = "";
    this.callSid = "";
    this.chunk = 0;
    this.started = false;
    this.over = false;
    this.ended = null; // the server's `end` line
    this.hearing = false; // the server's audio comes in (not yet all played)
  }

  async open() {
    if (window.isSecureContext && window.AudioWorkletNode) await this.openAudio();
    else {
      this.node = new SilentLine();
      this.node.port.onmessage = (e) => this.fromAudio(e.data);
      line("note", "No audio on a page that is not https or localhost: the keypad and the text box still work.");
    }
    const url = new URL("phone/ws", location.href); // beside this page: /phone/ws
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(url);
    this.ws.onopen = () => this.start();
    this.ws.onmessage = (e) => this.fromServer(JSON.parse(e.data));
    this.ws.onclose = () => this.closed();
  }

  async openAudio() {
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    await this.ctx.audioWorklet.addModule(new URL("phone-worklet.js", import.meta.url));
    this.node = new AudioWorkletNode(this.ctx, "ivr-phone", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.node.port.onmessage = (e) => this.fromAudio(e.data);
    this.node.connect(this.ctx.destination);
    this.node.port.postMessage({ type: "mute", on: ui.mute.checked });
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
      });
      this.ctx.createMediaStreamSource(this.mic).connect(this.node);
    } catch (e) {
      line("note", `No microphone (${e.name || e}): the keypad and the text box still work.`);
    }
    await this.ctx.resume();
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  start() {
    this.send({ event: "connected", protocol: "Call", version: "1.0.0" });
    this.send({
      event: "start",
      sequenceNumber: "1",
      start: {
        streamSid: "",
        callSid: "",
        tracks: ["inbound"],
        customParameters: { flow: this.flow },
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
      },
    });
    this.started = true;
    event("open");
  }

  fromAudio(m) {
    if (m.type === "frame") {
      if (!this.started || this.over) return;
      const timestamp = this.chunk * 20;
      this.chunk += 1;
      this.send({
        event: "media",
        streamSid: this.streamSid,
        media: { track: "inbound", chunk: String(this.chunk), timestamp: String(timestamp), payload: base64(m.ulaw) },
      });
      if (m.spoken) event("spoken");
    } else if (m.type === "mark") {
      this.send({ event: "mark", streamSid: this.streamSid, mark: { name: m.name } });
    } else if (m.type === "playing") {
      event("audio");
    } else if (m.type === "idle") {
      this.hearing = false;
      event("quiet");
    }
  }

  fromServer(m) {
    if (m.event === "media") {
      if (!this.hearing) event("arrive"); // the first frame of a prompt after quiet
      this.hearing = true;
      const ulaw = unbase64(m.media.payload);
      this.node.port.postMessage({ type: "play", ulaw: ulaw.buffer }, [ulaw.buffer]);
    } else if (m.event === "mark") {
      this.node.port.postMessage({ type: "mark", name: m.mark.name });
    } else if (m.event === "clear") {
      this.node.port.postMessage({ type: "clear" });
      event("clear");
    } else if (m.event === "ivr.transcript") {
      this.transcript(m);
    }
  }

  transcript(m) {
    event(m.kind, { line: m });
    if (m.kind === "call") {
      this.streamSid = m.streamSid;
      this.callSid = m.callSid;
      hook.callSid = m.callSid;
      line("note", `Call ${m.callSid} to ${m.flow} (version ${m.version || "?"})`);
    } else if (m.kind === "prompt") {
      line("prompt", `IVR: ${m.text}`);
    } else if (m.kind === "heard") {
      const how = m.typed ? "typed" : `confidence ${Number(m.confidence).toFixed(2)}`;
      const meant = m.understood ? `understood "${m.understood}"` : "no match";
      line("heard", `You: "${m.text}" (${how}): ${meant}`);
    } else if (m.kind === "keys") {
      line("keys", `You pressed ${m.digits}`);
    } else if (m.kind === "silence") {
      line("note", "(no input)");
    } else if (m.kind === "ignored") {
      line("note", `Not taken here: "${m.text}" (this prompt takes keys only, or the IVR is busy)`);
    } else if (m.kind === "node") {
      ui.path.textContent = m.path.join(" → ") || "-";
      for (const [at, node, ...what] of m.lines || []) {
        if (what[0] !== "say" && what[0] !== "prompt") line("engine", `${at}s ${node}: ${what.join(" ")}`);
      }
    } else if (m.kind === "end") {
      this.ended = m;
      ui.outcome.textContent = ending(m);
      line("end", ending(m));
    }
  }

  dtmf(digit) {
    this.send({ event: "dtmf", streamSid: this.streamSid, dtmf: { track: "inbound_track", digit } });
  }

  say(text) {
    this.send({ event: "ivr.text", streamSid: this.streamSid, text });
  }

  hangUp() {
    if (this.over) return;
    this.send({ event: "stop", streamSid: this.streamSid, stop: { callSid: this.callSid } });
    this.over = true;
    this.ws?.close();
    ui.outcome.textContent = "You hung up: the call is abandoned.";
    line("end", "You hung up.");
  }

  closed() {
    if (this.done) return;
    this.done = this.over = true;
    this.mic?.getTracks().forEach((t) => t.stop());
    this.ctx?.close();
    this.node?.close?.();
    if (!this.ended && !ui.outcome.textContent) ui.outcome.textContent = "The call was cut off.";
    event("closed");
    idle();
  }
}

function ending(m) {
  if (m.outcome === "transferred" && m.to) return `Transferred to ${m.to}${m.queue ? ` (queue ${m.queue})` : ""}`;
  if (m.record) return `A recording (${m.record}): the softphone does not record, so the call ends here, abandoned.`;
  if (m.outcome === "transferred") return `Transferred${m.queue ? ` to queue ${m.queue}` : ""}`;
  return `Ended: ${m.outcome}`;
}

function busy() {
  ui.call.disabled = ui.flow.disabled = true;
  ui.hangup.disabled = ui.text.disabled = ui.send.disabled = false;
  ui.status.textContent = `Calling ${ui.flow.value}…`;
}

function idle() {
  ui.call.disabled = ui.flow.disabled = false;
  ui.hangup.disabled = ui.text.disabled = ui.send.disabled = true;
  ui.status.textContent = "Ready: pick a flow and call.";
  hook.call = null;
}

async function call() {
  if (hook.call && !hook.call.over) return;
  ui.transcript.replaceChildren();
  ui.outcome.textContent = "";
  ui.path.textContent = "-";
  hook.callSid = null;
  event("dial");
  busy();
  const current = (hook.call = new Call(ui.flow.value));
  try {
    await current.open();
    ui.status.textContent = `In a call with ${current.flow}.`;
  } catch (e) {
    line("note", `The call could not start: ${e.message || e}`);
    current.closed();
  }
}

function press(key) {
  const button = ui.keypad.querySelector(`[data-key="${CSS.escape(key)}"]`);
  button?.classList.add("pressed");
  setTimeout(() => button?.classList.remove("pressed"), 150);
  if (hook.call && !hook.call.over) hook.call.dtmf(key);
}

ui.dial.addEventListener("submit", (e) => {
  e.preventDefault();
  call();
});
ui.hangup.addEventListener("click", () => hook.call?.hangUp());
ui.keypad.addEventListener("click", (e) => {
  const key = e.target.closest("[data-key]");
  if (key) press(key.dataset.key);
});
document.addEventListener("keydown", (e) => {
  const typing = e.target.closest?.("input, select, textarea");
  if (typing || e.ctrlKey || e.metaKey || e.altKey || !KEYS.test(e.key)) return;
  e.preventDefault();
  press(e.key);
});
ui.say.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (text && hook.call && !hook.call.over) hook.call.say(text);
  ui.text.value = "";
});
ui.mute.addEventListener("change", () => {
  hook.call?.node?.port.postMessage({ type: "mute", on: ui.mute.checked });
});
hook.inject = (ulaw, voiceEnd = -1) => {
  const bytes = unbase64(ulaw);
  hook.call.node.port.postMessage({ type: "inject", ulaw: bytes.buffer, voiceEnd }, [bytes.buffer]);
};
event("loaded");
