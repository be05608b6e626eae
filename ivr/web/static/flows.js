// /flows: lights the node a call is at. The diagrams follow one convention (ivr/web/flows.py):
// each node is an SVG <g id="ivr-node--FLOW--NODE" class="node ivr-node" data-node="NODE">
// inside <section data-flow="FLOW">. Live events come from GET /flows/live (server-sent,
// fed by ivr.web.live.publish): {"event": "ivr.node", "flow": F, "node": N} lights N,
// {"event": "ivr.end", "flow": F} puts F's light out. Other pages may import these.

/** The SVG id of `node` in `flow`'s diagram. */
export function nodeId(flow, node) {
  return `ivr-node--${flow}--${node}`;
}

/** Light `node` of `flow` (and only it, in that flow); false when no such node is drawn. */
export function highlight(flow, node) {
  clear(flow);
  const found = document.getElementById(nodeId(flow, node));
  if (!found) return false;
  found.classList.add("lit");
  found.setAttribute("aria-current", "step");
  return true;
}

/** Put out the light in `flow`'s diagram. */
export function clear(flow) {
  for (const lit of document.querySelectorAll(".ivr-node.lit")) {
    if (lit.id.startsWith(nodeId(flow, ""))) {
      lit.classList.remove("lit");
      lit.removeAttribute("aria-current");
    }
  }
}

/** Apply one live event (the shape /phone's WebSocket sends too). */
export function apply(event) {
  if (!event || typeof event.flow !== "string") return;
  if (event.event === "ivr.node" && typeof event.node === "string") {
    const shown = highlight(event.flow, event.node);
    say(shown ? `Call in ${event.flow} at ${event.node}.` : "");
  } else if (event.event === "ivr.end") {
    clear(event.flow);
    say(`Call in ${event.flow} ended.`);
  }
}

function say(text) {
  const status = document.getElementById("live-status");
  if (status && text) status.textContent = `Live calls: ${text}`;
}

function listen() {
  if (!("EventSource" in window) || !document.getElementById("live-status")) return;
  const source = new EventSource("/flows/live");
  source.onopen = () => say("connected, waiting for a call.");
  source.onmessage = (message) => {
    try {
      apply(JSON.parse(message.data));
    } catch (error) {
      console.info("ivr: an event that is not JSON", error);
    }
  };
  // EventSource reconnects by itself after an error; the status says so meanwhile
  source.onerror = () => say("reconnecting…");
  window.addEventListener("pagehide", () => source.close());
}

listen();
