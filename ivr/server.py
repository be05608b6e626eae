"""Builds the aiohttp app: Twilio webhooks, prompt audio, health, flow reloads; and beside
it the admin app (`ivr.admin`: metrics, health) on a listener of its own."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from ivr.admin import build_admin_app, health
from ivr.backend import Backend
from ivr.channels.conversations import TextConversations
from ivr.closures import ClosuresCache
from ivr.config import Config
from ivr.connections import ConnectionGuard
from ivr.flow.model import Flow
from ivr.keys import Keys
from ivr.metrics import Metrics
from ivr.registry import FlowRegistry
from ivr.runner import Outbox, Runner
from ivr.speech.prompts import PromptAudio
from ivr.speech.service import SpeechService
from ivr.speech.tts import TTS, from_setting
from ivr.speech.vosk_speech import VoskSpeech
from ivr.store import open_records, open_sessions
from ivr.store.campaigns import open_campaigns
from ivr.store.health import PING_EVERY, StoreHealth
from ivr.store.records import RecordStore, RecordWriter
from ivr.store.spool import Spool
from ivr.telephony.admission import Admission, InProgress
from ivr.telephony.calls import Calls
from ivr.telephony.messaging import MessagingWebhook
from ivr.telephony.play import ROUTE as PLAY_ROUTE
from ivr.telephony.play import recordings
from ivr.telephony.rest import twilio_rest
from ivr.telephony.signature import SignatureCheck
from ivr.telephony.spoken_here import localised, spoken_here
from ivr.telephony.stream import PATH as STREAM_PATH
from ivr.telephony.stream import MediaStreams, StreamRoute
from ivr.telephony.twiml import Voice
from ivr.telephony.webhook import TwilioWebhooks
from ivr.web.chat import add_chat
from ivr.web.hours import add_hours
from ivr.web.notices import add_notices
from ivr.web.phone import add_phone

log = logging.getLogger("ivr.server")
MAX_BODY = 64 * 1024  # Twilio's webhook forms are a few KB

FLOWS = web.AppKey("flows", FlowRegistry)
METRICS = web.AppKey("metrics", Metrics)
HOOKS = web.AppKey("hooks", TwilioWebhooks)
STREAMS = web.AppKey("streams", MediaStreams)  # calls on Media Streams (/twilio/stream)
KEYS = web.AppKey("keys", Keys)
PROMPTS = web.AppKey("prompts", PromptAudio)  # prompt audio for Media Streams and <Play>
GUARD = web.AppKey("guard", ConnectionGuard)  # slow clients (the public listener's)
ADMIN = web.AppKey("admin", web.Application)  # served on the admin listener, not this one
SPEECH = web.AppKey("speech", VoskSpeech)  # the Vosk models by language (IVR_VOSK_MODELS)
RECOGNITION = web.AppKey("recognition", SpeechService)  # calls' recognition, off the loop
TEXTS = web.AppKey("texts", TextConversations)  # SMS, WhatsApp and web chat conversations
MESSAGING = web.AppKey("messaging", MessagingWebhook)
CLOSURES = web.AppKey("closures", ClosuresCache)  # hours ops closed (`ivr hours close`)
RETAIN_EVERY = 3600.0  # seconds between deletions of records past IVR_RETENTION
REAP_EVERY = 60.0  # seconds between looks for calls whose status callback never came
EXPIRE_EVERY = 30.0  # seconds between looks for text conversations left idle
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(config: Config, tts: TTS | None = None) -> web.Application:
    """The whole service; stores open and close with the app's lifetime. `tts` speaks
    text prompts on the Media Streams path (default: the engine IVR_TTS names)."""
    guard = ConnectionGuard()  # slow clients: watched once the app's server is made (`run`)
    app = web.Application(client_max_size=MAX_BODY)
    app[GUARD] = guard
    keys = app[KEYS] = Keys.load(config.data)  # callers' ids: experiment splits, records
    shared = urlsplit(config.sessions_url).scheme in ("redis", "rediss", "unix")
    if shared and not (os.environ.get("IVR_CUSTOMER_KEY") and os.environ.get("IVR_DATA_KEY")):
        log.warning(
            "sessions are in Redis but IVR_CUSTOMER_KEY and IVR_DATA_KEY are not set: every "
            "process sharing them needs the same keys (they seal the sessions), so set both"
        )
    metrics = Metrics()
    prompts = app[PROMPTS] = PromptAudio(
        config.audio, config.data / "prompts", tts or from_setting(config.tts)
    )

    def loaded(flow: Flow) -> None:
        metrics.flow_loaded(flow)
        # a stream's prompts are audio made here, and those in a language Twilio has no
        # voice for: static ones ahead of the first call
        if config.speech == "vosk" or flow.speech == "vosk":
            prompts.warm_soon(flow)
        elif here := [tag for tag in flow.languages if spoken_here(flow, tag)]:
            prompts.warm_soon(flow, here)

    flows = FlowRegistry(
        config.flows,
        default=config.default_flow,
        turn_budget=config.turn_budget,
        keys=keys,
        on_load=loaded,
        on_failure=metrics.reload_failed,
    )
    app[FLOWS], app[METRICS] = flows, metrics
    guard.refused = metrics.rejected
    stores = StoreHealth()  # what /healthz says of the stores, on both listeners
    app[ADMIN] = build_admin_app(flows, metrics, config, stores)
    add_phone(app[ADMIN], flows, lambda: app[STREAMS])  # /phone: calls on the stream driver
    add_hours(app[ADMIN], flows, lambda: app[CLOSURES])  # /hours: ops close hours
    add_notices(app[ADMIN], lambda: app[TEXTS])  # /notify: outbound text conversations
    if config.insecure:
        log.warning(
            "--insecure: Twilio signatures are NOT checked; anyone can drive calls. "
            "Use this for local development only."
        )
    elif not config.auth_token:
        log.error("TWILIO_AUTH_TOKEN is not set: every Twilio request will be refused (403)")
    signature = SignatureCheck(
        config.auth_token, config.public_url, config.trust_proxy, config.insecure
    )

    # behind a proxy that strips a path prefix (IVR_PUBLIC_URL=https://host/ivr), the URLs
    # Twilio follows carry the prefix while the routes here do not
    prefix = urlsplit(config.public_url or "").path.rstrip("/")

    @functools.cache  # one Voice per flow's language, voice and speech model: TwiML's cache key
    def spoken(language: str, name: str | None, model: str | None, ends: int | None) -> Voice:
        base, audio, workflow = f"{prefix}/twilio", f"{prefix}/audio", config.workflow_sid
        return Voice(
            language,
            name,
            base=base,
            audio=audio,
            workflow_sid=workflow,
            speech_model=model,
            speech_timeout=ends,
        )

    def voice(flow: Flow | None) -> Voice:
        if flow is None:
            return spoken("en-US", None, None, None)
        return spoken(flow.language, flow.voice, flow.speech_model, flow.speech_timeout)

    rest = twilio_rest()  # sends `message` nodes' messages (None: not configured)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        flows.reload()
        if not flows.current:
            log.error("no flow loaded from %s", config.flows)
        # a webhook waits for a call's lock held elsewhere half its budget at most
        sessions = open_sessions(config.sessions_url, keys, config.turn_budget / 2)
        records = open_records(config.records_url)

        def unwritten() -> None:
            metrics.store_error("records", "write")
            stores.failed("records", "call records could not be written")

        writer = RecordWriter(
            sessions, records, keys, unwritten, on_written=lambda: stores.answered("records")
        )
        await writer.start()
        backend = Backend(config.http_allow)
        closures = app[CLOSURES] = ClosuresCache(records)
        with contextlib.suppress(Exception):  # down: logged by keep_fresh, which tries again
            await closures.refresh()
        runner = Runner(
            backend,
            observe=metrics.backend_call,
            closures=closures,
            messenger=rest,
            senders=config.senders,
            observe_message=metrics.message,
        )
        spool = Spool(config.data / "spool", keys)  # calls ended while sessions were away
        in_progress = InProgress(config.reap_after)  # for IVR_MAX_CALLS
        calls = Calls(flows, sessions, runner, writer, metrics, spool, stores, in_progress, keys)
        route = StreamRoute(signature, everything=config.speech == "vosk")
        admission = Admission(config.caller_limit, config.max_calls)
        hooks = TwilioWebhooks(
            calls,
            signature,
            voice,
            config.turn_budget,
            route,
            admission,
            lambda actions, flow: localised(actions, flow, prompts),  # Kazakh: <Play>
        )
        app[HOOKS] = hooks
        texts = app[TEXTS] = TextConversations(calls, keys)
        optouts = open_campaigns(config.records_url)  # who said STOP: campaigns skip them
        app[MESSAGING] = MessagingWebhook(texts, signature, metrics, optouts)
        # /phone's calls are rehearsals: in memory, in metrics nobody scrapes, unrecorded
        # (their messages are kept, never sent: a designer's rehearsal texts nobody)
        rehearsing = Runner(backend, closures=closures, messenger=Outbox(), senders=config.senders)
        rehearsals = Calls(flows, open_sessions("memory://"), rehearsing, None, Metrics())
        app[STREAMS] = MediaStreams(
            calls, signature, prompts, app[RECOGNITION], voice, rehearsals, config.ws_rate
        )
        reloader = asyncio.create_task(_watch(flows, config)) if config.watch else None
        reaper = asyncio.create_task(_reap(hooks, config.reap_after))
        idler = asyncio.create_task(_expire(texts))
        pinger = asyncio.create_task(_check_stores(calls))
        retainer = asyncio.create_task(_retain(records, config.retention))
        refresher = asyncio.create_task(closures.keep_fresh())
        sighups: set[asyncio.Task[None]] = set()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, _on_sighup, flows, sighups)
        yield
        if reloader:
            reloader.cancel()
        reaper.cancel()
        idler.cancel()
        pinger.cancel()
        retainer.cancel()
        refresher.cancel()
        await hooks.close()
        await prompts.close()
        await writer.stop()
        await backend.close()
        if rest is not None:
            await rest.close()
        await sessions.close()
        await records.close()
        await optouts.close()

    app.cleanup_ctx.append(lifetime)
    speech = app[SPEECH] = VoskSpeech(config.vosk_models)
    app[RECOGNITION] = SpeechService(speech)
    app.cleanup_ctx.append(_speech)

    for name in TwilioWebhooks.ROUTES:  # plain routes: found by a dict lookup, no pattern
        app.router.add_post(f"/twilio/{name}", _route(name))
    app.router.add_post("/twilio/messaging", _messaging)
    app.router.add_get(STREAM_PATH, _stream)
    app.on_shutdown.append(_close_streams)  # before the server waits for its handlers
    app.router.add_get("/healthz", health(flows, stores))  # for load balancers: both listeners
    app.router.add_get(PLAY_ROUTE, recordings(prompts))  # converted copies for <Play>
    # the web chat: /chat/ws, its widget /static/chat.js and a page to try it, /chat
    add_chat(
        app, flows, lambda: app[TEXTS], metrics, signature, config.chat_origins, config.ws_rate
    )
    return app


async def _speech(app: web.Application) -> AsyncIterator[None]:
    """The speech models load before the first call, off the loop (seconds each); the
    recognition pool stops after the last."""
    speech = app[SPEECH]
    if speech.languages():
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, speech.load)
        languages = ", ".join(speech.languages())
        log.info("speech models (%s) loaded in %.1f s", languages, time.monotonic() - started)
    yield
    await app[RECOGNITION].close()


async def _stream(request: web.Request) -> web.StreamResponse:
    return await request.app[STREAMS].handle(request)


async def _close_streams(app: web.Application) -> None:
    if STREAMS in app:
        await app[STREAMS].close()


def _route(name: str) -> Handler:
    async def twilio(request: web.Request) -> web.StreamResponse:
        return await request.app[HOOKS].handlers[name](request)

    return twilio


async def _reap(hooks: TwilioWebhooks, after: float) -> None:
    """Close the calls whose status callback never came, now and then, and stop counting
    in progress the calls another process ended."""
    while True:
        try:
            await hooks.reap(time.time() - after)
            await hooks.calls.recount()
        except Exception:  # the store may be down: the next round tries again
            log.exception("closing calls left without a status callback failed")
        await asyncio.sleep(min(REAP_EVERY, after))


async def _messaging(request: web.Request) -> web.StreamResponse:
    return await request.app[MESSAGING].handle(request)


async def _expire(texts: TextConversations) -> None:
    """End the text conversations left idle past their flow's `defaults.idle`."""
    while True:
        try:
            await texts.expire()
        except Exception:  # the store may be down: the next round tries again
            log.exception("ending idle text conversations failed")
        await asyncio.sleep(EXPIRE_EVERY)


