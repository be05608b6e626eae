// The softphone's audio thread (an AudioWorklet): the microphone at the context's rate
// becomes 8 kHz mu-law in 20 ms frames, as Twilio sends a caller; the server's mu-law
// frames are played at the context's rate, a `mark` is echoed once the audio before it has
// played, and `clear` drops what is queued (its marks echoed at once), as Twilio does.
// The codec and the resampler are exported too, so the tests can check them in a page.

export const RATE = 8000; // Twilio Media Streams: 8 kHz mono mu-law
export const FRAME = 160; // samples (and mu-law bytes) in a 20 ms frame
const CUTOFF = 3600; // Hz: a telephone band's top is 3.4 kHz; below 4 kHz, no aliasing
const LOBES = 4; // zero crossings of the sinc kept either side
const TABLE_STEPS = 64; // kernel table points per input sample

/** G.711 mu-law code of a 16-bit sample, as CPython's audioop.lin2ulaw (and the server). */
export function encodeSample(sample) {
  let value = sample >> 2; // the top 14 bits
  let mask = 0xff;
  if (value < 0) {
    value = -value;
    mask = 0x7f;
  }
  value = Math.min(value, 8159) + 33;
  const segment = Math.min(Math.max(31 - Math.clz32(value) - 5, 0), 8);
  const code = segment >= 8 ? 0x7f : (segment << 4) | ((value >> (segment + 1)) & 0x0f);
  return (code ^ mask) & 0xff;
}

