"""Reports over call records: `ivr report`, `ivr calls`, the flow heat map.

query (a read-only connection and the filters) -> sections (one SQL GROUP BY each over
the hourly rollups) -> compose (a report, a comparison, an experiment) -> render_text,
render_csv, render_html (with charts). The dashboard runs the same queries in a thread.
"""