async def _retain(records: RecordStore, keep: float | None) -> None:
    """Delete the call records older than IVR_RETENTION, at start and every hour."""
    while keep is not None:
        try:
            if gone := await records.purge(time.time() - keep):
                log.info("deleted %d call records older than IVR_RETENTION", gone)
        except Exception:  # the store may be down: the next round tries again
            log.exception("deleting old call records failed")
        await asyncio.sleep(RETAIN_EVERY)


async def _check_stores(calls: Calls) -> None:
    """Ping the session store now and then; spooled calls go back to it once it answers."""
    while True:
        try:
            await calls.check_stores()
        except Exception:
            log.exception("checking the stores failed")
        await asyncio.sleep(PING_EVERY)


async def _reload(flows: FlowRegistry) -> None:
    try:
        await flows.reload_aside()
    except Exception:  # a reload must never take the server down
        log.exception("flow reload failed")


def _on_sighup(flows: FlowRegistry, running: set[asyncio.Task[None]]) -> None:
    log.info("reloading flows")
    task = asyncio.get_running_loop().create_task(_reload(flows))
    running.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(running.discard)


async def _watch(flows: FlowRegistry, config: Config) -> None:
    from watchfiles import awatch

    async for _ in awatch(config.flows, debounce=200, step=50):
        await _reload(flows)