/** The 16-bit sample of a mu-law code (G.711 expansion). */
export function decodeSample(ulaw) {
  const code = ~ulaw & 0xff;
  const exponent = (code >> 4) & 0x07;
  const magnitude = ((((code & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return code & 0x80 ? -magnitude : magnitude;
}

const DECODED = Float32Array.from({ length: 256 }, (_, code) => decodeSample(code) / 32768);

/** Float samples (-1..1) -> mu-law bytes. */
export function encode(samples) {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const scaled = Math.round(samples[i] * 32768);
    out[i] = encodeSample(Math.max(-32768, Math.min(32767, scaled)));
  }
  return out;
}

/** Mu-law bytes -> float samples (-1..1). */
export function decode(ulaw) {
  const out = new Float32Array(ulaw.length);
  for (let i = 0; i < ulaw.length; i++) out[i] = DECODED[ulaw[i]];
  return out;
}

/**
 * Band-limited resampling from `from` to `to` Hz, one chunk at a time: windowed-sinc
 * interpolation (a Hann window, LOBES zero crossings either side, cut off at CUTOFF), so
 * chunk edges come out as if the stream were one array. Feed with `push`, then read each
 * output with `next` while `ready`.
 */
export class Resampler {
  constructor(from, to, cutoff = CUTOFF) {
    this.step = from / to; // input samples per output sample
    const fc = cutoff / from; // cycles per input sample
    this.half = Math.ceil(LOBES / (2 * fc));
    this.table = new Float32Array(this.half * TABLE_STEPS + 2);
    for (let i = 0; i < this.table.length; i++) {
      const d = i / TABLE_STEPS;
      const x = 2 * fc * d;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const window = d >= this.half ? 0 : 0.5 + 0.5 * Math.cos((Math.PI * d) / this.half);
      this.table[i] = sinc * window;
    }
    this.input = new Array(this.half).fill(0); // history: the first output is at sample 0
    this.pos = this.half; // the next output's place, in input samples from input[0]
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) this.input.push(samples[i]);
  }

  add(sample) {
    this.input.push(sample);
  }

  /** Whether the input holds what the next output needs. */
  get ready() {
    return Math.floor(this.pos) + this.half < this.input.length;
  }

  next() {
    const base = Math.floor(this.pos);
    const frac = this.pos - base;
    let sum = 0;
    let weights = 0;
    for (let k = 1 - this.half; k <= this.half; k++) {
      const at = Math.abs(k - frac) * TABLE_STEPS;
      const j = Math.floor(at);
      const w = this.table[j] + (this.table[j + 1] - this.table[j]) * (at - j);
      sum += w * this.input[base + k];
      weights += w;
    }
    this.pos += this.step;
    const done = Math.floor(this.pos) - this.half + 1; // inputs no output needs any more
    if (done > 256) {
      this.input.splice(0, done);
      this.pos -= done;
    }
    return weights ? sum / weights : 0;
  }

  /** Every output the input pushed so far allows. */
  drain(out = []) {
    while (this.ready) out.push(this.next());
    return out;
  }
}

const Base = globalThis.AudioWorkletProcessor ?? class {}; // a page may import this module

/** The processor: input 0 is the microphone (none: silence), output 0 the speaker. */
export class PhoneProcessor extends Base {
  constructor() {
    super();
    this.down = new Resampler(sampleRate, RATE);
    this.up = new Resampler(RATE, sampleRate);
    this.frame = new Float32Array(FRAME);
    this.filled = 0;
    this.muted = false;
    this.injected = null; // a test's caller audio (8 kHz floats) sent instead of the mic
    this.injectedAt = 0;
    this.voiceEnd = -1; // the injected sample where the voice ends: told when it is sent
    this.spoken = false; // the frame being filled holds that sample
    this.queue = []; // server audio (Float32Array chunks at 8 kHz) and marks (strings)
    this.offset = 0; // samples of queue[0] played
    this.playing = false;
    this.port.onmessage = (e) => this.command(e.data);
  }

  command(m) {
    if (m.type === "play") {
      this.queue.push(decode(new Uint8Array(m.ulaw)));
    } else if (m.type === "mark") {
      if (this.queue.length) this.queue.push(m.name);
      else this.port.postMessage({ type: "mark", name: m.name }); // nothing held: played
    } else if (m.type === "clear") {
      for (const held of this.queue) {
        if (typeof held === "string") this.port.postMessage({ type: "mark", name: held });
      }
      this.queue = [];
      this.offset = 0;
    } else if (m.type === "mute") {
      this.muted = m.on;
    } else if (m.type === "inject") {
      this.injected = decode(new Uint8Array(m.ulaw));
      this.injectedAt = 0;
      this.voiceEnd = m.voiceEnd ?? -1;
    }
  }

  process(inputs, outputs) {
    const mic = inputs[0] && inputs[0].length ? inputs[0][0] : null;
    const speaker = outputs[0][0];
    this.down.push(mic && !this.muted ? mic : new Float32Array(speaker.length));
    while (this.down.ready) this.capture(this.down.next());
    for (let i = 0; i < speaker.length; i++) {
      while (!this.up.ready) this.up.add(this.play());
      speaker[i] = this.up.next();
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(speaker);
    return true;
  }

  /** One 8 kHz sample of the caller: a frame goes out every 160. */
  capture(sample) {
    let told = false;
    if (this.injected) {
      sample = this.injected[this.injectedAt];
      told = this.injectedAt === this.voiceEnd;
      this.injectedAt += 1;
      if (this.injectedAt >= this.injected.length) this.injected = null;
    }
    this.frame[this.filled++] = sample;
    this.spoken ||= told;
    if (this.filled === FRAME) {
      const ulaw = encode(this.frame);
      this.port.postMessage({ type: "frame", ulaw, spoken: this.spoken }, [ulaw.buffer]);
      this.filled = 0;
      this.spoken = false;
    }
  }

  /** The next 8 kHz sample to play: the queue's, or silence; marks echoed on the way. */
  play() {
    while (this.queue.length && typeof this.queue[0] === "string") {
      this.port.postMessage({ type: "mark", name: this.queue.shift() });
    }
    if (!this.queue.length) {
      if (this.playing) this.port.postMessage({ type: "idle" });
      this.playing = false;
      return 0;
    }
    if (!this.playing) this.port.postMessage({ type: "playing", time: currentTime });
    this.playing = true;
    const chunk = this.queue[0];
    const sample = chunk[this.offset++];
    if (this.offset >= chunk.length) {
      this.queue.shift();
      this.offset = 0;
    }
    return sample;
  }
}

if (globalThis.registerProcessor) registerProcessor("ivr-phone", PhoneProcessor);
