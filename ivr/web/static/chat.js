/* ivr web chat widget (docs/chat.md). Embed it with
 *   <script src="https://YOUR-IVR-HOST/static/chat.js" data-flow="order_status"></script>
 * Optional: data-title="Order help" (the panel's heading), data-open (open at once).
 * A chat bubble opens a panel that talks to the ivr server the script came from, over
 * the WebSocket /chat/ws (JSON). The visitor id is kept in localStorage: the same
 * visitor, back within the flow's idle time, continues where they were. The widget
 * lives in a shadow root, so the host page's styles and its own do not mix.
 * Plain JS, no build step. */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || window.ivrChat) return; // loaded twice: one widget is enough

  const VISITOR = "ivr-chat-visitor"; // localStorage: the chat identity
  const OPENED = "ivr-chat-open"; // sessionStorage: the panel stays open across reloads
  const flow = script.dataset.flow || "";
  const title = script.dataset.title || "Chat with us";
  // the server is where the script came from (behind a proxy's path prefix too)
  const base = new URL(script.src.replace(/static\/chat\.js([?#].*)?$/, ""), location.href);
  const socketUrl = new URL("chat/ws", base);
  socketUrl.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  socketUrl.searchParams.set("flow", flow);

  const stored = (store, key, value) => {
    try {
      if (value === undefined) return store.getItem(key);
      if (value === null) store.removeItem(key);
      else store.setItem(key, value);
    } catch (e) {
      // storage refused (private mode, a sandbox): the chat works, unremembered
    }
    return null;
  };

  const STYLE = `
    :host { all: initial; }
    * { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
    [hidden] { display: none !important; }
    .bubble {
      position: fixed; right: 1rem; bottom: 1rem; z-index: 2147483000;
      min-width: 3.5rem; min-height: 3.5rem; padding: 0 1.1rem; border: 0; border-radius: 1.75rem;
      background: #1d4ed8; color: #fff; font-size: 1rem; font-weight: 600; cursor: pointer;
      box-shadow: 0 4px 14px rgba(0, 0, 0, .25);
    }
    .panel {
      position: fixed; right: 1rem; bottom: 5.5rem; z-index: 2147483000;
      width: min(23rem, calc(100vw - 2rem)); height: min(34rem, calc(100vh - 7rem));
      display: flex; flex-direction: column; background: #fff; color: #111827;
      border: 1px solid #d1d5db; border-radius: .75rem; overflow: hidden;
      box-shadow: 0 8px 30px rgba(0, 0, 0, .25); font-size: .95rem; line-height: 1.4;
    }
    header {
      display: flex; align-items: center; justify-content: space-between;
      padding: .6rem .8rem; background: #1d4ed8; color: #fff;
    }
    h2 { margin: 0; font-size: 1rem; }
    .close {
      min-width: 2.75rem; min-height: 2.75rem; border: 0; background: transparent;
      color: #fff; font-size: 1.4rem; cursor: pointer;
    }
    .log { flex: 1; margin: 0; padding: .75rem; overflow-y: auto; list-style: none; }
    .log li {
      max-width: 85%; margin: 0 0 .5rem; padding: .45rem .7rem; border-radius: .8rem;
      white-space: pre-wrap; overflow-wrap: anywhere;
    }
    .log li.ivr { background: #f3f4f6; border-bottom-left-radius: .2rem; }
    .log li.me { margin-left: auto; background: #1d4ed8; color: #fff; border-bottom-right-radius: .2rem; }
    .who { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
    .choices { display: flex; flex-wrap: wrap; gap: .4rem; padding: 0 .75rem .5rem; }
    .choices button, .again {
      min-height: 2.5rem; padding: .3rem .8rem; border: 1px solid #1d4ed8; border-radius: 1.25rem;
      background: #fff; color: #1d4ed8; font-size: .95rem; cursor: pointer;
    }
    .again { margin: 0 .75rem .5rem; }
    .status { margin: 0; padding: 0 .75rem; color: #4b5563; font-size: .85rem; min-height: 1.2em; }
    form { display: flex; gap: .4rem; padding: .6rem .75rem .75rem; border-top: 1px solid #e5e7eb; }
    form label { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
    input {
      flex: 1; min-width: 0; min-height: 2.5rem; padding: .3rem .6rem;
      border: 1px solid #9ca3af; border-radius: .4rem; font-size: 1rem;
    }
    .send {
      min-height: 2.5rem; padding: 0 .9rem; border: 0; border-radius: .4rem;
      background: #1d4ed8; color: #fff; font-size: .95rem; cursor: pointer;
    }
    button:disabled, input:disabled { opacity: .55; cursor: not-allowed; }
    :focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
  `;

  const host = document.createElement("div");
  host.id = "ivr-chat";
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `<style>${STYLE}</style>
    <button type="button" class="bubble" aria-expanded="false" aria-controls="panel"></button>
    <section id="panel" class="panel" aria-labelledby="title" hidden>
      <header><h2 id="title"></h2>
        <button type="button" class="close" aria-label="Close the chat">×</button></header>
      <ol class="log" role="log" aria-live="polite" aria-labelledby="title"></ol>
      <div class="choices" role="group" aria-label="Choices" hidden></div>
      <p class="status" role="status" aria-live="polite"></p>
      <button type="button" class="again" hidden></button>
      <form class="say"><label for="text">Your message</label>
        <input id="text" name="text" autocomplete="off" maxlength="1600" disabled>
        <button type="submit" class="send" disabled>Send</button></form>
    </section>`;
  const $ = (selector) => root.querySelector(selector);
  const bubble = $(".bubble"), panel = $(".panel"), log = $(".log"), choices = $(".choices");
  const status = $(".status"), again = $(".again"), form = $("form"), input = $("input");
  const send = $(".send");
  bubble.textContent = title;
  $("#title").textContent = title;

  let socket = null;
  let ended = false; // the conversation is over: a new one starts on request
  let problem = ""; // the server's last error, kept when the socket closes after it

  const say = (text) => (status.textContent = text);
  const ready = (on) => {
    input.disabled = send.disabled = !on;
  };
  const offer = (label) => {
    again.textContent = label || "";
    again.hidden = !label;
  };

  function add(kind, text) {
    const item = document.createElement("li");
    item.className = kind;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = kind === "me" ? "You: " : `${title}: `;
    item.append(who, document.createTextNode(text));
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  function show(buttons) {
    choices.replaceChildren(
      ...buttons.map(({ key, label }) => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.dataset.key = key;
        return button;
      }),
    );
    choices.hidden = buttons.length === 0;
    log.scrollTop = log.scrollHeight; // the buttons took room from the list: its end in view
  }

  function write(text, shown) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "message", text }));
    add("me", shown || text);
    show([]);
    say("");
  }

  const handlers = {
    welcome(m) {
      stored(localStorage, VISITOR, m.visitor);
      ended = false;
      problem = "";
      offer("");
      say(m.resumed ? "Continuing your conversation." : "");
      ready(true);
      if (root.activeElement) input.focus(); // the customer is in the widget: on to typing
    },
    message(m) {
      add("ivr", m.text);
    },
    choices(m) {
      show(m.choices || []);
    },
    end() {
      ended = true;
      show([]);
      ready(false);
      say("The conversation has ended.");
      offer("Start a new conversation");
    },
    error(m) {
      problem = `Sorry: ${m.error}.`;
      say(problem);
    },
  };

  function connect() {
    say("Connecting…");
    offer("");
    socket = new WebSocket(socketUrl);
    const mine = socket;
    socket.addEventListener("open", () => {
      mine.send(JSON.stringify({ type: "hello", visitor: stored(localStorage, VISITOR) }));
    });
    socket.addEventListener("message", (event) => {
      let m;
      try {
        m = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (mine === socket && handlers[m.type]) handlers[m.type](m);
    });
    socket.addEventListener("close", () => {
      if (mine !== socket) return;
      socket = null;
      ready(false);
      if (!ended) {
        say(`${problem} The chat is disconnected.`.trim());
        offer("Reconnect");
      }
    });
  }

  function open(focus = true) {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    stored(sessionStorage, OPENED, "1");
    if (!socket && !ended) connect();
    if (focus) (input.disabled ? panel.querySelector("button:not([hidden])") : input).focus();
  }

  function close() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    stored(sessionStorage, OPENED, null);
    bubble.focus();
  }

  bubble.addEventListener("click", () => (panel.hidden ? open() : close()));
  $(".close").addEventListener("click", close);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  choices.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) write(button.dataset.key, button.textContent);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    write(text);
    input.value = "";
  });
  again.addEventListener("click", () => {
    if (socket && ended) {
      ended = false;
      offer("");
      say("");
      ready(true);
      socket.send(JSON.stringify({ type: "start" }));
    } else {
      ended = false;
      connect();
    }
    input.focus();
  });

  const mount = () => {
    document.body.append(host);
    // opened by the page (or left open before a reload): the page keeps its focus
    if (script.hasAttribute("data-open") || stored(sessionStorage, OPENED)) open(false);
  };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
  window.ivrChat = { open: () => open(), close };
})();