async def _settle_gc(app: web.Application) -> None:
    """Fewer, cheaper cycle collections. Every collection of the youngest generation
    walks the ~5,000 young objects of the calls in flight (~1.5 ms at 50 calls), and
    at the default threshold (700) one ran every ~85 turns: 5-8% of a turn's CPU. What
    was loaded at start-up is frozen out of the oldest generation's walks."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def serve(config: Config) -> None:
    """Run the server until a signal stops it; ConfigError (before anything starts or logs)
    when its port, the admin listener's or the demo's cannot be listened on, or when the
    admin listener would be reachable beyond loopback without a token."""
    from ivr.admin import listen_admin, serving
    from ivr.logs import setup
    from ivr.sockets import listen

    sockets = listen(config.host, config.port)
    demo = None
    try:
        admin = listen_admin(config)
        if config.demo:
            from ivr.demo import Demo

            try:
                demo = Demo.listen()
            except BaseException:
                for sock in admin:
                    sock.close()
                raise
            config.http_allow = (*config.http_allow, *demo.hosts)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    setup(config.log_level)
    log.info("ivr serving on %s:%d, flows from %s", config.host, config.port, config.flows)
    log.info("admin listener (/metrics, /healthz) on %s:%d", *config.admin)
    from ivr.web.pages import urls

    log.info("in a browser: %s", "  ".join(urls(config)))
    local = "127.0.0.1" if config.host in ("", "0.0.0.0", "::") else config.host
    log.info("web chat to try: http://%s:%d/chat?flow=FLOW", local, config.port)
    if config.admin_token:
        log.info("the pages ask for IVR_ADMIN_TOKEN once, at /login")
    import uvloop

    app = build_app(config)
    if demo is not None:  # up before the first call, down after the last
        app.cleanup_ctx.insert(0, demo.lifetime)
    app.cleanup_ctx.append(serving(app[ADMIN], admin))  # after the stores open
    app.on_startup.append(_settle_gc)  # runs after the stores opened and the flows loaded
    # uvloop's transports and loop take about half of a turn's CPU off what asyncio's cost
    run(app, sockets, uvloop.new_event_loop())


class _Runner(web.AppRunner):
    """aiohttp's runner, with the guard watching the connections of the server it makes."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        self.app[GUARD].watch(server)
        return server


def run(
    app: web.Application, sockets: list[socket.socket], loop: asyncio.AbstractEventLoop
) -> None:
    """`web.run_app` for `app` on `sockets` (what it does: serve until SIGINT or SIGTERM,
    then stop within 10 s), with its server watched by the app's guard."""

    async def serving() -> None:
        runner = _Runner(app, access_log=None, handle_signals=True, shutdown_timeout=10)
        await runner.setup()
        try:
            for sock in sockets:
                await web.SockSite(runner, sock).start()
            await asyncio.Event().wait()  # until a signal
        finally:
            await runner.cleanup()

    asyncio.set_event_loop(loop)
    main = loop.create_task(serving())
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        rest = asyncio.all_tasks(loop)
        for task in rest:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
