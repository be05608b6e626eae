"""The admin listener's browser pages: `/flows`, `/dashboard` (and `/phone`), their shared
layout, the request guard (Host, Origin, session cookie) and the live node feed."""
