"""`GET /audio/FILE`: prompt recordings for Twilio's `<Play>`, as 8 kHz mono WAV.

Whatever format a recording is in (mp3, ogg, a 44.1 kHz stereo WAV), Twilio gets the
copy `ivr.speech.prompts` converted once: the telephone's own rate, so nothing is
resampled on Twilio's side and a few KB a second go over the wire. Names that leave
audio/ or are not recordings are 404s, like files that are not there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from ivr.speech.prompts import PromptAudio, PromptError

ROUTE = "/audio/{name:.+}"
# a replaced recording reaches Twilio within this many seconds; revalidation is cheap
# (the ETag of the converted copy): Twilio caches <Play> media as HTTP says
MAX_AGE = 300


def recordings(prompts: PromptAudio) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler serving `prompts`' converted recordings."""

    async def play(request: web.Request) -> web.StreamResponse:
        try:
            path = await prompts.wav_file(request.match_info["name"])
        except PromptError:
            raise web.HTTPNotFound() from None
        return web.FileResponse(
            path,
            headers={
                hdrs.CONTENT_TYPE: "audio/wav",
                hdrs.CACHE_CONTROL: f"public, max-age={MAX_AGE}",
            },
        )

    return play
